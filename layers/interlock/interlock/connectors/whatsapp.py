"""The WhatsApp Cloud API's messages endpoint on the Graph API: how the assistant's replies go out.

Protocol (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages): ``POST
{graph}/{version}/{phone-number-id}/messages`` with the access token as a bearer token and a JSON body
``{"messaging_product": "whatsapp", "recipient_type": "individual", "to": <wa_id>, "type": ..., <type>: {...}}``:

* ``text``: ``{"body", "preview_url": false}``, at most 4096 characters;
* ``interactive`` ``button``: a body (at most 1024 characters) and one to three reply buttons (each an id of at most
  256 characters and a title of at most 20);
* ``template``: an approved template's ``name`` and ``language`` ``code`` — the only kind of message Meta accepts
  when the user's last message is more than 24 hours old.

Answers: ``200 {"messages": [{"id": "wamid..."}], ...}``: accepted (the ``wamid`` is the message's id, which its
delivery statuses name). Errors are ``{"error": {"code", "error_subcode", "type", "message", "fbtrace_id"}}``: a
429, a 5xx or a throttling code (4, 80007, 130429, 131048, 131056) is :class:`~interlock.errors.WhatsAppUnavailable`
(retried by the state machine); any other is :class:`~interlock.errors.WhatsAppRejected` with Meta's code.

Errors name a status or Meta's code, never the URL, the token, the number or the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient, TokenSource, bearer, no_token
from interlock.errors import WhatsAppRejected, WhatsAppUnavailable

if TYPE_CHECKING:
    import httpx

STEP = "send"
MAX_TEXT_CHARS = 4096
MAX_BUTTON_BODY_CHARS = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE_CHARS = 20
MAX_BUTTON_ID_CHARS = 256
# Meta's throttling codes: too many calls, too many messages to one user, a spam rate limit, a pair rate limit.
THROTTLED = frozenset({4, 80007, 130429, 131048, 131056})


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str


class _Accepted(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: list[_Message]


class SentMessage(BaseModel):
    message_id: str  # the wamid, which delivery statuses name


class WhatsApp(Protocol):
    def send(self, phone_number_id: str, body: dict[str, Any]) -> SentMessage: ...


def text_message(to: str, text: str) -> dict[str, Any]:
    if not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise WhatsAppRejected(f"a text message has 1 to {MAX_TEXT_CHARS} characters", step=STEP,
                               whatsapp_error="text_length")
    return {**_to(to), "type": "text", "text": {"body": text, "preview_url": False}}


def button_message(to: str, text: str, buttons: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A body and one to three reply buttons, each ``(id, title)``."""
    if not text.strip() or len(text) > MAX_BUTTON_BODY_CHARS:
        raise WhatsAppRejected(f"a button message's body has 1 to {MAX_BUTTON_BODY_CHARS} characters", step=STEP,
                               whatsapp_error="body_length")
    if not 1 <= len(buttons) <= MAX_BUTTONS or len({i for i, _ in buttons}) != len(buttons):
        raise WhatsAppRejected(f"a button message has 1 to {MAX_BUTTONS} buttons with different ids", step=STEP,
                               whatsapp_error="buttons")
    for button_id, title in buttons:
        if not (0 < len(button_id) <= MAX_BUTTON_ID_CHARS and 0 < len(title.strip()) <= MAX_BUTTON_TITLE_CHARS):
            raise WhatsAppRejected(f"a button has an id of 1 to {MAX_BUTTON_ID_CHARS} characters and a title of 1 "
                                   f"to {MAX_BUTTON_TITLE_CHARS}", step=STEP, whatsapp_error="button")
    return {**_to(to), "type": "interactive", "interactive": {
        "type": "button", "body": {"text": text},
        "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]}}}


def template_message(to: str, name: str, language: str) -> dict[str, Any]:
    return {**_to(to), "type": "template", "template": {"name": name, "language": {"code": language}}}


def _to(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}


def _error_code(response: httpx.Response) -> int | None:
    try:
        error = response.json().get("error")
        code = error.get("code") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


class HttpWhatsApp:
    def __init__(self, graph_url: str, api_version: str, timeout_seconds: float = 5.0,
                 transport: httpx.BaseTransport | None = None, token: TokenSource = no_token) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.api_version = api_version
        self.token = token
        self._http = SharedClient(timeout_seconds, transport)

    def send(self, phone_number_id: str, body: dict[str, Any]) -> SentMessage:
        import httpx

        if not phone_number_id.isdigit():
            raise WhatsAppRejected("the business phone number id is not a number", step=STEP,
                                   whatsapp_error="phone_number_id")
        url = f"{self.graph_url}/{self.api_version}/{phone_number_id}/messages"
        try:
            response = self._http.get().post(url, json=body, headers=bearer(self.token()))
        except httpx.HTTPError as exc:  # not chained: its text may quote the request
            raise WhatsAppUnavailable(f"Graph API request failed: {type(exc).__name__}", step=STEP) from None
        status, code = response.status_code, _error_code(response)
        if status == 429 or status >= 500 or code in THROTTLED:
            raise WhatsAppUnavailable(f"the Graph API answered {status}", step=STEP, status=status,
                                      whatsapp_error=code)
        if status != 200:
            raise WhatsAppRejected(f"the Graph API refused the message ({status}, code {code})", step=STEP,
                                   status=status, whatsapp_error=code)
        try:
            accepted = _Accepted.model_validate(response.json())
        except ValueError:
            raise WhatsAppUnavailable("the Graph API answered with an unreadable body", step=STEP,
                                      status=status) from None
        if not accepted.messages or not accepted.messages[0].id:
            raise WhatsAppUnavailable("the Graph API's answer names no message", step=STEP, status=status)
        return SentMessage(message_id=accepted.messages[0].id)


@once_per_process
def from_settings() -> HttpWhatsApp | None:
    """The process's WhatsApp connector, or None when ``whatsapp_graph_url`` is not set."""
    from interlock.connectors.http import token_source
    from interlock.settings import WhatsAppSettings, load

    settings = load(WhatsAppSettings)
    if not settings.whatsapp_graph_url:
        return None
    return HttpWhatsApp(settings.whatsapp_graph_url, settings.whatsapp_api_version, settings.whatsapp_timeout_seconds,
                        token=token_source(settings.whatsapp_token_secret, settings.whatsapp_token,
                                           settings.whatsapp_token_cache_seconds, reason="whatsapp_token_unreadable"))
