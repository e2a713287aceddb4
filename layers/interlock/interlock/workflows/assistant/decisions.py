"""The assistant's decision points: the turn (which action from the allowlist, and its words) and the answer about
an order the connector looked up.

Structured outputs: one object, its action one of the allowlist's shapes (an ``anyOf``: strict mode's union). The
runner refuses an action off the allowlist and retries with the error; the step turns a low-confidence answer into a
clarification and an answer nobody could give into the holding reply and a hand-off. Offline (no model configured)
the rules answer (:func:`rules.offline_turn`, :func:`rules.order_text`). Only the deciding steps import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interlock.ai.decision import DecisionOutput, DecisionPoint
from interlock.workflows.assistant import rules
from interlock.workflows.assistant.models import OrderFacts

ACTIONS = ("reply", "ask_clarification", "look_up_order", "create_task", "hand_off_to_human")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Option(_Shape):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    title: str = Field(min_length=1, max_length=20)


class ReplyAction(_Shape):
    action: Literal["reply"]
    text: str = Field(min_length=1, max_length=1000)


class AskClarification(_Shape):
    action: Literal["ask_clarification"]
    question: str = Field(min_length=1, max_length=500)
    options: list[Option] = Field(min_length=1, max_length=3)


class LookUpOrder(_Shape):
    action: Literal["look_up_order"]
    order_number: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,19}$")


class CreateTask(_Shape):
    action: Literal["create_task"]
    title: str = Field(min_length=1, max_length=120)
    team: Literal["support", "billing", "engineering"]


class HandOff(_Shape):
    action: Literal["hand_off_to_human"]
    reason: str = Field(min_length=1, max_length=200)


class TurnOutput(DecisionOutput):
    action: ReplyAction | AskClarification | LookUpOrder | CreateTask | HandOff


class OrderAnswer(DecisionOutput):
    text: str = Field(min_length=1, max_length=1000)


def offline_turn(request: Mapping[str, Any]) -> TurnOutput:
    return TurnOutput.model_validate({"action": rules.offline_turn(request), "confidence": rules.OFFLINE_CONFIDENCE,
                                      "reasoning": "assistant rules (rules.offline_turn)"})


def offline_order(request: Mapping[str, Any]) -> OrderAnswer:
    facts = OrderFacts.model_validate(request.get("order") or {"number": "", "found": False})
    return OrderAnswer(text=rules.order_text(facts), confidence=rules.OFFLINE_CONFIDENCE,
                       reasoning="order template (rules.order_text)")


ASSISTANT_TURN: DecisionPoint[TurnOutput] = DecisionPoint(
    name="assistant_turn",
    prompt="assistant_turn",
    policy="assistant",
    output=TurnOutput,
    min_confidence=0.6,
    offline=offline_turn,
    allowed_actions=ACTIONS,
    max_output_tokens=500,
    folder=Path(__file__).parent,
)

ANSWER_ORDER: DecisionPoint[OrderAnswer] = DecisionPoint(
    name="answer_order",
    prompt="answer_order",
    policy="assistant",
    output=OrderAnswer,
    min_confidence=0.6,
    offline=offline_order,
    max_output_tokens=300,
    folder=Path(__file__).parent,
)
