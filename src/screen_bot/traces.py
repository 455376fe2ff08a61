"""The trace files of unexpected errors (``error-<UTC stamp>-<random>.txt`` in the data
directory): a trace may quote stored values (a pydantic error shows the value it refused,
e.g. a referral label), so they expire with the sessions' lifetime. Versions of 2026-11-25/26
named them ``error-<UTC stamp>.txt``: those expire by the same rule."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .clock import CLOCK_AHEAD

PREFIX, SUFFIX = "error-", ".txt"
_NAME = re.compile(rf"{PREFIX}\d{{8}}T\d{{6}}Z(-\w+)?\{SUFFIX}")


def prefix() -> str:
    """The start of a new trace file's name (``tempfile.mkstemp`` adds the rest)."""
    return f"{PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-"


def expire(directory: Path, older_than: timedelta) -> int:
    """Remove the trace files in ``directory`` last written before ``older_than`` ago;
    return how many. One that cannot be removed is left for the next pass. One written
    while the clock was ahead (its time more than CLOCK_AHEAD from now) is re-dated to now:
    it goes one lifetime later, not when the clock catches up with it."""
    now = time.time()
    before, ahead = now - older_than.total_seconds(), now + CLOCK_AHEAD.total_seconds()
    removed = 0
    try:
        candidates = [p for p in directory.iterdir() if _NAME.fullmatch(p.name)]
    except OSError:  # no data directory (yet), or not readable: nothing to do here
        return 0
    for path in candidates:
        try:
            if not path.is_file():
                continue
            written = path.stat().st_mtime
            if written > ahead:
                os.utime(path, (now, now))
            elif written < before:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
