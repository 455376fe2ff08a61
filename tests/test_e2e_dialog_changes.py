"""End to end: dialog files added, edited, broken and removed while the real ``screen-bot
run`` process polls the fake Bot API. The bot reads the files again before the next update
it handles, so it never screens by rules no longer on disk (as ``check`` and ``chat``, which
read them at their start, never do), and an open screening meets the change as after a
restart: a changed file ends it, a broken or missing one pauses it.

One store is enough here (SQLite): what is tested is where the rules come from, not where
the screenings are kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_process import BotProcess, last_id, say
from conftest import SHIPPED
from fakebot import FakeBotApi
from format2 import dialog, dump, inclusion, integer, yes_no
from stores import StoreUnderTest

COORDINATOR = 111


def trial(protocol_id: str, oldest: int = 80, rule: str = "refractory") -> str:
    """A small protocol sharing `age` with blina-dli (so that "all" is offered)."""
    return dump(
        dialog(
            [integer("age", unit="years"), yes_no("refractory")],
            [inclusion("T-I1", f"18 <= age <= {oldest}"), inclusion("T-I2", rule)],
            id=protocol_id,
        )
    )


@pytest.fixture
def dialogs(tmp_path: Path) -> Path:
    """blina-dli and cardio (ages 18 to 80)."""
    directory = tmp_path / "dialogs"
    directory.mkdir()
    shutil.copy2(SHIPPED / "blina-dli.yaml", directory / "blina-dli.yaml")
    (directory / "cardio.yaml").write_text(trial("cardio"), encoding="utf-8")
    return directory


@pytest.fixture
def bot(fake: FakeBotApi, dialogs: Path, tmp_path: Path) -> Iterator[BotProcess]:
    store = StoreUnderTest("sqlite", tmp_path / "bot")
    store.data_dir.mkdir()
    process = BotProcess(fake, store.data_dir, str(COORDINATOR), store=store)
    process.env_extra["SCREEN_BOT_DIALOGS_DIR"] = str(dialogs)
    process.start()
    yield process
    process.stop()


def text(fake: FakeBotApi, typed: str) -> str:
    return str(say(fake, COORDINATOR, typed)["text"])


def test_a_file_added_to_a_running_bot_is_offered_and_screened_and_removed_is_gone(
    fake: FakeBotApi, bot: BotProcess, dialogs: Path
) -> None:
    assert "(blina-dli 1.1 + cardio 1)" in text(fake, "/screen all R-1")
    text(fake, "/cancel")
    # what the site sees before the file is there: its id, not a referral, is unknown
    assert text(fake, "/screen newtrial-01 R-4") == (
        "no protocol 'newtrial-01' (protocols: blina-dli, cardio, all)"
    )

    (dialogs / "newtrial-01.yaml").write_text(trial("newtrial-01"), encoding="utf-8")
    assert "newtrial-01 (version 1): A synthetic protocol" in text(fake, "/protocols")
    # the set of every protocol (and its engine) is the new one, not the one built before
    assert "(blina-dli 1.1 + cardio 1 + newtrial-01 1)" in text(fake, "/screen all R-2")
    text(fake, "/cancel")
    assert "Screening R-4 started (newtrial-01 version 1)" in text(fake, "/screen newtrial-01 R-4")
    text(fake, "20")
    assert text(fake, "yes").startswith("PRE-SCREEN PASSED"), fake.transcript(COORDINATOR)

    (dialogs / "newtrial-01.yaml").unlink()
    assert "newtrial-01" not in text(fake, "/protocols")
    assert text(fake, "/screen newtrial-01 R-5").startswith("no protocol 'newtrial-01'")
    log = bot.output()
    assert f"dialog files changed ({dialogs / 'newtrial-01.yaml'} added): 3 protocol(s)" in log
    assert f"({dialogs / 'newtrial-01.yaml'} removed): 2 protocol(s)" in log


def test_a_rule_edited_while_running_decides_the_next_answer(
    fake: FakeBotApi, bot: BotProcess, dialogs: Path
) -> None:
    """ages 18-80 become 18-75: the screening begun under the old rules ends (as a changed
    file ends it after a restart), and the next one refuses 78, as ``check`` does."""
    text(fake, "/screen cardio R-1")
    (dialogs / "cardio.yaml").write_text(trial("cardio", oldest=75), encoding="utf-8")
    assert text(fake, "78") == (  # names the patient: a coordinator may have several open
        "The protocol file changed since screening R-1 began, so it cannot go on safely; it "
        "was removed. /screen starts it again."
    )
    text(fake, "/screen cardio R-2")
    verdict = text(fake, "78")
    assert verdict.startswith("NOT ELIGIBLE") and "T-I1" in verdict, fake.transcript(COORDINATOR)


def test_a_file_broken_under_an_open_screening_pauses_it_until_fixed(
    fake: FakeBotApi, bot: BotProcess, dialogs: Path
) -> None:
    original = (dialogs / "cardio.yaml").read_text(encoding="utf-8")
    text(fake, "/screen cardio R-1")
    text(fake, "20")
    (dialogs / "cardio.yaml").write_text(trial("cardio", rule="refractorry"), encoding="utf-8")
    paused = text(fake, "yes")  # an edit not finished: the answer is not applied
    assert paused.startswith("⚠ Screening R-1 cannot go on: its protocol file is broken (")
    assert f"{dialogs / 'cardio.yaml'} is broken" in paused and "/resume R-1" in paused
    listed = text(fake, "/protocols")
    assert "cardio (version" not in listed and "Broken, not offered" in listed

    (dialogs / "cardio.yaml").write_text(original, encoding="utf-8")  # fixed as it was
    assert "refractory" in text(fake, "/resume R-1")  # its question again
    assert text(fake, "yes").startswith("PRE-SCREEN PASSED"), fake.transcript(COORDINATOR)


def test_a_file_moved_away_and_back_under_an_open_screening_keeps_every_answer(
    fake: FakeBotApi, bot: BotProcess, dialogs: Path, tmp_path: Path
) -> None:
    """An editor that saves by renaming the file away first (vim), or `mv` out and back:
    a message in the gap removed the screening for good ("the protocol file changed"), so
    the file back byte for byte found nothing to resume. It is kept, paused, and goes on."""
    file, away = dialogs / "cardio.yaml", tmp_path / "cardio.yaml~"
    text(fake, "/screen cardio R-1")
    question = say(fake, COORDINATOR, "20")
    file.rename(away)
    paused = text(fake, "yes")  # not applied
    assert paused.startswith("⚠ Screening R-1 cannot go on: its protocol file is missing")
    assert "holds cardio now" in paused and "/resume R-1" in paused, paused
    assert "/cancel R-1 drops it" in paused, paused
    assert text(fake, "/status") == paused  # still kept: not "No screening is open"
    after = last_id(fake, COORDINATOR)
    query = fake.press(COORDINATOR, question, "Yes")
    fake.wait_until(lambda: query in fake.answered_callbacks)
    toast = str(fake.answered_callbacks[query]["text"])  # not "paused; /resume it first"
    assert toast.endswith("…") and paused.startswith(toast[:-1].rstrip()), toast
    assert fake.wait_for_message(COORDINATOR, after=after, timeout=15)["text"] == paused  # whole
    assert "R-1 · cardio" in text(fake, "/list")

    away.rename(file)  # back, the same bytes
    assert "refractory" in text(fake, "/resume R-1")  # its question again: age was kept
    assert text(fake, "yes").startswith("PRE-SCREEN PASSED"), fake.transcript(COORDINATOR)
    log = bot.output()
    assert f"({file} removed)" in log and f"({file} added)" in log


def test_a_button_pressed_on_a_paused_screening_names_the_file_within_telegrams_limit(
    fake: FakeBotApi, bot: BotProcess, dialogs: Path
) -> None:
    """The refusal of a press says which file broke (its toast is cut to the Bot API's 200
    characters, which a referral as long as allowed already passes: Telegram refuses more)
    and, cut, comes whole in the chat too, with how to go on."""
    label = "R-" + "1" * 30  # as long as a referral may be
    text(fake, f"/screen cardio {label}")
    asked = say(fake, COORDINATOR, "20")  # the yes/no question, with its buttons
    (dialogs / "cardio.yaml").write_text(trial("cardio", rule="refractorry"), encoding="utf-8")
    after = last_id(fake, COORDINATOR)
    query_id = fake.press(COORDINATOR, asked, "Yes")
    fake.wait_until(lambda: query_id in fake.answered_callbacks, timeout=15)
    toast = str(fake.answered_callbacks[query_id]["text"])
    assert len(toast.encode("utf-16-le")) // 2 <= 200 and toast.endswith("…")
    assert toast.startswith(f"⚠ Screening {label} cannot go on: its protocol file is broken (/")
    whole = str(fake.wait_for_message(COORDINATOR, after=after, timeout=15)["text"])
    assert f"({dialogs / 'cardio.yaml'} is broken: " in whole
    assert f"/resume {label}" in whole
