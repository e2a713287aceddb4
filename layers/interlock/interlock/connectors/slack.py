"""Slack's Web API: ``chat.postMessage``, to tell a lead's owner about it.

Protocol: ``POST {base}/api/chat.postMessage`` with the bot token as a bearer token and a JSON body
(``{"channel", "text", "unfurl_links": false, "unfurl_media": false}``; ``channel`` is a channel id or a user id,
which posts to the bot's direct message with that person). Slack answers **HTTP 200 with ``{"ok": false,
"error": "<code>"}``** on errors, so the status alone says nothing:

* ``{"ok": true, "channel", "ts"}``: posted; the ``ts`` is the message's id in its channel;
* HTTP 429 with ``Retry-After`` (seconds), or ``ok: false`` with ``ratelimited``: rate limited,
  :class:`~interlock.errors.SlackUnavailable` with ``retry_after`` (retried by the state machine);
* HTTP 5xx, a timeout, a refused connection, or ``ok: false`` with ``internal_error``, ``fatal_error``,
  ``service_unavailable``, ``request_timeout``, ``team_added_to_org``: :class:`~interlock.errors.SlackUnavailable`;
* any other ``ok: false`` (``channel_not_found``, ``not_in_channel``, ``invalid_auth``, ``not_authed``,
  ``account_inactive``, ``token_revoked``, ``no_text``, ``msg_too_long``, ``is_archived``...) or another HTTP status:
  :class:`~interlock.errors.SlackRejected` with the code (Slack's code names no message content).

Errors name a status, a Slack error code or an exception's class, never the URL, the token or the message.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient, TokenSource, bearer, no_token
from interlock.errors import SlackRejected, SlackUnavailable

if TYPE_CHECKING:
    import httpx

STEP = "notify_owner"
MAX_TEXT_CHARS = 4000  # Slack truncates a message's text past 40,000; its guidance is to stay under 4,000
# Slack's error codes for a failure on its side (another try may work): docs.slack.dev chat.postMessage.
RETRYABLE_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "team_added_to_org"})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = Field(default=None, max_length=100)
    channel: str | None = None
    ts: str | None = None


class PostedMessage(BaseModel):
    channel: str
    ts: str


class Slack(Protocol):
    def post_message(self, channel: str, text: str, *, thread_ts: str | None = None,
                     blocks: list[dict[str, Any]] | None = None) -> PostedMessage: ...


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class HttpSlack:
    def __init__(self, api_url: str, timeout_seconds: float = 5.0, transport: httpx.BaseTransport | None = None,
                 token: TokenSource = no_token) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.token = token
        self._http = SharedClient(timeout_seconds, transport)

    def post_message(self, channel: str, text: str, *, thread_ts: str | None = None,
                     blocks: list[dict[str, Any]] | None = None) -> PostedMessage:
        """Post ``text`` (the notification's and the fallback's text) to ``channel``, in the thread ``thread_ts``
        when given, laid out as ``blocks`` when given."""
        import httpx

        if len(text) > MAX_TEXT_CHARS:
            raise SlackRejected(f"the message is longer than {MAX_TEXT_CHARS} characters", step=STEP,
                                slack_error="msg_too_long")
        body: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            body["thread_ts"] = thread_ts
        if blocks:
            body["blocks"] = blocks
        try:
            response = self._http.get().post(f"{self.api_url}/api/chat.postMessage", json=body,
                                             headers=bearer(self.token()))
        except httpx.HTTPError as exc:  # not chained: its text may quote the request
            raise SlackUnavailable(f"Slack request failed: {type(exc).__name__}", step=STEP) from None
        status = response.status_code
        if status == 429:
            raise SlackUnavailable("Slack rate limited the call (429)", step=STEP, status=status,
                                   slack_error="ratelimited", retry_after=_retry_after(response))
        if status >= 500:
            raise SlackUnavailable(f"Slack answered {status}", step=STEP, status=status)
        if status != 200:
            raise SlackRejected(f"Slack answered {status}", step=STEP, status=status)
        try:
            answer = _Answer.model_validate(response.json())
        except ValueError:  # not JSON, or not Slack's shape (a ValidationError is a ValueError)
            raise SlackUnavailable("Slack answered with an unreadable body", step=STEP, status=status) from None
        if answer.ok and answer.ts:
            return PostedMessage(channel=answer.channel or channel, ts=answer.ts)
        code = answer.error or "unknown_error"
        if code in RETRYABLE_ERRORS:
            raise SlackUnavailable(f"Slack could not post the message ({code})", step=STEP, slack_error=code,
                                   retry_after=_retry_after(response))
        raise SlackRejected(f"Slack refused the message ({code})", step=STEP, slack_error=code)


@once_per_process
def from_settings() -> HttpSlack | None:
    """The process's Slack connector, or None when ``slack_api_url`` is not set."""
    from interlock.connectors.http import token_source
    from interlock.settings import SlackSettings, load

    settings = load(SlackSettings)
    if not settings.slack_api_url:
        return None
    return HttpSlack(settings.slack_api_url, settings.slack_timeout_seconds,
                     token=token_source(settings.slack_token_secret, settings.slack_token,
                                        settings.slack_token_cache_seconds, reason="slack_token_unreadable"))
