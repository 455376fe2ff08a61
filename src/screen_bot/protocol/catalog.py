"""The protocols found in the dialogs directory, each with its one shared engine."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from ..engine import Engine
from ..errors import ScreenBotError
from .loader import DialogFileError, Problem, Protocol, iter_dialog_files, load


class ProtocolNotFound(ScreenBotError, LookupError):
    pass


class Catalog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._engines: dict[str, Engine] = {}

    @cached_property
    def _loaded(self) -> tuple[dict[str, Protocol], list[Problem]]:
        protocols: dict[str, Protocol] = {}
        problems: list[Problem] = []
        for path in iter_dialog_files(self.directory):
            try:
                protocol = load(path)
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
        return protocols, problems

    @property
    def protocols(self) -> dict[str, Protocol]:
        return self._loaded[0]

    @property
    def problems(self) -> list[Problem]:
        return self._loaded[1]

    def get(self, protocol_id: str | None = None) -> Protocol:
        """The named protocol; with no name, the only one there is."""
        if protocol_id is None:
            if len(self.protocols) == 1:
                return next(iter(self.protocols.values()))
            if not self.protocols:
                detail = "; ".join(str(p) for p in self.problems[:3])
                raise ProtocolNotFound(
                    f"no valid dialog file in {self.directory}" + (f" ({detail})" if detail else "")
                )
            raise ProtocolNotFound(
                "several protocols: choose one with --protocol "
                f"({', '.join(sorted(self.protocols))})"
            )
        if protocol_id not in self.protocols:
            known = ", ".join(sorted(self.protocols)) or "none"
            raise ProtocolNotFound(f"no protocol '{protocol_id}' (found: {known})")
        return self.protocols[protocol_id]

    def engine(self, protocol_id: str | None = None) -> Engine:
        protocol = self.get(protocol_id)
        if protocol.id not in self._engines:
            self._engines[protocol.id] = Engine(protocol)
        return self._engines[protocol.id]
