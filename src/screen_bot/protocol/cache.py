"""Checked dialog files remembered between starts of the bot.

Reading a dialog file's YAML and checking it take most of the time the bot's start gives
to its protocols (~35 ms for the two shipped files, about a tenth of the start). A file
that loaded without problems is kept here as its checked :class:`Protocol`, pickled, with
its rules' compiled functions left out (they are compiled again from the checked trees,
as the loader compiles them). Each dialog path has one entry; it is used only when its key
matches: a hash of the file's bytes, its path, screen-bot's version and the size and time
of every one of its source files (so an edited checker is never bypassed), the YAML and
validation libraries' versions, and Python's. A file that changed, or failed, is loaded
and checked in full as without the cache, and so a broken file is reported as before.

The entries are kept in a folder of the cache directory with a name of its own (see
``settings.CHECKED_DIALOGS``); a folder that holds YAML files is someone's dialogs, and is
never made owner-only nor written to: neither that folder nor a cache directory holding
them (the site's dialogs directory given as the cache directory), where the cache is then
not used, as one that cannot be written.

Anything wrong with an entry (missing, stale, truncated, unreadable, from another version)
means the file is loaded as without the cache, and the entry is written again; a cache
that cannot be written is not used. Unpickling can run code, so an entry is read only from
a directory and a file owned by this user that no one else may write (and on systems
without user ids, never).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import io
import marshal
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..rules.compiled import compile_module, run_module
from ..rules.expressions import Expression
from .model import Protocol

MAGIC = b"screen-bot checked dialog file 1\n"
DIGEST = 32  # bytes of the entry's own sha256, after its key


def recall(directory: Path, path: Path, sha256: str) -> Protocol | None:
    """The checked protocol of the file at ``path`` whose bytes hash to ``sha256``, if kept."""
    try:
        with _entry(directory, path).open("rb") as stream:
            if not (_trusted(os.fstat(stream.fileno())) and _trusted(directory.stat())):
                return None
            data = stream.read()
    except OSError:
        return None
    head = MAGIC + _key(path, sha256)
    body = data[len(head) + DIGEST :]
    if data[: len(head)] != head or data[len(head) : len(head) + DIGEST] != _digest(body):
        return None  # another file or version, or damaged (a flipped bit is caught here)
    try:
        protocol = _loads(body)
    except Exception:  # noqa: BLE001 - a damaged entry is only a cache miss
        return None
    return protocol if isinstance(protocol, Protocol) else None


def remember(directory: Path, protocol: Protocol) -> None:
    """Keep ``protocol`` (loaded and checked without problems) for the next start."""
    if not hasattr(os, "getuid"):
        return
    temporary = None
    try:
        body = _dumps(protocol)
        if holds_dialog_files(directory.parent) or holds_dialog_files(directory):
            return  # a site's folder, not the cache's own: neither chmodded nor written
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")  # 0600
        with os.fdopen(handle, "wb") as stream:
            stream.write(MAGIC + _key(protocol.path, protocol.sha256) + _digest(body) + body)
        os.replace(temporary, _entry(directory, protocol.path))
        temporary = None
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        pass  # no cache this time; the protocol itself is loaded and checked
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def holds_dialog_files(directory: Path) -> bool:
    """Whether ``directory`` holds YAML files, as a dialogs directory does (the cache never
    writes one): the cache must stay safe to delete. A folder not made yet holds none."""
    try:
        with os.scandir(directory) as entries:
            return any(entry.name.endswith((".yaml", ".yml")) for entry in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _entry(directory: Path, path: Path) -> Path:
    return directory / f"{hashlib.sha256(os.fsencode(path)).hexdigest()[:32]}.pickle"


def _digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def _key(path: Path, sha256: str) -> bytes:
    return hashlib.sha256(repr((_code(), str(path), sha256)).encode()).digest()


@functools.cache
def _code() -> tuple[Any, ...]:
    """What, besides the file, the checked protocol depends on (once per process)."""
    import pydantic
    import pydantic_core

    from .. import __version__

    root = Path(__file__).resolve().parents[1]
    sources: list[tuple[str, int, int]] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            found = os.stat(os.path.join(folder, name))
            where = os.path.relpath(os.path.join(folder, name), root)
            sources.append((where, found.st_size, found.st_mtime_ns))
    yaml = []
    for module in ("ruamel.yaml", "_ruamel_yaml"):  # where they are, without importing them
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        size = os.stat(origin) if origin and os.path.exists(origin) else None
        yaml.append((origin, size and (size.st_size, size.st_mtime_ns)))
    return (
        __version__,
        tuple(sources),
        pydantic.VERSION,
        pydantic_core.__version__,
        tuple(yaml),
        sys.version,
        sys.implementation.cache_tag,
        pickle.HIGHEST_PROTOCOL,
    )


def _trusted(found: os.stat_result) -> bool:
    """Owned by this user, and writable by no one else."""
    getuid = getattr(os, "getuid", None)
    return getuid is not None and found.st_uid == getuid() and not found.st_mode & 0o022


def _dumps(protocol: Protocol) -> bytes:
    """The protocol pickled, each expression as its text and tree, with the module of their
    compiled functions (made as the checker makes it: together, from the checked trees)."""
    body = io.BytesIO()
    pickler = _Pickler(body)
    pickler.dump(protocol)
    trees = {str(n): node for n, (_, node) in enumerate(pickler.expressions)}
    code, namespace, names = compile_module(trees, f"rules of {protocol.id}")
    kept = (marshal.dumps(code), namespace, names, pickler.expressions, body.getvalue())
    return pickle.dumps(kept, pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    code, namespace, names, expressions, body = pickle.loads(data)
    functions = run_module(marshal.loads(code), namespace, names)
    made = [Expression(text, node, functions[str(n)]) for n, (text, node) in enumerate(expressions)]
    return _Unpickler(body, made).load()


class _Pickler(pickle.Pickler):
    def __init__(self, stream: io.BytesIO) -> None:
        super().__init__(stream, protocol=pickle.HIGHEST_PROTOCOL)
        self.expressions: list[tuple[str, Any]] = []
        self.numbers: dict[int, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        # A protocol is kept as its fields only: what its users compute and keep on it
        # later (plans, compiled checks: functions) is made again after a restart.
        if type(obj) is Protocol:
            return Protocol, tuple(getattr(obj, f.name) for f in dataclasses.fields(Protocol))
        return NotImplemented

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is not Expression:
            return None
        number = self.numbers.get(id(obj))
        if number is None:
            number = self.numbers[id(obj)] = len(self.expressions)
            self.expressions.append((obj.text, obj.node))
        return number


class _Unpickler(pickle.Unpickler):
    def __init__(self, body: bytes, expressions: list[Expression]) -> None:
        super().__init__(io.BytesIO(body))
        self.expressions = expressions

    def persistent_load(self, pid: Any) -> Any:
        return self.expressions[pid]
