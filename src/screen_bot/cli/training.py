"""``screen-bot learn | quiz``: training on a protocol's criteria."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ScreenBotError
from . import options
from .options import OneProtocolOption


def learn(
    protocol: OneProtocolOption = None,
    criterion: Annotated[
        str | None,
        typer.Option(
            "--criterion", "-c", help="Only this criterion or its parts (e.g. I8 for I8a–I8e)."
        ),
    ] = None,
) -> None:
    """Walk through the criteria: the protocol's words, what the bot asks, what decides.

    'What decides' is derived from the rules: where an exclusion is stricter than the
    inclusion criterion for the same measure (LVEF ≥ 50 % vs < 60 %), the stricter one;
    where no single threshold decides, it says so and the rule's own condition decides.
    """
    from ..training.walkthrough import walkthrough, walkthrough_text

    chosen = options.catalog().get(options.choose(protocol, with_all=False))
    if criterion and not walkthrough(chosen, criterion):
        known = ", ".join(chosen.criteria)
        raise ScreenBotError(
            f"no criterion of {chosen.id} is '{criterion}' or starts with it (criteria: {known})"
        )
    typer.echo(walkthrough_text(chosen, criterion))


def quiz(
    protocol: OneProtocolOption = None,
    count: Annotated[int, typer.Option(min=1, max=200, help="Number of cases.")] = 20,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Same seed, same cases for every trainee, whatever their past misses "
            "(default: a new random seed, and criteria you missed before come up more often)."
        ),
    ] = None,
    trainee: Annotated[
        str, typer.Option(help="Whose scores these are.", callback=options.utf8_text)
    ] = "cli",
    progress: Annotated[
        bool, typer.Option("--progress", help="Show the trainee's scores so far and stop.")
    ] = False,
    database: Annotated[
        Path | None, typer.Option(help="Scores database (default: the bot's database file).")
    ] = None,
) -> None:
    """Practise on generated patients: answer eligible (e) / not eligible (n) CRITERION /
    unresolved (u).

    Cases are drawn from the dialog file's rules, at and around each threshold; the right
    answer is always the screening verdict itself. Answers are read from standard input;
    without --seed, criteria you missed before come up more often.
    """
    from ..storage import Database, Store
    from ..training.quiz import Quiz
    from ..training.scores import ScoreBook, progress_text
    from ..training.terminal import run_quiz

    chosen = options.catalog().get(options.choose(protocol, with_all=False))
    store: Store = Database(database) if database else options.database()
    with store as db:
        book = ScoreBook(db)
        if progress:
            typer.echo(progress_text(book.progress(trainee, chosen.id)))
            return
        run_quiz(Quiz.start(chosen, trainee, count, seed, book), write=typer.echo)


def register(app: typer.Typer) -> None:
    for command in (learn, quiz):
        app.command()(command)
