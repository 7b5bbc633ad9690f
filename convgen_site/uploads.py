"""An upload handler that stops oversized uploads before they reach the disk.

Forms check an upload's size against `CONVGEN_MAX_UPLOAD_BYTES` and say so politely, but only
after Django has streamed the whole body into a temporary file, and the CSRF check reads the body
of every POST before the view runs. This handler (first in FILE_UPLOAD_HANDLERS) refuses a body
that is larger than the limit plus the room the ordinary form fields may take
(DATA_UPLOAD_MAX_MEMORY_SIZE) as soon as the Content-Length or the bytes received say so: the
request ends with 400, and at most that many bytes were stored.

`store_upload` then saves an accepted file where the researcher pages keep their uploads.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousFileOperation
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils.text import get_valid_filename


def upload_body_limit() -> int:
    """The most bytes a multipart body may have: the file limit plus the form fields' room."""
    fields = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or 0
    return int(settings.CONVGEN_MAX_UPLOAD_BYTES) + int(fields)


class UploadLimitHandler(FileUploadHandler):
    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        self.limit = upload_body_limit()
        self.received = 0
        if content_length > self.limit:
            raise RequestDataTooBig(f"upload of {content_length} bytes over the limit")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)  # a lying Content-Length does not get past this
        if self.received > self.limit:
            raise RequestDataTooBig("upload over the limit")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file


def safe_filename(name: str, default: str) -> str:
    """`name` reduced to letters, digits, `-_.` (Django's rules); `default` when none is left."""
    try:
        return get_valid_filename(name)
    except SuspiciousFileOperation:  # nothing usable left, e.g. "***" or ".."
        return default


def store_upload(upload: UploadedFile, folder: Path, default_name: str) -> Path:
    """Save an upload as FOLDER/<uuid>-<safe name>, streamed, never over an existing file."""
    name = safe_filename(Path(upload.name or default_name).name, default_name)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{uuid.uuid4().hex}-{name}"
    with dest.open("xb") as fh:  # "x": fails rather than overwrite
        for chunk in upload.chunks():
            fh.write(chunk)
    return dest
