"""How long work reports progress and is told to stop (pure: no Django).

A job's work calls a progress callback now and then; the callback returns True when a researcher
asked for the job to stop, and the work then raises `Cancelled`. `modeling.jobs` marks the job's
row cancelled when it sees this exception.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Cancelled", "ProgressCallback"]

# (fraction done in [0, 1], message) -> True to ask the work to stop.
ProgressCallback = Callable[[float, str], "bool | None"]


class Cancelled(Exception):
    """Raised inside a job's work when a researcher asked for it to stop."""
