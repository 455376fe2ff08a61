"""The Telegram adapter: python-telegram-bot handlers around the screening engine."""
