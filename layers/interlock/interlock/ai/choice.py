"""Which provider answers a decision: OpenAI (or a compatible endpoint) when a key is configured, else the
offline provider. Checked at every decision, so a key stored after a function started is used once the
secret cache (``ai_secret_cache_seconds``) expires, with no redeploy.

The key comes from the Secrets Manager secret ``ai_api_key_secret`` (deployed: the stack creates it empty),
else from ``OPENAI_API_KEY`` (a laptop). The secret holds the key as plain text, or JSON ``{"api_key": "..."}``;
empty means "no key". A secret that cannot be read (throttled, access denied, deleted) is a transient error,
never "no key": the step is retried rather than decided offline.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Literal

from interlock.ai.providers import ModelProvider, OfflineProvider
from interlock.errors import NotConfigured, TransientError
from interlock.observability import logger
from interlock.settings import AiSettings

if TYPE_CHECKING:
    from interlock.ai.openai_provider import OpenAIProvider


def parse_key(value: str | None) -> str | None:
    text = (value or "").strip()
    if text.startswith(('"', "{")):  # a JSON string (quotes and all) or {"api_key": "..."}
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, dict):
            data = str(data.get("api_key") or "")
        text = data.strip() if isinstance(data, str) else ""
    return text or None


def kind_of_provider(setting: str, has_key: bool) -> Literal["offline", "openai", "no_key"]:
    """Who decides, from ``ai_provider`` and whether a key is configured: ``no_key`` is ``openai`` asked for
    with no key (a decision fails as not configured)."""
    if setting == "offline" or (setting == "auto" and not has_key):
        return "offline"
    return "openai" if has_key else "no_key"


class ProviderChoice:
    def __init__(self, settings: AiSettings) -> None:
        self.settings = settings
        self.offline = OfflineProvider()
        self._openai: OpenAIProvider | None = None
        self._key: str | None = None

    def _stored_key(self) -> str | None:
        name = self.settings.ai_api_key_secret
        if not name:
            return None
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(name, max_age=self.settings.ai_secret_cache_seconds)
        except parameters.exceptions.GetParameterError as exc:
            # Not "no key": deciding offline now would quietly send template replies where a model was meant
            # to decide. Step Functions retries the step; if the secret stays unreadable the run fails with
            # this reason.
            logger.warning("the AI API key secret could not be read", extra={"secret": name})
            raise TransientError(f"the AI API key secret {name!r} could not be read", step="decide",
                                 reason="ai_key_unreadable") from exc
        return parse_key(value if isinstance(value, str) else None)

    def __call__(self) -> ModelProvider:
        if self.settings.ai_provider == "offline":
            return self.offline
        key = self._stored_key()
        kind = kind_of_provider(self.settings.ai_provider,
                                key is not None or bool(os.environ.get("OPENAI_API_KEY", "").strip()))
        if kind != "openai":
            if kind == "no_key":
                raise NotConfigured("INTERLOCK_AI_PROVIDER is openai but no API key is configured (store it in "
                                    "the secret INTERLOCK_AI_API_KEY_SECRET names, or set OPENAI_API_KEY)",
                                    reason="ai_not_configured")
            return self.offline
        if self._openai is None or key != self._key:
            from interlock.ai.openai_provider import OpenAIProvider

            self._openai, self._key = OpenAIProvider(api_key=key), key
        return self._openai
