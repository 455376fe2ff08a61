"""The end-to-end benchmark's floor: the echo bot doing what issue 3 asks of every reply.

Like ``echo_bot.py``, but each message's echo is sent as a "question" with two inline
buttons, and before it the previous one is edited to show the message it answered, without
its buttons (awaited first, as ``screen-bot run`` does, so that no one sees the next question
while the last one can still be pressed). No storage and no screening: two Bot API calls
per reply and nothing else, the least any bot that keeps issue 3's rule can cost.
"""

from echo_bot import main  # the same bot otherwise (this directory is on sys.path)
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

BUTTONS = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("unknown", callback_data="u"),
            InlineKeyboardButton("back", callback_data="b"),
        ]
    ]
)
shown: dict[int, tuple[int, str]] = {}  # chat id -> (message id, text) of the open "question"


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Retire the last question (its text and the answer, no buttons), then send the next."""
    chat_id, text = update.effective_chat.id, update.effective_message.text
    if chat_id in shown:
        message_id, question = shown.pop(chat_id)
        await context.bot.edit_message_text(f"{question}: {text}", chat_id, message_id)
    sent = await context.bot.send_message(chat_id, text, reply_markup=BUTTONS)
    shown[chat_id] = (sent.message_id, text)


if __name__ == "__main__":
    main(echo)  # run without the limiter: the e2e benchmark sets BENCH_NO_LIMIT=1
