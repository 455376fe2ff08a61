"""``screen-bot validate | protocols | graph``: the dialog files and the flow they define."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ScreenBotError

if TYPE_CHECKING:
    from ..training.flow import ImageFormat
from . import options
from .options import OneProtocolOption
from .output import writing


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    png = "png"
    svg = "svg"


IMAGES: dict[GraphFormat, ImageFormat] = {GraphFormat.png: "png", GraphFormat.svg: "svg"}


def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            # readable=False: a file that cannot be read is reported as every broken file is
            help="Dialog files or directories (default: the dialogs directory).",
            readable=False,
        ),
    ] = None,
) -> None:
    """Check dialog files; report every problem with file, line and fix. Exit 2 on a bad file.

    Over several files (or a directory), a variable used by more than one protocol must
    have the same type, unit, choices and range in each: a conflict names both places.
    """
    from ..protocol import DialogFileError, Protocol, iter_dialog_files, load
    from ..protocol.catalog import same_ids
    from ..protocol.loader import distinct
    from ..protocol.shared import conflicts

    files: list[Path] = []
    places = paths or list(options.settings().dialogs_dirs)
    for path in places:
        files += list(iter_dialog_files(path)) if path.is_dir() else [path]
    files = distinct(files)  # a file given twice is checked once, not a duplicate of itself
    if not files:  # (only directories, none with a dialog file)
        raise ScreenBotError(f"no dialog files (*.yaml) in {', '.join(map(str, places))}")
    loaded: list[Protocol | DialogFileError] = []
    for file in files:
        try:
            loaded.append(load(file))
        except DialogFileError as err:
            loaded.append(err)
    taken = same_ids([p for p in loaded if isinstance(p, Protocol)])
    bad = 0
    valid: list[Protocol] = []
    for outcome in loaded:
        if isinstance(outcome, DialogFileError):
            bad += 1
            typer.echo(str(outcome), err=True)
        elif outcome.path in taken:
            bad += 1
            typer.echo(str(taken[outcome.path]), err=True)
        else:
            valid.append(outcome)
            typer.echo(
                f"{outcome.path}: ok ({outcome.id} version {outcome.version}, "
                f"{len(outcome.order)} questions, {len(outcome.criteria)} criteria)"
            )
    shared = conflicts(valid)
    for problem in shared:
        typer.echo(str(problem), err=True)
    raise typer.Exit(2 if bad or shared else 0)


def protocols() -> None:
    """List the protocols found in the dialogs directories, the files that are broken and
    the directories that do not exist."""
    found = options.catalog()
    for protocol in found.protocols.values():
        typer.echo(f"{protocol.id}\t{protocol.version}\t{protocol.title}")
    for file, problem in found.broken().items():
        typer.echo(f"{file}\tbroken\t{problem.brief()}")
    for directory in found.missing():
        typer.echo(f"{directory.file}\tmissing\t{directory.brief()}")
    for problem in found.conflicts:
        typer.echo(f"conflict: {problem}", err=True)
    if not found.protocols:
        raise ScreenBotError(found.nothing_valid())


def graph(
    protocol: OneProtocolOption = None,
    output_format: Annotated[
        GraphFormat,
        typer.Option("--format", "-f", help="mermaid (text), or png/svg (needs Graphviz)."),
    ] = GraphFormat.mermaid,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (mermaid: default stdout; png/svg: <id>-flow.<fmt>).",
        ),
    ] = None,
) -> None:
    """Draw the dialog's flow from the state machine the engine runs.

    Questions in order, the conditions that skip them ('asked when …'), the early exits to
    not_eligible and the ends eligible / unresolved.
    """
    from ..training.flow import image, mermaid

    engine = options.catalog().engine(options.choose(protocol, with_all=False))
    if output_format == GraphFormat.mermaid:
        text = mermaid(engine)
        if output is None:
            typer.echo(text)
        else:
            with writing(output):
                output.write_text(text + "\n", encoding="utf-8")
            typer.echo(f"wrote {output}")
        return
    data = image(engine, IMAGES[output_format])  # GraphUnavailable: exit 2, saying what is missing
    target = output or Path(f"{engine.protocol.id}-flow.{output_format.value}")
    with writing(target):
        target.write_bytes(data)
    typer.echo(f"wrote {target}")


def register(app: typer.Typer) -> None:
    for command in (validate, protocols, graph):
        app.command()(command)
