"""The protocols found in the dialogs directories, each with its one shared engine.

Any number of protocols may sit side by side, in one directory or several. A file that
cannot be loaded is kept as *broken* with its problems (listed, never silently dropped).
``all`` names the set of every valid protocol, screened in one dialog.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import BaseEngine, Engine
from ..errors import ScreenBotError
from .loader import DialogFileError, Problem, Protocol, iter_dialog_files, load
from .sets import ALL, ProtocolSet, ProtocolSetError
from .shared import conflicts

if TYPE_CHECKING:
    from ..set_engine import SetEngine


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
    def _loaded(self) -> tuple[dict[str, Protocol], list[Problem]]:
        protocols: dict[str, Protocol] = {}
        problems: list[Problem] = []
        for directory in self.directories:
            for path in iter_dialog_files(directory):
                try:
                    protocol = load(path, self.cache)
                except DialogFileError as err:
                    problems += err.problems
                    continue
                if protocol.id in protocols:
                    problems.append(
                        Problem(
                            str(path),
                            None,
                            f"protocol id '{protocol.id}' is also "
                            f"used by {protocols[protocol.id].path}",
                            "give each dialog file its own id",
                        )
                    )
                    continue
                protocols[protocol.id] = protocol
        return dict(sorted(protocols.items())), problems

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

    @cached_property
    def conflicts(self) -> list[Problem]:
        """Shared variables the valid protocols define differently (see ``shared``)."""
        return conflicts(list(self.protocols.values()))

    def choices(self, with_all: bool = True) -> list[str]:
        """What a user may choose from: every protocol id, and ``all`` when there are several."""
        ids = list(self.protocols)
        together = with_all and len(ids) > 1 and not self.conflicts
        return [*ids, ALL] if together else ids

    def resolve(self, protocol_id: str | None, *, with_all: bool = True) -> str:
        """The id to use: the one named (checked), else the only one; raises when unclear."""
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
            return ALL if len(self.protocols) > 1 else next(iter(self.protocols))
        if protocol_id not in self.protocols:
            raise ProtocolNotFound(self.unknown(protocol_id, with_all))
        return protocol_id

    def nothing_valid(self) -> str:
        """Why there is no protocol: the directories that do not exist, else the problems."""
        missing = [d for d in self.directories if not d.is_dir()]
        if missing:
            why = ", ".join(
                f"{d} {'is not a directory' if d.exists() else 'does not exist'}" for d in missing
            )
            return (
                f"no valid dialog file: {why} (set SCREEN_BOT_DIALOGS_DIR to the directory of "
                "your dialog files)"
            )
        detail = "; ".join(str(p) for p in self.problems[:3])
        return f"no valid dialog file in {self.directory}" + (f" ({detail})" if detail else "")

    def unknown(self, protocol_id: str, with_all: bool = True) -> str:
        """'no protocol 'elianna' — did you mean 'eliana'?' and the list."""
        known = self.choices(with_all)
        close = difflib.get_close_matches(protocol_id, known, n=1)
        guess = f" — did you mean '{close[0]}'?" if close else ""
        if protocol_id == ALL:
            guess = " — 'all' screens every protocol at once; this takes one"
        listed = ", ".join(known) or "none"
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
                + "; ".join(str(p) for p in self.conflicts)
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


__all__ = ["ALL", "Catalog", "ProtocolChoiceNeeded", "ProtocolNotFound", "ProtocolSetError"]
