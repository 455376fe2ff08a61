"""When a failed time-based criterion will no longer fail: the exact first day, or never.

A rule compares the screening date (or an anchor such as the planned infusion date) with
dates taken from the answers, moved by calendar windows. Its truth can change only on
those dates or the day after them, so trying each of them in order, later than today,
finds the first day the whole criterion no longer fails (met, or open on an answer still
unknown) — also when the time-based part is one route of an ``or``. When none of them
does, waiting cannot help; the window has closed only when a day before the screening
date would have done it (else the failure does not rest on the window at all). On the day
found the criterion is met, or only open: ``open_on`` names the answers it then waits for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from .dates import clamped_shift
from .evaluation import Context, clocks_read, outcome, status_with
from .expressions import SCREENING_DATE, Compare, Name, Node, Shift, interpret, names_read, walk

if TYPE_CHECKING:
    from ..protocol.model import Protocol


@dataclass(frozen=True)
class Waiting:
    meets_from: date | None  # the first day it no longer fails (None: never, by waiting)
    anchor: str  # SCREENING_DATE, or the anchor whose date must move
    closed: bool = False  # no such day, but a day before the screening date would have been
    # what is still unknown on meets_from and keeps the criterion open then (empty: met)
    open_on: tuple[str, ...] = ()


def waiting(protocol: Protocol, criterion_id: str, ctx: Context) -> Waiting | None:
    """For a failed criterion that reads the screening date or an anchor; else None."""
    return open_then(protocol, criterion_id, ctx, first_day(protocol, criterion_id, ctx))


def first_day(protocol: Protocol, criterion_id: str, ctx: Context) -> Waiting | None:
    """:func:`waiting` without ``open_on``: that depends on more than the values the rule
    read (which of the questions behind them were asked), so it is not kept with the day."""
    tree = protocol.rules[criterion_id].node
    tried = clocks_read(protocol, criterion_id)
    today = ctx.env.get(SCREENING_DATE)
    closed = False
    for clock in tried:
        now = ctx.env.get(clock)
        if not isinstance(now, date):  # not asked, or unknown: it did not decide the failure
            continue
        days = _change_days(tree, clock, ctx)
        for day in days:
            if day > now and _unfailed(protocol, criterion_id, ctx, clock, day):
                return Waiting(day, clock)
        if not closed and isinstance(today, date):
            # the days before the first change day are one stretch: try the day before it
            past = {d for day in days for d in (clamped_shift(day, -1, "days"), day)}
            closed = any(
                day < today and _unfailed(protocol, criterion_id, ctx, clock, day)
                for day in sorted(past)
            )
    return Waiting(None, tried[0], closed) if tried else None


def open_then(
    protocol: Protocol, criterion_id: str, ctx: Context, found: Waiting | None
) -> Waiting | None:
    """``found`` with the answers that keep the criterion open on its first day no longer
    failed (none when it is met then): the verdict must not call an open criterion met."""
    if found is None or found.meets_from is None:
        return found
    then = Context({**ctx.env, found.anchor: found.meets_from}, ctx.applicable, ctx.estimated)
    later = outcome(protocol, criterion_id, then)
    return found if later.status == "met" else replace(found, open_on=later.open_variables)


def _unfailed(protocol: Protocol, criterion_id: str, ctx: Context, clock: str, day: date) -> bool:
    """Whether the criterion would not fail with ``clock`` on ``day``: met, or open on an
    answer still unknown."""
    return status_with(protocol, criterion_id, ctx, {clock: day}) != "failed"


def _change_days(tree: Node, clock: str, ctx: Context) -> list[date]:
    """Every day on which a comparison with ``clock`` can change its result."""
    days: set[date] = set()
    for node in walk(tree):
        if isinstance(node, Shift) or _is_date_name(node, ctx):
            if clock in names_read(node):
                continue
            value = interpret(node, ctx.env)
            if isinstance(value, date):
                days |= {value, clamped_shift(value, 1, "days")}
        elif isinstance(node, Compare):
            days |= _shifted_clock_days(node, clock, ctx)
    return sorted(days)


def _shifted_clock_days(node: Compare, clock: str, ctx: Context) -> set[date]:
    """``clock - months(1) >= event``: the days around ``event + months(1)``.

    Moving by months may clamp a day by up to three days (31 → 28), so the day on which the
    shifted clock reaches the other side lies within a few days of the inverse shift.
    """
    days: set[date] = set()
    for side, other in ((node.left, node.right), (node.right, node.left)):
        shifts = []
        while isinstance(side, Shift):
            shifts.append(side)
            side = side.base
        if not shifts or side != Name(clock) or clock in names_read(other):
            continue
        target = interpret(other, ctx.env)
        if not isinstance(target, date):
            continue
        for outer in shifts:  # clock + a + b = target  ⇔  clock = target - b - a
            target = clamped_shift(target, -outer.amount, outer.unit)  # type: ignore[arg-type]
        margin = 4 * len(shifts)
        days |= {clamped_shift(target, k, "days") for k in range(-margin, margin + 1)}
    return days


def _is_date_name(node: Node, ctx: Context) -> bool:
    return isinstance(node, Name) and isinstance(ctx.env.get(node.name), date)
