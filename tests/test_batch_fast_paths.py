"""The batch's fast paths give exactly what the reference paths give (issue #14).

A row's JSON is read by orjson when that reading is provably json's; the reference is
json.loads (``parse_with_json``). The comparison is by ``repr``, so ``1``, ``1.0`` and
``True`` or ``0.0`` and ``-0.0`` are told apart.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cli_runner import invoke
from conftest import SHIPPED
from population import Population
from screen_bot import batch
from screen_bot.answers import AnswerError, check_value, checker
from screen_bot.batch import _parse_json, parse_with_json
from screen_bot.errors import BadInput
from screen_bot.protocol import Protocol, load
from screen_bot.verdict import Verdict, build, fields_of, verdict_json
from test_format2_differential import cases

PROTOCOLS = [load(path) for path in sorted(SHIPPED.glob("*.yaml"))]
DAY = date(2026, 3, 1)  # the run's day: the screening date of a row without one

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**70).map(lambda n: n * 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_records = st.dictionaries(st.text(max_size=8), _values, max_size=6)


def same(text: str) -> None:
    fast, reference = _parse_json(text), parse_with_json(text)
    assert repr(fast) == repr(reference)


@given(_records, st.booleans())
def test_a_generated_object_reads_as_json_reads_it(record: dict[str, Any], ascii: bool) -> None:
    same(json.dumps(record, ensure_ascii=ascii) + "\n")


@given(_records, st.integers(min_value=0, max_value=5))
def test_a_key_given_twice_is_refused_as_before(record: dict[str, Any], at: int) -> None:
    pairs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()]
    if pairs:
        pairs.insert(min(at, len(pairs)), pairs[0])  # the first key once more
    same("{" + ", ".join(pairs) + "}")


@given(st.text(max_size=40))
@example('{"age": 123456789012345678901}')  # orjson: a float; json: an int (out of range)
@example('{"age": 9223372036854775808}')  # 2**63
@example('{"age": -9223372036854775809}')
@example('{"age": 18446744073709551616}')  # 2**64
@example('{"age": 1e400}')
@example('{"age": NaN}')
@example('{"age": -Infinity}')
@example('{"referral": "\\ud800"}')  # a lone surrogate: json keeps it, orjson refuses
@example('{"referral": "a\\u0000b"}')
@example('\ufeff{"age": 40}')
@example('{"age": 40, "age": 41}')
@example('{"a": {"b": 1, "b": 2}}')
@example('{"referral": "R:1", "age": 40}')  # a colon in a value
@example('{"age": -0}')
@example('{"age": -0.0, "weight_kg": 1E2}')
@example('{"age": 1.7976931348623157e308}')
@example('{"age": 5e-324, "x": 4.9e-325}')
@example("[1, 2]")
@example('"text"')
@example('{"age": 40}\x0c')
@example('{"age": [' * 50 + "]" * 50 + "}")
def test_any_text_reads_as_json_reads_it(text: str) -> None:
    same(text)


@pytest.mark.parametrize("depth", [100, 900, 1_000, 1_100, 5_000])
def test_deep_nesting_reads_as_json_reads_it(depth: int) -> None:
    same('{"age": ' + "[" * depth + "]" * depth + "}")


_DAY = date(2026, 3, 31)
_answers = (
    _scalars
    | st.sampled_from(["none", "None", " none", "never", "yes", "no", "female", "2026-02-29"])
    | st.integers(-400, 400).map(lambda n: (_DAY + timedelta(days=n)).isoformat())
    | st.dates().map(date.isoformat)
    | st.lists(st.text(max_size=8), max_size=3)
)
# a dialog's typed answers (not JSON): dates, and datetimes (refused), around the screening date
_typed_dates = (
    st.integers(-400, 400).map(lambda n: _DAY + timedelta(days=n)) | st.dates() | st.datetimes()
)


def _checked(check: Any, *args: Any) -> str:
    try:
        return repr(check(*args))
    except AnswerError as err:
        return f"refused: {err}"


_choices = st.sampled_from(
    sorted({c for p in PROTOCOLS for q in p.questions.values() for c in q.choices or ()})
)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
@given(value=_answers | _choices | _typed_dates)
def test_each_questions_checker_agrees_with_check_value(protocol: Protocol, value: Any) -> None:
    for question in protocol.questions.values():
        fast = _checked(checker(question), value, _DAY)
        assert fast == _checked(check_value, question, value, _DAY), question.variable


_lines = st.lists(
    st.sampled_from(
        [b"", b"\xef\xbb\xbf", b'{"a": 1}', b"\xff\xfe", b"x" * 15, b"y" * 17, b"z" * 40]
    )
    | st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")),
    max_size=12,
)


@given(lines=_lines, size=st.integers(1, 50), newline_at_end=st.booleans())
def test_blocks_give_the_rows_reading_the_whole_input_gives(
    lines: list[bytes], size: int, newline_at_end: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "MAX_LINE", 16)  # lines longer than a block, cut across blocks
        assert _block_rows(data, size) == _rows(data)


def _rows(data: bytes) -> list[batch.Unit] | str:
    try:
        return list(batch.read_units(io.BytesIO(data), PROTOCOLS[0], "jsonl").units)
    except BadInput as err:
        return str(err)


def _block_rows(data: bytes, size: int) -> list[batch.Unit] | str:
    found, number = [], 1
    try:
        for index, block in enumerate(batch.jsonl_blocks(io.BytesIO(data), size)):
            found += batch.jsonl_block_units(block, number, index == 0)
            number += block.count(b"\n")
    except BadInput as err:
        return str(err)
    return found


def _reference_json(
    protocol: Protocol, answers: dict[str, Any], screened: date, referral: str = "R-1"
) -> str:
    return build(protocol, answers, referral=referral, screened_on=screened).model_dump_json()


def _fast_json(protocol: Protocol, answers: dict[str, Any], screened: date) -> str:
    written = verdict_json(fields_of(protocol, answers, referral="R-1", screened_on=screened))
    return written.decode()


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_verdict_json_equals_the_models_on_a_seeded_population(protocol: Protocol) -> None:
    verdicts = set()
    for patient in Population(protocol, seed=14).patients(1_500):
        fast = _fast_json(protocol, patient.answers, patient.screened_on)
        assert fast == _reference_json(protocol, patient.answers, patient.screened_on)
        verdicts.add(json.loads(fast)["verdict"])
    assert verdicts == {"eligible", "not_eligible", "unresolved"}


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verdict_json_equals_the_models_on_generated_answers(
    protocol: Protocol, data: st.DataObject
) -> None:
    answers, screened = data.draw(cases(protocol))
    assert _fast_json(protocol, answers, screened) == _reference_json(protocol, answers, screened)


def test_what_orjson_cannot_write_goes_through_the_model() -> None:
    protocol = PROTOCOLS[0]
    failing = (
        fields_of(protocol, p.answers, screened_on=p.screened_on)
        for p in Population(protocol).patients(100)
    )
    fields = next(f for f in failing if f["reasons"])
    fields["reasons"][0]["answers"] = {"age": 2**70, "picked": frozenset({"a"})}
    assert verdict_json(fields) == Verdict(**fields).model_dump_json().encode()
    assert b'"age":1180591620717411303424' in verdict_json(fields)


def _as_json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_the_cli_writes_the_reference_verdict_alone_and_beside_every_protocol(
    protocol: Protocol, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))
    patients = list(Population(protocol, seed=3).patients(300))
    path = tmp_path / "rows.jsonl"
    rows = [
        {k: _as_json(v) for k, v in p.answers.items()}
        | {"referral": p.referral, "screened_on": str(p.screened_on)}
        for p in patients
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    alone = invoke("screen", str(path), "--protocol", protocol.id, "--format", "json")
    beside = invoke("screen", str(path), "--protocol", "all", "--format", "json", "-j", "2")
    assert alone.returncode == beside.returncode == 0, alone.stderr + beside.stderr
    lines = zip(alone.stdout.splitlines(), beside.stdout.splitlines(), strict=True)
    for number, (p, (line, line_of_all)) in enumerate(zip(patients, lines, strict=True), 1):
        reference = _reference_json(protocol, p.answers, p.screened_on, p.referral)
        assert line == f'{{"row":{number},{reference[1:]}'
        verdicts = json.loads(line_of_all)["verdicts"]
        assert [v for v in verdicts if v["protocol"]["id"] == protocol.id] == [
            json.loads(reference)
        ]


@pytest.mark.parametrize("fork", [True, False], ids=["forked workers", "spawned workers"])
def test_workers_screen_as_one_process_does_forked_or_spawned(
    fork: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked workers are handed the loaded protocol; spawned ones (where fork is not
    available) load it from its file: both give one process's output."""
    from screen_bot import batch_screen

    protocol = PROTOCOLS[0]
    rows = [
        {k: _as_json(v) for k, v in p.answers.items()} | {"screened_on": str(p.screened_on)}
        for p in Population(protocol, seed=5).patients(200)
    ]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()

    def output(jobs: int) -> bytes:
        raw = io.BytesIO(data)
        chunks = batch_screen.screen_file(raw, protocol, "jsonl", "json", True, jobs, DAY)
        return b"".join(b"".join(chunk.output) for chunk in chunks)

    monkeypatch.setattr(batch_screen, "_FORK", fork)
    monkeypatch.setattr(batch_screen, "BLOCK", 4096)  # several blocks, so both workers work
    assert output(2) == output(1)


def _population_records(protocol: Protocol, seed: int, size: int) -> list[dict[str, Any]]:
    """Generated patients as batch rows: their answers, referral and screening date."""
    return [
        {k: _as_json(v) for k, v in p.answers.items()}
        | {"referral": p.referral, "screened_on": str(p.screened_on)}
        for p in Population(protocol, seed=seed).patients(size)
    ]


def _reference_row(number: int, record: Any, protocol: Protocol) -> batch.Row:
    """record_row with the generated typing switched off: the key-by-key loop alone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "_row_typer", lambda protocol: None)
        return batch.record_row(number, record, protocol, DAY)


def _record_of(protocol: Protocol) -> st.SearchStrategy[dict[str, Any]]:
    """Rows of the protocol's keys in any order (plus referral, screened_on and strangers),
    with values of every kind: well typed ones (the fast path), and anything else."""
    keys = [*protocol.questions, "referral", "screened_on", "stranger", "Age"]
    typed = st.sampled_from(
        [True, False, None, 0, 1, 40, 40.0, -1, 10**6, 1.5, "none", "yes", "2026-03-01"]
        + ["", " ", ",", " , ", ";"]  # no choice named: refused, not none of them
        + sorted({c for q in protocol.questions.values() for c in q.choices or ()})
    )
    pairs = st.lists(st.tuples(st.sampled_from(keys), typed | _answers), max_size=len(keys))
    return pairs.map(dict)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_row_typing_gives_the_key_by_key_rows(
    protocol: Protocol, data: st.DataObject
) -> None:
    record = data.draw(_record_of(protocol))
    fast = batch.record_row(7, record, protocol, DAY)
    assert repr(fast) == repr(_reference_row(7, record, protocol))


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_generated_row_typing_types_a_seeded_population_as_the_loop_does(
    protocol: Protocol,
) -> None:
    typer = batch._row_typer(protocol)
    assert typer is not None
    taken = 0
    for record in _population_records(protocol, seed=9, size=400):
        taken += typer(record, date.fromisoformat(record["screened_on"])) is not None
        fast = batch.record_row(1, record, protocol, DAY)
        reference = _reference_row(1, record, protocol)
        assert repr(fast) == repr(reference)
    assert taken == 400  # rows as the generator writes them all take the fast path


def _reference_line(number: int, text: str, protocol: Protocol) -> batch.Row:
    """A JSON Lines row read by json.loads and typed key by key: the reference reading."""
    record, problem = parse_with_json(text)
    if problem is not None:
        return batch.Row(number, errors=[problem], screened_on=DAY)
    return _reference_row(number, record, protocol)


_RECORDS = {p.id: _population_records(p, seed=8, size=60) for p in PROTOCOLS}


_ODD = (
    ["123456789012345678901", "9223372036854775808", "18446744073709551616", "1e400", "-0.0",
     "1E2", "4.0", "7", "-9223372036854775809", '"\\ud800"', '{"a": 1}', "[1, 2]", '["a", "b"]',
     "NaN", '"2026-02-30"', "true", '"none"', '"R-1"', "null", '"2026-01-01"', "1.5e19",
     '""', '","', '" ; "', "[]"]
)  # fmt: skip


def _line_of(protocol: Protocol) -> st.SearchStrategy[str]:
    """Lines of good rows (or generated ones) with values json and orjson could read apart
    spliced in: integers past 64 bits, long floats, a key given twice, lone surrogates,
    nesting, a referral or a date that is not text."""
    odd = st.sampled_from(_ODD)
    keys = st.sampled_from([*protocol.questions, "referral", "screened_on", "stranger"])
    records = st.sampled_from(_RECORDS[protocol.id]) | _record_of(protocol)
    spliced = st.lists(st.tuples(keys, odd), max_size=2)
    return st.tuples(records, st.booleans(), spliced, st.booleans()).map(_spliced)


def _spliced(drawn: tuple[dict[str, Any], bool, list[tuple[str, str]], bool]) -> str:
    """The record's JSON with the (key, JSON value) pairs added: in place of the record's
    own value of that key, or (``twice``) as a second one."""
    record, ascii, pairs, twice = drawn
    kept = {k: v for k, v in record.items() if twice or k not in dict(pairs)}
    parts = [json.dumps(kept, ensure_ascii=ascii)[1:-1], *(f'"{k}": {v}' for k, v in pairs)]
    return "{" + ", ".join(p for p in parts if p) + "}"


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_line_read_in_one_pass_gives_the_reference_row(
    protocol: Protocol, data: st.DataObject
) -> None:
    text = data.draw(_line_of(protocol))
    unit = batch.Unit(3, text)
    assert repr(batch.typed(unit, "jsonl", (), protocol, DAY)) == repr(
        _reference_line(3, text, protocol)
    )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_a_seeded_populations_lines_are_read_in_one_pass(protocol: Protocol) -> None:
    for record in _population_records(protocol, seed=4, size=300):
        text = json.dumps(record)
        record = batch.orjson_object(text)
        assert record is not None, text
        fast = batch.typed_fast(1, record, protocol, DAY)
        assert fast is not None, text
        assert repr(fast) == repr(_reference_line(1, text, protocol))


def _screened_both_ways(protocol: Protocol, texts: list[str]) -> tuple[Any, Any]:
    """JSON Lines rows screened to JSON without a log (``screen_units``: straight from
    orjson's reading where ``line_fields`` takes a line) and each row typed, then screened
    (``screen_rows``, the general way): (output, problems, bad rows, last row) of each."""
    from screen_bot import batch_screen

    units = [batch.Unit(n, t) for n, t in enumerate(texts, 1) if t and not t.isspace()]
    fast = batch_screen.screen_units(units, ("jsonl", (), DAY), protocol, "json", False)
    rows = [batch.typed(unit, "jsonl", (), protocol, DAY) for unit in units]
    general = batch_screen.screen_rows(rows, protocol, "json", False)
    return (
        (fast.output, fast.problems, fast.bad_rows, fast.last_row),
        (general.output, general.problems, general.bad_rows, general.last_row),
    )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lines_screened_straight_from_orjsons_reading_give_the_general_output(
    protocol: Protocol, data: st.DataObject
) -> None:
    texts = data.draw(st.lists(_line_of(protocol) | st.sampled_from(["", "{", "[1]"]), max_size=4))
    fast, general = _screened_both_ways(protocol, texts)
    assert fast == general


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_a_seeded_populations_lines_are_screened_straight_from_orjsons_reading(
    protocol: Protocol,
) -> None:
    from screen_bot import batch_screen
    from screen_bot.rules.whole_row import record_checks

    records = _population_records(protocol, seed=12, size=300)
    for record in records[::3]:
        del record["screened_on"]  # the run's day
    for record in records[1::3]:
        record["referral"] = None
    texts = [json.dumps(record) for record in records]
    fast, general = _screened_both_ways(protocol, texts)
    assert fast == general
    checks = record_checks(protocol, batch.ROW_KEYS)
    if protocol.id == "blina-dli":  # compiled (no tables): its lines take the straight way
        assert checks is not None
        taken = [batch_screen.line_fields(t, protocol, checks, DAY) for t in texts]
        assert sum(f is not None for f in taken) > 150  # (others: the confirm fix)
    else:
        assert checks is None


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.id for p in PROTOCOLS])
def test_each_odd_value_in_each_key_of_a_good_line_gives_the_reference_row(
    protocol: Protocol,
) -> None:
    # the earliest screening date: its dates stay valid when a bad screened_on means DAY
    record = min(_RECORDS[protocol.id], key=lambda r: str(r["screened_on"]))
    read = batch.orjson_object(json.dumps(record))
    assert read is not None and batch.typed_fast(1, read, protocol, DAY) is not None  # fast
    for key in [*protocol.questions, "referral", "screened_on", "stranger"]:
        for value in _ODD:
            for twice in (False, True):
                text = _spliced((record, True, [(key, value)], twice))
                fast = batch.typed(batch.Unit(2, text), "jsonl", (), protocol, DAY)
                assert repr(fast) == repr(_reference_line(2, text, protocol)), text


def _unreadable_as_before(text: str) -> str | None:
    """What ``batch.unreadable`` said before its shortcut: the reference."""
    if batch.TOO_LONG in text:
        return "the line is longer than 1 MiB"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8 text (save the file as UTF-8)"
    return None


_PIECES = ["\x00", "too long", " ", "\n", "\t", "\u2028", "é", "\udcff", "a"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_PIECES)))
def test_a_lines_unit_is_found_as_by_stripping_it_and_searching_the_marker(
    pieces: list[str],
) -> None:
    # the reading's shortcuts: a blank line found without copying it, the marker looked
    # for only after a NUL
    text = "".join(pieces)
    for line in (text, text + batch.TOO_LONG, batch.TOO_LONG + "\n"):
        units = list(batch._jsonl_units([line], 4))
        if not line.strip():
            assert units == []
            continue
        problem = _unreadable_as_before(line)
        assert units == [batch.Unit(4, line, () if problem is None else (problem,))]
