"""Dialog files: malformed ones are refused with file, line and fix; the real one matches
the protocol's source text and the data dictionary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_runner import Ran, invoke
from conftest import DIALOG, shared_protocol_text
from screen_bot.cli.app import app
from screen_bot.protocol import DialogFileError, Problem, Protocol, load

DICTIONARY = "DATA-DICTIONARY.md"  # in ../shared/protocol
SOURCE = "blina-dli-source.txt"  # in ../shared/protocol
ORIGINAL = DIALOG.read_text(encoding="utf-8")


def replace_once(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"{old!r} is not unique in the dialog file"
        return text.replace(old, new)

    return edit


@dataclass(frozen=True)
class Broken:
    """One thing broken in a copy of the real dialog file, and what the report must say."""

    name: str
    edit: Callable[[str], str]
    marker: str  # the report's line is the line holding this text ...
    occurrence: int  # ... at this occurrence (-1: the last one)
    message: str  # the problem's message contains this
    fix: str  # and its fix contains this

    def write(self, directory: Path) -> tuple[Path, int]:
        text = self.edit(ORIGINAL)
        assert text != ORIGINAL
        path = directory / f"{self.name}.yaml"
        path.write_text(text, encoding="utf-8")
        lines = [n for n, line in enumerate(text.splitlines(), start=1) if self.marker in line]
        assert lines, f"marker {self.marker!r} not found"
        return path, lines[self.occurrence]


EXTRA_QUESTION = "  - variable: consent_willing\n    type: yes_no\n    text: Again?\n\nderived:\n"
UNUSED_QUESTION = (
    "questions:\n  - variable: favourite_colour\n    type: yes_no\n    text: Blue or not?\n"
)

BROKEN = [
    Broken(
        "yaml-syntax",
        replace_once("    text: Philadelphia", "   text: Philadelphia"),
        "   text: Philadelphia",
        0,
        "YAML syntax",
        "indentation",
    ),
    Broken(
        "yaml-duplicate-key",
        replace_once("    text: Sex?\n", "    text: Sex?\n    text: Gender?\n"),
        "text: Gender?",
        0,
        "duplicate key",
        "fix",
    ),
    Broken(
        "missing-field",
        replace_once("    text: Philadelphia chromosome negative (no BCR-ABL1)?\n", ""),
        "- variable: ph_negative",
        0,
        "text",
        "add 'text:'",
    ),
    Broken(
        "missing-rule",
        replace_once("    met_when: consent_willing\n", ""),
        "- id: I10",
        0,
        "met_when",
        "",
    ),
    Broken(
        "unknown-field",
        replace_once("    text: Sex?\n", "    text: Sex?\n    colour: red\n"),
        "colour: red",
        0,
        "colour",
        "remove 'colour'",
    ),
    Broken(
        "undefined-variable",
        replace_once("met_when: 14 <= age <= 65", "met_when: 14 <= agee <= 65"),
        "agee",
        0,
        "agee",
        "did you mean 'age'?",
    ),
    Broken(
        "when-reads-later-question",
        replace_once(
            "    when: sex == 'female'\n    text: Woman of",
            "    when: qtc_ms > 400\n    text: Woman of",
        ),
        "when: qtc_ms > 400",
        0,
        "qtc_ms",
        "move 'childbearing_potential' after 'qtc_ms'",
    ),
    Broken(
        "duplicate-criterion-id",
        replace_once("  - id: I3b\n", "  - id: I3a\n"),
        "- id: I3a",
        -1,
        "duplicate id 'I3a'",
        "distinct",
    ),
    Broken(
        "duplicate-variable",
        replace_once("\nderived:\n", "\n" + EXTRA_QUESTION),
        "- variable: consent_willing",
        -1,
        "'consent_willing' is defined twice (also in questions at line",
        "its own name",
    ),
    Broken(
        "choice-not-among-choices",
        replace_once(
            "sex == 'female' and pregnant_or_lactating", "sex == 'femal' and pregnant_or_lactating"
        ),
        "sex == 'femal'",
        0,
        "'femal' is not a choice of 'sex'",
        "'female'",
    ),
    Broken(
        "question-read-by-no-rule",
        replace_once("questions:\n", UNUSED_QUESTION),
        "- variable: favourite_colour",
        0,
        "favourite_colour",
        "remove the question",
    ),
    Broken(
        "unsatisfiable-when",
        replace_once(
            "    when: sex == 'female'\n    text: Woman of",
            "    when: known(sex) and unknown(sex)\n    text: Woman of",
        ),
        "known(sex) and unknown(sex)",
        0,
        "never asked",
        "correct the condition",
    ),
    Broken(
        "unknown-calculator",
        replace_once("calculator: cockcroft_gault", "calculator: cockroft_gault"),
        "calculator: cockroft_gault",
        0,
        "cockroft_gault",
        "cockcroft_gault",
    ),
    Broken(  # a calculator input of the wrong kind: every patient's crcl stayed unknown
        "calculator-sex-from-yes-no",
        replace_once("      sex: sex\n", "      sex: b_all_cd19_positive\n"),
        "sex: b_all_cd19_positive",
        0,
        "'cockcroft_gault' takes sex as the choice 'female' or 'male', but "
        "'b_all_cd19_positive' is a yes_no question",
        "choices: [female, male]",
    ),
    Broken(
        "calculator-sex-from-other-choices",
        replace_once(
            "choices: [female, male]\n    synonyms: {woman: female, man: male}\n",
            "choices: [f, m]\n    synonyms: {woman: f, man: m}\n",
        ),
        "sex: sex",
        0,
        "but 'sex' has choices [f, m]",
        "synonyms keep other words",
    ),
    Broken(
        "calculator-age-from-a-date",
        replace_once("      age: age\n", "      age: transplant_date\n"),
        "age: transplant_date",
        0,
        "takes age as a number, but 'transplant_date' is a date question",
        "map age to a number question",
    ),
    Broken(
        "yes-no-compared-with-number",
        replace_once("applies_when: substance_abuse\n", "applies_when: substance_abuse > 1\n"),
        "substance_abuse > 1",
        0,
        "substance_abuse",
        "not substance_abuse",
    ),
    Broken(
        "number-used-as-yes-no",
        replace_once("applies_when: arrhythmia\n", "applies_when: arrhythmia and qtc_ms\n"),
        "arrhythmia and qtc_ms",
        0,
        "qtc_ms",
        "compare it",
    ),
    Broken(
        "inclusion-with-applies-when",
        replace_once("    met_when: consent_willing\n", "    applies_when: consent_willing\n"),
        "- id: I10",
        0,
        "met_when",
        "",
    ),
]

# Rule text that would run code if it ever reached eval(); the file name is a canary.
EVAL_LIKE = [
    ("import", "__import__('os').system('touch {canary}')", "__import__"),
    ("attribute", "consent_willing.__class__", "__class__"),
    ("dunder-chain", "().__class__.__bases__[0].__subclasses__()", "__subclasses__"),
    ("call", "open('{canary}', 'w')", "open"),
    ("builtin-call", "bool(consent_willing)", "bool"),
    ("eval", "eval('1') == 1", "eval"),
    ("lambda", "'(lambda: True)()'", "lambda"),
    ("subscript", "consent_willing[0]", "consent_willing[0]"),
    ("arithmetic", "consent_willing * 2 > 1", "consent_willing * 2"),
]
for _name, _rule, _shown in EVAL_LIKE:
    BROKEN.append(
        Broken(
            f"eval-like-{_name}",
            replace_once("    met_when: consent_willing\n", f'    met_when: "{_rule}"\n')
            if not _rule.startswith("'")
            else replace_once("    met_when: consent_willing\n", f"    met_when: {_rule}\n"),
            "    met_when: ",
            -1,
            "not allowed",
            "",
        )
    )

# A `when` that no answer can make true. The checker counts an unknown answer as "may be
# asked", so conditions that are only ever false or unknown slip through.
UNSATISFIABLE_NOT_CAUGHT = [
    ("age-above-its-maximum", "age > 200"),
    ("contradiction", "sex == 'female' and sex == 'male'"),
]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DialogFileError) as info:
        load(path)
    problems = info.value.problems
    assert problems
    for problem in problems:
        assert problem.file == str(path)
        assert str(problem).startswith(f"{path}:")
        assert problem.fix, f"no fix offered for {problem}"
    return problems


def the_problem(path: Path, line: int, broken: Broken) -> Problem:
    problems = problems_of(path)
    at_line = [p for p in problems if p.line == line]
    assert at_line, f"no problem reported at line {line}: {[str(p) for p in problems]}"
    matching = [p for p in at_line if broken.message in p.message and broken.fix in p.fix]
    assert matching, [str(p) for p in at_line]
    return matching[0]


REPORTED = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)\n    fix: (?P<fix>.*)$", re.M)


@pytest.mark.parametrize("broken", BROKEN, ids=[b.name for b in BROKEN])
def test_broken_dialog_file_is_reported(tmp_path: Path, broken: Broken) -> None:
    """`validate`, in process: exit 2, no traceback, the problem at file:line with a fix."""
    canary = tmp_path / "canary"
    broken = Broken(
        broken.name,
        lambda text, edit=broken.edit: edit(text).replace("{canary}", str(canary)),
        broken.marker,
        broken.occurrence,
        broken.message,
        broken.fix,
    )
    path, line = broken.write(tmp_path)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    reported = list(REPORTED.finditer(result.stderr))
    assert reported, result.stderr
    assert len(reported) == result.stderr.count(f"{path}:"), "a problem without a line or fix"
    assert all(r["file"] == str(path) and r["fix"].strip() for r in reported)
    at_line = [r for r in reported if int(r["line"]) == line]
    assert at_line, f"nothing reported at line {line}:\n{result.stderr}"
    assert any(broken.message in r["message"] and broken.fix in r["fix"] for r in at_line), (
        result.stderr
    )
    assert not canary.exists(), "rule text was executed"


@pytest.mark.parametrize("name", ["undefined-variable", "duplicate-criterion-id", "eval-like-call"])
def test_load_raises_dialog_file_error_with_problems(tmp_path: Path, name: str) -> None:
    (broken,) = [b for b in BROKEN if b.name == name]
    path, line = broken.write(tmp_path)
    the_problem(path, line, broken)


@pytest.mark.parametrize(("name", "condition"), UNSATISFIABLE_NOT_CAUGHT)
def test_unsatisfiable_when_is_reported(tmp_path: Path, name: str, condition: str) -> None:
    broken = Broken(
        name,
        replace_once(
            "    when: sex == 'female'\n    text: Woman of",
            f"    when: {condition}\n    text: Woman of",
        ),
        f"when: {condition}",
        0,
        "never",
        "",
    )
    path, line = broken.write(tmp_path)
    the_problem(path, line, broken)


def test_when_reading_a_derived_value_gets_a_useful_fix(tmp_path: Path) -> None:
    broken = Broken(
        "when-reads-derived",
        replace_once(
            "    when: unknown(crcl_ml_min)\n    aliases: [weight]\n",
            "    when: crcl < 50\n    aliases: [weight]\n",
        ),
        "when: crcl < 50",
        0,
        "crcl",
        "",
    )
    path, line = broken.write(tmp_path)
    problem = the_problem(path, line, broken)
    assert "did you mean 'crcl'" not in problem.fix


def test_when_reading_its_own_question_gets_a_useful_fix(tmp_path: Path) -> None:
    broken = Broken(
        "when-reads-itself",
        replace_once(
            "    max: 120\n    unit: years\n", "    max: 120\n    unit: years\n    when: age > 5\n"
        ),
        "when: age > 5",
        0,
        "age",
        "",
    )
    path, line = broken.write(tmp_path)
    problem = the_problem(path, line, broken)
    assert "after 'age'" not in problem.fix


def test_unreadable_file(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "absent.yaml")
    assert "cannot read" in problem.message


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert problem.line == 1


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = ORIGINAL
    for broken in BROKEN:
        if broken.name in ("undefined-variable", "choice-not-among-choices", "unknown-calculator"):
            text = broken.edit(text)
    path = tmp_path / "three.yaml"
    path.write_text(text, encoding="utf-8")
    messages = " | ".join(p.message for p in problems_of(path))
    assert "agee" in messages and "femal" in messages and "cockroft_gault" in messages


# -- the command line ----------------------------------------------------------------------------


def validate(*paths: Path) -> Ran:
    return invoke("validate", *map(str, paths))


def test_validate_accepts_the_real_dialog_file() -> None:
    result = validate(DIALOG)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "blina-dli" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_dialog_file() -> str:
    """The dialog file README shows under 'Dialog files'."""
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("\n## Dialog files\n") :]
    (example,) = re.findall(r"```yaml\n(.*?)```", section[: section.index("\n## ", 1)], re.S)
    return example


def test_the_readmes_dialog_file_validates_as_it_stands(tmp_path: Path) -> None:
    """README's example, copied, was refused with 8 x 'questions.N.text: Field required'."""
    path = tmp_path / "readme-example.yaml"
    path.write_text(readme_dialog_file(), encoding="utf-8")
    protocol = load(path)
    assert protocol.id == "blina-dli"


def test_the_readmes_dialog_file_marks_every_required_key() -> None:
    """README said 'every part below is optional unless marked' and marked only id, title and
    version, yet a question needs variable, type and text, a criterion kind, label and source."""
    from ruamel.yaml import YAML

    from screen_bot.protocol.schema import (
        Checklist,
        Criterion,
        Derived,
        DialogFile,
        Note,
        Question,
        Table,
    )

    text = readme_dialog_file()
    lines = text.splitlines()
    top = YAML(typ="rt").load(text)
    mappings = [(DialogFile, top)]
    for key, model in [
        ("notes", Note),
        ("questions", Question),
        ("checklists", Checklist),
        ("tables", Table),
        ("derived", Derived),
        ("criteria", Criterion),
    ]:
        # each kind marked once: in its first item written a key a line
        mappings.append((model, next(i for i in top[key] if not i.fa.flow_style())))
    unmarked = [
        f"{model.__name__}.{name}"
        for model, mapping in mappings
        for name, field in model.model_fields.items()
        if field.is_required() and "# required" not in lines[mapping.lc.key(name)[0]]
    ]
    assert unmarked == []


SUBPROCESS_CASES = [
    b
    for b in BROKEN
    if b.name in ("yaml-syntax", "missing-field", "undefined-variable", "eval-like-import")
]


@pytest.mark.parametrize("broken", SUBPROCESS_CASES, ids=[b.name for b in SUBPROCESS_CASES])
def test_screen_bot_validate_exits_2_on_a_broken_file(tmp_path: Path, broken: Broken) -> None:
    path, line = broken.write(tmp_path)
    result = validate(path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert f"{path}:{line}: " in result.stderr
    assert "fix: " in result.stderr


def test_validate_reports_each_file_and_exits_2_if_any_is_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ORIGINAL, encoding="utf-8")
    bad, _ = BROKEN[0].write(tmp_path)
    result = validate(good, bad)
    assert result.returncode == 2
    assert f"{good}: ok" in result.stdout
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = validate(tmp_path / "nothing.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr


# -- the real file against the protocol's text and the data dictionary ---------------------------


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load(DIALOG)


def test_every_criterion_source_is_verbatim_in_the_protocol_text(protocol: Protocol) -> None:
    source = shared_protocol_text(SOURCE)
    missing = [c.id for c in protocol.spec.criteria if c.source not in source]
    assert missing == [], f"source text not found verbatim for {missing}"


def dictionary_variables(text: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|", text, flags=re.M)
    return {name: (kind, when) for name, kind, when in rows}


def dictionary_rules(text: str) -> dict[str, tuple[str, bool]]:
    rows = re.findall(r"^\| ([IE]\d+[a-z]?) \| [^|]+ \| ([^|]+?) \| *(yes)? *\|$", text, re.M)
    return {cid: (rule, judgment == "yes") for cid, rule, judgment in rows}


def test_dictionary_tables_parse() -> None:
    text = shared_protocol_text(DICTIONARY)
    assert len(dictionary_variables(text)) == 39
    assert len(dictionary_rules(text)) == 38


def test_variables_equal_the_dictionarys(protocol: Protocol) -> None:
    variables = dictionary_variables(shared_protocol_text(DICTIONARY))
    assert set(protocol.order) == set(variables)
    for name, (kind, when) in variables.items():
        question = protocol.questions[name]
        if kind == "yes/no":
            assert question.type == "yes_no", name
        elif kind in ("date", "date or none"):
            assert question.type == kind.replace(" or ", "_or_"), name
            assert not question.future, name
        elif kind.startswith("choice"):
            assert question.type == "choice", name
            assert question.choices == re.findall(r"`(\w+)`", kind), name
        else:
            match = re.fullmatch(r"(int|number), ([\d.]+)–([\d.]+)", kind)
            assert match, kind
            assert question.type == match[1], name
            assert (question.min, question.max) == (float(match[2]), float(match[3])), name
        if when == "always":
            assert question.when is None, name
        else:
            assert question.when is not None, name
            condition = protocol.when[name]
            if match := re.fullmatch(r"`(\w+)` is `(\w+)`", when):  # a choice
                other = [c for c in protocol.questions[match[1]].choices or [] if c != match[2]]
                true_when, false_when = {match[1]: match[2]}, {match[1]: other[0]}
            elif match := re.fullmatch(r"`(\w+)` is yes", when):
                true_when, false_when = {match[1]: True}, {match[1]: False}
            elif match := re.fullmatch(r"`(\w+)` unknown", when):
                some_value = protocol.questions[match[1]].max
                true_when, false_when = {match[1]: None}, {match[1]: some_value}
            else:
                raise AssertionError(f"unexpected 'asked when' in the dictionary: {when}")
            assert condition.names == {match[1]}, name
            assert condition.evaluate(true_when) is True, name
            assert condition.evaluate(false_when) is False, name


def test_criteria_equal_the_dictionarys(protocol: Protocol) -> None:
    rules = dictionary_rules(shared_protocol_text(DICTIONARY))
    assert set(protocol.criteria) == set(rules)
    for cid, (rule, judgment) in rules.items():
        criterion = protocol.criteria[cid]
        assert criterion.kind == ("inclusion" if cid.startswith("I") else "exclusion"), cid
        assert criterion.judgment == judgment, cid
        names = set(re.findall(r"`(\w+)`", rule))
        names |= {"crcl"} if "CrCl" in rule else set()
        names |= {"sex"} if re.search(r"\b(fe)?male\b", rule) else set()
        names |= {"screening_date"} if re.search(r"\bD\b|within the past", rule) else set()
        if "see below when it is unknown" in rule:  # E6b: the measured value, else the estimate
            names = {"crcl"}
            assert protocol.derived["crcl"].measured == "crcl_ml_min"
            assert criterion.confirm_estimate, cid
        assert protocol.rules[cid].names == names, cid


def dictionary_labels(text: str) -> dict[str, str]:
    """Each criterion's short text, from the rule table (id, criterion, rule, judgment)."""
    rows = re.findall(r"^\| ([IE]\d+[a-z]?) \| ([^|]+?) \| [^|]+ \| *(?:yes)? *\|$", text, re.M)
    return dict(rows)


def test_labels_are_the_dictionarys_short_texts(protocol: Protocol) -> None:
    """A reason and an open item show the label: it must say what the dictionary says
    (E6b is about a *24-hour* clearance, not any CrCl)."""
    labels = dictionary_labels(shared_protocol_text(DICTIONARY))
    assert len(labels) == 38
    differ = {
        cid: (c.label, labels[cid])
        for cid, c in protocol.criteria.items()
        if c.label != labels[cid]
    }
    assert differ == {}


def test_cockcroft_gault_is_declared_as_the_dictionary_says(protocol: Protocol) -> None:
    (derived,) = protocol.spec.derived
    assert derived.name == "crcl"
    assert derived.calculator == "cockcroft_gault"
    assert derived.measured == "crcl_ml_min"
    assert sorted(derived.inputs.values()) == sorted(
        ["age", "sex", "weight_kg", "serum_creatinine_mg_dl"]
    )
