"""Texts longer than one Telegram message (4096 characters) are sent in parts, offline.

A dialog file may have a checklist of many long items; its step is sent as several
messages with the buttons under the last, which is the message that is redrawn and retired.
A long verdict is split between its reasons, never inside one that fits in a message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screen_bot.adapters.telegram import messages as say
from screen_bot.protocol.catalog import Catalog
from screen_bot.protocol.schema import MAX_SOURCE, quoted_width
from screen_bot.render import reason_text, verdicts_text
from screen_bot.session import REFERRAL_PATTERN
from screen_bot.settings import default_dialogs_dir
from screen_bot.storage.sessions import OpenScreening
from screen_bot.verdict import ProtocolRef, Reason, Verdict
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


# A patient failing nearly every criterion of both shipped protocols: the longest verdicts.
FAILING = """age 70
sex female
b_all_cd19_positive no
ph_negative no
high_risk_features no
transplant_date 3 weeks ago
hematopoietic_reconstitution no
marrow_remission no
mrd_negative no
ecog 4
karnofsky 40
gvhd_grade_3_4_history yes
active_gvhd yes
ast_x_uln 5
alt_x_uln 9
bilirubin_x_uln 4
creatinine_x_uln 3
crcl_ml_min 30
lvef_percent 40
qtc_ms 500
arrhythmia yes
last_mi_date 3 weeks ago
symptomatic_cad_on_medication yes
severe_pulmonary_dysfunction yes
childbearing_potential yes
pregnant_or_lactating yes
contraception_agreed no
hypersensitivity_to_study_drugs yes
active_infection_or_bleeding yes
last_vascular_event_date 3 weeks ago
psychiatric_condition_impairing_consent yes
last_major_surgery_date 3 weeks ago
substance_abuse yes
prior_solid_organ_transplant yes
expected_survival_over_3_months no
other_investigator_concern yes
consent_willing no
age_at_diagnosis 25
marrow_relapse_count 0
primary_refractory no
chemorefractory_relapse no
prior_therapies blinatumomab
cns_status CNS3
marrow_blasts_percent 1
burkitt yes
isolated_extramedullary_relapse yes
prior_allo_hsct no
last_imp_date 3 weeks ago
bone_marrow_failure_syndrome yes
prior_malignancy other
hepatitis_b_active_or_latent yes
hepatitis_c_active yes
hiv_infection yes
uncontrolled_life_threatening_infection yes
total_bilirubin_mg_dl 4
serum_creatinine_mg_dl 3
measured_gfr_ml_min_173 20
spo2_room_air_percent 85
shortening_fraction_percent 10
ejection_fraction_percent 20
life_expectancy_over_12_weeks no"""


@pytest.fixture
async def shipped_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, Catalog(default_dialogs_dir()))
    await h.application.initialize()
    yield h
    await h.application.shutdown()
    h.db.close()


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


CONTINUED = re.compile(r"(?:(?P<title>.+), continued|Continued) \((?P<number>\d+)/(?P<count>\d+)\)")


def assert_traceable(sent: list[str], versions: dict[str, str], untitled_first: bool) -> None:
    """Each part after the first opens with what it continues: the protocol and version of
    the section it begins in, or, where the text begins with a section of no one protocol
    (a check's values read, the ranking of several), that it continues that section."""
    for number, part in enumerate(sent[1:], start=2):
        header = part.partition("\n")[0]
        said = CONTINUED.fullmatch(header)
        assert said and (said["number"], said["count"]) == (str(number), str(len(sent))), header
        if said["title"] is None:
            assert untitled_first and not any("\n\n" in p for p in sent[: number - 1]), header
        else:
            protocol = next(p for p in versions if said["title"].startswith(f"{p} "))
            assert said["title"] == f"{protocol} {versions[protocol]} verdict"


@pytest.mark.parametrize("protocol_id", ["blina-dli", "ctl019-rr-ball", "all"])
async def test_a_long_verdict_keeps_each_reason_with_its_quote(
    shipped_harness: Harness, protocol_id: str
) -> None:
    """The /check reply and the verdict of 'Screen and log this', failing nearly everything:
    each reason's id, the protocol's words and its outlook are in one message, and each
    message after the first says which protocol and version it continues."""
    chat = shipped_harness.chat()
    await chat.send(f"/check {protocol_id} ref R-77\n{FAILING}")
    checked = [m["text"] for m in chat.messages()]
    await chat.tap(say.LOG_IT)
    started, *verdict = [m["text"] for m in chat.messages()[len(checked) :]]
    assert started.startswith("Screening R-77 started")
    records = shipped_harness.records()
    assert {r.verdict for r in records} == {"not_eligible"}
    versions = {r.protocol.id: r.protocol.version for r in records}
    for sent in (checked, verdict):
        assert len(sent) >= 2 and all(utf16(part) <= say.MAX_MESSAGE for part in sent)
        for record in records:
            protocol = shipped_harness.catalog.get(record.protocol.id)
            for reason in record.reasons:
                criterion = protocol.criteria[reason.criterion]
                whole = re.compile(
                    rf"^• {re.escape(reason.criterion)} {re.escape(criterion.label)}: .*\n"
                    rf"   “{re.escape(criterion.source)}”\n   \S",
                    re.MULTILINE,
                )
                assert sum(bool(whole.search(part)) for part in sent) == 1, reason.criterion
        assert_traceable(sent, versions, untitled_first=sent is checked or protocol_id == "all")


# Text as a protocol or an answer may have it: any character, line breaks and emoji
# (two UTF-16 units) more often than chance would give.
WORDS = st.text(st.characters(codec="utf-8") | st.sampled_from("\n 🙂"), min_size=1, max_size=40)
LONG_WORDS = st.text(
    st.characters(codec="utf-8") | st.sampled_from("\n 🙂"), min_size=200, max_size=2000
)
REASONS = st.lists(
    st.builds(
        Reason,
        criterion=st.from_regex(r"[A-Z][A-Za-z0-9]{0,5}", fullmatch=True),
        kind=st.sampled_from(["inclusion", "exclusion"]),
        label=WORDS,
        source=st.one_of(WORDS, LONG_WORDS),
        answers=st.dictionaries(
            st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True), st.integers() | WORDS, max_size=3
        ),
        recoverable=st.sampled_from([None, "retest", "wait"]),
        window_closed=st.booleans(),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda reason: reason.criterion,
)
VERDICTS = st.lists(
    st.builds(
        Verdict,
        verdict=st.just("not_eligible"),
        reasons=REASONS,
        protocol=st.builds(
            ProtocolRef,
            id=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
            version=st.from_regex(r"[0-9][0-9.]{0,5}", fullmatch=True),
            sha256=st.just("ab" * 32),
        ),
        screened_on=st.just(date(2026, 11, 26)),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda verdict: verdict.protocol.id,
)
LIMITS = st.sampled_from([say.MAX_MESSAGE]) | st.integers(200, 1600)


@given(VERDICTS, LIMITS)
def test_a_verdict_is_split_between_reasons(verdicts: list[Verdict], limit: int) -> None:
    """Every part fits; nothing but line breaks is lost; a reason that fits in a message is
    whole in one; each part after the first says what it continues."""
    text = verdicts_text(verdicts)
    versions = {v.protocol.id: v.protocol.version for v in verdicts}
    for bare in (True, False):  # split alone, and as sent: with the "continued" lines
        sent = say.split(text, limit) if bare else say.parts(text, limit)
        assert all(0 < utf16(part) <= limit for part in sent)
        if bare:
            bodies = sent
        else:
            assert_traceable(sent, versions, untitled_first=len(verdicts) > 1)
            bodies = sent[:1] + [part.partition("\n")[2] for part in sent[1:]]
            sections = text.split("\n\n")
            for part, body in zip(sent[1:], bodies[1:], strict=True):
                said = CONTINUED.fullmatch(part.partition("\n")[0])
                if said and said["title"]:  # it begins in that protocol's section
                    ids = [f"{v.protocol.id} " for v in verdicts]
                    at = next(i for i, pid in enumerate(ids) if said["title"].startswith(pid))
                    assert body.partition("\n")[0] in sections[at + (len(verdicts) > 1)]
        assert "".join(bodies).replace("\n", "") == text.replace("\n", "")
        room = 0 if bare else 60  # a header: "<id> <version> verdict, continued (NN/NN)"
        for verdict in verdicts:
            for reason in verdict.reasons:
                block = f"• {reason_text(reason)}"
                if utf16(block) <= limit - room:
                    assert any(block in body for body in bodies), reason.criterion


def test_a_reason_quoting_the_longest_source_a_file_may_have_stays_in_one_message() -> None:
    """The validator's limit on a source (MAX_SOURCE, as a message counts it) leaves room
    for the longest id, label, outlook and "continued" line beside it: each such reason is
    whole in one message (a 60 KB quote was split inside its reason)."""
    longest = "🙂" * 499 + "\n" + "🙂" * (MAX_SOURCE // 2 - 501)  # as wide as allowed
    assert quoted_width(longest) <= MAX_SOURCE < quoted_width(longest + "x")
    reasons = [
        Reason(
            criterion=f"{n}" + "I" * 31,
            kind="inclusion",
            label="🙂" * 200,
            source=longest,
            answers={f"answer_{k:02d}_of_a_rule": date(2026, 1, 1) for k in range(8)},
            recoverable="wait",
            meets_from=date(2026, 12, 31),
            meets_from_anchor="p" * 64,
        )
        for n in range(1, 4)
    ]
    verdict = Verdict(
        verdict="not_eligible",
        reasons=reasons,
        protocol=ProtocolRef(id="p" * 40, version="🙂" * 40, sha256="ab" * 32),
        screened_on=date(2026, 11, 26),
    )
    sent = say.parts(verdicts_text([verdict]))
    assert len(sent) == len(reasons) and all(utf16(part) <= say.MAX_MESSAGE for part in sent)
    for reason in reasons:
        assert sum(f"• {reason_text(reason)}" in part for part in sent) == 1


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400))
def test_a_button_answer_is_cut_to_telegrams_200_characters(text: str) -> None:
    """A toast (answerCallbackQuery's text) Telegram refuses past 200 UTF-16 code units:
    one that fits is kept; a longer one is cut to fit and ends with "…"."""
    toast = say.toast(text)
    assert units(toast) <= say.MAX_TOAST == 200
    if units(text) <= 200:
        assert toast == text
    else:
        assert toast.endswith("…") and text.startswith(toast[:-1])


OPEN_SCREENINGS = st.lists(
    st.builds(
        OpenScreening,
        session_id=st.from_regex(r"[0-9a-f]{8}", fullmatch=True),
        protocol_id=st.from_regex(r"[a-z][a-z0-9-]{0,39}", fullmatch=True),
        referral=st.none() | st.from_regex(REFERRAL_PATTERN, fullmatch=True),
        # wider than a variable name may be, to count as Telegram does (🙂 is two units)
        state=st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\n"),
            min_size=1,
            max_size=40,
        ),
        active=st.booleans(),
        updated_at=st.datetimes(),
        awaiting_referral=st.booleans(),
    ),
    max_size=300,
)


@given(OPEN_SCREENINGS, LIMITS)
def test_open_screenings_are_listed_in_one_message_and_the_rest_counted(
    screenings: list[OpenScreening], limit: int
) -> None:
    """/list is one message however many are open: the first ones (the ones used last) as
    many as fit, then how many more there are; none is left out without a word."""
    text = say.listing(screenings, limit)
    assert units(text) <= limit
    if not screenings:
        assert text == say.NO_OPEN
        return
    title, *lines = text.split("\n")
    assert title == say.LISTING_TITLE
    more = re.fullmatch(r"…and (\d+) more unfinished screenings?, used longer ago: .*", lines[-1])
    listed = lines[:-1] if more else lines
    assert len(listed) + (int(more[1]) if more else 0) == len(screenings)
    assert listed or limit < say.MAX_MESSAGE  # a message holds one line at the least
    labels = [o.referral or o.session_id for o in screenings[: len(listed)]]
    assert [line.removeprefix("▶ ").split(" · ")[0] for line in listed] == labels
