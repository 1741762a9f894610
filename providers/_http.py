"""HTTP for adapters: one place that turns transport failures, HTTP statuses and answers that are not
the documented shape into the error tree."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from providers.base import ProviderConfig
from providers.errors import (
    N_,
    ErrorKind,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderProtocolError,
    ProviderUnavailable,
    make_error,
)

log = logging.getLogger(__name__)
_Model = TypeVar("_Model", bound=BaseModel)

#: How each HTTP status is classified when the body says nothing more specific.
STATUS_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.REJECTED,
    401: ErrorKind.AUTH,
    402: ErrorKind.QUOTA,
    403: ErrorKind.AUTH,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.UNAVAILABLE,
    409: ErrorKind.REJECTED,
    413: ErrorKind.REJECTED,
    422: ErrorKind.REJECTED,
    429: ErrorKind.RATE_LIMITED,
}

_KIND_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.AUTH: N_("The provider rejected the bot's credentials; an admin must fix the API key."),
    ErrorKind.QUOTA: N_("The provider account is out of credits."),
    ErrorKind.RATE_LIMITED: N_("The provider is rate limiting requests."),
    ErrorKind.BUSY: N_("The provider is busy."),
    ErrorKind.UNAVAILABLE: N_("The provider is unavailable right now."),
}


def status_kind(status: int, kinds: Mapping[int, ErrorKind] = STATUS_KINDS) -> ErrorKind:
    """`status` (an HTTP status, or an envelope code in the same numbering) by `kinds`, else by class."""
    if status in kinds:
        return kinds[status]
    return ErrorKind.UNAVAILABLE if status >= 500 else ErrorKind.REJECTED


def retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait, from a Retry-After header or a `retry_after` field in the body."""
    raw = headers.get("retry-after")
    if raw is None and isinstance(body, dict):
        raw = body.get("retry_after") or body.get("retryAfter")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def error_for(kind: ErrorKind, detail: str | None, provider: str, wait: float | None = None,
              status: int | None = None) -> ProviderError:
    """The exception for `kind`, with the provider's own text where it is meant for users (and for the
    operators' log always, with the HTTP `status`)."""
    if kind in (ErrorKind.REJECTED, ErrorKind.NOT_FOUND):
        if detail:
            return make_error(kind, N_("{provider} refused the request: {reason}"), wait, status=status,
                              detail=detail, provider=provider, reason=detail)
        return make_error(kind, N_("{provider} refused the request."), wait, status=status, provider=provider)
    if kind in _KIND_MESSAGES:
        return make_error(kind, _KIND_MESSAGES[kind], wait, status=status, detail=detail)
    return make_error(kind, "{provider}: {reason}", wait, status=status, detail=detail, provider=provider,
                      reason=detail or kind.value)


def bearer_headers(config: ProviderConfig) -> dict[str, str]:
    """`Authorization: Bearer <api_key>`, or no header when the entry has no key."""
    key = config.api_key.get_secret_value() if config.api_key else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def parse_as(model: type[_Model], data: Any, error: ProviderProtocolError) -> _Model:
    """`data` validated as `model`; anything else raises `error` (built by the caller, so that its
    message is a literal template the extractor sees)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error from exc


def envelope(
    raw: Any, provider: str, *, code: str, message: str, code_name: str | None = None
) -> tuple[int, str | None, Any]:
    """`(code, message, data)` of a `{<code>, <message>, data}` answer; a missing code is a protocol error."""
    try:
        status = int(raw[code])
    except (TypeError, KeyError, ValueError) as exc:
        raise ProviderProtocolError(
            "{provider} sent an answer without a {field}.", provider=provider, field=code_name or code
        ) from exc
    text = raw.get(message) if isinstance(raw.get(message), str) else None
    return status, text, raw.get("data")


#: Transport failures that happen before any byte of the request reaches the provider.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class ProviderHTTP:
    """A provider's view of the shared client: its entry's base URL and timeout, auth headers, errors.

    `error_codes` maps the `code` string of an error body to its kind where it says more than the HTTP
    status does (a 429 that means "out of credits", not "slow down")."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: ProviderConfig,
        headers: Mapping[str, str],
        *,
        error_codes: Mapping[str, ErrorKind] | None = None,
    ) -> None:
        self._client = client
        self._name = config.name
        self._base = config.base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = config.request_timeout
        self._error_codes = dict(error_codes or {})

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON body of a 2xx answer."""
        url = path if path.startswith("http") else f"{self._base}{path}"
        try:
            response = await self._client.request(
                method,
                url,
                json=json_body,
                data=form,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
            )
        except _NOT_SENT as exc:  # nothing reached the provider: sending again is safe
            why = type(exc).__name__
            raise ProviderUnavailable(
                "{provider} could not be reached.", detail=why, provider=self._name
            ) from exc
        except httpx.TimeoutException as exc:
            why = type(exc).__name__
            raise ProviderOutcomeUnknown(
                "{provider} did not answer in time.", detail=why, provider=self._name
            ) from exc
        except httpx.HTTPError as exc:
            why = type(exc).__name__
            raise ProviderOutcomeUnknown(
                "{provider} stopped answering mid-request.", detail=why, provider=self._name
            ) from exc
        body = _decode(response)
        if response.is_success:
            if body is None:
                raise ProviderProtocolError(
                    "{provider} sent a response that is not JSON.", provider=self._name
                )
            return body
        detail = _detail(body)
        log.info("%s %s %s -> HTTP %s", self._name, method, path, response.status_code)
        kind = _code_kind(body, self._error_codes) or status_kind(response.status_code)
        raise error_for(kind, detail, self._name, retry_after(response.headers, body), response.status_code)


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _code_kind(body: Any, codes: Mapping[str, ErrorKind]) -> ErrorKind | None:
    code = body.get("code") if isinstance(body, dict) else None
    return codes.get(code) if isinstance(code, str) else None


def _detail(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("message", "msg", "description", "error", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value[:300]
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return str(value["message"])[:300]
    return None
