"""Steps longer than one Telegram message (4096 characters) are sent in parts, offline.

A dialog file may have a checklist of many long items; its step is sent as several
messages with the buttons under the last, which is the message that is redrawn and retired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from screen_bot.adapters.telegram import messages as say
from screen_bot.protocol.catalog import Catalog
from test_telegram_transcript import COORDINATOR, Harness

ITEM = (
    "{n}: Has the patient had any documented history of this particular condition, confirmed "
    "by a specialist, recorded in the chart within the protocol window, including any "
    "treatment received for it and any residual effects reported at the most recent visit?"
)


def long_checklist_dialog(items: int = 20) -> str:
    questions = "".join(
        f'  - variable: cond_{i:02d}\n    type: yes_no\n    text: "{ITEM.format(n=i + 1)}"\n'
        for i in range(items)
    )
    names = ", ".join(f"cond_{i:02d}" for i in range(items))
    criteria = "".join(
        f"  - id: E{i + 1}\n    kind: exclusion\n    label: condition {i + 1}\n"
        f"    source: condition {i + 1}\n    applies_when: cond_{i:02d}\n"
        for i in range(items)
    )
    return (
        'id: longlist\ntitle: Long checklist\nversion: "1"\nquestions:\n'
        + questions
        + "checklists:\n  - name: history\n    mode: none_apply\n"
        + "    text: Does any of these apply?\n"
        + f"    help: Tick those that apply.\n    items: [{names}]\n"
        + "criteria:\n"
        + criteria
    )


@pytest.fixture
async def long_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "longlist.yaml").write_text(long_checklist_dialog())
    catalog = Catalog(dialogs)
    assert list(catalog.protocols) == ["longlist"] and not catalog.broken()
    h = Harness(tmp_path, catalog)
    await h.application.initialize()
    yield h
    await h.application.shutdown()
    h.db.close()


async def test_a_step_longer_than_a_message_is_sent_in_parts(long_harness: Harness) -> None:
    chat = long_harness.chat()
    await chat.send("/screen R-1")
    started, *sent = chat.messages()  # the note apart: the step is split as it is redrawn
    assert started["text"].startswith("Screening R-1 started")
    assert len(sent) >= 2 and all(len(m["text"]) <= say.MAX_MESSAGE for m in sent)
    assert [bool(m.get("reply_markup")) for m in sent] == [False] * (len(sent) - 1) + [True]
    assert "1: Has the patient" in sent[0]["text"] and "20: Has" in sent[-1]["text"]
    question = sent[-1]
    third = question["reply_markup"]["inline_keyboard"][0][2]
    await chat.press(question, third["callback_data"])  # a tick: the part with buttons redrawn
    redrawn = chat.last_with_buttons()
    assert redrawn["message_id"] == question["message_id"] and "edit_date" in redrawn
    assert redrawn["reply_markup"]["inline_keyboard"][0][2]["text"].startswith("☑")
    await chat.send("x")  # a bad answer: the note, then the step again in parts
    notes, *parts = [m for m in chat.messages() if m["message_id"] > question["message_id"]]
    assert notes["text"].startswith("⚠") and len(parts) == len(sent)
    assert all(len(m["text"]) <= say.MAX_MESSAGE for m in parts)
    await chat.send("3")
    assert chat.last_text().startswith("NOT ELIGIBLE") and "E3" in chat.last_text()
    assert not [m for m in chat.messages() if m.get("reply_markup")]  # every step retired
    assert long_harness.list(COORDINATOR) == []


async def test_a_quiz_case_longer_than_a_message_is_sent_in_parts(
    long_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A protocol of some hundred variables makes a case of that many lines."""
    from screen_bot.training.quiz import Quiz

    lines = [f"  variable_with_a_long_name_{i:03d}: yes" for i in range(150)]
    monkeypatch.setattr(Quiz, "question", lambda self: "\n".join(["Case 1/20", *lines]))
    chat = long_harness.chat()
    await chat.send("/quiz 7")
    intro, *case = chat.messages()
    assert intro["text"].startswith("Quiz on longlist") and len(case) == 2
    assert all(len(m["text"]) <= say.MAX_MESSAGE for m in case)
    assert not case[0].get("reply_markup") and case[-1].get("reply_markup")
    await chat.tap("Eligible")  # graded: the part with the buttons loses them
    pressed = next(m for m in chat.messages() if m["message_id"] == case[-1]["message_id"])
    assert not pressed.get("reply_markup") and chat.last_with_buttons() != pressed
