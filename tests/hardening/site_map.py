"""Every URL of the site as a concrete path, and the upload forms its pages show.

The checks in this folder iterate over these, so a page or form added later is covered without
editing the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RoutePattern

CONVERTER_SAMPLES = {
    "int": "1",
    "slug": "sample",
    "str": "sample",
    "path": "a/b",
    "uuid": "0" * 32,
    "drf_format_suffix": ".json",
}
NAMED_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>")


def _sample_group(name: str, body: str) -> str:
    """A value a regex group accepts: the first alternative if it lists words, else a guess."""
    if re.fullmatch(r"[\w-]+(\|[\w-]+)*", body):
        return body.split("|")[0]
    if name == "format":
        return "json"
    return "1" if body in (r"\d+", "[0-9]+") else "sample"


def _sample_regex(regex: str) -> str:
    out, i = [], 0
    while i < len(regex):
        match = NAMED_GROUP.match(regex, i)
        if match:
            depth, j = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1] != "\\" else 0
                j += 1
            out.append(_sample_group(match.group("name"), regex[match.end() : j - 1]))
            i = j
            continue
        out.append(regex[i])
        i += 1
    text = "".join(out)
    text = re.sub(r"^\^|\$$|\\Z$", "", text).replace("/?", "/").replace("\\.", ".")
    return text


def _sample_route(route: str) -> str:
    return re.sub(
        r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>",
        lambda m: CONVERTER_SAMPLES.get(m.group("conv") or "str", "sample"),
        route,
    )


def _walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        raw = str(pattern.pattern)
        part = (
            _sample_route(raw) if isinstance(pattern.pattern, RoutePattern) else _sample_regex(raw)
        )
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + part)
        else:
            yield prefix + part, raw


@dataclass(frozen=True)
class SitePath:
    path: str
    view: str  # dotted name of the view function, for messages
    url_name: str  # "namespace:name" or ""


def site_paths() -> tuple[list[SitePath], list[str]]:
    """(one concrete path per URL pattern, patterns no sample path could be made for)."""
    found: dict[str, SitePath] = {}
    unsampled: list[str] = []
    for path, raw in _walk(get_resolver().url_patterns, "/"):
        try:
            match = resolve(path)
        except Resolver404:
            unsampled.append(f"{path} ({raw})")
            continue
        found.setdefault(path, SitePath(path, match._func_path, match.view_name or ""))
    return list(found.values()), unsampled


class _FormFinder(HTMLParser):
    """Collects the forms of a page that upload files: (action, method, file input names)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self._form: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {
                "action": values.get("action", ""),
                "method": values.get("method", "get").lower(),
                "enctype": values.get("enctype", ""),
                "files": [],
            }
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and values.get("type") == "file":
            files = self._form["files"]
            assert isinstance(files, list)
            files.append(values.get("name", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass(frozen=True)
class UploadForm:
    page: str
    action: str
    enctype: str
    file_fields: tuple[str, ...]


def upload_forms(html: str, page: str) -> list[UploadForm]:
    finder = _FormFinder()
    finder.feed(html)
    return [
        UploadForm(
            page=page,
            action=str(form["action"]) or page,
            enctype=str(form["enctype"]),
            file_fields=tuple(form["files"]),  # type: ignore[arg-type]
        )
        for form in finder.forms
        if form["files"]
    ]
