"""Checked dialog files kept between starts (protocol/cache.py): a kept protocol is the one
loading gives, and anything doubtful about an entry means loading the file in full."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import screen_bot
from cli_runner import invoke
from conftest import SHIPPED
from screen_bot import verdict
from screen_bot.protocol import DialogFileError, Protocol, load, loader
from screen_bot.protocol import cache as checked_files
from screen_bot.protocol.catalog import Catalog
from screen_bot.rules.evaluation import context
from screen_bot.settings import CHECKED_DIALOGS
from test_format2_differential import cases, same

FILES = sorted(SHIPPED.glob("*.yaml"))


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    return tmp_path / "kept"


@pytest.fixture
def copies(tmp_path: Path) -> list[Path]:
    """The shipped dialog files, in a directory of the test's own."""
    directory = tmp_path / "dialogs"
    directory.mkdir()
    return [Path(shutil.copy2(f, directory / f.name)) for f in FILES]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file loaded in full (parsed and checked) rather than taken from the cache."""
    loaded: list[Path] = []
    checked = loader._checked

    def counting(path: Path, raw: bytes, sha256: str) -> Protocol:
        loaded.append(path)
        return checked(path, raw, sha256)

    monkeypatch.setattr(loader, "_checked", counting)
    return loaded


def expressions(protocol: Protocol) -> list[Any]:
    found = [*protocol.rules.values(), *protocol.when.values()]
    found += [condition for rows in protocol.tables.values() for condition, _ in rows]
    found += [e.when for uses in protocol.estimates.values() for e in uses if e.when]
    return found


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_a_kept_protocol_equals_the_loaded_one(path: Path, kept: Path, parses: list[Path]) -> None:
    fresh = load(path)
    first = load(path, kept)
    again = load(path, kept)
    assert parses == [path, path]  # loaded twice in full: without the cache, and to fill it
    assert again is not first and again == first == fresh
    assert again.spec == fresh.spec and again.lines == fresh.lines
    assert [e.text for e in expressions(again)] == [e.text for e in expressions(fresh)]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_kept_protocol_decides_as_the_loaded_one(
    path: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    kept = tmp_path_factory.mktemp("kept")
    fresh = load(path)
    load(path, kept)
    again = checked_files.recall(kept, path, fresh.sha256)
    assert again is not None
    answers, screened = data.draw(cases(fresh))
    env = context(fresh, answers, screened).env
    assert context(again, answers, screened).env == env
    for mine, theirs in zip(expressions(again), expressions(fresh), strict=True):
        assert same(mine.evaluate(env), theirs.evaluate(env)), mine.text
    found, expected = (verdict.build(p, answers, screened_on=screened) for p in (again, fresh))
    assert found.model_dump() == expected.model_dump()


def test_a_changed_file_is_checked_again_and_a_broken_one_still_refused(
    copies: list[Path], kept: Path, parses: list[Path]
) -> None:
    path = copies[0]
    load(path, kept)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("title:", "title: Changed", 1), encoding="utf-8")
    assert load(path, kept).title.startswith("Changed")
    assert parses == [path, path]
    path.write_text(text + "\nquestions: [unclosed\n", encoding="utf-8")
    with pytest.raises(DialogFileError):
        load(path, kept)
    path.write_text(text, encoding="utf-8")  # the first version again: checked again too
    load(path, kept)
    assert len(parses) == 4


def test_the_bot_start_with_every_file_broken_ends_though_they_were_kept(
    copies: list[Path], kept: Path
) -> None:
    assert len(Catalog(copies[0].parent, cache=kept).protocols) == len(copies)
    for path in copies:
        path.write_text("id: broken\ntitle: [unclosed\n", encoding="utf-8")
    catalog = Catalog(copies[0].parent, cache=kept)
    assert catalog.protocols == {} and len(catalog.broken()) == len(copies)


def test_a_damaged_entry_is_a_miss_and_is_written_again(
    copies: list[Path], kept: Path, parses: list[Path]
) -> None:
    path = copies[0]
    fresh = load(path, kept)
    (entry,) = kept.glob("*.pickle")
    whole = entry.read_bytes()
    title = fresh.title.encode()
    assert whole.count(title) == 1
    flipped = whole.replace(title, title[:-1] + bytes([title[-1] ^ 1]))  # still a pickle
    for damaged in (whole[: len(whole) // 2], whole[:-1] + b"!", whole[:40], b"", flipped):
        entry.write_bytes(damaged)
        assert load(path, kept) == fresh
    assert len(parses) == 6
    assert entry.read_bytes() == whole  # written again: the next start takes it
    assert load(path, kept) == fresh and len(parses) == 6


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.setattr(screen_bot, "__version__", "99.0"),
        lambda m: m.setattr(sys, "version", sys.version + " (another build)"),
        lambda m: m.setattr(checked_files, "MAGIC", b"screen-bot checked dialog file 0\n"),
    ],
    ids=["screen-bot version", "Python version", "format"],
)
def test_another_version_does_not_take_the_entry(
    change: Any, copies: list[Path], kept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copies[0]
    sha256 = load(path, kept).sha256
    assert checked_files.recall(kept, path, sha256) is not None
    checked_files._code.cache_clear()
    with monkeypatch.context() as m:
        change(m)
        assert checked_files.recall(kept, path, sha256) is None
        checked_files._code.cache_clear()
    assert checked_files.recall(kept, path, sha256) is not None


def test_an_edited_source_file_does_not_take_the_entry(
    copies: list[Path], kept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copies[0]
    sha256 = load(path, kept).sha256
    real = os.stat
    checks = str(Path(loader.__file__).with_name("checks.py"))

    def touched(where: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        found = real(where, *args, **kwargs)
        if str(where) != checks:
            return found
        return os.stat_result((*found[:8], found.st_mtime + 1, found.st_ctime))

    checked_files._code.cache_clear()
    monkeypatch.setattr(os, "stat", touched)
    try:
        assert checked_files.recall(kept, path, sha256) is None
    finally:
        monkeypatch.undo()
        checked_files._code.cache_clear()


def test_another_path_does_not_take_the_entry(copies: list[Path], kept: Path) -> None:
    path = copies[0]
    sha256 = load(path, kept).sha256
    twin = path.with_name("twin.yaml")
    shutil.copy2(path, twin)
    assert checked_files.recall(kept, twin, sha256) is None
    assert load(twin, kept).path == twin


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="needs user ids")
def test_an_entry_others_may_write_is_not_read(
    copies: list[Path], kept: Path, parses: list[Path]
) -> None:
    path = copies[0]
    sha256 = load(path, kept).sha256
    (entry,) = kept.glob("*.pickle")
    assert entry.stat().st_mode & 0o777 == 0o600 and kept.stat().st_mode & 0o777 == 0o700
    entry.chmod(0o666)
    assert checked_files.recall(kept, path, sha256) is None
    entry.chmod(0o600)
    kept.chmod(0o777)
    assert checked_files.recall(kept, path, sha256) is None
    kept.chmod(0o700)
    assert checked_files.recall(kept, path, sha256) is not None


def test_a_cache_that_cannot_be_written_is_not_used(copies: list[Path], tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory", encoding="utf-8")
    assert load(copies[0], blocked / "kept") == load(copies[0])
    assert blocked.read_text(encoding="utf-8") == "not a directory"


def test_a_folder_holding_dialog_files_is_never_made_a_cache(copies: list[Path]) -> None:
    """A cache directory that is a site's dialogs directory was chmodded to 0700 and got
    pickles beside the protocols: deleting the cache deleted the protocols."""
    site = copies[0].parent
    site.chmod(0o775)
    assert load(copies[0], site) == load(copies[0])
    assert site.stat().st_mode & 0o777 == 0o775
    assert sorted(p.name for p in site.iterdir()) == sorted(p.name for p in copies)


def test_a_cache_directory_holding_dialog_files_is_not_used(
    copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCREEN_BOT_CACHE_DIR set to the site's dialogs directory got the cache's folder made
    in it: the commands work, without the cache, and write nothing there."""
    from screen_bot.cli import options

    site = copies[0].parent
    site.chmod(0o755)
    assert load(copies[0], site / CHECKED_DIALOGS) == load(copies[0])
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(site))
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(site))
    options._catalog.cache_clear()
    done = invoke("protocols")
    options._catalog.cache_clear()
    assert done.returncode == 0 and done.stdout.startswith("blina-dli\t"), done.stderr
    assert sorted(p.name for p in site.iterdir()) == sorted(p.name for p in copies)
    assert site.stat().st_mode & 0o777 == 0o755


def test_a_start_with_every_file_kept_parses_no_yaml(copies: list[Path], kept: Path) -> None:
    import subprocess

    Catalog(copies[0].parent, cache=kept).protocols  # noqa: B018 - fills the cache
    code = (
        "import sys; from pathlib import Path; from screen_bot.protocol.catalog import Catalog; "
        f"c = Catalog(Path({str(copies[0].parent)!r}), cache=Path({str(kept)!r})); "
        "print(len(c.protocols), [m for m in ('ruamel.yaml', 'screen_bot.protocol.checks') "
        "if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split(" ", 1) == [str(len(copies)), "[]\n"], done.stdout + done.stderr


def test_what_users_keep_on_a_protocol_is_not_kept_in_the_cache(
    copies: list[Path], kept: Path
) -> None:
    from screen_bot.engine import Engine

    path = copies[0]
    protocol = load(path)
    Engine(protocol)  # keeps compiled checks on the protocol (functions: not picklable)
    protocol.questions  # noqa: B018 - a cached property
    assert len(protocol.__dict__) > len(dataclasses.fields(Protocol))
    checked_files.remember(kept, protocol)
    again = checked_files.recall(kept, path, protocol.sha256)
    assert again == protocol
    assert set(again.__dict__) == {f.name for f in dataclasses.fields(Protocol)}


def test_the_command_lines_protocols_come_from_the_cache(
    copies: list[Path], parses: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screen_bot.cli import options

    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(copies[0].parent))
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(tmp_path / "cache"))
    options._catalog.cache_clear()  # one catalog per process: as if each were a new one
    first = options.catalog().protocols
    assert sorted(parses) == sorted(copies)  # checked in full, then kept
    options._catalog.cache_clear()
    again = options.catalog().protocols
    assert sorted(parses) == sorted(copies)  # not parsed or checked again
    assert again == first
    copies[0].write_text(copies[0].read_text(encoding="utf-8") + "\n", encoding="utf-8")
    options._catalog.cache_clear()
    options.catalog().protocols  # noqa: B018 - loads them
    assert sorted(parses) == sorted([*copies, copies[0]])  # the changed file, checked again
    options._catalog.cache_clear()


def test_a_start_from_kept_files_builds_no_dialog_schema(copies: list[Path], kept: Path) -> None:
    """The schema's models are built at their first validation (defer_build): a start whose
    files are all kept validates none, and its protocols are whole without them."""
    ids = sorted(Catalog([copies[0].parent], cache=kept).protocols)  # keeps them
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from screen_bot.protocol import schema\n"
        "from screen_bot.protocol.catalog import Catalog\n"
        "found = Catalog([Path(sys.argv[1])], cache=Path(sys.argv[2])).protocols\n"
        "print(sorted(found), schema.DialogFile.__pydantic_complete__,\n"
        "      all(p.spec.questions for p in found.values()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(copies[0].parent), str(kept)],
        capture_output=True,
        text=True,
    )
    assert done.stdout.split("] ")[1].split() == ["False", "True"], done.stdout + done.stderr
    assert done.stdout.startswith(repr(ids)[:-1]), done.stdout
