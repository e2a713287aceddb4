"""Three tiers as one step: every attempt on the timeline, a validated decision or a clean escalation.

For each model tier in order, up to ``1 + ai_retries_per_tier`` attempts:

1. an invalid (not JSON, schema-violating), refused or disallowed answer is tried again with the assistant's
   answer and the validation errors fed back to the model;
2. rate limits (429, waiting ``Retry-After`` when it fits in the time left, else moving on) and timeouts
   count as failed attempts of the tier; an error another try cannot fix (401, 404) ends the tier at once;
3. when every tier failed, the decision escalates to a human with the reason.

Before every call the per-run budget (tokens and estimated cost of every decision of the run, read back
from the timeline) and the time the step has left are checked; either running out escalates instead of
calling. A valid answer below the decision point's confidence threshold is kept but escalated too.

Timeline entries (``details.kind``): ``decision_context`` (the layers, their sizes, what was trimmed and the
messages; the system message, the same for every run of a prompt version, is kept once by its hash and named by
``content_sha256``: :meth:`~interlock.timeline.TimelineStore.prompt` reads it back), one ``decision_attempt``
per call (``processing`` when it passed, ``retried`` when not), and ``decision`` (the final object or the
escalation). Logs carry codes and counts only (:mod:`interlock.ai.privacy`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from interlock.ai.actions import disallowed
from interlock.ai.context import Context, ContextBuilder, ContextTooLarge, SessionItem, estimate_tokens
from interlock.ai.decision import Attempt, Decision, DecisionPoint, Escalation, Outcome, OutT
from interlock.ai.pricing import PriceTable
from interlock.ai.privacy import redact
from interlock.ai.prompts import Prompt, load_policy, load_prompt
from interlock.ai.providers import ModelCall, ModelProvider, ModelReply, ProviderFailure
from interlock.models import EntryState, RunView, TimelineEntry
from interlock.observability import MetricUnit, count, logger, metrics
from interlock.settings import AiSettings
from interlock.timeline import TimelineStore

# Kept back from the step's remaining time for recording the outcome and returning.
MARGIN_SECONDS = 1.5
# A call with less than this to run is not worth starting.
MIN_CALL_SECONDS = 1.0
# The pause before another try after a 429 that named no Retry-After.
DEFAULT_RATE_LIMIT_PAUSE = 1.0

# The most of a model's raw answer one attempt entry keeps: an endpoint that ignores the output limit must not
# push the entry past DynamoDB's 400 KB item limit (and fail the step); the answer is invalid at that size.
MAX_STORED_OUTPUT_CHARS = 20_000

# Models already warned about for having no price (once per process).
_UNPRICED: set[str] = set()

# The most of a failed answer fed back to the model with its errors.
MAX_FED_BACK_CHARS = 4_000

ATTEMPT = "decision_attempt"
CONTEXT = "decision_context"
DECISION = "decision"


def _errors(exc: ValidationError) -> list[str]:
    """Validation errors as ``location: message`` (the input values are left out: they may be personal)."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "answer"
        out.append(_capped(f"{loc}: {err.get('msg', 'invalid')}"))
    return out[:20]


def _capped(text: str, limit: int = 300) -> str:
    """One error, cut: some of pydantic's messages quote what the model wrote (a tag, an extra key)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stored(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_STORED_OUTPUT_CHARS:
        return text
    return f"{text[:MAX_STORED_OUTPUT_CHARS]}… [{len(text) - MAX_STORED_OUTPUT_CHARS} more characters not stored]"


def spent_by_run(view: RunView | None) -> tuple[int, float]:
    """Tokens and estimated cost of every model attempt already on the run's timeline."""
    tokens, cost = 0, 0.0
    for entry in view.timeline if view else ():
        if entry.details.get("kind") == ATTEMPT:
            tokens += int(entry.details.get("tokens_in") or 0) + int(entry.details.get("tokens_out") or 0)
            cost += float(entry.details.get("cost_usd") or 0.0)
    return tokens, cost


# What a step's entry may tell the model about the run so far: codes and outcomes, never the data itself (the
# request layer carries what a decision needs; a customer's address or a message's text must not ride along).
HISTORY_FACTS = ("event_source", "event_type", "category", "confidence", "decided_by", "escalation", "found",
                 "partial", "reason", "outcome")


def run_history(view: RunView | None) -> list[SessionItem]:
    """The run's own history for the session layer: one line per step entry (model attempts left out)."""
    items = []
    for entry in view.timeline if view else ():
        if entry.details.get("kind") in (ATTEMPT, CONTEXT):
            continue
        facts = [f"{k}={entry.details[k]}" for k in HISTORY_FACTS
                 if isinstance(entry.details.get(k), str | int | float | bool)]
        text = f"{entry.step} {entry.state.value}" + (f" ({', '.join(facts)})" if facts else "")
        items.append(SessionItem(at=entry.at.isoformat(timespec="seconds"), kind="run", text=text))
    return items


class _Escalate(Exception):
    def __init__(self, reason: Escalation) -> None:
        self.reason = reason


class DecisionRunner:
    def __init__(
        self,
        provider: ModelProvider | Callable[[], ModelProvider],
        store: TimelineStore,
        settings: AiSettings,
        builder: ContextBuilder | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self.store = store
        self.settings = settings
        self.prices = PriceTable.from_setting(settings.ai_prices)
        self.builder = builder or ContextBuilder()
        self.sleep = sleep
        self.clock = clock

    def provider(self) -> ModelProvider:
        return self._provider if hasattr(self._provider, "complete") else self._provider()  # type: ignore[return-value]

    def decide(
        self,
        point: DecisionPoint[OutT],
        run_id: str,
        request: Mapping[str, Any],
        session: Sequence[SessionItem] = (),
        deadline: float | None = None,
        step: str | None = None,
        attempt: int = 0,
        on_delta: Callable[[int, str], None] | None = None,
    ) -> Decision[OutT]:
        """Decide ``point`` for this run. ``deadline`` is a ``clock()`` value the step must be done by.
        ``on_delta(attempt, text)``: the answer's text as the model streams it, each piece with the number of the
        attempt it belongs to (a retry starts over); the whole answer is validated as ever."""
        step = step or point.name
        provider = self.provider()
        prompt = load_prompt(point.prompt, point.prompt_version, directory=prompt_dir(point))
        view = self.store.get(run_id)
        spent_tokens, spent_cost = spent_by_run(view)
        try:
            context = self.builder.build(prompt.text, load_policy(point.policy, policy_dir(point, self.settings)),
                                         # Earlier turns of the conversation came before this run: oldest
                                         # first, so trimming drops the oldest.
                                         [*session, *run_history(view)], request)
        except ContextTooLarge as exc:
            # This request cannot be put in front of a model within the budgets: a person decides it.
            return self._finish(point, run_id, step, attempt, prompt, provider.name,
                                _State(spent_tokens, spent_cost, last_errors=(str(exc),)), None, None, None,
                                Escalation.CONTEXT_TOO_LARGE)
        tiers = ("offline",) if provider.name == "offline" else (point.tiers or self.settings.tiers)
        self._record(run_id, step, attempt, EntryState.PROCESSING, {
            "kind": CONTEXT, "decision": point.name, "provider": provider.name, "tiers": list(tiers),
            "prompt": prompt.name, "prompt_version": prompt.version, "prompt_hash": prompt.sha256,
            "tokens": context.tokens, "budgets": context.budgets, "trimmed": context.trimmed,
            "run_spent": {"tokens": spent_tokens, "cost_usd": round(spent_cost, 6)},
            "messages": self._kept(context.messages),
        })
        state = _State(spent_tokens=spent_tokens, spent_cost=spent_cost)
        state.on_delta = on_delta
        try:
            output, tier, model = self._tiers(point, provider, prompt, context, request, tiers, state, run_id,
                                              step, attempt, deadline)
        except _Escalate as esc:
            return self._finish(point, run_id, step, attempt, prompt, provider.name, state, None, None, None,
                                esc.reason)
        escalation = Escalation.LOW_CONFIDENCE if output.confidence < point.min_confidence else None
        return self._finish(point, run_id, step, attempt, prompt, provider.name, state, output, tier, model,
                            escalation)

    # -- the tiers ---------------------------------------------------------------------------------------------

    def _tiers(self, point: DecisionPoint[OutT], provider: ModelProvider, prompt: Prompt, context: Context,
               request: Mapping[str, Any], tiers: tuple[str, ...], state: _State, run_id: str, step: str,
               attempt: int, deadline: float | None) -> tuple[OutT, int, str]:
        tries = 1 + self.settings.ai_retries_per_tier
        for tier, model in enumerate(tiers, start=1):
            if tier > 1:
                count("AiFallbacks")
                logger.warning("decision falls back to a simpler tier",
                               extra={"decision": point.name, "tier": tier, "model": model})
            messages = list(context.messages)
            for try_in_tier in range(1, tries + 1):
                timeout = self._before_call(point, model, state, messages, deadline)
                record = Attempt(decision=point.name, tier=tier, provider=provider.name, model=model,
                                 try_in_tier=try_in_tier, prompt_version=prompt.version, prompt_hash=prompt.sha256,
                                 outcome=Outcome.OK)
                started = self.clock()
                call = ModelCall(decision=point.name, model=model, messages=messages, output=point.output,
                                 timeout_seconds=timeout, max_output_tokens=point.max_output_tokens,
                                 request=request, offline=point.offline, on_delta=state.delta_sink())
                try:
                    try:
                        reply = provider.complete(call)
                    except ProviderFailure:
                        raise
                    except Exception as exc:  # a provider's own bug or an answer it cannot read: not this tier
                        raise ProviderFailure(Outcome.ERROR, f"the provider failed: {type(exc).__name__}",
                                              same_tier=False) from exc
                except ProviderFailure as failure:
                    record = record.model_copy(update={
                        "outcome": failure.outcome, "latency_ms": self._ms(started),
                        "validation_errors": [_capped(failure.message)], "retry_after_seconds": failure.retry_after,
                        **self._unanswered_usage(failure, model, messages)})
                    self._attempted(run_id, step, attempt, record, state)
                    if not failure.same_tier or try_in_tier == tries:
                        break
                    # A 429 always pauses; a 503 that names a Retry-After is honoured the same way.
                    waits = failure.outcome is Outcome.RATE_LIMITED or failure.retry_after is not None
                    if waits and not self._pause(failure.retry_after, deadline):
                        break  # the wait does not fit in the time left: the next tier may not be limited
                    continue
                output, record = self._judge(point, reply, record.model_copy(update={"latency_ms": self._ms(started)}))
                self._attempted(run_id, step, attempt, record, state)
                if output is not None:
                    return output, tier, record.model
                messages = [*messages, *_feedback(reply, record)]
        raise _Escalate(Escalation.ALL_TIERS_FAILED)

    def _before_call(self, point: DecisionPoint[Any], model: str, state: _State, messages: list[dict[str, str]],
                     deadline: float | None) -> float:
        """The timeout for the next call; escalates when the budget or the time left cannot afford it.

        The call is priced before it is made: the estimated prompt plus the most it may answer."""
        s = self.settings
        prompt_tokens = sum(estimate_tokens(m["content"]) for m in messages)
        expected_tokens = prompt_tokens + point.max_output_tokens
        expected_cost = self.prices.cost(model, prompt_tokens, point.max_output_tokens) or 0.0
        if (model != "offline" and state.spent_tokens + expected_tokens > s.ai_run_max_tokens) or \
                state.spent_cost + expected_cost > s.ai_run_max_cost_usd:
            raise _Escalate(Escalation.BUDGET_EXCEEDED)
        timeout = s.ai_call_timeout_seconds
        if deadline is not None:
            left = deadline - self.clock() - MARGIN_SECONDS
            if left < MIN_CALL_SECONDS:
                raise _Escalate(Escalation.NO_TIME_LEFT)
            timeout = min(timeout, left)
        return timeout

    def _unanswered_usage(self, failure: ProviderFailure, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        """A call that timed out was sent and may be billed: its prompt counts against the run's budget, as
        estimated (``usage_estimated``); a refused connection or an error status is not billed."""
        if failure.outcome is not Outcome.TIMEOUT or model == "offline":
            return {}
        tokens_in = sum(estimate_tokens(m["content"]) for m in messages)
        return {"tokens_in": tokens_in, "cost_usd": self._cost(model, tokens_in, 0), "usage_estimated": True}

    def _cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        cost = self.prices.cost(model, tokens_in, tokens_out)
        if cost is None and model not in _UNPRICED:
            _UNPRICED.add(model)
            logger.warning("no price for this model: its cost is not estimated and only the token ceiling applies "
                           "(INTERLOCK_AI_PRICES adds one)", extra={"model": model})
        return cost

    def _pause(self, retry_after: float | None, deadline: float | None) -> bool:
        """Wait before another try at a rate-limited model; False when the wait does not fit the time left."""
        wait = DEFAULT_RATE_LIMIT_PAUSE if retry_after is None else retry_after
        # Never longer than one call may take, whatever the header says (an hour, inf), deadline or not.
        if not math.isfinite(wait) or wait > self.settings.ai_call_timeout_seconds:
            return False
        if deadline is not None and self.clock() + wait + MARGIN_SECONDS + MIN_CALL_SECONDS > deadline:
            return False
        self.sleep(wait)
        return True

    def _judge(self, point: DecisionPoint[OutT], reply: ModelReply, record: Attempt) -> tuple[OutT | None, Attempt]:
        cost = self.prices.cost(reply.model, reply.tokens_in, reply.tokens_out)
        if cost is None:
            cost = self._cost(record.model, reply.tokens_in, reply.tokens_out)
        update: dict[str, Any] = {"tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "cost_usd": cost,
                                  "reported_model": reply.model,
                                  "output": _stored(reply.text if reply.text is not None else reply.refusal)}
        if reply.refusal:
            return None, record.model_copy(update={**update, "outcome": Outcome.REFUSAL,
                                                   "validation_errors": ["the model refused to answer"]})
        if reply.text is None:
            return None, record.model_copy(update={**update, "outcome": Outcome.INVALID_OUTPUT,
                                                   "validation_errors": ["the answer was empty"]})
        try:
            output = point.output.model_validate_json(reply.text)
        except ValidationError as exc:
            errors = _errors(exc)
            if reply.finish_reason == "length":
                errors.insert(0, f"the answer was cut off at {point.max_output_tokens} tokens")
            return None, record.model_copy(update={**update, "outcome": Outcome.INVALID_OUTPUT,
                                                   "validation_errors": errors})
        chosen = getattr(getattr(output, "action", None), "action", None)
        if point.allowed_actions and chosen is not None:
            why = disallowed(str(chosen), point.allowed_actions)
            if why:
                return None, record.model_copy(update={**update, "outcome": Outcome.DISALLOWED_ACTION,
                                                       "validation_errors": [why]})
        return output, record.model_copy(update=update)

    # -- recording -----------------------------------------------------------------------------------------------

    def _attempted(self, run_id: str, step: str, attempt: int, record: Attempt, state: _State) -> None:
        state.attempts += 1
        state.spent_tokens += record.tokens_in + record.tokens_out
        state.spent_cost += record.cost_usd or 0.0
        state.tokens_in += record.tokens_in
        state.tokens_out += record.tokens_out
        state.cost += record.cost_usd or 0.0
        state.last_errors = tuple(record.validation_errors)
        ok = record.outcome is Outcome.OK
        self._record(run_id, step, attempt, EntryState.PROCESSING if ok else EntryState.RETRIED,
                     {"kind": ATTEMPT, **record.model_dump(mode="json")})
        count("AiAttempts")
        if not ok:
            count("AiAttemptsFailed")
        if record.tokens_in:
            count("AiTokensIn", record.tokens_in)
        if record.tokens_out:
            count("AiTokensOut", record.tokens_out)
        if record.cost_usd:
            metrics.add_metric(name="AiCostUsd", unit=MetricUnit.NoUnit, value=record.cost_usd)
        logger.info("decision attempt", extra={
            "decision": record.decision, "tier": record.tier, "model": record.model, "outcome": record.outcome.value,
            "tokens_in": record.tokens_in, "tokens_out": record.tokens_out, "latency_ms": record.latency_ms,
            "errors": len(record.validation_errors),
            "first_error": redact(record.validation_errors[0]) if record.validation_errors else None})

    def _finish(self, point: DecisionPoint[OutT], run_id: str, step: str, attempt: int, prompt: Prompt,
                provider: str, state: _State, output: OutT | None, tier: int | None, model: str | None,
                escalation: Escalation | None) -> Decision[OutT]:
        decision = Decision(name=point.name, output=output, provider=provider, model=model, tier=tier,
                            prompt_version=prompt.version, prompt_hash=prompt.sha256, attempts=state.attempts,
                            tokens_in=state.tokens_in, tokens_out=state.tokens_out, cost_usd=state.cost,
                            escalation=escalation, last_errors=() if output is not None else state.last_errors)
        self._record(run_id, step, attempt, EntryState.PROCESSING, {
            "kind": DECISION, **decision.summary(), "prompt_hash": prompt.sha256,
            "output": output.model_dump(mode="json") if output is not None else None})
        count("AiDecisions")
        if escalation is not None:
            count("AiEscalations")
            logger.warning("decision escalated to a human",
                           extra={"decision": point.name, "reason": escalation.value, "attempts": state.attempts})
        return decision

    def _kept(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The messages as the context entry records them: the system message (the prompt and the policies, the
        same for every run of a prompt version) kept once by its hash and named by it, the rest as sent."""
        import hashlib

        recorded = []
        for message in messages:
            if message.get("role") == "system":
                text = str(message.get("content", ""))
                sha256 = hashlib.sha256(text.encode()).hexdigest()
                self.store.keep_prompt(sha256, text)
                recorded.append({"role": "system", "content_sha256": sha256, "chars": len(text)})
            else:
                recorded.append(dict(message))
        return recorded

    def _record(self, run_id: str, step: str, attempt: int, state: EntryState, details: dict[str, Any]) -> None:
        self.store.record(run_id, TimelineEntry(state=state, step=step, attempt=attempt, details=details))

    def _ms(self, started: float) -> int:
        return round((self.clock() - started) * 1000)


def prompt_dir(point: DecisionPoint[Any]) -> Path:
    """Where ``point``'s prompt files are: its workflow package's ``prompts/``."""
    return point.folder / "prompts"


def policy_dir(point: DecisionPoint[Any], settings: AiSettings) -> str:
    """Where ``point``'s policy is: the operator's ``ai_policy_dir`` when it holds the policy, else the workflow
    package's ``policies/``."""
    if settings.ai_policy_dir and (Path(settings.ai_policy_dir) / f"{point.policy}.md").is_file():
        return settings.ai_policy_dir
    return str(point.folder / "policies")


class _State:
    def __init__(self, spent_tokens: int, spent_cost: float, last_errors: tuple[str, ...] = ()) -> None:
        self.spent_tokens = spent_tokens
        self.spent_cost = spent_cost
        self.attempts = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost = 0.0
        self.last_errors: tuple[str, ...] = last_errors
        self.on_delta: Callable[[int, str], None] | None = None

    def delta_sink(self) -> Callable[[str], None] | None:
        """Where the next attempt's streamed pieces go: ``on_delta`` with that attempt's number."""
        on_delta, number = self.on_delta, self.attempts + 1
        if on_delta is None:
            return None
        return lambda text: on_delta(number, text)


def _feedback(reply: ModelReply, record: Attempt) -> list[dict[str, str]]:
    """The failed answer and why it failed, for the next try at the same tier."""
    said = reply.text if reply.text is not None else (reply.refusal or "")
    if len(said) > MAX_FED_BACK_CHARS:  # enough for the model to see its mistake, not a second huge prompt
        said = said[:MAX_FED_BACK_CHARS] + " [cut]"
    errors = "\n".join(f"- {e}" for e in record.validation_errors)
    if record.outcome is Outcome.REFUSAL:
        ask = ("If you cannot decide, give your best answer with a low confidence and say why in reasoning; "
               "a person will review it.")
    else:
        ask = "Answer again with one JSON object that matches the schema exactly."
    return [{"role": "assistant", "content": said or "(no answer)"},
            {"role": "user", "content": f"Your answer was not accepted:\n{errors}\n{ask}"}]

