"""Dialog files are parsed by libyaml (``ruamel.yaml.clib``) when it is installed, by
ruamel's own parser otherwise: both must give the same protocols, the same lines in
problems and the same syntax-error messages."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cli_runner import invoke
from format2 import dialog, dump, inclusion, number, write
from screen_bot.protocol import DialogFileError, load

DIALOGS = sorted((Path(__file__).parents[1] / "dialogs").glob("*.yaml"))


def pure_yaml(typ: str, pure: bool = False) -> YAML:
    return YAML(typ=typ, pure=True)


# The loader imports ruamel's YAML where it parses a file (not at import: a start whose
# files are all kept in the cache parses none), so the class is replaced in ruamel itself.
PARSER = "ruamel.yaml.YAML"


def outcome(path: Path) -> Any:
    """The protocol as data, or the problems as text."""
    try:
        protocol = load(path)
    except DialogFileError as err:
        return str(err)
    return {
        "spec": protocol.spec.model_dump(mode="json"),
        "rules": {cid: repr(rule) for cid, rule in protocol.rules.items()},
        "when": {name: repr(when) for name, when in protocol.when.items()},
        "lines": protocol.lines,
    }


def test_the_c_parser_is_installed() -> None:
    # A dependency of the project: without it every command starts ~0.15 s slower per file.
    from _ruamel_yaml import CParser

    assert YAML(typ="safe").Parser is CParser


@pytest.mark.parametrize("path", DIALOGS, ids=lambda p: p.name)
def test_shipped_dialogs_load_alike_with_either_parser(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = outcome(path)
    monkeypatch.setattr(PARSER, pure_yaml)
    assert outcome(path) == fast
    assert isinstance(fast, dict)


BROKEN = {
    "indentation": "id: x\ntitle: t\n  version: 1\n",
    "tab": "id: x\n\ttitle: t\n",
    "unclosed quote": 'id: "x\ntitle: t\n',
    "duplicate key": "id: x\nid: y\n",
    "colon in value": "id: x\ntitle: a: b\n",
    "not a mapping": "- a\n- b\n",
    "empty": "",
}


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_broken_yaml_is_reported_alike_with_either_parser(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    fast = outcome(path)
    assert isinstance(fast, str) and "broken.yaml" in fast
    monkeypatch.setattr(PARSER, pure_yaml)
    assert outcome(path) == fast


def test_problems_name_the_same_lines_with_either_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dialog(
        [number("age"), number("weight"), number("age", high=9)],
        [inclusion("I1", "agee >= 18"), inclusion("I2", "weight >= 40 and colour")],
    )
    path = write(tmp_path, dump(spec), "bad.yaml")
    fast = outcome(path)
    assert isinstance(fast, str) and ":" in fast.split("\n")[0]
    monkeypatch.setattr(PARSER, pure_yaml)
    assert outcome(path) == fast


@pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "ruamel"])
def test_an_anchor_given_twice_is_read_without_a_warning(
    pure: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An anchor does nothing without an alias (refused), so one given twice is accepted:
    `validate` said ok under ruamel's 9-line Python warning naming its own source file."""
    shipped = DIALOGS[0]
    text = shipped.read_text().replace("\ntitle: ", "\ntitle: &A ", 1)
    path = tmp_path / shipped.name
    path.write_text(text.replace("\nversion: ", "\nversion: &A ", 1))
    if pure:
        monkeypatch.setattr(PARSER, pure_yaml)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert outcome(path) == outcome(shipped)
    checked = invoke("validate", str(path))
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
