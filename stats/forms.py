"""Forms of the statistics pages: report options and the CSV upload."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from stats.ratings import Scale
from stats.report import ReportSettings
from stats.study_plan import PlanResult, plan_from_table

ALTERNATIVES = [
    ("two-sided", _("two-sided: questions and answers differ")),
    ("greater", _("greater: questions rated higher")),
    ("less", _("less: answers rated higher")),
]
ZERO_METHODS = [
    ("wilcox", _("wilcox: drop zero differences")),
    ("pratt", _("pratt: rank zeros, then drop them")),
    ("zsplit", _("zsplit: split zeros between signs")),
]
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class ReportOptionsForm(forms.Form):
    """Test options, from the query string of the report pages."""

    alternative = forms.ChoiceField(
        label=_("Alternative hypothesis"), choices=ALTERNATIVES, required=False
    )
    zero_method = forms.ChoiceField(
        label=_("Zero differences"), choices=ZERO_METHODS, required=False
    )

    def report_settings(self) -> ReportSettings:
        data = self.cleaned_data
        return ReportSettings(
            alternative=data.get("alternative") or "two-sided",
            zero_method=data.get("zero_method") or "wilcox",
        )


class RatingsUploadForm(ReportOptionsForm):
    """A long-format ratings CSV to analyse without storing it."""

    ratings = forms.FileField(label=_("Ratings CSV"))
    scale = forms.CharField(
        label=_("Scale"),
        required=False,
        max_length=20,
        help_text=_("MIN-MAX, e.g. 1-5; inferred from the scores when empty"),
    )
    field_order = ["ratings", "scale", "alternative", "zero_method"]

    def clean_scale(self) -> Scale | None:
        text = self.cleaned_data.get("scale", "").strip()
        if not text:
            return None
        try:
            return Scale.parse(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_ratings(self) -> Any:
        upload = self.cleaned_data["ratings"]
        limit = min(MAX_UPLOAD_BYTES, settings.CONVGEN_MAX_UPLOAD_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than the upload limit (%(limit)s)."),
                params={"limit": filesizeformat(limit)},
            )
        return upload


class PlanForm(forms.Form):
    """The report page's study planner (GET): the difference to detect and the power wanted."""

    delta = forms.FloatField(
        label=_("Difference to detect (scale points)"), min_value=0.01, max_value=10, initial=0.2
    )
    difference = forms.ChoiceField(
        label=_("Between"),
        choices=[
            ("systems", _("two systems on shared Backgrounds")),
            ("question-answer", _("questions and answers")),
        ],
        initial="systems",
    )
    target = forms.ChoiceField(
        label=_("Target (for systems)"),
        choices=[("answer", _("answer")), ("question", _("question"))],
        initial="answer",
        required=False,
    )
    criterion = forms.ChoiceField(label=_("Criterion"), choices=[])
    power = forms.FloatField(label=_("Power"), min_value=0.5, max_value=0.99, initial=0.8)

    def __init__(self, criteria: tuple[str, ...], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["criterion"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(c, c) for c in criteria]
        field.initial = "correctness" if "correctness" in criteria else (criteria or ("",))[0]

    def plan(self, table: Any) -> PlanResult:
        """Simulate the plan (1,000 replicates per design, seed 0); ValueError if impossible."""
        data = self.cleaned_data
        return plan_from_table(
            table,
            data["criterion"],
            data["delta"],
            difference=data["difference"],
            target=data.get("target") or "answer",
            power=data["power"],
        )
