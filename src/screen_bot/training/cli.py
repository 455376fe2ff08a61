"""The training commands: ``screen-bot learn | quiz | graph``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..cli_common import ProtocolOption, catalog
from ..settings import Settings
from .flow import GraphUnavailable, image, mermaid
from .quiz import Quiz
from .scores import ScoreBook, progress_text
from .terminal import run_quiz
from .walkthrough import walkthrough_text


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    png = "png"
    svg = "svg"


def learn(
    protocol: ProtocolOption = None,
    criterion: Annotated[
        str | None,
        typer.Option(
            "--criterion", "-c", help="Only this criterion or its parts (e.g. I8 for I8a–I8e)."
        ),
    ] = None,
) -> None:
    """Walk through the criteria: the protocol's words, what the bot asks, what decides.

    'What decides' is derived from the rules: where an exclusion is stricter than the
    inclusion criterion for the same measure (LVEF ≥ 50 % vs < 60 %), the stricter one.
    """
    typer.echo(walkthrough_text(catalog().get(protocol), criterion))


def quiz(
    protocol: ProtocolOption = None,
    count: Annotated[int, typer.Option(min=1, max=200, help="Number of cases.")] = 20,
    seed: Annotated[
        int | None, typer.Option(help="Same seed, same cases (default: a new random seed).")
    ] = None,
    trainee: Annotated[str, typer.Option(help="Whose scores these are.")] = "cli",
    progress: Annotated[
        bool, typer.Option("--progress", help="Show the trainee's scores so far and stop.")
    ] = False,
    database: Annotated[
        Path | None, typer.Option(help="Scores database (default: the bot's database file).")
    ] = None,
) -> None:
    """Practise on generated patients: answer eligible / not eligible <criterion> / unresolved.

    Cases are drawn from the dialog file's rules, at and around each threshold; the right
    answer is always the screening verdict itself. Answers are read from standard input;
    criteria you missed before come up more often.
    """
    book = ScoreBook(database or Settings().database)
    chosen = catalog().get(protocol)
    if progress:
        typer.echo(progress_text(book.progress(trainee, chosen.id)))
        return
    run_quiz(Quiz.start(chosen, trainee, count, seed, book), write=typer.echo)


def graph(
    protocol: ProtocolOption = None,
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
    engine = catalog().engine(protocol)
    if output_format == GraphFormat.mermaid:
        text = mermaid(engine)
        if output is None:
            typer.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
            typer.echo(f"wrote {output}")
        return
    try:
        data = image(engine, output_format.value)
    except GraphUnavailable as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    target = output or Path(f"{engine.protocol.id}-flow.{output_format.value}")
    target.write_bytes(data)
    typer.echo(f"wrote {target}")


def _help(command: Callable[..., None]) -> str:
    """The docstring with each paragraph on one line, so the terminal wraps it cleanly."""
    paragraphs = (inspect.getdoc(command) or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def register(app: typer.Typer) -> None:
    """Add ``learn``, ``quiz`` and ``graph`` to the command line."""
    for command in (learn, quiz, graph):
        app.command(help=_help(command))(command)
