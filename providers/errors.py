"""The provider error tree: classified by what the caller should do next.

Every adapter raises only these. HTTP-level mapping lives in one place, `providers._http`;
adapters map their own envelope codes (1001, 402, 23 ...) through `ErrorKind` tables.
Messages are safe to show to users and never contain credentials.
"""

from __future__ import annotations

from enum import StrEnum


def N_(message: str, /) -> str:
    """Mark one of our sentences a provider error or a failed task may carry, for the bot's catalogues
    (`bot/i18n.py`): it is shown translated where it is shown whole."""
    return message


class ProviderError(Exception):
    """Base class. `message` is user-safe; the rest is for operators' logs: `provider` (its name as
    configured, set where the pool calls it), `status` (the HTTP status) and `detail` (the provider's
    own words, or the transport failure).

    The message is written as a template with named placeholders, `ProviderRejected("The prompt is
    longer than {limit} characters.", limit=6000)`: `message` is it filled in English, and the bot shows
    `template` translated (it is a message id of the bot's catalogues) filled with `params`."""

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None,
                 **params: object) -> None:
        self.template = message
        self.params = params
        self.message = message.format(**params) if params else message
        super().__init__(self.message)
        self.provider: str | None = None
        self.status = status
        self.detail = detail

    def describe(self) -> str:
        """One line for the log, e.g. `ProviderBusy from mj (HTTP 429: Too many concurrent tasks)`."""
        where = f" from {self.provider}" if self.provider else ""
        facts = [f"HTTP {self.status}" if self.status else "", self.detail or ""]
        said = ": ".join(fact for fact in facts if fact)
        return f"{type(self).__name__}{where}" + (f" ({said})" if said else "")


class ProviderAuthError(ProviderError):
    """401/403: the operator's key is wrong. Not the user's fault."""


class ProviderRejected(ProviderError):
    """The provider refused the prompt or parameters. The message explains why."""


class ProviderQuotaExceeded(ProviderError):
    """Out of credits (402, midjourney-api.com 1001)."""


class ProviderBusy(ProviderError):
    """Concurrency or queue full: keep the job queued and try again later."""

    def __init__(self, message: str, retry_after: float | None = None, *, status: int | None = None,
                 detail: str | None = None, **params: object) -> None:
        super().__init__(message, status=status, detail=detail, **params)
        self.retry_after = retry_after


class ProviderRateLimited(ProviderBusy):
    """429 or equivalent, with the provider's retry_after when it gave one."""


class ProviderUnavailable(ProviderError):
    """5xx, maintenance, timeouts, connection errors: back off and retry."""


class ProviderOutcomeUnknown(ProviderUnavailable):
    """The request may have reached the provider (a timeout or a connection lost after sending): a
    submit that ends like this is reconciled, never blindly repeated."""


class ProviderProtocolError(ProviderError):
    """The response did not parse as the documented shape."""


class CallbackSignatureError(ProviderProtocolError):
    """A webhook body whose signature is missing or wrong: not from the provider."""


class ErrorKind(StrEnum):
    """Names for the classes above, used by adapters' code tables."""

    AUTH = "auth"
    REJECTED = "rejected"
    QUOTA = "quota"
    BUSY = "busy"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    PROTOCOL = "protocol"
    NOT_FOUND = "not_found"


_KIND_TO_CLASS: dict[ErrorKind, type[ProviderError]] = {
    ErrorKind.AUTH: ProviderAuthError,
    ErrorKind.REJECTED: ProviderRejected,
    ErrorKind.QUOTA: ProviderQuotaExceeded,
    ErrorKind.BUSY: ProviderBusy,
    ErrorKind.RATE_LIMITED: ProviderRateLimited,
    ErrorKind.UNAVAILABLE: ProviderUnavailable,
    ErrorKind.PROTOCOL: ProviderProtocolError,
    ErrorKind.NOT_FOUND: ProviderRejected,
}


def make_error(kind: ErrorKind, message: str, retry_after: float | None = None, *, status: int | None = None,
               detail: str | None = None, **params: object) -> ProviderError:
    """Build the exception for `kind`; `retry_after` only matters for busy/rate-limited."""
    cls = _KIND_TO_CLASS[kind]
    if issubclass(cls, ProviderBusy):
        return cls(message, retry_after, status=status, detail=detail, **params)
    return cls(message, status=status, detail=detail, **params)
