"""The protocols found in the dialogs directories, each with its one shared engine.

Any number of protocols may sit side by side, in one directory or several. A file that
cannot be loaded is kept as *broken* with its problems (listed, never silently dropped).
Two files that declare the same protocol id are both broken: which of them is meant is
not ours to guess (a backup copy sorts before the file it copies), so neither is used.
``all`` names the set of every valid protocol, screened in one dialog.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import BaseEngine, Engine
from ..errors import ScreenBotError
from .loader import DialogFileError, Problem, Protocol, distinct, iter_dialog_files, load
from .sets import ALL, LeftOut, ProtocolSet, ProtocolSetError
from .shared import conflicts

if TYPE_CHECKING:
    from ..set_engine import SetEngine

# Each dialog file as listed, with its size, modification time and inode (None: it cannot
# be stat'ed, e.g. a dangling link): what tells a change without reading a file.
Stamp = tuple[tuple[str, tuple[int, int, int] | None], ...]


class ProtocolNotFound(ScreenBotError, LookupError):
    pass


class ProtocolChoiceNeeded(ProtocolNotFound):
    """Several protocols and none named: the front end lets the user choose."""

    def __init__(self, message: str, choices: list[str]) -> None:
        super().__init__(message)
        self.choices = choices


class Catalog:
    def __init__(self, directories: Path | Sequence[Path], cache: Path | None = None) -> None:
        """``cache``: where checked files are kept between processes (``cache.py``)."""
        self.directories = (directories,) if isinstance(directories, Path) else tuple(directories)
        self.cache = cache
        self._engines: dict[str, BaseEngine[Any]] = {}

    @property
    def directory(self) -> str:
        """The directories, as SCREEN_BOT_DIALOGS_DIR writes them."""
        return os.pathsep.join(str(d) for d in self.directories)

    @cached_property
    def stamp(self) -> Stamp:
        """The dialog files as this catalog found them (listed before any is read, so an
        edit made while they are read shows as a change afterwards)."""
        return stamp_of(self.directories)

    @cached_property
    def files(self) -> list[Path]:
        """The dialog files of every directory, in order, each file once."""
        return distinct(Path(file) for file, _ in self.stamp)

    def changed(self) -> bool:
        """Whether a dialog file was added, changed or removed since this catalog listed
        them (a look at each file's size and times; none is read)."""
        return stamp_of(self.directories) != self.stamp

    @cached_property
    def _loaded(
        self,
    ) -> tuple[
        dict[str, Protocol], list[Problem], dict[str, str | None], dict[str, frozenset[str] | None]
    ]:
        loaded: list[Protocol | DialogFileError] = []
        for path in self.files:
            try:
                loaded.append(load(path, self.cache))
            except DialogFileError as err:
                loaded.append(err)
        taken = same_ids([p for p in loaded if isinstance(p, Protocol)])
        protocols: dict[str, Protocol] = {}
        problems: list[Problem] = []
        declared: dict[str, str | None] = {}  # a broken file: the id it declares, if read
        variables: dict[str, frozenset[str] | None] = {}  # and its variables, if read
        for path, outcome in zip(self.files, loaded, strict=True):
            if isinstance(outcome, DialogFileError):
                problems += outcome.problems
                declared[str(path)] = outcome.protocol_id
                variables[str(path)] = outcome.variables
            elif outcome.path in taken:
                problems.append(taken[outcome.path])
                declared[str(path)] = outcome.id
                variables[str(path)] = frozenset(outcome.questions)
            else:
                protocols[outcome.id] = outcome
        return dict(sorted(protocols.items())), problems, declared, variables

    @property
    def protocols(self) -> dict[str, Protocol]:
        """The valid protocols, by id (sorted)."""
        return self._loaded[0]

    @property
    def problems(self) -> list[Problem]:
        return self._loaded[1]

    def broken(self) -> dict[str, Problem]:
        """Each file that could not be loaded, with its first problem."""
        first: dict[str, Problem] = {}
        for problem in self.problems:
            first.setdefault(problem.file, problem)
        return first

    def missing(self) -> list[Problem]:
        """Each directory listed that does not exist (a typo in SCREEN_BOT_DIALOGS_DIR)."""
        return [
            Problem(
                str(d),
                None,
                f"the dialogs directory {_not_there(d)}",
                "correct SCREEN_BOT_DIALOGS_DIR",
            )
            for d in self.directories
            if not d.is_dir()
        ]

    def _protocol_of(self, file: str) -> str:
        """The protocol a broken file is for: the id it declares, or, where its YAML could
        not be read that far, the one its name says (blina-dli.yaml: blina-dli)."""
        return self._loaded[2].get(file) or Path(file).stem

    def broken_ids(self) -> list[str]:
        """The protocols the broken files are for (names a user may still type)."""
        return sorted({self._protocol_of(f) for f in self.broken()} - set(self.protocols))

    def broken_files_of(self, protocol_id: str) -> dict[str, Problem]:
        """The broken files that are for ``protocol_id`` (every broken file for ``all``),
        each with its first problem."""
        return {
            file: problem
            for file, problem in self.broken().items()
            if protocol_id == ALL or self._protocol_of(file) == protocol_id
        }

    def why_broken(self, protocol_id: str) -> str | None:
        """On one line, why ``protocol_id`` cannot be used because a file is broken (the
        first such file and its first problem); None when it is valid, or no broken file
        is for it."""
        broken = self.broken_files_of(protocol_id)
        if not broken or protocol_id in self.protocols:
            return None
        file, problem = next(iter(broken.items()))
        more = f" (and {len(broken) - 1} more broken)" if len(broken) > 1 else ""
        return f"{file} is broken: {problem.brief()}{more}"

    def left_out(self) -> list[str]:
        """One line for each broken file: what a screening of every protocol leaves out."""
        declared = self._loaded[2]
        return [
            f"{file} is broken, so "
            + (f"protocol '{declared[file]}'" if declared.get(file) else "its protocol")
            + f" is left out: {problem.brief()}"
            for file, problem in self.broken().items()
        ]

    def left_out_variables(self) -> LeftOut:
        """What a screening of every protocol knows of the broken files it leaves out: the
        variables they declare (a row's key among them is not screened, not a bad key),
        and the files whose YAML could not be read (their variables are not known)."""
        found = {file: self._loaded[3].get(file) for file in self.broken()}
        return LeftOut(
            frozenset().union(*(v for v in found.values() if v is not None)),
            tuple(Path(file).name for file, v in found.items() if v is None),
        )

    @cached_property
    def conflicts(self) -> list[Problem]:
        """Shared variables the valid protocols define differently (see ``shared``)."""
        return conflicts(list(self.protocols.values()))

    def choices(self, with_all: bool = True) -> list[str]:
        """What a user may choose from: every protocol id, and ``all`` when there are several
        (or one and a broken file: ``all`` then says what it leaves out)."""
        ids = list(self.protocols)
        several = len(ids) > 1 or (len(ids) == 1 and bool(self.problems))
        together = with_all and several and not self.conflicts
        return [*ids, ALL] if together else ids

    def resolve(self, protocol_id: str | None, *, with_all: bool = True) -> str:
        """The id to use: the one named (checked), else the only one; raises when unclear.
        ``all`` is the set of every valid protocol, however many there are."""
        if protocol_id is None:
            if len(self.protocols) == 1:
                return next(iter(self.protocols))
            if not self.protocols:
                raise ProtocolNotFound(self.nothing_valid())
            choices = self.choices(with_all)
            raise ProtocolChoiceNeeded(
                f"several protocols: choose one with --protocol ({', '.join(choices)})", choices
            )
        if protocol_id == ALL and with_all and self.protocols:
            return ALL
        if protocol_id not in self.protocols:
            raise ProtocolNotFound(self.unknown(protocol_id, with_all))
        return protocol_id

    def nothing_valid(self) -> str:
        """Why there is no protocol, on one line: the directories that do not exist, else
        how many files are broken, the first one's first problem and how to see them all."""
        missing = [d for d in self.directories if not d.is_dir()]
        broken = self.broken()
        if missing and not broken:
            why = ", ".join(f"{d} {_not_there(d)}" for d in missing)
            return (
                f"no valid dialog file: {why} (set SCREEN_BOT_DIALOGS_DIR to the directory of "
                "your dialog files)"
            )
        if not broken:
            return f"no valid dialog file in {self.directory} (no *.yaml or *.yml file there)"
        file, problem = next(iter(broken.items()))
        first = (
            f"{len(broken)} dialog files are broken, the first {file}"
            if len(broken) > 1
            else f"{file} is broken"
        )
        gone = "".join(f"; {d} {_not_there(d)}" for d in missing)
        see = shlex.join(["screen-bot", "validate", *map(str, self.directories)])
        return (
            f"no valid dialog file in {self.directory}: {first}: {problem.brief()}{gone}; "
            f"'{see}' lists every problem"
        )

    def unknown(self, protocol_id: str, with_all: bool = True) -> str:
        """Why ``protocol_id`` cannot be used, on one line: its file is broken (that file
        and its first problem); or nothing is valid (why); or 'no protocol 'elianna' — did
        you mean 'eliana'?' and the list."""
        why = None if protocol_id == ALL else self.why_broken(protocol_id)
        if why is None and not self.protocols:
            return self.nothing_valid()
        choices = self.choices(with_all)
        listed = ", ".join(choices) or "none"
        if why is not None:
            return f"no protocol '{protocol_id}': {why} (protocols: {listed})"
        # ids are lower case (the schema's pattern): 'BLINA-DLI' or 'ALL' is suggested its
        # id, never taken for it
        close = difflib.get_close_matches(protocol_id.lower(), choices, n=1)
        guess = f" — did you mean '{close[0]}'?" if close else ""
        if protocol_id.lower() == ALL and ALL not in choices:
            guess = " — 'all' screens every protocol at once; this takes one"
        return f"no protocol '{protocol_id}'{guess} (protocols: {listed})"

    def get(self, protocol_id: str | None = None) -> Protocol:
        """The named protocol; with no name, the only one there is."""
        return self.protocols[self.resolve(protocol_id, with_all=False)]

    @cached_property
    def protocol_set(self) -> ProtocolSet:
        """Every valid protocol, to be screened together; refused on a shared-variable conflict."""
        if self.conflicts:
            raise ProtocolSetError(
                "the protocols cannot be screened together: "
                + "; ".join(p.one_line() for p in self.conflicts)
            )
        protocols = ProtocolSet(tuple(self.protocols.values()))
        protocols.order  # noqa: B018 - a cycle in their conditions is reported here
        return protocols

    def engine(self, protocol_id: str | None = None) -> BaseEngine[Any]:
        """The engine of one protocol, or of the set when ``all`` is named."""
        chosen = self.resolve(protocol_id)
        if chosen not in self._engines:
            self._engines[chosen] = (
                self._set_engine() if chosen == ALL else Engine(self.protocols[chosen])
            )
        return self._engines[chosen]

    def _set_engine(self) -> SetEngine:
        from ..set_engine import SetEngine  # the set's Machine is built only when screened

        return SetEngine(self.protocol_set)


def stamp_of(directories: Sequence[Path]) -> Stamp:
    """Every dialog file of ``directories`` with its size, modification time and inode:
    one listing of each directory and one stat of each file. An edit in place changes the
    time (to the nanosecond where the file system keeps it), a file written anew and
    renamed over the old one the inode."""
    found: list[tuple[str, tuple[int, int, int] | None]] = []
    for directory in directories:
        for file in iter_dialog_files(directory):
            try:
                status = file.stat()
            except OSError:
                found.append((str(file), None))
            else:
                found.append((str(file), (status.st_size, status.st_mtime_ns, status.st_ino)))
    return tuple(found)


def changes(before: Stamp, after: Stamp) -> list[str]:
    """What differs between two stamps, a file name and a word each: 'x.yaml added',
    'y.yaml changed', 'z.yaml removed'."""
    old, new = dict(before), dict(after)
    return [
        *(f"{file} added" for file in new if file not in old),
        *(f"{file} changed" for file in new if file in old and new[file] != old[file]),
        *(f"{file} removed" for file in old if file not in new),
    ]


def _not_there(directory: Path) -> str:
    return "is not a directory" if directory.exists() else "does not exist"


def same_ids(protocols: Sequence[Protocol]) -> dict[Path, Problem]:
    """The files that declare a protocol id another file declares too, each with its
    problem naming the others: none of them is used (which one is meant is not ours to
    guess: a backup copy, blina-dli-backup.yaml, sorts before the file it copies)."""
    by_id: dict[str, list[Protocol]] = {}
    for protocol in protocols:
        by_id.setdefault(protocol.id, []).append(protocol)
    found: dict[Path, Problem] = {}
    for protocol_id, same in by_id.items():
        if len(same) < 2:
            continue
        for protocol in same:
            others = [o.path for o in same if o is not protocol]
            neither = "neither file" if len(same) == 2 else "none of them"
            found[protocol.path] = Problem(
                str(protocol.path),
                None,
                f"protocol id '{protocol_id}' is also used by "
                f"{' and '.join(map(str, others))}, so {neither} is used",
                "keep one file per protocol id: delete the other, rename it to a name that "
                f"does not end in .yaml or .yml (e.g. {others[0].name}.bak), or change its id",
            )
    return found


__all__ = ["ALL", "Catalog", "ProtocolChoiceNeeded", "ProtocolNotFound", "ProtocolSetError"]
