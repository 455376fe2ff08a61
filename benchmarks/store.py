"""``python -m benchmarks.store``: the bot on PostgreSQL beside the SQLite file, in one run.

1. One update's store work, in this process, as the intake does it: store it in the inbox,
   take the chat's lock, read the chat's waiting updates, answer (the service's
   transaction, which marks the update done), read the chat's newest update, record the
   question shown, mark it handled, look for more, let the lock go. Latency p50/p99 over
   full screenings, on each store.
2. End to end: the real bot (``benchmarks/unthrottled_bot.py``: rate limiter at zero, so
   the store is what differs) polling the fake Bot API, one coordinator typing full
   screenings, then 20 at once: messages/s and reply latency, on each store.
3. Two ``screen-bot run --webhook`` processes on one PostgreSQL behind a round-robin
   forwarder, each killed with SIGKILL in turn during a burst (``tests/two_instances.py``):
   updates lost, handled twice, handled out of order.

SQLite: WAL, ``synchronous=FULL`` (the bot's settings), in a temporary directory.
PostgreSQL: a throwaway cluster on this machine (``tests/postgres_server.py``) with the
server's durable defaults (fsync, synchronous_commit and full_page_writes on), reached
over TCP on 127.0.0.1. Results: ``benchmarks/results/store.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from screen_bot.protocol.catalog import Catalog
from screen_bot.results import Asked, Result
from screen_bot.service import ScreeningService
from screen_bot.settings import default_dialogs_dir
from screen_bot.storage import Store, inbox, open_store
from screen_bot.storage.inbox import Received

from . import e2e
from .common import ROOT, Figure, percentile
from .patients import protocol, screening_texts
from .run import machine, table

sys.path.insert(0, str(ROOT / "tests"))
import two_instances  # noqa: E402
from postgres_server import Unavailable, postgres_cluster  # noqa: E402
from stores import StoreUnderTest, cluster_url, new_database  # noqa: E402

SQLITE, POSTGRES = "SQLite file, same run", "PostgreSQL"


def update_turn(db: Store, service: ScreeningService) -> Callable[[int, int, str], list[Result]]:
    """One update through the store as the intake and the bot's handler use it."""
    shown_ids = itertools.count(1)

    def turn(owner: int, update_id: int, text: str) -> list[Result]:
        with db.transaction() as tx:
            inbox.receive(
                tx,
                [Received(update_id, owner, json.dumps({"text": text}))],
                lifetime=service.lifetime,
            )
        lock = f"screen-bot/chat/{owner}"
        assert db.try_lock(lock)
        try:
            assert inbox.pending_in(db.read(), owner)
            with inbox.handling(update_id):
                if text.startswith("/screen"):
                    results = service.start(owner, "blina-dli", text.split()[-1])
                else:
                    results = service.answer(owner, text, arrived=update_id)
                for result in results:
                    if isinstance(result, Asked):
                        after = inbox.newest(db.read(), owner)
                        service.shown(owner, result.session_id, next(shown_ids), result.step, after)
            with db.transaction() as tx:
                inbox.finish(tx, update_id)
            assert not inbox.pending_in(db.read(), owner, update_id)
        finally:
            db.unlock(lock)
        return results

    return turn


def turns(db: Store, screenings: int) -> list[float]:
    """Milliseconds per update over ``screenings`` full screenings."""
    catalog = Catalog(default_dialogs_dir())
    service = ScreeningService(catalog, db, channel="telegram", outbox=True)
    turn = update_turn(db, service)
    texts = screening_texts(protocol())
    ids = itertools.count(1)
    times: list[float] = []
    for k in range(screenings + 1):  # the first one warms up (imports, the catalog)
        owner = 10_000 + k
        for text in [f"/screen R-{k}", *texts]:
            begin = time.perf_counter()
            turn(owner, next(ids), text)
            if k:
                times.append((time.perf_counter() - begin) * 1e3)
        service.delivered(k + 1)  # the verdict was sent: its outbox row goes
    return times


def end_to_end(work: Path, url: str | None, quick: bool) -> dict[str, Any]:
    """The unthrottled bot: one coordinator, then 20 at once (as benchmarks/e2e.py)."""
    one = screening_texts(protocol())
    coordinators = e2e.COORDINATORS[:3] if quick else e2e.COORDINATORS
    if quick:
        sequential = ["/screen blina-dli R-1", *one[:4]]
        concurrent = {u: [f"/screen blina-dli R-{u}", *one[:3]] for u in coordinators}
    else:
        sequential = [t for k in range(3) for t in (f"/screen blina-dli R-{k}", *one)]
        concurrent = {u: [f"/screen blina-dli R-{u}", *one] for u in coordinators}
    allowed = [e2e.SEQUENTIAL_USER, *concurrent]
    with e2e.Fake() as fake:
        bot = e2e.screening_bot(fake, work, allowed, limit=False)
        if url:
            bot.env["SCREEN_BOT_DATABASE_URL"] = url
        bot.start()
        try:
            seq = e2e.phase(fake, {e2e.SEQUENTIAL_USER: sequential})
            conc = e2e.phase(fake, concurrent)
        finally:
            bot.stop()
    for result, scripts in ((seq, {e2e.SEQUENTIAL_USER: sequential}), (conc, concurrent)):
        e2e.check(scripts, result.pop("replies"), echo=False)
    return {"sequential": seq, "concurrent": conc, "coordinators": len(coordinators)}


def figures_of(turn_ms: dict[str, list[float]], bots: dict[str, dict[str, Any]]) -> list[Figure]:
    pg, lite = turn_ms["postgres"], turn_ms["sqlite"]
    figures = [
        Figure(
            f"store.update_p{p}_ms",
            f"store: one update's store work p{p} ({POSTGRES})",
            percentile(pg, p),
            "ms",
            SQLITE,
            percentile(lite, p),
        )
        for p in (50, 99)
    ]
    n = bots["postgres"]["coordinators"]
    for key, name in (("sequential", "1 coordinator"), ("concurrent", f"{n} coordinators")):
        b, base = bots["postgres"][key], bots["sqlite"][key]
        short = "seq" if key == "sequential" else "conc"
        figures += [
            Figure(
                f"store.e2e_{short}_messages_per_s",
                f"store: bot, {name}, no limiter: messages/s ({POSTGRES})",
                b["messages_per_s"],
                "msg/s",
                SQLITE,
                base["messages_per_s"],
            ),
            Figure(
                f"store.e2e_{short}_p50_ms",
                f"store: bot, {name}, no limiter: reply p50 ({POSTGRES})",
                b["p50_ms"],
                "ms",
                SQLITE,
                base["p50_ms"],
            ),
            Figure(
                f"store.e2e_{short}_p99_ms",
                f"store: bot, {name}, no limiter: reply p99 ({POSTGRES})",
                b["p99_ms"],
                "ms",
                SQLITE,
                base["p99_ms"],
            ),
        ]
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--kill-runs", type=int, default=5, help="two-instance runs with kills")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/store.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python -m benchmarks.store " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    screenings = 2 if args.quick else 30
    try:
        cluster = postgres_cluster(durable=not args.quick)  # quick: a smoke run, no fsync
        dsn = cluster.__enter__()
    except Unavailable as err:
        raise SystemExit(f"no PostgreSQL here: {err}") from None
    try:
        server = cluster_url(dsn)
        with tempfile.TemporaryDirectory(prefix="screen-bot-store-") as tmp:
            work = Path(tmp)
            urls = {"sqlite": None, "postgres": new_database(server)}
            turn_ms: dict[str, list[float]] = {}
            for kind, url in urls.items():
                with open_store(work / f"turns-{kind}.sqlite3", url) as db:
                    turn_ms[kind] = turns(db, screenings)
            bots: dict[str, dict[str, Any]] = {}
            for kind in ("sqlite", "postgres"):
                url = new_database(server) if kind == "postgres" else None
                (work / kind).mkdir()
                bots[kind] = end_to_end(work / kind, url, args.quick)
            kills = []
            for run in range(1 if args.quick else args.kill_runs):
                place = work / f"two-{run}"
                place.mkdir()
                shared = StoreUnderTest("postgres", place, new_database(server))
                chats, per_chat = (3, 4) if args.quick else (8, 12)
                burst = two_instances.run(place, shared, chats=chats, per_chat=per_chat)
                kills.append({k: v for k, v in vars(burst).items() if k != "problems"})
                kills[-1]["problems"] = burst.problems[:10]
    finally:
        cluster.__exit__(None, None, None)
    figures = figures_of(turn_ms, bots)
    report["details"] = {
        "update_ms": {k: {"n": len(v), "p50": percentile(v, 50)} for k, v in turn_ms.items()},
        "bot": bots,
        "two_instances": kills,
    }
    report["figures"] = {f.key: f.as_json() for f in figures}
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(table(figures))
    total = {k: sum(run[k] for run in kills) for k in ("posted", "lost", "twice", "out_of_order")}
    print(
        f"\ntwo instances, {len(kills)} run(s), each instance killed once per run: "
        f"{total['posted']} updates confirmed, {total['lost']} lost, {total['twice']} handled "
        f"twice, {total['out_of_order']} out of order"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(figures)} figures in {report['seconds']} s; written to {args.out}")


if __name__ == "__main__":
    main()
