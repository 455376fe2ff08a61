"""Smoke run of the benchmarks (``python -m benchmarks --quick``), so they do not rot.

Checks that every figure is there with a sane value; never a wall-clock threshold.
"""

from __future__ import annotations

import json
import math
import operator
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.patients import patients, protocol, screening_texts  # noqa: E402

from screen_bot.verdict import build  # noqa: E402

FIGURES = [
    "batch.patients_per_s",
    "batch.patients_per_s_jobs2",
    "batch.jobs2_scaling",
    "batch.rss_mb",
    "batch.rss_large_mb",
    "dialog.engine_p50_us",
    "dialog.engine_p99_us",
    "dialog.engine_cpu_p99_us",
    "dialog.store_p50_ms",
    "dialog.store_p99_ms",
    "sessions.bytes_per_session_50",
    "sessions.bytes_per_session_200",
    "sessions.bytes_per_session_1000",
    "sessions.per_session_growth",
    "sessions.machines",
    "e2e.seq_messages_per_s",
    "e2e.seq_p50_ms",
    "e2e.seq_p99_ms",
    "e2e.seq_api_calls_per_s",
    "e2e.conc_messages_per_s",
    "e2e.conc_p50_ms",
    "e2e.conc_p99_ms",
    "e2e.conc_api_calls_per_s",
    "e2e.seq_nolimit_messages_per_s",
    "e2e.seq_nolimit_p50_ms",
    "e2e.seq_nolimit_p99_ms",
    "e2e.conc_nolimit_messages_per_s",
    "e2e.conc_nolimit_p50_ms",
    "e2e.conc_nolimit_p99_ms",
    "e2e.api_calls_per_reply",
    "e2e.floor_seq_messages_per_s",
    "e2e.floor_seq_p50_ms",
    "e2e.floor_conc_messages_per_s",
    "e2e.floor_conc_p50_ms",
    "startup.help_ms",
    "startup.help_vs_telegram_ms",
    "startup.help_vs_typer_ms",
    "startup.first_poll_ms",
    "startup.first_poll_vs_echo_ms",
    "startup.first_poll_cold_ms",
    # quick sizes: 1, 2, 5 protocols; 40 and 200 criteria
    "growth.batch_all_1",
    "growth.batch_all_2",
    "growth.batch_all_5",
    "growth.batch_per_protocol_1",
    "growth.batch_per_protocol_2",
    "growth.batch_per_protocol_5",
    "growth.engine_p99_40",
    "growth.engine_p99_200",
]


def test_generated_patients_get_the_verdict_they_were_made_for() -> None:
    proto = protocol()
    labels = Counter()
    for label, record in patients(200):
        answers = {k: v for k, v in record.items() if k != "referral"}
        assert build(proto, answers).verdict == label, record
        labels[label] += 1
    assert set(labels) == {"eligible", "not_eligible", "unresolved"}
    assert len(screening_texts(proto)) > 15  # steps: a checklist is one line


def quick_run(module: str, out: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``python -m MODULE --quick``: the process (stdout) and the report it wrote."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(out.read_text())


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    done, report = quick_run("benchmarks", tmp_path / "quick.json")
    figures = report["figures"]
    assert sorted(figures) == sorted(FIGURES)
    for key, f in figures.items():
        assert math.isfinite(f["value"]) and f["value"] > 0, key
        if f["baseline"] is not None:
            assert f["baseline_value"] > 0, key
            assert math.isclose(f["ratio"], f["value"] / f["baseline_value"]), key
        if f["aim"] is None:
            assert f["met"] is None, key
        else:  # the aim read independently of benchmarks.common: "value <= 100", "ratio >= 0.8"
            subject, op, number = f["aim"].split()
            actual = f["ratio"] if subject == "ratio" else f["value"]
            assert f["met"] is {"<=": operator.le, ">=": operator.ge}[op](actual, float(number))
        assert f["label"] in done.stdout, key
    assert sum(f["aim"] is not None for f in figures.values()) >= 5
    assert figures["sessions.machines"]["value"] == 1
    assert figures["sessions.machines"]["baseline_value"] == 1
    assert figures["batch.rss_mb"]["value"] > 10
    assert figures["e2e.api_calls_per_reply"]["baseline_value"] == 1
    assert 1 < figures["e2e.api_calls_per_reply"]["value"] <= 3
    floor = report["details"]["e2e"]["unlimited"]["floor"]["sequential"]
    assert 1.5 < floor["api_calls_per_reply"] <= 2  # it edits before each send but the first
    assert figures["dialog.engine_p99_us"]["value"] >= figures["dialog.engine_p50_us"]["value"]
    assert all(report["details"]["batch"]["mix"].values())
    assert all(v > 0 for v in report["details"]["batch"]["breakdown_us_per_row"].values())
    assert {"nproc", "python", "cpu"} <= set(report["machine"])


STORE_FIGURES = [
    f"store.{name}"
    for name in (
        "update_p50_ms",
        "update_p99_ms",
        "e2e_seq_messages_per_s",
        "e2e_seq_p50_ms",
        "e2e_seq_p99_ms",
        "e2e_conc_messages_per_s",
        "e2e_conc_p50_ms",
        "e2e_conc_p99_ms",
    )
]


def test_store_quick_run_compares_postgres_with_sqlite(tmp_path: Path) -> None:
    from postgres_server import server_binaries

    if server_binaries() is None:
        pytest.skip("the PostgreSQL server binaries are not installed: apt-get install postgresql")
    done, report = quick_run("benchmarks.store", tmp_path / "store.json")
    assert sorted(report["figures"]) == sorted(STORE_FIGURES)
    for key, f in report["figures"].items():
        assert math.isfinite(f["value"]) and f["value"] > 0, key
        assert f["baseline"] == "SQLite file, same run" and f["baseline_value"] > 0, key
    (run,) = report["details"]["two_instances"]
    assert run["posted"] == 3 * 4 and run["kills"] == 2
    assert (run["lost"], run["twice"], run["out_of_order"]) == (0, 0, 0), run["problems"]
    assert "0 lost, 0 handled twice, 0 out of order" in done.stdout


def test_the_markdown_table_shows_each_aim_met_or_not() -> None:
    from benchmarks.common import Figure
    from benchmarks.run import markdown

    table = markdown(
        [
            Figure("a.fast", "fast thing", 3.0, "x/s", "baseline", 2.0, "ratio >= 1.2"),
            Figure("a.slow", "slow thing", 1.0, "x/s", "baseline", 2.0, "ratio >= 0.7"),
            Figure("a.plain", "plain thing", 5.0, "ms"),
        ]
    ).splitlines()
    assert table[2] == "| fast thing | 3 x/s | baseline: 2 | 1.5 | ratio >= 1.2 yes |"
    assert table[3] == "| slow thing | 1 x/s | baseline: 2 | 0.5 | ratio >= 0.7 **no** |"
    assert table[4] == "| plain thing | 5 ms | – | – |  |"
