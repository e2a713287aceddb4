"""OpenAI, or any OpenAI-compatible endpoint, through the ``openai`` SDK: the only module that imports it.

Structured outputs: the decision's pydantic model is the ``response_format`` (the SDK turns it into a strict
JSON schema); the answer comes back as text and is validated by the runner, so a compatible endpoint that
does not enforce schemas (vLLM, Ollama, a proxy) gets the same checks and the same feedback.

The SDK reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` itself; Interlock passes a key only when it read
one from Secrets Manager, and a base URL never (so ``OPENAI_BASE_URL`` is the one setting for Azure OpenAI's
v1 endpoint, vLLM, Ollama or a LiteLLM proxy). The SDK's own retries are off (``max_retries=0``): every
attempt must be on the timeline and fit the time the step has left, so the runner retries.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import openai

from interlock.ai.decision import Outcome
from interlock.ai.providers import ModelCall, ModelReply, ProviderFailure

# The SDK logs whole requests (prompts included) at DEBUG, e.g. under OPENAI_LOG=debug: logs must never carry
# a prompt (docs/ai.md, Privacy), so its loggers stay at INFO or above whatever the environment says.
for _name in ("openai", "httpx2", "httpcore2"):
    _logger = logging.getLogger(_name)
    if _logger.getEffectiveLevel() < logging.INFO:
        _logger.setLevel(logging.INFO)

# Statuses worth another try at the same model: conflicts, rate limits, the server's own trouble.
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def _retry_after(headers: object) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    # An HTTP date. A value that is neither (``Retry-After: soon``) counts as no Retry-After: the
    # parser raises ValueError, which would otherwise escape ``complete``'s except clauses uncaught.
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


class OpenAIProvider:
    name = "openai"

    def __init__(self, api_key: str | None = None, client: openai.OpenAI | None = None) -> None:
        self.client = client or openai.OpenAI(api_key=api_key, max_retries=0)

    def complete(self, call: ModelCall) -> ModelReply:
        try:
            if call.on_delta is not None:
                return self._stream(call, call.on_delta)
            raw = self.client.chat.completions.with_raw_response.parse(
                model=call.model,
                messages=call.messages,  # type: ignore[arg-type]
                response_format=call.output,
                max_completion_tokens=call.max_output_tokens,
                timeout=call.timeout_seconds,
            )
            body = raw.http_response.json()
        except openai.APITimeoutError as exc:
            raise ProviderFailure(Outcome.TIMEOUT, f"no answer within {call.timeout_seconds:.1f} s") from exc
        except openai.APIConnectionError as exc:
            raise ProviderFailure(Outcome.ERROR, "could not connect to the model endpoint") from exc
        except openai.RateLimitError as exc:
            raise ProviderFailure(Outcome.RATE_LIMITED, "rate limited (429)", status=429,
                                  retry_after=_retry_after(exc.response.headers)) from exc
        except openai.APIStatusError as exc:
            retryable = exc.status_code in _RETRYABLE_STATUS
            raise ProviderFailure(Outcome.ERROR, f"the endpoint answered {exc.status_code}", status=exc.status_code,
                                  same_tier=retryable, retry_after=_retry_after(exc.response.headers)) from exc
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise ProviderFailure(Outcome.ERROR, "the endpoint's answer is not JSON") from exc
        return _reply(body, call.model)

    def _stream(self, call: ModelCall, on_delta: Any) -> ModelReply:
        """The same call streamed (``stream=True``, the same strict schema as ``parse`` sends): each piece of the
        content to ``on_delta`` as it arrives, then the whole answer as :meth:`complete` returns it."""
        from openai.lib._parsing._completions import type_to_response_format_param  # what parse() sends

        # messages are plain dicts, as parse() takes them above
        stream = self.client.chat.completions.create(  # type: ignore[call-overload]
            model=call.model,
            messages=call.messages,
            response_format=type_to_response_format_param(call.output),
            max_completion_tokens=call.max_output_tokens,
            timeout=call.timeout_seconds,
            stream=True,
            stream_options={"include_usage": True},
        )
        content: list[str] = []
        refusal: list[str] = []
        finish: str | None = None
        model, tokens_in, tokens_out = call.model, 0, 0
        for chunk in stream:
            model = chunk.model or model
            if chunk.usage is not None:
                tokens_in, tokens_out = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
            for choice in chunk.choices[:1]:
                finish = choice.finish_reason or finish
                if choice.delta.refusal:
                    refusal.append(choice.delta.refusal)
                if choice.delta.content:
                    content.append(choice.delta.content)
                    on_delta(choice.delta.content)
        text = "".join(content)
        if finish == "content_filter" and not refusal:
            refusal.append("the endpoint's content filter stopped the answer")
        return ModelReply(text=text if content or not refusal else None, refusal="".join(refusal) or None,
                          tokens_in=tokens_in, tokens_out=tokens_out, model=model, finish_reason=finish)


def _reply(body: object, asked_for: str) -> ModelReply:
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise ProviderFailure(Outcome.ERROR, "the endpoint's answer has no choices")
    choice = _object(body["choices"][0])
    message = _object(choice.get("message"))
    usage = _object(body.get("usage"))
    content = message.get("content")
    refusal = message.get("refusal")
    finish = choice.get("finish_reason")
    if finish == "content_filter" and not refusal:
        refusal = "the endpoint's content filter stopped the answer"
    return ModelReply(
        text=content if isinstance(content, str) else None,
        refusal=str(refusal) if refusal else None,
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        model=str(body.get("model") or asked_for),
        finish_reason=str(finish) if finish else None,
    )


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
