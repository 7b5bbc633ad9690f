"""Forms of the researcher pages (create a study) and the rater page (one rating set)."""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from annotation.models import Study
from annotation.services import (
    InputError,
    ItemRow,
    StudySpec,
    read_item_rows,
    rows_from_generation_run,
)
from modeling.models import GenerationRun

MAX_ITEM_FILE_BYTES = 50 * 1024 * 1024


class StudyCreateForm(forms.Form):
    """A new study from generation runs and/or an uploaded jsonl/csv file."""

    title = forms.CharField(label=_("Title"), max_length=200)
    slug = forms.SlugField(
        label=_("Short name (in links)"), max_length=100, help_text=_("letters, digits, -")
    )
    instructions = forms.CharField(label=_("Instructions"), widget=forms.Textarea, required=False)
    scale = forms.ChoiceField(
        label=_("Scale"),
        choices=[
            ("1-3", _("1-3: needs improvement, fair, good")),
            ("1-5", _("1-5: very poor ... very good")),
        ],
        initial="1-3",
    )
    raters_per_item = forms.IntegerField(
        label=_("Raters per item (k)"), min_value=1, max_value=50, initial=3
    )
    items_per_rater = forms.IntegerField(
        label=_("Most items per rater (0 = no limit)"), min_value=0, initial=0
    )
    lease_minutes = forms.IntegerField(
        label=_("Give an abandoned item to someone else after (minutes)"),
        min_value=1,
        max_value=24 * 60,
        initial=30,
    )
    runs = forms.ModelMultipleChoiceField(
        label=_("Generation runs"),
        queryset=GenerationRun.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    items_file = forms.FileField(
        label=_("Items file (jsonl or csv: background, question, answer, optional id and source)"),
        required=False,
    )

    @staticmethod
    def initial_from(query: Any) -> dict[str, Any]:
        """Initial values from the page's query string: `?run=<id>` preselects generation runs."""
        return {"runs": [int(v) for v in query.getlist("run") if str(v).isdigit()]}

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if Study.objects.filter(slug=slug).exists():
            raise ValidationError(_("A study with this short name exists already."))
        return slug

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rows: list[ItemRow] = []
        for run in data.get("runs") or []:
            rows.extend(rows_from_generation_run(run))
        upload = data.get("items_file")
        if upload is not None:
            if upload.size > min(MAX_ITEM_FILE_BYTES, settings.CONVGEN_MAX_UPLOAD_BYTES):
                raise ValidationError(_("The items file is too large."))
            try:
                text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
                rows.extend(read_item_rows(text, upload.name, default_source=upload.name))
            except InputError as exc:
                self.add_error("items_file", "; ".join(exc.problems[:5]))
            except UnicodeDecodeError:
                self.add_error("items_file", _("The items file is not UTF-8 text."))
        if not rows and not self.errors:
            raise ValidationError(_("Choose a generation run or upload an items file."))
        data["rows"] = rows
        return data

    def spec(self) -> StudySpec:
        data = self.cleaned_data
        return StudySpec(
            title=data["title"],
            slug=data["slug"],
            instructions=data["instructions"],
            scale=data["scale"],
            raters_per_item=data["raters_per_item"],
            items_per_rater=data["items_per_rater"],
            lease_seconds=data["lease_minutes"] * 60,
        )
