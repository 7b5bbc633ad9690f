"""Forms of the researcher pages: upload and prepare an OIG file, start training or generation.

The export form (with its rating thresholds) is the annotation app's: `annotation.forms`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from modeling.generation import GenerationParams
from modeling.models import Dataset, RunStatus, TrainingRun
from modeling.options import field_default
from modeling.training import TrainConfig, preflight

__all__ = [
    "DATASET_SUFFIXES",
    "TRAIN_FIELDS",
    "DatasetUploadForm",
    "GenerationForm",
    "TrainingForm",
    "background_files",
    "check_oig_head",
    "dataclass_form_field",
    "default_base_model",
]

DATASET_SUFFIXES = (".jsonl", ".json")
BACKGROUND_SUFFIXES = (".jsonl", ".csv", ".tsv", ".txt")
# Lines at the start of an upload checked for UTF-8 before it is accepted (prepare checks all).
SNIFF_BYTES = 1 << 20
HUB_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_oig_head(lines: Iterable[bytes], sniff_bytes: int = SNIFF_BYTES) -> str | None:
    """Why the start of an OIG jsonl file is unusable, naming the line; None when it looks fine.

    Lines within the first `sniff_bytes` must be UTF-8; the first non-blank one must be a JSON
    object with a string `text` field.
    """
    seen = 0
    checked_json = False
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return str(
                _("Line %(line)d is not UTF-8 text (byte %(byte)d).")
                % {"line": number, "byte": exc.start + 1}
            )
        if not checked_json and line.strip():
            checked_json = True
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                return str(
                    _("Line %(line)d is not valid JSON: %(error)s (column %(column)d).")
                    % {"line": number, "error": exc.msg, "column": exc.colno}
                )
            except (ValueError, RecursionError):  # a 5,000-digit number, very deep nesting
                return str(
                    _("Line %(line)d is not valid JSON: a number or nesting too large.")
                    % {"line": number}
                )
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                return str(
                    _('Line %(line)d is not a JSON object with a string "text" field.')
                    % {"line": number}
                )
        seen += len(raw)
        if seen >= sniff_bytes and checked_json:
            break
    if not checked_json:
        return str(_("The file has no lines."))
    return None


class DatasetUploadForm(forms.Form):
    """Upload an OIG jsonl file and choose how `prepare` cleans, deduplicates and splits it."""

    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        required=False,
        help_text=_("Shown in lists (default: the file name)."),
    )
    file = forms.FileField(
        label=_("OIG file"),
        help_text=_('A .jsonl file, one JSON object with a "text" field per line, UTF-8.'),
    )
    val_fraction = forms.FloatField(
        label=_("Validation fraction"),
        initial=0.05,
        min_value=0.0,
        max_value=0.99,
        help_text=_("Share of records held out in val.jsonl (0 to 0.99)."),
    )
    seed = forms.IntegerField(
        label=_("Seed"), initial=0, min_value=0, help_text=_("Seeds the train/val split.")
    )
    near_dup_threshold = forms.FloatField(
        label=_("Near-duplicate threshold"),
        initial=0.8,
        min_value=0.01,
        max_value=1.0,
        required=False,
        help_text=_(
            "Drop a record this similar (estimated Jaccard) to a kept one; empty keeps near "
            "duplicates (exact duplicates are always dropped)."
        ),
    )
    on_error = forms.ChoiceField(
        label=_("Malformed lines"),
        choices=[("skip", _("skip and count them")), ("fail", _("stop with an error"))],
        initial="skip",
    )
    limit = forms.IntegerField(
        label=_("Read at most (lines)"),
        min_value=1,
        required=False,
        help_text=_("Empty: the whole file."),
    )
    max_tokens = forms.IntegerField(
        label=_("Most tokens per record"),
        min_value=1,
        required=False,
        help_text=_("Drop longer records; needs a tokenizer. Empty: no limit."),
    )
    tokenizer = forms.CharField(
        label=_("Tokenizer directory"),
        max_length=1000,
        required=False,
        help_text=_("A local model or tokenizer directory, for the token limit."),
    )

    OPTION_FIELDS = ("val_fraction", "seed", "near_dup_threshold", "on_error", "limit")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = int(settings.CONVGEN_MAX_UPLOAD_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size)d bytes; the upload limit is %(limit)d bytes."),
                params={"size": upload.size, "limit": limit},
            )
        if Path(upload.name or "").suffix.lower() not in DATASET_SUFFIXES:
            raise forms.ValidationError(_("Upload a .jsonl (or .json) file."))
        upload.seek(0)
        problem = check_oig_head(iter(upload))
        upload.seek(0)
        if problem:
            raise forms.ValidationError(problem)
        return upload

    def clean_tokenizer(self) -> str:
        value: str = self.cleaned_data["tokenizer"].strip()
        if value and not Path(value).is_dir():
            raise forms.ValidationError(_("No such directory."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("max_tokens") and not data.get("tokenizer"):
            self.add_error("tokenizer", _("A token limit needs a tokenizer directory."))
        return data

    def prepare_options(self) -> dict[str, Any]:
        """Keyword options for `run_prepare` (JSON-serialisable, for the Celery message)."""
        data = self.cleaned_data
        options = {name: data[name] for name in self.OPTION_FIELDS}
        if data.get("max_tokens"):
            options.update(max_tokens=data["max_tokens"], tokenizer=data["tokenizer"])
        return options


# --- training ---------------------------------------------------------------------------------

# TrainConfig fields offered in the browser (paths come from the form, the rest keep defaults).
TRAIN_FIELDS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "learning_rate",
    "num_epochs",
    "max_steps",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "lr_scheduler",
    "weight_decay",
    "max_grad_norm",
    "seed",
    "cutoff_len",
    "train_on_prompt",
    "group_by_length",
    "max_train_records",
    "eval_steps",
    "logging_steps",
    "save_steps",
    "save_total_limit",
    "precision",
    "gradient_checkpointing",
)
TRAIN_LABELS = {
    "lora_r": _("LoRA rank (r)"),
    "lora_alpha": _("LoRA alpha"),
    "lora_dropout": _("LoRA dropout"),
    "target_modules": _("Target modules"),
    "learning_rate": _("Learning rate"),
    "num_epochs": _("Epochs"),
    "max_steps": _("Max steps"),
    "micro_batch_size": _("Micro batch size"),
    "gradient_accumulation_steps": _("Gradient accumulation steps"),
    "warmup_steps": _("Warm-up"),
    "lr_scheduler": _("Learning-rate schedule"),
    "weight_decay": _("Weight decay"),
    "max_grad_norm": _("Max gradient norm"),
    "seed": _("Seed"),
    "cutoff_len": _("Cutoff length (tokens)"),
    "train_on_prompt": _("Train on the prompt"),
    "group_by_length": _("Group by length"),
    "max_train_records": _("Max training records"),
    "eval_steps": _("Evaluate every (steps)"),
    "logging_steps": _("Log loss every (steps)"),
    "save_steps": _("Checkpoint every (steps)"),
    "save_total_limit": _("Checkpoints kept"),
    "precision": _("Precision"),
    "gradient_checkpointing": _("Gradient checkpointing"),
}
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
)


def default_base_model() -> str:
    """The base model the form suggests: CONVGEN_DEFAULT_BASE_MODEL or VAR_DIR/models/tiny."""
    explicit = getattr(settings, "CONVGEN_DEFAULT_BASE_MODEL", "")
    if explicit:
        return str(explicit)
    return str(Path(settings.VAR_DIR) / "models" / "tiny")


def dataclass_form_field(f: dataclasses.Field[Any], hint: Any, label: Any = None) -> forms.Field:
    """A form field for a dataclass field (TrainConfig, GenerationParams): type, default, help."""
    default = field_default(f)
    help_text = str(f.metadata.get("help", ""))
    if hint is bool:
        return forms.BooleanField(label=label, initial=default, required=False, help_text=help_text)
    if typing.get_origin(hint) is list:
        return forms.CharField(
            label=label, initial=" ".join(map(str, default)), max_length=500, help_text=help_text
        )
    if hint is int:
        low = -1 if f.name == "max_steps" else 0
        return forms.IntegerField(label=label, initial=default, min_value=low, help_text=help_text)
    if hint is float:
        return forms.FloatField(label=label, initial=default, min_value=0.0, help_text=help_text)
    choices = f.metadata.get("choices") or (LR_SCHEDULERS if f.name == "lr_scheduler" else None)
    if choices:
        return forms.ChoiceField(
            label=label, choices=[(c, c) for c in choices], initial=default, help_text=help_text
        )
    return forms.CharField(label=label, initial=default, max_length=200, help_text=help_text)


class TrainingForm(forms.Form):
    """Start a LoRA training run: base model, a prepared dataset and the main hyperparameters."""

    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    base_model = forms.CharField(
        label=_("Base model"),
        max_length=500,
        help_text=_("A local model directory (or a Hugging Face id the workers have cached)."),
    )
    dataset = forms.ModelChoiceField(
        label=_("Dataset"),
        queryset=Dataset.objects.filter(status=RunStatus.SUCCEEDED),
        help_text=_("A prepared dataset (train.jsonl / val.jsonl)."),
    )

    MODEL_FIELDS = ("name", "base_model", "dataset")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].initial = default_base_model()
        hints = typing.get_type_hints(TrainConfig)
        by_name = {f.name: f for f in dataclasses.fields(TrainConfig)}
        for name in TRAIN_FIELDS:
            label = TRAIN_LABELS.get(name, name)
            self.fields[name] = dataclass_form_field(by_name[name], hints[name], label)

    @property
    def model_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.MODEL_FIELDS]

    @property
    def param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in TRAIN_FIELDS]

    def clean_base_model(self) -> str:
        value: str = self.cleaned_data["base_model"].strip()
        if Path(value).is_dir():
            return value
        if not value.startswith((".", "/", "~")) and HUB_ID_RE.fullmatch(value):
            return value
        raise forms.ValidationError(_("No such directory: %(path)s"), params={"path": value})

    def clean_target_modules(self) -> list[str]:
        value: str = self.cleaned_data["target_modules"]
        modules = [m for m in re.split(r"[\s,]+", value) if m]
        if not modules:
            raise forms.ValidationError(_("Name at least one module."))
        return modules

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        config = TrainConfig.from_dict(
            {name: data[name] for name in TRAIN_FIELDS}
            | {
                "base_model": data["base_model"],
                "data_dir": data["dataset"].output_dir,
                "output_dir": "(set when the run is created)",
            }
        )
        try:
            preflight(config)  # everything that would refuse the run, before a row exists
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        data["config"] = {name: getattr(config, name) for name in TRAIN_FIELDS}
        return data


# --- generation -------------------------------------------------------------------------------


def background_files() -> list[tuple[str, str]]:
    """Backgrounds files a researcher may pick: under CONVGEN_DATA_DIR, relative paths."""
    root = Path(settings.CONVGEN_DATA_DIR)
    if not root.is_dir():
        return []
    found = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix.lower() in BACKGROUND_SUFFIXES and p.is_file()
    )
    return [(f, f) for f in found[:500]]


class GenerationForm(forms.Form):
    """Start a generation run: model, Backgrounds and every generation parameter."""

    name = forms.CharField(max_length=200, required=False)
    training_run = forms.ModelChoiceField(
        queryset=TrainingRun.objects.filter(status=RunStatus.SUCCEEDED),
        required=False,
        help_text=_("Use this run's base model and adapter."),
    )
    base_model = forms.CharField(
        max_length=500, required=False, help_text=_("Path or hub id (without a training run).")
    )
    adapter = forms.CharField(max_length=1000, required=False, help_text=_("LoRA adapter dir."))
    backgrounds_file = forms.FileField(
        required=False, help_text=_("Upload .jsonl (background, item/id), .csv or .txt.")
    )
    backgrounds_path = forms.ChoiceField(
        required=False, help_text=_("…or pick a file from the data directory.")
    )
    ban_phrases_text = forms.CharField(
        label=_("Ban phrases"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line, e.g. Examples include:"),
    )
    n_shards = forms.IntegerField(initial=1, min_value=1, max_value=64)
    device = forms.ChoiceField(
        choices=[("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")], initial="auto"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice = self.fields["backgrounds_path"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "—"), *background_files()]
        hints = typing.get_type_hints(GenerationParams)
        for f in dataclasses.fields(GenerationParams):
            if f.name != "ban_phrases":
                self.fields[f.name] = dataclass_form_field(f, hints[f.name])

    MODEL_FIELDS = ("name", "training_run", "base_model", "adapter")
    INPUT_FIELDS = ("backgrounds_file", "backgrounds_path")

    @property
    def model_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.MODEL_FIELDS]

    @property
    def input_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.INPUT_FIELDS]

    @property
    def param_fields(self) -> list[forms.BoundField]:
        skip = self.MODEL_FIELDS + self.INPUT_FIELDS
        return [self[name] for name in self.fields if name not in skip]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("training_run") and not data.get("base_model"):
            raise forms.ValidationError(_("Choose a training run or enter a base model."))
        has_file, has_path = bool(data.get("backgrounds_file")), bool(data.get("backgrounds_path"))
        if has_file == has_path:
            raise forms.ValidationError(_("Upload a Backgrounds file or pick one (not both)."))
        upload = data.get("backgrounds_file")
        if upload is not None and upload.size > settings.CONVGEN_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The Backgrounds file is larger than the upload limit."))
        names = {f.name for f in dataclasses.fields(GenerationParams)} - {"ban_phrases"}
        phrases = [p.strip() for p in data.get("ban_phrases_text", "").splitlines() if p.strip()]
        try:
            data["params"] = GenerationParams(
                **{k: data[k] for k in names if k in data}, ban_phrases=tuple(phrases)
            )
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data
