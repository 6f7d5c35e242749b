"""Retrying Hub calls that fail for transient reasons (server errors, rate limits, dropped connections).

`huggingface_hub` already retries some single requests (e.g. the preupload call), but not a whole
`create_repo` or the commit itself; a push of a model or dataset is a sequence of calls, so we retry
the whole step. Re-running an upload is safe: the Hub skips files whose content it already has.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

# httpx2 is huggingface_hub's own HTTP client; its TransportError covers connect errors and timeouts.
import httpx2
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Request timeout, rate limit, and server-side failures: worth another try.
TRANSIENT_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
MAX_DELAY_S = 60.0


class PushError(RuntimeError):
    """A push to the Hub failed for good (bad credentials, missing rights, bad input, or too many retries)."""


def is_transient(error: BaseException) -> bool:
    """Whether `error` is worth retrying: an HTTP 408/429/5xx answer or a network-level failure."""
    if isinstance(error, HfHubHTTPError):
        return error.response is not None and error.response.status_code in TRANSIENT_STATUS_CODES
    return isinstance(error, httpx2.TransportError)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (or its type name): how every command quotes a library's error."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def describe(error: BaseException) -> str:
    """One line saying what went wrong and, for the usual permanent causes, what to do."""
    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set; unset it (export HF_HUB_OFFLINE=0) to push"
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        detail = error.server_message or error.response.reason_phrase
        first = f"HTTP {status} {detail}".strip().splitlines()[0]
        hints = {
            401: "check your token (`hf auth login` or the HF_TOKEN environment variable)",
            403: "your token lacks write access to this namespace; use a token with write rights",
            404: "check the repo id and repo type, and that your token can see the repo",
        }
        return f"{first}; {hints[status]}" if status in hints else first
    return f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__


def retry_transient(
    call: Callable[[], T], *, what: str, max_tries: int = 5, base_delay_s: float = 1.0
) -> T:
    """Run `call()`, retrying transient Hub failures with exponential backoff.

    Args:
        call (`Callable[[], T]`): the Hub operation to run (no arguments).
        what (`str`): what the call does, for log and error messages (e.g. "upload to user/repo").
        max_tries (`int`, defaults to 5): attempts in all before giving up.
        base_delay_s (`float`, defaults to 1.0): wait after the first failure; doubled after each
            further failure, capped at 60 s. A `Retry-After` header from the server is honoured when
            it asks for longer.

    Returns:
        Whatever `call()` returns.

    Raises:
        `PushError`: one line naming `what` and the cause, on a permanent failure or when every
            try failed transiently.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as error:  # classified below; anything not transient is re-raised as PushError
            if not is_transient(error):
                raise PushError(f"{what} failed: {describe(error)}") from error
            if attempt == max_tries:
                raise PushError(f"{what} failed after {max_tries} tries: {describe(error)}") from error
            delay = min(MAX_DELAY_S, max(base_delay_s * 2 ** (attempt - 1), _retry_after_s(error)))
            logger.warning("%s: %s (try %d/%d), retrying in %.1f s", what, describe(error), attempt, max_tries, delay)
            time.sleep(delay)


def _retry_after_s(error: BaseException) -> float:
    response = getattr(error, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else 0.0
    except ValueError:  # an HTTP date rather than seconds: fall back on our own backoff
        return 0.0
