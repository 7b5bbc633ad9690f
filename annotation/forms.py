"""Forms: create a study, rate one item (the rater page), export a rated generation run."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from annotation.items import (
    REFERENCE_SPLITS,
    InputError,
    ItemRow,
    block_key,
    read_item_rows,
    rows_from_dataset,
    rows_from_generation_run,
)
from annotation.models import Study
from annotation.rated_export import DEFAULT_CRITERIA
from annotation.studies import StudySpec
from modeling.models import Dataset, GenerationRun, RunStatus

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
    reference_dataset = forms.ModelChoiceField(
        label=_("Reference conversations from a prepared dataset"),
        queryset=Dataset.objects.filter(status=RunStatus.SUCCEEDED),
        required=False,
        help_text=_(
            "adds the human-written question and answer of the same Backgrounds as a system "
            "of its own ('reference')"
        ),
    )
    one_background_per_rater = forms.BooleanField(
        label=_("No rater sees the same Background twice"),
        required=False,
        help_text=_("each Background then needs k raters for every system"),
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
        dataset = data.get("reference_dataset")
        if dataset is not None and not self.errors:
            blocks = {row.block or block_key(row.background) for row in rows} if rows else None
            try:
                reference = rows_from_dataset(dataset, REFERENCE_SPLITS, blocks)
            except InputError as exc:
                reference = []
                self.add_error("reference_dataset", "; ".join(exc.problems[:5]))
            if not reference and not self.errors:
                self.add_error(
                    "reference_dataset",
                    _("This dataset has no reference conversation of these Backgrounds."),
                )
            rows.extend(reference)
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
            one_background_per_rater=bool(data.get("one_background_per_rater")),
        )


class RatingForm(forms.Form):
    """One answer on the rater page: a score per criterion, or skip / flag with a reason.

    Scores stay text here: `allocation.validate_ratings` checks them against the study's scale
    (the same check the API makes), so the page and the API report the same errors.
    """

    action = forms.CharField(required=False)
    skip_reason = forms.CharField(required=False)
    flag_reason = forms.CharField(required=False)
    time_spent_ms = forms.CharField(required=False, max_length=20)
    submission_key = forms.CharField(required=False, max_length=64)  # as Assignment's

    def __init__(self, study: Study, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.criteria_keys = list(study.criteria_keys)
        for target, criterion in self.criteria_keys:
            self.fields[f"{target}__{criterion}"] = forms.CharField(required=False, strip=False)

    def clean_action(self) -> str:
        action = self.cleaned_data.get("action")
        return action if action in ("skip", "flag") else "submit"

    def clean_time_spent_ms(self) -> int | None:
        """The browser's measure, a hint: anything but ASCII digits ("²", "١٢") is ignored."""
        value = self.cleaned_data.get("time_spent_ms") or ""
        return int(value) if value.isascii() and value.isdigit() else None

    def posted(self) -> dict[str, str]:
        """The scores as sent, by field name (to show them again next to an error)."""
        return {
            f"{t}__{c}": self.cleaned_data.get(f"{t}__{c}") or "" for t, c in self.criteria_keys
        }

    def entries(self) -> list[dict[str, str]]:
        """The scores given, as `allocation.validate_ratings` takes them."""
        posted = self.posted()
        return [
            {"target": t, "criterion": c, "score": posted[f"{t}__{c}"]}
            for t, c in self.criteria_keys
            if posted[f"{t}__{c}"]
        ]


class ExportForm(forms.Form):
    """Download a generation run as jsonl, optionally only conversations rated well enough."""

    format = forms.ChoiceField(
        label=_("Format"),
        choices=[("oig", _("OIG text")), ("messages", _("chat messages"))],
        initial="oig",
        required=False,
    )
    target = forms.ChoiceField(
        label=_("Ratings of"),
        choices=[("question", _("question")), ("answer", _("answer")), ("both", _("both"))],
        initial="answer",
        required=False,
        help_text=_("Whose mean rating must reach the minimum; both: question and answer."),
    )
    only_parse_ok = forms.BooleanField(
        label=_("Only parsed conversations"), initial=True, required=False
    )

    def __init__(self, *args: Any, criteria: Sequence[str] = DEFAULT_CRITERIA, **kwargs: Any):
        kwargs.setdefault("auto_id", "id_export_%s")
        super().__init__(*args, **kwargs)
        self.criteria: dict[str, str] = {}  # field name -> criterion
        for criterion in criteria:
            name = "min_" + (slugify(criterion).replace("-", "_") or "criterion")
            if name in self.fields:
                continue
            self.criteria[name] = criterion
            self.fields[name] = forms.FloatField(
                label=_("Minimum mean %(criterion)s") % {"criterion": criterion},
                required=False,
                help_text=_("Empty: no filter."),
            )

    def clean_format(self) -> str:
        return str(self.cleaned_data.get("format") or "oig")

    def clean_target(self) -> str:
        return str(self.cleaned_data.get("target") or "answer")

    @property
    def criterion_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.criteria]

    def thresholds(self) -> dict[str, float]:
        """{criterion: minimum mean} for the filled-in minimums."""
        data = self.cleaned_data
        return {c: data[name] for name, c in self.criteria.items() if data.get(name) is not None}
