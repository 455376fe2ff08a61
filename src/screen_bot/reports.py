"""Reports read from the screening log: counts for CONSORT, exports a site files, a chart.

Nothing here writes the log. The chart imports matplotlib only when one is drawn.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from .storage import Store, Tx, ledger
from .storage.ledger import LoggedReason, LogRecord
from .verdict import OpenItem
from .words import OPEN_KIND, meets_from_text, open_from_text, plural

# OWASP CSV injection: these starts get an apostrophe; so does "'" itself, so that
# removing one leading apostrophe always gives the stored text back.
ESCAPED_START = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass(frozen=True)
class CriterionCount:
    criterion: str
    label: str
    patients: int


@dataclass
class Stats:
    """Counts of one protocol, per patient: a coordinator's referral counts once, by its
    latest screening."""

    protocol_id: str
    screenings: int = 0
    patients: int = 0
    eligible: int = 0
    not_eligible: int = 0
    unresolved: int = 0
    failures: list[CriterionCount] = field(default_factory=list)  # most frequent first


class Reports:
    """The reports of one database, each read on its own."""

    def __init__(self, db: Store) -> None:
        self.db = db

    def recent(self, coordinator: str | None = None, limit: int = 10) -> list[LogRecord]:
        return list(ledger.records(self.db.read(), coordinator=coordinator, limit=limit))

    def stats(
        self,
        protocol_id: str | None = None,
        since: date | None = None,
        coordinator: str | None = None,
    ) -> list[Stats]:
        """:func:`stats`, read on a connection of its own: the bot reads a year of log on a
        thread while its store's connection goes on serving the other chats."""
        with self.db.separate_reader() as tx:
            return stats(tx, protocol_id, since, coordinator)

    def records(
        self, protocol_id: str | None = None, since: date | None = None
    ) -> Iterator[LogRecord]:
        """The records to export, read in one snapshot however long that takes."""
        with self.db.snapshot() as tx:
            yield from ledger.records(tx, protocol_id, since)


def stats(
    tx: Tx,
    protocol_id: str | None = None,
    since: date | None = None,
    coordinator: str | None = None,
) -> list[Stats]:
    """Counts per protocol (sorted by id), for the CONSORT diagram.

    A patient is a coordinator's referral label within a protocol (labels are each
    coordinator's own: two coordinators' R-55 are two patients), counted once by its
    latest screening; a screening without a label is a patient of its own. A patient
    failing several criteria counts under each of them.
    """
    latest: dict[tuple[str, tuple[str, str] | int], tuple[str, list[LoggedReason]]] = {}
    screenings: Counter[str] = Counter()
    for record in ledger.records(tx, protocol_id, since, coordinator):
        pid = record.protocol.id
        screenings[pid] += 1
        label = record.referral
        patient = (record.coordinator, label) if label is not None else record.number
        latest.pop((pid, patient), None)  # re-insert: dicts keep the latest order
        latest[(pid, patient)] = (record.verdict, record.reasons)
    result = {pid: Stats(pid, screenings=n) for pid, n in sorted(screenings.items())}
    failed: dict[str, Counter[str]] = {pid: Counter() for pid in result}
    labels: dict[tuple[str, str], str] = {}  # from the latest screening failing it
    for (pid, _), (verdict, reasons) in latest.items():
        counts = result[pid]
        counts.patients += 1
        setattr(counts, verdict, getattr(counts, verdict) + 1)
        failed[pid].update({r.criterion for r in reasons})
        labels |= {(pid, r.criterion): r.label for r in reasons}
    for pid, counts in result.items():
        counts.failures = [
            CriterionCount(criterion, labels[(pid, criterion)], n)
            for criterion, n in sorted(failed[pid].items(), key=lambda c: (-c[1], c[0]))
        ]
    return list(result.values())


# -- export and chart ------------------------------------------------------------------------

CSV_COLUMNS = (
    "screening number",
    # the screening date: the site's day (SCREEN_BOT_TIMEZONE) for a chat, a batch row's
    # screened_on (UTC by default), so no time zone in the name
    "date screened",
    "referral",
    "protocol",
    "protocol version",
    "verdict",
    "reasons for screen failure",
    "open items",
    "may pass later",
    "screening id",  # links the rows of one screening against several protocols
)


def cell(value: str) -> str:
    """A spreadsheet cell never read as a formula; drop one leading "'" to get the text back."""
    return "'" + value if value.startswith(ESCAPED_START) else value


def _later(reason: LoggedReason) -> str:
    if reason.meets_from and reason.meets_from_open_on:  # open then, not met
        when = open_from_text(
            reason.meets_from, reason.meets_from_anchor, reason.meets_from_open_on
        )
        return f"{reason.criterion} {when}"
    if reason.meets_from:  # no anchor (a screening date, or a record logged before): 'from'
        return f"{reason.criterion} {meets_from_text(reason.meets_from, reason.meets_from_anchor)}"
    return f"{reason.criterion} {reason.recoverable}"


def _open_items(items: list[OpenItem]) -> list[str]:
    """One entry per criterion kept open: 'I8d label: crcl_ml_min, weight_kg (missing data)',
    its variables grouped by why they are open ('C-E8b label: prior_allo_hsct (missing
    data); chronic_gvhd_extensive (investigator judgment)'). An item carries only its first
    criterion's label, so a criterion no item names first is given by its id alone."""
    labels = {item.criterion: item.label for item in items}
    kept_open: dict[str, dict[tuple[str, str], list[str]]] = {}
    for item in items:
        for criterion in item.criteria:
            names = kept_open.setdefault(criterion, {}).setdefault((item.kind, item.advice), [])
            if item.variable not in names:
                names.append(item.variable)
    entries = []
    for criterion, reasons in kept_open.items():
        named = f"{criterion} {labels[criterion]}" if criterion in labels else criterion
        whys = [
            f"{', '.join(names)} ({OPEN_KIND[kind]}{f': {advice}' if advice else ''})"
            for (kind, advice), names in reasons.items()
        ]
        entries.append(f"{named}: {'; '.join(whys)}")
    return entries


def export_row(record: LogRecord) -> dict[str, Any]:
    """What a site files about one screening (no answers, no patient identifiers)."""
    return {
        "screening_number": record.number,
        "date": (record.screened_on or record.at.date()).isoformat(),
        "referral": record.referral,
        "protocol": record.protocol.id,
        "protocol_version": record.protocol.version,
        "verdict": record.verdict,
        "reasons": [f"{r.criterion} {r.label}" for r in record.reasons],
        "open_items": _open_items(record.open_items),
        "may_pass_later": [_later(r) for r in record.reasons if r.recoverable],
        "screening_id": record.screening_id or "",
    }


def write_csv(records: Iterable[LogRecord], stream: IO[str]) -> int:
    """One row per screening; list cells joined with '; '. Open ``stream`` with newline=''."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        row = export_row(record)
        values = [v if not isinstance(v, list) else "; ".join(v) for v in row.values()]
        writer.writerow([cell(v) if isinstance(v, str) else v for v in values])
        count += 1
    return count


def write_jsonl(records: Iterable[LogRecord], stream: IO[str]) -> int:
    count = 0
    for record in records:
        stream.write(json.dumps(export_row(record), ensure_ascii=False) + "\n")
        count += 1
    return count


def stats_text(stats: Stats) -> str:
    """The counts as a plain-text table (monospace)."""
    lines = [
        f"{stats.protocol_id}: {stats.patients} patients screened "
        f"({stats.screenings} screenings; a referral re-screened by the same coordinator "
        "counts once, by its latest)",
        f"  eligible      {stats.eligible:>6}",
        f"  not eligible  {stats.not_eligible:>6}",
        f"  unresolved    {stats.unresolved:>6}",
    ]
    if stats.failures:
        lines.append(
            "Screen failures by criterion (patients; one failing several counts under each):"
        )
        width = max(len(c.criterion) for c in stats.failures)
        lines += [f"  {c.criterion:<{width}}  {c.patients:>6}  {c.label}" for c in stats.failures]
    return "\n".join(lines)


CHART_DPI = 150
CHART_WIDTH = 9  # inches: 1350 px
CHART_BAR = 0.35  # inches a bar (or a row) takes
# Inches a panel takes besides its bars: its two-line title, the x ticks and the x label. A
# panel is its bars' height plus this, never a share of the picture: shared by the number
# of bars, a panel of 0 or 1 beside one of 5 had no room for its title, and matplotlib
# gave up the layout (titles over the bars, labels cut).
CHART_PANEL = 1.25
# A bar's label is cut to this width (the counts beside the chart name it whole): a longer
# one (up to 200 characters) left the bars no width, and matplotlib gave up the layout.
CHART_LABEL_POINTS = 4 * 72


def chart_png(stats: Sequence[Stats], most: int | None = None) -> bytes:
    """A bar chart of screen failures by criterion, one panel per protocol, as PNG bytes.

    With ``most``, a panel shows only that many of its most frequent failures, and a last
    row saying how many more criteria failed (each as often or less), so that the picture
    has a bounded height however many criteria fail.
    """
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.ticker import MaxNLocator

    rows = [_chart_rows(s.failures, most) for s in stats]
    # inches of each panel (no protocol: one panel, saying so)
    heights = [CHART_PANEL + CHART_BAR * max(len(r), 1) for r in rows or [[]]]
    figure = Figure(figsize=(CHART_WIDTH, sum(heights)), layout="constrained")
    # A panel per protocol, its title (the counts) from the picture's left edge, not over
    # the bars, which long criterion labels push right.
    areas = figure.subfigures(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    for area, s, bars_shown in zip(areas, stats, rows, strict=False):
        area.suptitle(
            f"{s.protocol_id}: {s.patients} patients screened ({s.screenings} screenings)\n"
            f"{s.eligible} eligible, {s.not_eligible} not eligible, {s.unresolved} unresolved",
            x=0.01,
            ha="left",
            fontsize=10,
        )
        axes = area.subplots()
        bars_shown = bars_shown[::-1]  # most frequent on top
        bars = axes.barh([label for label, _ in bars_shown], [n for _, n in bars_shown])
        axes.bar_label(bars, labels=[str(n) if n else "" for _, n in bars_shown], padding=2)
        axes.margins(x=0.08)
        axes.set_xlabel("patients failing the criterion (a patient may fail several)")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not bars_shown:
            axes.text(
                0.5, 0.5, "no screen failures", ha="center", va="center", transform=axes.transAxes
            )
    if not stats:
        axes = areas[0].subplots()
        axes.text(0.5, 0.5, "no screenings logged", ha="center", va="center")
        axes.set_axis_off()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI)
    return buffer.getvalue()


def _chart_rows(failures: list[CriterionCount], most: int | None) -> list[tuple[str, int]]:
    """A panel's bars, most frequent first, as (label, patients): at most ``most`` of them,
    then a row without a bar saying how many more there are (patients 0)."""
    cut = most is not None and len(failures) > most + 1  # one more: its bar, not a row
    shown = failures[:most] if cut else failures
    rows = [(_shortened(f"{c.criterion} {c.label}"), c.patients) for c in shown]
    if cut:
        rest = failures[len(shown) :]
        rows.append(
            (f"+ {len(rest)} more criteria, each {plural(rest[0].patients, 'patient')} or fewer", 0)
        )
    return rows


def _shortened(label: str) -> str:
    """``label`` as drawn, cut with "…" to at most CHART_LABEL_POINTS wide."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(size="medium")  # a tick label's size

    def width(text: str) -> float:
        return text_to_path.get_text_width_height_descent(text, font, ismath=False)[0]

    full = width(label)
    if full <= CHART_LABEL_POINTS:
        return label
    end = int(len(label) * CHART_LABEL_POINTS / full)  # about as many characters as fit
    while end > 1 and width(label[:end] + "…") > CHART_LABEL_POINTS:
        end -= 1
    return label[:end].rstrip() + "…"
