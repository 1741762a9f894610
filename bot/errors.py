"""Errors the bot shows to the person who caused them. Every message is specific and safe to show."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a request that cannot be served; `message` goes to the user as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPrompt(UserError):
    """An empty/oversized prompt or an unknown/out-of-range flag."""


class UnknownProvider(UserError):
    pass


class UnknownJob(UserError):
    pass


class UnsupportedAction(UserError):
    """The job's provider cannot do this, or the job's result does not offer it."""


class JobNotFinished(UserError):
    pass


class BadImage(UserError):
    """A user-supplied file that is not an image, too large, or could not be fetched."""


class NotAllowed(UserError):
    """The user may not do this (e.g. press someone else's button)."""


class QuotaExceeded(UserError):
    """A usage limit (per hour, per day, concurrent jobs) is reached; the message says when it frees up."""


class PromptRefused(UserError):
    """The prompt uses a word this community does not allow (checked before anything is spent)."""


class ProviderPaused(UserError):
    """An admin paused the provider; nothing new goes to it until they resume it."""


class ConfigError(Exception):
    """A config that cannot be loaded; `problems` lists each one with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems
