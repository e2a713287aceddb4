"""A conversation's inbox, its one turn at a time and its history, against moto's DynamoDB."""

from __future__ import annotations

import threading

import boto3
import pytest
from interlock.channels import Inbound, MessageKind
from interlock.kit.conversation import CLAIM_SECONDS, Conversations

from integration.support import REGION

TABLE = "interlock-table-conversations"
KEY = "whatsapp:106540352242922:16315551234"


class Clock:
    def __init__(self) -> None:
        self.now = 1_733_212_800.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(aws: None, clock: Clock) -> Conversations:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "conversation", "KeyType": "HASH"},
                                   {"AttributeName": "item", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                              for n in ("conversation", "item")])
    return Conversations(TABLE, client, clock=clock)


def message(message_id: str, sent_at: float, text: str = "hi", conversation: str = KEY) -> Inbound:
    return Inbound(channel="whatsapp", conversation=conversation, sender="16315551234", message_id=message_id,
                   sent_at=sent_at, kind=MessageKind.TEXT, text=text)


def test_the_inbox_is_in_the_channels_order_whatever_the_order_of_arrival(store: Conversations) -> None:
    for m in (message("wamid.3", 1733212803, "three"), message("wamid.1", 1733212801, "one"),
              message("wamid.2", 1733212802, "two")):
        assert store.append(m)

    assert [w.message.text for w in store.waiting(KEY)] == ["one", "two", "three"]
    assert store.state(KEY).last_inbound_at == 1733212803  # a late message never moved it back


def test_a_redelivered_message_is_in_the_inbox_once(store: Conversations) -> None:
    assert store.append(message("wamid.1", 1733212801))
    assert store.append(message("wamid.1", 1733212801)) is False
    assert len(store.waiting(KEY)) == 1


def test_one_run_holds_the_turn_and_a_second_joins_it(store: Conversations) -> None:
    assert store.claim(KEY, "run-a") is None
    assert store.claim(KEY, "run-b") == "run-a"
    assert store.claim(KEY, "run-a") is None  # the holder's retry
    assert store.claim("whatsapp:1:other", "run-b") is None  # another conversation is another turn


def test_a_claim_left_by_a_dead_turn_expires(store: Conversations, clock: Clock) -> None:
    assert store.claim(KEY, "run-dead") is None
    clock.now += CLAIM_SECONDS - 1
    assert store.claim(KEY, "run-b") == "run-dead"
    clock.now += 2
    assert store.claim(KEY, "run-b") is None
    assert store.state(KEY).turn_run == "run-b"


def test_release_gives_the_turn_up_and_returns_what_came_in_meanwhile(store: Conversations) -> None:
    store.append(message("wamid.1", 1733212801))
    store.claim(KEY, "run-a")
    taken = store.waiting(KEY)
    store.append(message("wamid.2", 1733212809, "one more thing"))  # during the turn

    assert store.record_turn(KEY, "run-a", [w.item for w in taken], {"action": "reply"})
    left = store.release(KEY, "run-a")

    assert [w.message.text for w in left] == ["one more thing"]
    assert store.state(KEY).turn_run is None
    assert store.claim(KEY, "run-next") is None


def test_a_release_by_a_run_that_lost_its_claim_leaves_the_holder_alone(store: Conversations,
                                                                        clock: Clock) -> None:
    store.claim(KEY, "run-slow")
    clock.now += CLAIM_SECONDS + 1
    store.claim(KEY, "run-b")
    store.release(KEY, "run-slow")
    assert store.state(KEY).turn_run == "run-b"


def test_a_turn_is_recorded_once_and_its_messages_leave_the_inbox(store: Conversations) -> None:
    store.append(message("wamid.1", 1733212801))
    store.append(message("wamid.2", 1733212802))
    handled = [w.item for w in store.waiting(KEY)]

    assert store.record_turn(KEY, "run-a", handled, {"sent": "Hello"})
    assert store.record_turn(KEY, "run-a", handled, {"sent": "Hello"}) is False  # the step's retry

    (turn,) = store.history(KEY)
    assert (turn.run_id, turn.record) == ("run-a", {"sent": "Hello"})
    assert store.waiting(KEY) == []


def test_history_is_the_last_turns_oldest_first(store: Conversations) -> None:
    for i in range(1, 8):
        m = message(f"wamid.{i}", 1733212800 + i)
        store.append(m)
        store.record_turn(KEY, f"run-{i}", [w.item for w in store.waiting(KEY)], {"n": i})

    assert [t.record["n"] for t in store.history(KEY, limit=3)] == [5, 6, 7]


def test_a_handoff_is_set_once_and_handed_back_once(store: Conversations) -> None:
    assert store.hand_off(KEY, {"reason": "asked_for_a_person", "run_id": "run-a"})
    assert store.hand_off(KEY, {"reason": "again"}) is False
    assert store.state(KEY).handed_off == {"reason": "asked_for_a_person", "run_id": "run-a"}
    assert store.hand_back(KEY)
    assert store.hand_back(KEY) is False
    assert store.state(KEY).handed_off is None


def test_runs_racing_for_one_conversation_get_one_turn_and_lose_no_message(store: Conversations,
                                                                           serialised_moto: None) -> None:
    """Given a turn that holds the claim and ten messages arriving while it ends, each handled by a run that
    appends then claims: every message is either in a turn that claimed, or waiting for the release's next turn."""
    store.append(message("wamid.0", 1733212800))
    store.claim(KEY, "run-0")
    claimed: list[str] = []
    barrier = threading.Barrier(11)

    def arrive(i: int) -> None:
        barrier.wait()
        store.append(message(f"wamid.{i}", 1733212800 + i))
        if store.claim(KEY, f"run-{i}") is None:
            claimed.append(f"run-{i}")

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(1, 11)]
    for t in threads:
        t.start()
    barrier.wait()
    left_after_release = store.release(KEY, "run-0")
    for t in threads:
        t.join()

    assert len(claimed) <= 1  # never two turns at once
    holder = store.state(KEY).turn_run
    assert holder == (claimed[0] if claimed else None)
    # Nothing lost: with no new holder, the release saw every late message and starts the next turn with them.
    if not claimed:
        assert {w.message.message_id for w in left_after_release} == {f"wamid.{i}" for i in range(11)}
    assert {w.message.message_id for w in store.waiting(KEY)} == {f"wamid.{i}" for i in range(11)}


def test_a_link_names_a_conversation_by_another_key(store: Conversations) -> None:
    assert store.linked("thread:slack:C07SUPPORT:1733212800.000100") is None
    store.link("thread:slack:C07SUPPORT:1733212800.000100", KEY)
    assert store.linked("thread:slack:C07SUPPORT:1733212800.000100") == KEY
    assert store.history(KEY) == [] and store.waiting(KEY) == []  # a link is no turn and no message
