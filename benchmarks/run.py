"""``python -m benchmarks [--quick] [--out PATH] [--only SECTION ...]``: run, print, save."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import batch, dialog, e2e, growth, sessions, startup
from .common import ROOT, Figure

SECTIONS = {
    "batch": batch.run,
    "dialog": dialog.run,
    "sessions": sessions.run,
    "e2e": e2e.run,
    "startup": startup.run,
    "growth": growth.run,
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "cpu": cpu,
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "baseline", "baseline value", "ratio", "aim", "met")]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append(
            (
                f.label,
                number(f.value),
                f.unit,
                f.baseline or "",
                number(f.baseline_value),
                "" if f.ratio is None else f"{f.ratio:.3g}",
                f.aim or "",
                met,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown(figures: list[Figure]) -> str:
    """The table as Markdown, for the README's Performance section."""
    lines = ["| figure | value | baseline (same run) | ratio | aim |", "|---|---|---|---|---|"]
    for f in figures:
        met = {True: " yes", False: " **no**", None: ""}[f.met]
        base = f"{f.baseline}: {number(f.baseline_value)}" if f.baseline else "–"
        ratio = "–" if f.ratio is None else f"{f.ratio:.3g}"
        lines.append(
            f"| {f.label} | {number(f.value)} {f.unit} | {base} | {ratio} | {f.aim or ''}{met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/latest.json")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": shlex.join(
            ["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]
        ),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "details": {},
    }
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="screen-bot-bench-") as tmp:
        for name in args.only or list(SECTIONS):
            print(f"== {name} ...", file=sys.stderr, flush=True)
            work = Path(tmp) / name
            work.mkdir()
            section_start = time.perf_counter()
            found, details = SECTIONS[name](args.quick, work)
            details["seconds"] = round(time.perf_counter() - section_start, 1)
            figures += found
            report["details"][name] = details
    report["machine"]["load_average_after"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["figures"] = {f.key: f.as_json() for f in figures}
    print(markdown(figures) if args.markdown else table(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(figures)} figures in {report['seconds']} s; written to {args.out}")
