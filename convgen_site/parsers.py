"""DRF's JSON parser, answering 400 where the standard library's json raises other than ValueError.

`json.loads` raises RecursionError on deeply nested input (``[[[[...``) and ValueError on an
integer of more than 4,300 digits; DRF catches only ValueError. The CSRF check of a signed-in
session reads `request.POST`, which parses the body too, so the guard has to be the parser.
"""

from __future__ import annotations

import io
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 64  # far deeper than any request of this API


def nesting_depth_over(text: str | bytes, limit: int) -> bool:
    """Whether brackets nest deeper than `limit` (a cheap scan; strings are skipped)."""
    data = text.encode() if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # not enough brackets to nest that deep (the usual case, in C)
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # "
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        if nesting_depth_over(body, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
