"""Training for coordinators: a walk-through of the criteria, a quiz, the dialog's flow.

Every piece returns text or data and does no I/O of its own, so the terminal commands
(``screen-bot learn | quiz | graph``) and the Telegram commands share it. Callers import
the submodule they need (``training.quiz``, ``training.flow`` …): the bot registers its
training commands at start-up, and only /quiz, /learn or /flow loads their modules.
"""
