"""Hostile dialog files (issue #10, defect 4): each is refused with a clean DialogFileError
naming the file, the line where there is one, and a fix, and loading finishes.

Every load runs in a child process with a generous timeout, so a regression that hangs
fails this test instead of hanging the suite; no test asserts a wall-clock figure.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from format2 import (
    build,
    dialog,
    dump,
    exclusion,
    inclusion,
    number,
    problems,
    validate,
    write,
    yes_no,
)
from screen_bot.protocol import search

TIMEOUT = 20  # seconds; each of these finishes well within one


def _load_into(path: str, sender: Connection) -> None:
    from screen_bot.protocol import DialogFileError, load

    try:
        protocol = load(path)
    except DialogFileError as err:
        found = [
            {"file": p.file, "line": p.line, "message": p.message, "fix": p.fix}
            for p in err.problems
        ]
        sender.send({"problems": found})
    except BaseException as err:  # noqa: BLE001 - reported: the parent asserts there is none
        sender.send({"crash": f"{type(err).__name__}: {err}"[:2000]})
    else:
        sender.send({"loaded": protocol.id})


def load_apart(path: Path) -> dict[str, Any]:
    """Load ``path`` in a forked child: its problems, or the id of the loaded protocol."""
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_load_into, args=(str(path), sender))
    child.start()
    try:
        assert receiver.poll(TIMEOUT), f"loading {path.name} did not finish in {TIMEOUT} s"
        outcome: dict[str, Any] = receiver.recv()
    finally:
        child.kill()
        child.join()
    assert "crash" not in outcome, outcome["crash"]
    return outcome


def refused(path: Path, *, located: bool = True) -> list[dict[str, Any]]:
    """The problems of a refused file; each names the file and has a fix (and a line)."""
    outcome = load_apart(path)
    assert "problems" in outcome, outcome
    problems = outcome["problems"]
    assert problems
    for problem in problems:
        assert problem["file"] == str(path)
        assert problem["fix"].strip(), problem
        if located:
            assert isinstance(problem["line"], int) and problem["line"] >= 1, problem
    return problems


def with_rule(rule: str) -> dict[str, Any]:
    return dialog(
        [number("x"), yes_no("a")],
        [inclusion("I1", rule), inclusion("I2", "a and x > 0")],
    )


RULE_LINE = dump(with_rule("RULE")).splitlines().index("    met_when: RULE") + 1


@pytest.mark.parametrize(
    ("name", "rule", "message"),
    [
        ("not-10000", "not " * 10_000 + "a", "characters long"),
        ("minus-5000", "x > " + "-" * 5000 + "1", "characters long"),
        ("and-nested-200", "(a and " * 200 + "a" + ")" * 200, "nested"),
        ("not-nested-300", "not (" * 300 + "a" + ")" * 300, "nested"),
        ("minus-300", "x > " + "-" * 300 + "1", "nested"),
        ("parentheses-1000", "(" * 1000 + "a" + ")" * 1000, ""),
        ("digits-400", "x > " + "9" * 400, "too large"),
        ("digits-1990", "x > " + "9" * 1990, "too large"),
        ("float-1e999", "x > 1e999", "finite"),
        ("float-minus-1e999", "x < -1e999", "finite"),
        ("parts-401", "a or " * 399 + "a", "too many parts: 401 > 400"),
        ("levels-41", "not " * 39 + "x > 0", "too deeply nested: 41 levels > 40"),
    ],
)
def test_a_hostile_rule_is_refused_at_its_line(
    tmp_path: Path, name: str, rule: str, message: str
) -> None:
    path = write(tmp_path, with_rule(rule), f"{name}.yaml")
    problems = refused(path)
    assert [p["line"] for p in problems] == [RULE_LINE]
    assert message in problems[0]["message"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [("parts-400", "a or " * 398 + "a"), ("levels-40", "not " * 38 + "x > 0")],
)
def test_a_rule_at_the_limits_of_parts_and_levels_is_accepted(
    tmp_path: Path, name: str, rule: str
) -> None:
    """Levels and parts are the expression's own, as README counts them: 38 nots over a
    comparison are 40 levels, 399 names joined by or are 400 parts. Python's operator and
    context nodes were counted too, so 38 nots were 'deeper than 40' and 100 comparisons
    joined by and (1,295 characters) 'too long'."""
    path = write(tmp_path, with_rule(rule), f"{name}.yaml")
    assert load_apart(path) == {"loaded": "synthetic"}


def test_the_readmes_limits_name_the_rules_limits() -> None:
    """README's Limits gave 2,000 characters and 40 levels, not the 400 parts."""
    from screen_bot.rules.expressions import MAX_CHARACTERS, MAX_DEPTH, MAX_NODES

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    limits = " ".join(readme[readme.index("**Limits**") :].split())
    assert f"{MAX_CHARACTERS:,} characters, {MAX_NODES} parts and {MAX_DEPTH} levels" in limits


def test_200_parentheses_around_one_name_are_harmless(tmp_path: Path) -> None:
    path = write(tmp_path, with_rule("(" * 200 + "a" + ")" * 200))
    assert load_apart(path) == {"loaded": "synthetic"}


def test_deeply_nested_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "brackets.yaml"
    path.write_text("id: x\nquestions: " + "[" * 100_000 + "\n", encoding="utf-8")
    (problem,) = refused(path)
    assert "nested" in problem["message"]
    assert problem["line"] == 2


def test_deeply_nested_yaml_blocks_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "blocks.yaml"
    path.write_text("a:\n" + "".join(" " * i + "- \n" for i in range(1, 400)), encoding="utf-8")
    (problem,) = refused(path)
    assert "nested" in problem["message"]


@pytest.mark.parametrize("over", [0, 1])
def test_a_file_of_more_than_100000_yaml_events_is_told_the_limit(
    tmp_path: Path, over: int
) -> None:
    """It was refused as 'the document is too large' (a 300 KB file, under 1 MB): no figure."""
    from ruamel.yaml import YAML

    from screen_bot.protocol import DialogFileError, load
    from screen_bot.protocol.loader import MAX_YAML_EVENTS

    def text(items: int) -> str:  # one event per item of the note's list
        note = "notes:\n  - text: x\n    criteria: [" + ", ".join(["I1"] * items) + "]\n"
        return dump(with_rule("x > 0")) + note

    events = sum(1 for _ in YAML(typ="safe").parse(text(1)))
    path = tmp_path / "events.yaml"
    path.write_text(text(1 + MAX_YAML_EVENTS - events + over), encoding="utf-8")
    if not over:
        assert load(path).id == "synthetic"
        return
    with pytest.raises(DialogFileError) as refused:
        load(path)
    (problem,) = refused.value.problems
    assert problem.message.startswith("the document has more than 100,000 YAML events")
    assert problem.fix == "split the protocol into two files (README, Dialog files: Limits)"


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    """The "billion laughs": nine levels of nine aliases each."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (problem,) = refused(path)
    assert "aliases" in problem["message"]
    assert problem["line"] == 2


def test_a_huge_file_is_refused_by_its_size_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screen_bot.protocol import DialogFileError, load

    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.write(b"id: x\n# " + b"x" * 1_000_000 + b"\n")
        stream.truncate(50 * 1024 * 1024)  # 50 MB
    read = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        stream = real_open(self, *args, **kwargs)
        if self == path:
            real_read = stream.read
            stream.read = lambda size=-1: read.append(size) or real_read(size)  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(Path, "open", counting_open)
    with pytest.raises(DialogFileError) as info:
        load(path)
    (problem,) = info.value.problems
    assert "52,428,800 bytes" in problem.message
    assert problem.fix
    assert all(0 <= size <= 1_000_001 for size in read), read  # at most the limit, never all


def test_a_condition_reading_18_yes_no_questions_finishes(tmp_path: Path) -> None:
    """3^18 combinations of answers (yes, no, unknown) are far too many to try: the checker
    stops at 20,000 and falls back to a linear check, which never wrongly says "never"."""
    names = [f"q{i}" for i in range(18)]
    questions = [yes_no(n) for n in names]
    questions.append(yes_no("z", when=" and ".join(f"({n} or not {n})" for n in names)))
    path = write(tmp_path, dialog(questions, [inclusion("I1", " and ".join([*names, "z"]))]))
    assert load_apart(path) == {"loaded": "synthetic"}


def test_500_criteria_reading_conditional_questions_finish(tmp_path: Path) -> None:
    """Each criterion alone is a search of 2^14 combinations; together they are bounded too."""
    base = [f"q{i}" for i in range(13)]
    questions = [yes_no(n) for n in base] + [yes_no(f"z{j}", when="q0") for j in range(20)]
    guard = " and ".join(base)
    criteria = [inclusion(f"I{j}", f"{guard} and (z{j % 20} or not z{j % 20})") for j in range(500)]
    path = write(tmp_path, dialog(questions, criteria))
    assert load_apart(path) == {"loaded": "synthetic"}


def unasked_numbers(count: int, criteria: int, first: str | None = None) -> dict[str, Any]:
    """``count`` numbers each asked under its own condition on c0, and ``criteria`` rules
    reading them all, guarded (c0 > 900 asks every one): count x criteria searches."""
    questions = [number("c0")]
    questions += [number(f"n{i}", when=f"c0 > {i}") for i in range(count)]
    rules = [
        exclusion(
            f"E{k}", "c0 > 900 and (" + " or ".join(f"n{i} > {k}" for i in range(count)) + ")"
        )
        for k in range(criteria)
    ]
    if first is not None:
        rules.insert(0, exclusion("F", first))
    return dialog(questions, rules)


class SearchWork:
    """What a file's searches did: the expressions they read, the candidates they made,
    and the answer combinations they paid for (from the budget left at the end)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walked: Counter[int] = Counter()
        self.candidates_made = 0
        self.searches: list[search.AnswerSearch] = []
        walk, domain, init = search.walk, search.AnswerSearch._domain, search.AnswerSearch.__init__

        def counted_walk(node: Any) -> Any:
            self.walked[id(node)] += 1
            return walk(node)

        def counted_domain(found: search.AnswerSearch, *args: Any, **kwargs: Any) -> Any:
            self.candidates_made += 1
            return domain(found, *args, **kwargs)

        def kept_init(found: search.AnswerSearch, *args: Any, **kwargs: Any) -> None:
            init(found, *args, **kwargs)
            self.searches.append(found)

        monkeypatch.setattr(search, "walk", counted_walk)
        monkeypatch.setattr(search.AnswerSearch, "_domain", counted_domain)
        monkeypatch.setattr(search.AnswerSearch, "__init__", kept_init)

    @property
    def paid(self) -> int:
        (one,) = self.searches
        return search.MAX_TOTAL_COMBINATIONS - one.budget


def test_many_searches_of_unasked_questions_do_only_the_work_their_budget_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 numbers asked under conditions, read by 200 rules: 6,000 'may it not be asked'
    searches. Each read both expressions in full and made every answer's candidates before
    its budget was checked, and went on doing so once the budget was spent (a 0.5 MB file
    took a minute to validate, on every command while it was broken). Now each expression
    is read once, and candidates are made only for answers a paid search reaches."""
    work = SearchWork(monkeypatch)
    protocol = build(tmp_path, unasked_numbers(30, 200))
    assert len(protocol.rules) == 200
    assert max(work.walked.values()) <= 3  # indexed, searched for dates, checked for dates
    assert work.candidates_made <= work.paid


def test_a_rule_reading_an_unasked_question_is_still_found_among_many_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = SearchWork(monkeypatch)
    (problem,) = problems(tmp_path, unasked_numbers(30, 200, first="n7 > 500"))
    assert "rule of F reads 'n7', which is not asked when 'c0 > 7' does not hold" in (
        problem.message
    )
    assert work.candidates_made <= work.paid + 31  # and the example's answers


@pytest.mark.parametrize(
    ("name", "content", "message", "line"),
    [
        ("nul", b"id: x\ntitle: y\x00\n", "NUL", 2),
        ("latin-1", "id: x\ntitle: y\nsource: café\n".encode("latin-1"), "UTF-8", 3),
        ("binary", bytes(range(256)) * 4, "UTF-8", 2),  # 0x80 comes after the \n (0x0a)
    ],
)
def test_bytes_that_are_no_text_are_refused_at_their_line(
    tmp_path: Path, name: str, content: bytes, message: str, line: int
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    (problem,) = refused(path)
    assert message in problem["message"]
    assert problem["line"] == line


def test_utf16_with_a_bom_is_read_or_refused_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes(dump(with_rule("a")).encode("utf-16"))
    outcome = load_apart(path)
    if "problems" in outcome:
        (problem,) = outcome["problems"]
        assert "UTF-8" in problem["message"] and problem["fix"]
    else:
        assert outcome == {"loaded": "synthetic"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    (problem,) = refused(path, located=False)
    assert "not a regular file" in problem["message"]


def test_validate_reports_the_broken_file_and_still_the_good_one(tmp_path: Path) -> None:
    good = write(tmp_path, with_rule("a"), "good.yaml")
    broken = write(tmp_path, with_rule("not " * 10_000 + "a"), "broken.yaml")
    deep = tmp_path / "deep.yaml"
    deep.write_text("id: x\nquestions: " + "[" * 100_000 + "\n", encoding="utf-8")
    result = validate(tmp_path)
    assert result.returncode == 2
    assert f"{good}: ok (synthetic" in result.stdout
    assert f"{broken}:{RULE_LINE}: " in result.stderr
    assert f"{deep}:2: " in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-02-29", "YAML cannot read '2025-02-29' as a date"),
        ("2026-13-01", "YAML cannot read '2026-13-01' as a date"),
        ("9" * 5000, "as a whole number"),
        ("!!int abc", "YAML cannot read 'abc' as a whole number"),
        ("!!float abc", "YAML cannot read 'abc' as a number"),
        ("!!bool abc", "YAML cannot read 'abc' as true or false"),
        ("!!omap [a: 1, a: 2]", "YAML cannot build this !!omap"),
        ("[1, !!int 0x]", "YAML cannot read '0x' as a whole number"),
    ],
    ids=["feb-29", "month-13", "5000-digits", "int-tag", "float-tag", "bool-tag", "omap", "nested"],
)
def test_a_value_yaml_cannot_build_is_refused_at_its_line(
    tmp_path: Path, value: str, message: str
) -> None:
    """ruamel raises ValueError, KeyError or AssertionError for these, not a YAML error."""
    text = dump(with_rule("a"))
    path = write(tmp_path, text + f"extra: {value}\n")
    (problem,) = refused(path)
    assert message in problem["message"]
    assert problem["line"] == len(text.splitlines()) + 1


@pytest.mark.parametrize(("character", "code"), [("\x0b", "U+000B"), ("\x7f", "U+007F")])
def test_a_control_character_is_refused_at_its_line_and_column(
    tmp_path: Path, character: str, code: str
) -> None:
    text = dump(with_rule("a")).replace("title: A synthetic", f"title: A{character}synthetic")
    path = write(tmp_path, text)
    (problem,) = refused(path)
    assert problem["line"] == 2
    assert f"character {code} (column 9) is not allowed" in problem["message"]
    assert "delete it" in problem["fix"]


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object:os.system {}",
        "!!python/name:os.system ''",
        "!foo 'x'",  # a local tag was told to remove '!!!foo'
        "!<tag:example.com,2000:x> 'x'",
    ],
)
def test_a_tag_is_refused_with_the_fix_to_remove_it_as_written(tmp_path: Path, tag: str) -> None:
    """The fix was 'fix the indentation or quoting on that line', about neither."""
    text = dump(with_rule("a")).replace("title: A synthetic protocol", f"title: {tag}")
    (problem,) = refused(write(tmp_path, text))
    assert problem["line"] == 2
    assert f"remove the tag '{tag.split()[0]}'" in problem["fix"]


def test_a_yaml_error_at_the_end_of_a_long_line_is_reported_in_time(tmp_path: Path) -> None:
    """The fix offered for a YAML error looks for a quoted value before it: on the whole of
    a 100 KB line, a pattern retried from each of its characters took minutes."""
    path = tmp_path / "long.yaml"
    path.write_text("id: x\ntitle: " + "a" * 100_000 + ": b: c\n", encoding="utf-8")
    (problem,) = refused(path)
    assert problem["line"] == 2 and "YAML syntax" in problem["message"]
