"""``python -m benchmarks.reliability``: the README's kill -9 and stranger-flood figures.

1. kill -9: ten coordinators answer through the real ``screen-bot run`` (typed answers
   and buttons, retyping when no reply comes) while the bot is killed with SIGKILL at
   random moments and restarted (``tests/chaos.py``); counts answers sent, stored, lost
   and misplaced, and apart from those the answers taken in the documented same-second
   window (``same_second``: an earlier answer typed again as the restart showed the next
   question).
2. Stranger flood: a coordinator's reply latency (``/help`` until the reply is in the fake
   Bot API), idle, and each time right after a burst of 300 messages from 300 new
   strangers (each due a refusal): p50 and p99 of each.

Not part of the test suite (``tests/test_kill9.py`` and ``tests/test_e2e_hardening.py``
run small versions); results go to ``benchmarks/results/reliability.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import ROOT, percentile
from .run import machine

sys.path.insert(0, str(ROOT / "tests"))
import chaos  # noqa: E402
from bot_process import BotProcess, say  # noqa: E402
from fakebot import FakeBotApi  # noqa: E402

COORDINATOR = 111


def round_trips(fake: FakeBotApi, count: int) -> list[float]:
    """Milliseconds from sending /help to the reply being in the fake."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        say(fake, COORDINATOR, "/help", timeout=60)
        times.append((time.perf_counter() - started) * 1000)
    return times


def flood(work: Path, samples: int, burst: int) -> dict[str, Any]:
    with FakeBotApi() as fake:
        bot = BotProcess(fake, work, str(COORDINATOR))
        bot.start()
        try:
            round_trips(fake, 5)  # warm up
            idle = round_trips(fake, samples)
            flooded, next_id = [], 10_000
            for _ in range(samples):  # each time: a burst, then the coordinator at once
                for user in range(next_id, next_id + burst):
                    fake.send_text(user, "/screen")
                next_id += burst
                flooded += round_trips(fake, 1)
            time.sleep(1)
            refusals = sum(1 for c in fake.calls("sendMessage") if c["params"]["chat_id"] >= 10_000)
        finally:
            bot.stop()
    return {
        "idle_p50_ms": round(percentile(idle, 50), 1),
        "idle_p99_ms": round(percentile(idle, 99), 1),
        "flood_p50_ms": round(percentile(flooded, 50), 1),
        "flood_p99_ms": round(percentile(flooded, 99), 1),
        "samples": samples,
        "stranger_messages": next_id - 10_000,
        "refusals_sent": refusals,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--chats", type=int, default=10)
    parser.add_argument("--questions", type=int, default=37, help="per chat (39 end it)")
    parser.add_argument("--samples", type=int, default=40, help="round trips, idle and flooded")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/reliability.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "command": "python -m benchmarks.reliability " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="screen-bot-reliability-") as tmp:
        kill = Path(tmp) / "kill9"
        kill.mkdir()
        tally = chaos.run(
            kill, chats=args.chats, kills=args.kills, questions=args.questions, seed=args.seed
        )
        report["kill9"] = {
            **tally.summary(),
            "problems": tally.problems[:20],
            "same_second_cases": tally.same_second_cases[:20],
        }
        print(json.dumps(report["kill9"], indent=1), flush=True)
        strangers = Path(tmp) / "flood"
        strangers.mkdir()
        report["flood"] = flood(strangers, args.samples, 300)
        print(json.dumps(report["flood"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
