"""``screen-bot learn | quiz | graph`` run as a user runs them: a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import Ran, invoke
from screen_bot.protocol import Protocol
from screen_bot.training.cases import generate_cases
from screen_bot.training.flow import missing_for_images

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(
    tmp_path: Path,
    *args: str,
    stdin: str = "",
    path: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Ran:
    if path is not None and monkeypatch is not None:
        monkeypatch.setenv("PATH", path)
    return invoke(*args, stdin=stdin)


def right_answers(protocol: Protocol, count: int, seed: int) -> str:
    cases = generate_cases(protocol, count, seed)
    return "".join(
        f"not eligible {c.failed[0]}\n" if c.failed else f"{c.expected}\n" for c in cases
    )


def test_learn(tmp_path: Path) -> None:
    result = run(tmp_path, "learn")
    assert result.returncode == 0
    assert "What decides: lvef_percent ≥ 60 %" in result.stdout
    creatinine = "What decides: creatinine_x_uln ≤ 2 × ULN and measured crcl ≥ 50 mL/min ("
    assert creatinine in result.stdout
    one = run(tmp_path, "learn", "--criterion", "I8e")
    assert one.stdout.count("(17/38)") == 1 and "E3a" in one.stdout


def test_quiz_scores_persist_across_runs(tmp_path: Path, protocol: Protocol) -> None:
    first = run(
        tmp_path, "quiz", "--count", "3", "--seed", "4", stdin=right_answers(protocol, 3, 4)
    )
    assert first.returncode == 0, first.stderr
    assert "Score: 3/3 (100 %) — seed 4." in first.stdout
    assert first.stdout.count("✓ Correct") == 3

    database = tmp_path / "data" / "screen-bot.sqlite3"  # Settings().database
    assert database.exists()
    assert oct(database.stat().st_mode & 0o777) == "0o600"

    second = run(tmp_path, "quiz", "--count", "2", "--seed", "9", stdin="eligible\n" * 2)
    assert second.returncode == 0
    progress = run(tmp_path, "quiz", "--progress")
    assert progress.returncode == 0
    assert "Quiz progress for cli on blina-dli: 2 quizzes" in progress.stdout
    answered_right = 3 + second.stdout.count("✓ Correct")
    assert f"{answered_right}/5 correct" in progress.stdout

    other = run(tmp_path, "quiz", "--progress", "--trainee", "12345")
    assert "No quiz answers yet for 12345" in other.stdout


def test_quiz_with_no_input_ends_cleanly(tmp_path: Path) -> None:
    result = run(tmp_path, "quiz", "--count", "2", "--seed", "1", "--database", "s.db")
    assert result.returncode == 0
    assert "No case answered." in result.stdout


def test_same_seed_same_quiz(tmp_path: Path) -> None:
    args = ("quiz", "--count", "2", "--seed", "7", "--database", "s.db")
    first, second = run(tmp_path, *args, stdin="q\n"), run(tmp_path, *args, stdin="q\n")
    assert first.stdout == second.stdout and "Case 1/2" in first.stdout


def test_graph_mermaid(tmp_path: Path) -> None:
    result = run(tmp_path, "graph")
    assert result.returncode == 0
    assert "stateDiagram-v2" in result.stdout and "not_eligible" in result.stdout
    written = run(tmp_path, "graph", "-o", "flow.mmd")
    assert written.returncode == 0
    assert (tmp_path / "flow.mmd").read_text(encoding="utf-8").strip() == result.stdout.strip()


@pytest.mark.skipif(
    missing_for_images() is not None, reason=f"no Graphviz here: {missing_for_images()}"
)
def test_graph_png(tmp_path: Path) -> None:
    result = run(tmp_path, "graph", "--format", "png", "-o", "flow.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "flow.png").read_bytes().startswith(PNG_SIGNATURE)


def test_graph_png_without_dot_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run(tmp_path, "graph", "--format", "png", path=str(empty), monkeypatch=monkeypatch)
    assert result.returncode == 2
    assert "'dot' program" in result.stderr and "apt-get install graphviz" in result.stderr
    assert not (tmp_path / "blina-dli-flow.png").exists()


def test_unknown_protocol_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    for command in ("learn", "quiz", "graph"):
        result = run(tmp_path, command, "--protocol", "nope")
        assert result.returncode == 2
        assert "no protocol 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("learn", ["criteria", "--criterion", "stricter"]),
        ("quiz", ["--count", "--seed", "--trainee", "--progress", "unresolved"]),
        ("graph", ["--format", "mermaid", "not_eligible", "--output"]),
    ],
)
def test_help(tmp_path: Path, command: str, words: list[str]) -> None:
    result = run(tmp_path, command, "--help")
    assert result.returncode == 0
    for word in words:
        assert word in result.stdout


def test_learn_an_unknown_criterion_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    result = run(tmp_path, "learn", "--criterion", "X9")
    assert result.returncode == 2
    assert "X9" in result.stderr and "I1, I2" in result.stderr and "E13" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("seed", [10, 12])  # an eligible case, a not-eligible one
def test_quiz_of_one_case_says_case_and_takes_e_and_n(
    tmp_path: Path, protocol: Protocol, seed: int
) -> None:
    (case,) = generate_cases(protocol, 1, seed)
    short = "e" if case.expected == "eligible" else ("u" if case.expected == "unresolved" else "n")
    criterion = f"{case.failed[0]}\n" if case.failed else ""
    result = run(
        tmp_path, "quiz", "--count", "1", "--seed", str(seed), stdin=f"{short}\n{criterion}"
    )
    assert result.returncode == 0
    assert f"1 case (seed {seed})" in result.stdout and "1 cases" not in result.stdout
    assert "✓ Correct" in result.stdout
    assert "Please answer" not in result.stdout
