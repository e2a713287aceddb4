"""Hand-off links and the page's use cases (interlock.handoffs) against moto's DynamoDB: a link works while its
hand-off lasts and until its deadline; a reply is one run per form; a hand-back ends the link once, and is taken
back when its run cannot be queued. Only the token's hash is stored."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from interlock.handoffs import HandoffIssuer, HandoffLinks, HandoffService, LinkStatus, Outcome, reply_problem
from interlock.kit import registry
from interlock.kit.conversation import Conversations
from interlock.kit.follow_ups import FollowUpMessage

from integration.support import REGION, TABLE_NAME, create_table

CONVERSATIONS = "interlock-test-conversations"
KEY = "whatsapp:106540352242922:16315551234"
RUN = "0f8fad5b-d9cb-469f-a165-70867728950e"
BASE = "https://hooks.example.com"


class Clock:
    now = 1_733_212_800.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(aws: None) -> dict[str, Any]:
    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client)
    client.create_table(TableName=CONVERSATIONS, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "conversation", "KeyType": "HASH"},
                                   {"AttributeName": "item", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                              for n in ("conversation", "item")])
    clock = Clock()
    conversations = Conversations(CONVERSATIONS, client)
    conversations.hand_off(KEY, {"reason": "asked", "run_id": RUN})
    sent: list[FollowUpMessage] = []
    links = HandoffLinks(TABLE_NAME, client)
    service = HandoffService(links, lambda workflow: conversations, lambda batch, step: sent.extend(batch), clock)
    url = HandoffIssuer(links, BASE, clock).issue("assistant", KEY, RUN, "support@example.com", "asked", 3600)
    return {"client": client, "clock": clock, "conversations": conversations, "sent": sent, "service": service,
            "token": url.rsplit("/", 1)[1], "url": url}


def test_a_link_is_a_256_bit_token_of_which_only_the_hash_is_stored(world: dict[str, Any]) -> None:
    assert world["url"].startswith(f"{BASE}/handoffs/") and len(world["token"]) == 43
    items = world["client"].scan(TableName=TABLE_NAME)["Items"]
    assert len(items) == 1 and world["token"] not in str(items)
    assert items[0]["pk"]["S"].startswith("HANDOFF#")


def test_the_page_shows_the_conversation_while_its_hand_off_lasts(world: dict[str, Any]) -> None:
    service: HandoffService = world["service"]
    view = service.view(world["token"])
    assert view is not None and view.status is LinkStatus.OPEN and view.link.reason == "asked"
    assert service.view("x" * 43) is None and service.view("not a token") is None
    world["clock"].now += 3600
    assert service.view(world["token"]).status is LinkStatus.EXPIRED  # type: ignore[union-attr]
    assert service.reply(world["token"], "F" * 24, "hi").outcome is Outcome.EXPIRED
    assert world["sent"] == []


def test_a_hand_back_elsewhere_or_a_later_hand_off_ends_the_link(world: dict[str, Any]) -> None:
    conversations: Conversations = world["conversations"]
    conversations.hand_back(KEY)
    assert world["service"].view(world["token"]).status is LinkStatus.ENDED
    conversations.hand_off(KEY, {"reason": "asked", "run_id": "another-run"})
    assert world["service"].view(world["token"]).status is LinkStatus.ENDED  # that hand-off is another person's
    assert world["service"].hand_back(world["token"]).outcome is Outcome.ENDED and world["sent"] == []


def test_a_reply_is_one_run_per_form_and_carries_the_words_and_who(world: dict[str, Any]) -> None:
    service: HandoffService = world["service"]
    first = service.reply(world["token"], "F" * 24, "Your parcel left today.")
    again = service.reply(world["token"], "F" * 24, "Your parcel left today.")
    other = service.reply(world["token"], "G" * 24, "And a second one.")
    assert first.outcome is Outcome.DONE and first.run_id == again.run_id != other.run_id
    messages = world["sent"]
    assert messages[0].dedupe_key == messages[1].dedupe_key != messages[2].dedupe_key
    assert messages[0].follow_up == registry.workflow("assistant").handoff_page.reply  # type: ignore[union-attr]
    assert messages[0].started_by == RUN
    assert messages[0].data == {"conversation": KEY, "text": "Your parcel left today.", "by": "support@example.com"}


def test_a_hand_back_ends_the_link_once_and_is_taken_back_when_its_run_cannot_be_queued(
        world: dict[str, Any]) -> None:
    service: HandoffService = world["service"]
    broken = HandoffService(service.links, service.conversations, _refuse, service.clock)
    with pytest.raises(RuntimeError):
        broken.hand_back(world["token"])
    assert service.view(world["token"]).status is LinkStatus.OPEN  # type: ignore[union-attr]
    done = service.hand_back(world["token"])
    assert done.outcome is Outcome.DONE and len(world["sent"]) == 1
    assert service.hand_back(world["token"]).outcome is Outcome.ENDED and len(world["sent"]) == 1
    assert service.reply(world["token"], "F" * 24, "late").outcome is Outcome.ENDED


def _refuse(batch: list[FollowUpMessage], step: str) -> None:
    raise RuntimeError("the ingest queue is down")


@pytest.mark.parametrize(("text", "problem"), [("", "Write a reply first."), ("  \n ", "Write a reply first."),
                                               ("x" * 4001, "A reply is at most 4,000 characters."),
                                               ("😀" * 3500, "A reply is at most 4,000 characters."),
                                               ("Thanks, done.", None)])
def test_a_reply_is_one_to_4000_characters_that_fit_a_run(text: str, problem: str | None) -> None:
    assert reply_problem(text) == problem
