"""Errors the bot shows to the person who caused them. Every message is specific and safe to show."""

from __future__ import annotations

from enum import IntEnum

from bot.i18n import t
from providers.errors import ProviderError


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


class ExitCode(IntEnum):
    """What `imagine-bot` exits with; each reason its own code (README, "Exit codes")."""

    OK = 0
    JOB_FAILED = 1  # the job ended failed, cancelled or timed out at the provider
    USAGE = 2  # the command line is wrong (argparse's own code)
    DATABASE = 3  # the database can't be used: unreachable, refused, or newer than this code
    REFUSED = 4  # the input was refused: a bad prompt or flag, an unknown job, a quota, a ban
    PROVIDER = 5  # the provider refused or could not be reached when asked
    CONFIG = 6  # the config file is invalid (check-config lists every problem)
    TOKEN_REFUSED = 7  # a chat platform refused the bot token at start-up
    UNREACHABLE = 8  # a chat platform, or the port to serve on, could not be had at start-up
    NO_FRONTEND = 9  # `run` with nothing to serve: no chat platform and no web pages configured
    INTERNAL = 70  # an unexpected error, a bug: logged with its traceback (BSD sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class StartupError(Exception):
    """A known reason `run` cannot start (a token refused, a platform unreachable for good, a port
    taken): `message` is one line for the operator, free of secrets; `code` is what to exit with."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def shown(exc: UserError | ProviderError) -> str:
    """What a person is told of `exc`, in the current language: a UserError's message (written in it
    when raised), a ProviderError's template translated and filled (providers write English)."""
    if isinstance(exc, UserError):
        return exc.message
    return t(exc.template, **exc.params)
