"""Forms of the statistics pages: report options and the CSV upload."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from stats.ratings import Scale
from stats.report import ReportSettings

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
