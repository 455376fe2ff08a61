"""The ctl019-rr-ball draft dialog file against its computable reading, its source text,
blina-dli's data dictionary and its boundary-case table.

The dialog file is in format 2, which the loader does not read yet, so everything here
reads the YAML with ruamel.yaml and the Markdown tables directly; expressions are read
with Python's `ast` (format-2 expressions are Python syntax), only for the names and
constants they contain.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from conftest import shared_protocol_text

REPO = Path(__file__).resolve().parents[1]
DIALOGS = REPO / "dialogs"
READING = DIALOGS / "ctl019-rr-ball.md"
CASES = DIALOGS / "ctl019-rr-ball.cases.md"
SOURCE = "ctl019-rr-ball-source.md"  # in ../shared/protocol
DICTIONARY = "DATA-DICTIONARY.md"  # in ../shared/protocol

FUNCTIONS = {"known", "unknown", "days", "weeks", "months", "years", "any_of", "none_of"}
CRITERION_ID = re.compile(r"\bC-[IE]\d+[a-z]?\d?\b")


def dialog_path() -> Path:
    """The dialog file."""
    return DIALOGS / "ctl019-rr-ball.yaml"


@cache
def dialog() -> dict[str, Any]:
    return YAML(typ="safe").load(dialog_path().read_text(encoding="utf-8"))


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- Markdown --------------------------------------------------------------------------------------


def sections(text: str) -> dict[str, str]:
    """Level-2 sections by heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def tables(section: str) -> list[list[list[str]]]:
    """The section's tables, each a list of body rows of stripped cells (header dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in section.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []  # the header row
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current is not None:
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    return found


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@cache
def reading() -> dict[str, str]:
    return sections(READING.read_text(encoding="utf-8"))


def variables_table(sections_: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    (rows, *_) = tables(sections_["Variables"])
    return {ticked(r[0])[0]: (r[1], r[2], r[3]) for r in rows}


@cache
def reading_variables() -> dict[str, tuple[str, str, str]]:
    return variables_table(reading())


@cache
def reading_rules() -> dict[str, tuple[str, bool | list[str]]]:
    """id -> (rule cell, judgment item: yes, the variables named after "yes:", or no)."""
    rules = [t for t in tables(reading()["Rules"]) if CRITERION_ID.fullmatch(t[0][0])]
    assert len(rules) == 1, "expected one rules table in the reading's Rules section"
    return {r[0]: (r[2], ticked(r[3]) or r[3] == "yes") for r in rules[0]}


def names(cell: str, known: set[str]) -> set[str]:
    """The names a reading's cell reads: ticked names, and D for the screening date."""
    found = {t for t in ticked(cell) if t in known}
    if re.search(r"\bD\b", re.sub(r"`[^`]*`", "", cell)):
        found.add("screening_date")
    return found


def constants(cell: str, known: set[str]) -> set[str]:
    return {t for t in ticked(cell) if t not in known}


# -- YAML expressions ------------------------------------------------------------------------------


def parse(expression: str) -> ast.Expression:
    return ast.parse(collapse(expression), mode="eval")


def expression_names(expression: str) -> set[str]:
    tree = parse(expression)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called


def numbers(cell: str) -> set[float]:
    """The numbers a reading's cell names (not those inside ticked names)."""
    return {float(n) for n in re.findall(r"\d+(?:\.\d+)?", re.sub(r"`[^`]*`", "", cell))}


def expression_numbers(expression: str) -> set[float]:
    tree = parse(expression)
    return {
        float(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and type(n.value) in (int, float)
    }


def expression_strings(expression: str) -> set[str]:
    tree = parse(expression)
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def questions() -> dict[str, dict[str, Any]]:
    return {q["variable"]: q for q in dialog()["questions"]}


def criteria() -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in dialog()["criteria"]}


def rule_of(criterion: dict[str, Any]) -> str:
    return criterion.get("met_when", criterion.get("applies_when", ""))


def computed_names() -> set[str]:
    """Derived values and tables: names a rule may read besides the questions."""
    return {d["name"] for d in dialog().get("derived", [])} | {
        t["name"] for t in dialog().get("tables", [])
    }


def all_names() -> set[str]:
    return set(questions()) | computed_names()


# -- the source text -------------------------------------------------------------------------------


def test_every_source_is_verbatim_in_the_protocol_text() -> None:
    source = collapse(shared_protocol_text(SOURCE))
    missing = [c["id"] for c in dialog()["criteria"] if collapse(c["source"]) not in source]
    assert missing == [], f"source text not found verbatim for {missing}"


# -- the dialog file against the reading -----------------------------------------------------------


def test_criterion_ids_equal_the_readings() -> None:
    assert list(criteria()) == list(reading_rules())


def test_criterion_kinds_follow_their_ids() -> None:
    for cid, criterion in criteria().items():
        inclusion = cid.startswith("C-I")
        assert criterion["kind"] == ("inclusion" if inclusion else "exclusion"), cid
        assert ("met_when" in criterion) == inclusion, cid
        assert ("applies_when" in criterion) == (not inclusion), cid


def test_variables_equal_the_readings() -> None:
    assert list(questions()) == list(reading_variables())


def expected_question(kind: str) -> dict[str, Any]:
    """The dialog-file fields that a reading's 'type, range' cell fixes."""
    if kind == "yes/no":
        return {"type": "yes_no"}
    if kind == "date":
        return {"type": "date", "future": False}
    if kind == "planned date":
        return {"type": "date", "future": True}
    if kind == "date or none":
        return {"type": "date_or_none"}
    if match := re.fullmatch(r"(int|number), ([\d.]+)–([\d.]+)", kind):
        return {"type": match[1], "min": float(match[2]), "max": float(match[3])}
    if match := re.fullmatch(r"(choice|ordered choice|multi-select): (.+)", kind):
        return {
            "type": "choice",
            "choices": ticked(match[2]),
            "ordered": match[1] == "ordered choice",
            "multiple": match[1] == "multi-select",
        }
    raise AssertionError(f"unexpected type in the reading: {kind}")


def actual_question(question: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    actual = {f: question.get(f, False) for f in fields}
    for bound in {"min", "max"} & fields:
        actual[bound] = float(question[bound])
    if "choices" in fields:
        actual["choices"] = [str(c) for c in question["choices"]]
    return actual


def test_question_types_equal_the_readings() -> None:
    for name, (kind, _, _) in reading_variables().items():
        expected = expected_question(kind)
        assert actual_question(questions()[name], set(expected)) == expected, name


def test_asked_when_reads_what_the_reading_names() -> None:
    known = all_names()
    for name, (_, when, _) in reading_variables().items():
        condition = questions()[name].get("when")
        if when == "always":
            assert condition is None, name
        else:
            assert condition is not None, name
            assert expression_names(condition) == names(when, known), name
            assert expression_numbers(condition) == numbers(when), name


# The reading's words for a comparison in "asked when", and the operator each means.
WORDED_COMPARISONS = (
    (re.compile(r"`(\w+)` below (\d+(?:\.\d+)?)"), ast.Lt),
    (re.compile(r"`(\w+)` (\d+(?:\.\d+)?) or over"), ast.GtE),
    (re.compile(r"`(\w+)` ≥ (\d+(?:\.\d+)?)"), ast.GtE),
    (re.compile(r"`(\w+)` is (\d+(?:\.\d+)?)"), ast.Eq),
)


def worded_comparisons(cell: str) -> set[tuple[str, type[ast.cmpop], float]]:
    return {
        (name, op, float(number))
        for pattern, op in WORDED_COMPARISONS
        for name, number in pattern.findall(cell)
    }


def expression_comparisons(expression: str) -> set[tuple[str, type[ast.cmpop], float]]:
    """``name OP number`` comparisons of one operator (chained ones are left out)."""
    return {
        (n.left.id, type(n.ops[0]), float(n.comparators[0].value))
        for n in ast.walk(parse(expression))
        if isinstance(n, ast.Compare)
        and len(n.ops) == 1
        and isinstance(n.left, ast.Name)
        and isinstance(n.comparators[0], ast.Constant)
        and type(n.comparators[0].value) in (int, float)
    }


def test_asked_when_compares_as_the_reading_words_it() -> None:
    """Names and numbers alone let ``marrow_relapse_count < 2`` become ``<= 2`` unseen,
    asking a patient with two marrow relapses what the reading does not ask."""
    checked = 0
    for name, (_, when, _) in reading_variables().items():
        worded = worded_comparisons(when)
        if worded:
            assert worded <= expression_comparisons(questions()[name]["when"]), name
            checked += len(worded)
    assert checked >= 10  # the reading words most conditions this way


def test_conditions_read_only_earlier_questions() -> None:
    order = list(questions())
    table_inputs = {
        t["name"]: set().union(*(expression_names(r["when"]) for r in t["rows"]))
        for t in dialog().get("tables", [])
    }
    for index, (name, question) in enumerate(questions().items()):
        if "when" not in question:
            continue
        read = expression_names(question["when"]) - {"screening_date"}
        for table in read & set(table_inputs):
            read = (read - {table}) | table_inputs[table]
        assert read <= set(order[:index]), f"{name} reads {read - set(order[:index])}"


def test_expressions_name_only_defined_things() -> None:
    known = all_names() | {"screening_date"}
    expressions = [rule_of(c) for c in dialog()["criteria"]]
    expressions += [q["when"] for q in dialog()["questions"] if "when" in q]
    expressions += [r["when"] for t in dialog().get("tables", []) for r in t["rows"]]
    for d in dialog().get("derived", []):
        expressions += [c["when"] for c in d.get("calculators", []) if "when" in c]
    for expression in expressions:
        tree = parse(expression)
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
        assert called <= FUNCTIONS, expression
        assert expression_names(expression) <= known, expression


def test_rules_read_what_the_reading_names() -> None:
    known = all_names()
    for cid, (rule, _) in reading_rules().items():
        expression = rule_of(criteria()[cid])
        assert expression_names(expression) == names(rule, known), cid
        assert expression_strings(expression) == constants(rule, known), cid
        assert expression_numbers(expression) == numbers(re.sub(r"\([a-e]\)", "", rule)), cid


def test_choice_constants_are_choices_of_the_question_they_meet() -> None:
    for cid, criterion in criteria().items():
        for string in expression_strings(rule_of(criterion)):
            owners = [q for q in questions().values() if string in map(str, q.get("choices", []))]
            assert owners, f"{cid}: '{string}' is no question's choice"


def row_holds(expression: str, age: int, sex: str) -> bool:
    """A table row's condition on known age and sex (comparisons, and, or only)."""

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return {"age": age, "sex": sex}[node.id]
        if isinstance(node, ast.BoolOp):
            parts = [value(v) for v in node.values]
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.Compare):
            ops = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
                   ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
                   ast.Eq: lambda a, b: a == b}  # fmt: skip
            left, results = value(node.left), []
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = value(comparator)
                results.append(ops[type(op)](left, right))
                left = right
            return all(results)
        raise AssertionError(f"unexpected in a table row: {ast.dump(node)}")

    return bool(value(parse(expression).body))


def test_creatinine_table_equals_the_readings() -> None:
    (table,) = [t for t in dialog()["tables"] if t["name"] == "creatinine_limit_mg_dl"]
    (rows,) = [t for t in tables(reading()["Rules"]) if t[0][0].startswith("1 (")]
    bands = []
    for band, female, male in rows:
        if match := re.search(r"\((\d+) ≤ age < (\d+)\)", band):
            low, high = int(match[1]), int(match[2])
        else:
            low, high = int(re.match(r"(\d+) and over", band)[1]), 200  # type: ignore[index]
        bands.append((low, high, {"female": float(female), "male": float(male)}))
    for age in range(0, 121):
        for sex in ("female", "male"):
            expected = next((lim[sex] for low, high, lim in bands if low <= age < high), None)
            found = next(
                (r["value"] for r in table["rows"] if row_holds(r["when"], age, sex)), None
            )
            assert found == expected, (age, sex)


def test_computed_values_are_described_in_the_reading() -> None:
    rules_text = reading()["Rules"]
    for name in computed_names():
        assert f"`{name}`" in rules_text, name


def test_judgment_items_equal_the_readings() -> None:
    for cid, (_, judgment) in reading_rules().items():
        assert criteria()[cid].get("judgment", False) == judgment, cid


def test_recoverable_equals_may_pass_later() -> None:
    (rows,) = tables(reading()["May pass later"])
    expected: dict[str, str] = {}
    for first, recoverable, _ in rows:
        for cid in CRITERION_ID.findall(first.split("(")[0]):
            expected[cid] = recoverable
    assert expected, "no criterion in the May pass later table"
    for cid, criterion in criteria().items():
        assert criterion.get("recoverable", "no") == expected.get(cid, "no"), cid


def test_plausibility_limits_equal_the_readings() -> None:
    (rows,) = tables(reading()["Plausibility"])
    expected = {
        ticked(name)[0]: (
            float(below) if below else None,
            float(above) if above else None,
            hint or None,
        )
        for name, below, above, hint in rows
    }
    actual = {
        name: (q.get("confirm_below"), q.get("confirm_above"), q.get("confirm_hint"))
        for name, q in questions().items()
        if {"confirm_below", "confirm_above", "confirm_hint"} & set(q)
    }
    assert actual == expected


def test_sponsor_questions_are_the_dialogs_notes() -> None:
    asked = re.findall(r"^\d+\. (C-[^—]+) —", reading()["Questions for the sponsor"], re.M)
    notes = dialog()["notes"]
    assert len(asked) == len(notes) > 0
    for ids, note in zip(asked, notes, strict=True):
        prefixes = [i.strip() for i in ids.split(",")]
        assert all(any(c.startswith(p) for p in prefixes) for c in note["criteria"]), ids
        assert all(any(c.startswith(p) for c in note["criteria"]) for p in prefixes), ids
        assert set(note["criteria"]) <= set(criteria()), note["criteria"]


def test_readings_chosen_without_the_source_are_notes() -> None:
    """Readings the audit found chosen silently are each said in a note of their criterion."""
    notes = dialog()["notes"]

    def said(criterion: str, words: str) -> bool:
        return any(criterion in n["criteria"] and words in n["text"] for n in notes)

    assert said("C-I6a", "normalised to 1.73 m²")
    assert said("C-I1b", "most recent allogeneic transplant")
    assert said("C-E1", "is the present relapse")
    # outside audit 19, F2: the window edges and month ends decide eligibility
    for criterion in ("C-I1b", "C-I2", "C-E11", "C-E12"):
        assert said(criterion, "is the edge day inside or outside"), criterion


def test_interpretations_match_the_sponsor_questions() -> None:
    interpretations = re.findall(r"^(\d+)\. ", reading()["Interpretations"], re.M)
    asked = re.findall(r"^(\d+)\. ", reading()["Questions for the sponsor"], re.M)
    assert interpretations == asked


# -- shared with blina-dli -------------------------------------------------------------------------


def test_shared_variables_have_blina_dlis_type_and_range() -> None:
    blina = variables_table(sections(shared_protocol_text(DICTIONARY)))
    ours = reading_variables()
    common = set(blina) & set(ours)
    assert common, "no variable shared with blina-dli"
    different = {n: (blina[n][0], ours[n][0]) for n in common if blina[n][0] != ours[n][0]}
    assert different == {}


def test_shared_section_lists_exactly_the_shared_variables() -> None:
    blina = variables_table(sections(shared_protocol_text(DICTIONARY)))
    ours = reading_variables()
    (rows, *_) = tables(reading()["Shared with blina-dli"])
    listed = {ticked(r[0])[0]: r[1] for r in rows}
    assert set(listed) == set(blina) & set(ours)
    assert all(listed[n] == ours[n][0] for n in listed), listed


# -- the boundary-case table -----------------------------------------------------------------------

VERDICTS = {"eligible", "not_eligible", "unresolved", "(refused)"}
OPEN_ITEM = re.compile(r"\((C-[IE][\w-]*), (\w+), (missing|judgment|confirm)\)")


@cache
def cases() -> list[list[str]]:
    (rows,) = tables(sections(CASES.read_text(encoding="utf-8"))["Cases"])
    return rows


def test_cases_are_many_and_well_formed() -> None:
    rows = cases()
    assert len(rows) >= 40
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert {r[1] for r in rows} <= {"A", "B"}
    assert {r[3] for r in rows} <= VERDICTS


def test_cases_name_real_variables_and_criteria() -> None:
    variables = set(questions())
    for number, _, changes, _, outcome, _ in cases():
        assert set(ticked(changes)) <= variables, number
        assert set(CRITERION_ID.findall(outcome)) <= set(criteria()), number
        for _, variable, _ in OPEN_ITEM.findall(outcome):
            assert variable in variables, number


def test_case_outcomes_fit_their_verdicts() -> None:
    judgment = {cid: j for cid, (_, j) in reading_rules().items() if j}

    def judged(cid: str, variable: str) -> bool:
        named = judgment.get(cid, False)
        return named if isinstance(named, bool) else variable in named

    for number, _, _, verdict, outcome, _ in cases():
        items = OPEN_ITEM.findall(outcome)
        if verdict == "eligible":
            assert outcome == "", number
        elif verdict == "not_eligible":
            assert CRITERION_ID.findall(outcome) and not items, number
        elif verdict == "unresolved":
            assert items, number
            assert len(items) == len(CRITERION_ID.findall(outcome)), number
            for cid, variable, kind in items:
                assert (kind == "judgment") == judged(cid, variable) or kind == "confirm", number
                assert kind != "confirm" or "confirm_estimate" in criteria()[cid], number


def test_every_criterion_has_a_failing_case() -> None:
    failing = set()
    for _, _, _, verdict, outcome, _ in cases():
        if verdict == "not_eligible":
            failing |= set(CRITERION_ID.findall(outcome))
    assert failing == set(criteria())
