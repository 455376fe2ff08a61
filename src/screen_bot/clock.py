"""The server's wall clock, as stored times see it."""

from __future__ import annotations

from datetime import timedelta

CLOCK_AHEAD = timedelta(minutes=1)
"""A stored time more than this after now was written while the server's clock was ahead
(set right since, e.g. by NTP): nothing waits for the clock to catch up with it (see
:func:`screen_bot.storage.expiry.redate`)."""
