"""Dataclass fields as command-line flags: one `--flag` per field, typed, with default and help.

Pure core (no Django). `TrainConfig` and `GenerationParams` declare every option once (type,
default, `metadata["help"]`, optional `metadata["choices"]`); commands build their flags here and
the web forms build their fields in `modeling.forms.dataclass_form_field`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["add_dataclass_arguments", "field_default", "from_options"]


def field_default(f: dataclasses.Field[Any]) -> Any:
    """The field's default value, calling its default factory if it has one."""
    return f.default_factory() if callable(f.default_factory) else f.default


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
) -> None:
    """Add one `--flag` per field of dataclass `cls`, with type, default and help from the field.

    bool: --flag/--no-flag; list: --flag A B ...; tuple: a repeatable flag (`flags` may rename
    it, e.g. --ban-phrase for `ban_phrases`); anything else: --flag VALUE of the field's type.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = (flags or {}).get(f.name) or "--" + f.name.replace("_", "-")
        default = field_default(f)
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
        hint = hints[f.name]
        origin = typing.get_origin(hint)
        if hint is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif origin is list:
            parser.add_argument(flag, nargs="+", default=default, help=help_text)
        elif origin is tuple:
            parser.add_argument(
                flag, dest=f.name, action="append", default=list(default), help=help_text
            )
        else:
            parser.add_argument(
                flag, type=hint, default=default, help=help_text, choices=f.metadata.get("choices")
            )


def from_options(cls: type, options: Mapping[str, Any]) -> Any:
    """An instance of dataclass `cls` from parsed options (argparse dest names); others ignored."""
    return cls(**{f.name: options[f.name] for f in dataclasses.fields(cls) if f.name in options})
