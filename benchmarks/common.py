"""What every benchmark uses: figures, percentiles, timed child processes."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SCREEN_BOT = str(Path(sys.executable).parent / "screen-bot")


@dataclass
class Figure:
    """One measured value beside its baseline; ``aim`` reads e.g. "value <= 100"."""

    key: str
    label: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    aim: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        if self.aim is None:
            return None
        subject, op, number = self.aim.split()
        actual = self.ratio if subject == "ratio" else self.value
        if actual is None:
            return None
        return actual >= float(number) if op == ">=" else actual <= float(number)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


# A child's peak RSS counts the memory of whatever it was forked from (Linux keeps the
# high-water mark across exec), so children are started by this small launcher rather
# than by the benchmark process, whose RSS can be hundreds of MB.
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def run_child(argv: list[str], log: Path) -> tuple[float, int]:
    """Run a child to its end, output discarded: (wall seconds, its peak RSS in bytes)."""
    with log.open("ab") as err:
        done = subprocess.run(
            [PYTHON, "-c", LAUNCHER, *argv], stdout=subprocess.PIPE, stderr=err, cwd=ROOT
        )
    seconds, kilobytes, code = done.stdout.split()
    if done.returncode != 0 or int(code) != 0:
        raise RuntimeError(f"{argv} exited {int(code)}; see {log}")
    return float(seconds), int(kilobytes) * 1024  # Linux reports kilobytes
