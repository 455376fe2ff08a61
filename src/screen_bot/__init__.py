"""screen-bot: conversational pre-screening of clinical-trial eligibility."""

__version__ = "0.1.0"
