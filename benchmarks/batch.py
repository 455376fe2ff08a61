"""1. Batch screening: ``screen-bot screen --format json`` beside ``json.loads`` per line.

Each measurement is a child process of its own (started by a small launcher, see
common.run_child): wall time includes its start-up; peak RSS is that child's alone.
Throughput is the best of the rounds. screen_bot is byte-compiled first, as installing its
wheel does (see startup.py): the start-up is then the same in every run, and the one of the
product.
"""

from __future__ import annotations

import io
import json
import timeit
from pathlib import Path
from typing import Any

from screen_bot.answers import today
from screen_bot.batch import jsonl_block_units, read_rows
from screen_bot.batch_screen import screen_units
from screen_bot.verdict import build, fields_of, row_fields, verdict_json

from .common import PYTHON, SCREEN_BOT, Figure, run_child
from .patients import protocol, write_jsonl
from .startup import compile_package

PARSE_ONLY = (
    "import json, sys\n"
    "with open(sys.argv[1], encoding='utf-8') as f:\n"
    "    for line in f:\n"
    "        json.loads(line)\n"
)


def screen(path: Path, log: Path, jobs: int = 1) -> tuple[float, int]:
    return run_child(
        [SCREEN_BOT, "screen", str(path), "--protocol", "blina-dli", "--format", "json"]
        + ["--jobs", str(jobs)],
        log,
    )


def parse(path: Path, log: Path) -> tuple[float, int]:
    return run_child([PYTHON, "-c", PARSE_ONLY, str(path)], log)


def breakdown(path: Path, rows: int = 2_000) -> dict[str, float]:
    """In-process µs per row of each stage of the CLI's loop (best of 3), to see where it goes;
    the general evaluation and the reference path (the last stage) are what the CLI's
    fields and JSON are tested against. A JSON Lines row the whole-row checks take as read
    (``batch_screen.line_fields``) is typed and checked in one step: "screen_units" is
    that loop, every stage of a row but reading the file."""
    proto = protocol()
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
    data = "".join(lines).encode()
    typed = list(read_rows(io.BufferedReader(io.BytesIO(data)), proto, "jsonl", today()))
    answered = [
        {"answers": r.answers, "referral": r.referral, "screened_on": r.screened_on} for r in typed
    ]
    stages = {
        "json.loads": lambda: [json.loads(line) for line in lines],
        "read_rows (parse + typed)": lambda: list(
            read_rows(io.BufferedReader(io.BytesIO(data)), proto, "jsonl", today())
        ),
        "verdict.row_fields (the CLI's evaluation)": lambda: [
            row_fields(proto, **f) for f in answered
        ],
        "row_fields + verdict_json (the CLI's JSON)": lambda: [
            verdict_json(row_fields(proto, **f)) for f in answered
        ],
        "screen_units (the CLI's JSON Lines to JSON, all stages)": lambda: screen_units(
            list(jsonl_block_units(data, 1, True)), ("jsonl", (), today()), proto, "json", False
        ),
        "verdict.fields_of (the general evaluation)": lambda: [
            fields_of(proto, **f) for f in answered
        ],
        "reference: build + model_dump_json": lambda: [
            build(proto, **f).model_dump_json() for f in answered
        ],
    }
    return {
        name: min(timeit.repeat(stage, number=1, repeat=3)) / len(lines) * 1e6
        for name, stage in stages.items()
    }


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    n, large, rounds = (200, 2_000, 1) if quick else (100_000, 1_000_000, 3)
    log = work / "stderr.log"
    path = work / "patients.jsonl"
    mix = write_jsonl(path, n)
    compiled = compile_package()
    cli_best, base_best, cli_rss, base_rss, jobs_best = 0.0, 0.0, 0, 0, 0.0
    for _ in range(rounds):  # interleaved, so both see the same noise
        seconds, rss = screen(path, log)
        cli_best, cli_rss = max(cli_best, n / seconds), max(cli_rss, rss)
        jobs_best = max(jobs_best, n / screen(path, log, jobs=2)[0])
        seconds, rss = parse(path, log)
        base_best, base_rss = max(base_best, n / seconds), max(base_rss, rss)
    stages = breakdown(path)
    path.unlink()
    big = work / "patients-large.jsonl"
    write_jsonl(big, large, seed=2)
    large_seconds, large_rss = screen(big, log)
    _, large_base_rss = parse(big, log)
    big.unlink()
    mb = 1024 * 1024
    figures = [
        Figure(
            "batch.patients_per_s",
            f"batch: patients/s, {n:,} rows (best of {rounds})",
            cli_best,
            "patients/s",
            "json.loads per line",
            base_best,
            "ratio >= 0.25",
        ),
        Figure(
            "batch.patients_per_s_jobs2",
            f"batch --jobs 2: patients/s, {n:,} rows",
            jobs_best,
            "patients/s",
            "json.loads per line",
            base_best,
            "ratio >= 0.25",
        ),
        Figure(
            "batch.jobs2_scaling",
            f"batch --jobs 2: patients/s, {n:,} rows",
            jobs_best,
            "patients/s",
            "same CLI, --jobs 1",
            cli_best,
            "ratio >= 1.7",
        ),
        Figure(
            "batch.rss_mb",
            f"batch: peak RSS, {n:,} rows",
            cli_rss / mb,
            "MB",
            "json.loads per line",
            base_rss / mb,
        ),
        Figure(
            "batch.rss_large_mb",
            f"batch: peak RSS, {large:,} rows",
            large_rss / mb,
            "MB",
            f"same CLI, {n:,} rows",
            cli_rss / mb,
            "ratio <= 1.1",
        ),
    ]
    details = {
        "rows": n,
        "large_rows": large,
        "rounds": rounds,
        "compiled": compiled,
        "mix": mix,
        "breakdown_us_per_row": stages,
        "large_patients_per_s": large / large_seconds,
        "large_baseline_rss_mb": large_base_rss / mb,
    }
    return figures, details
