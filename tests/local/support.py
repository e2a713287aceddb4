"""Constants and helpers shared by the local-cloud tests."""

from typing import Any

from interlock.webhooks.base import SourceSecrets

SECRETS = {
    "form": SourceSecrets(signing=("whsec_" + "A" * 32, "whsec_" + "B" * 32)),
    "chat": SourceSecrets(signing=("c0ffee" * 5,), extras={"verify_token": "let-me-in"}),
    "gh": SourceSecrets(signing=()),  # deliberately none: no Secrets Manager secret, the source answers 404
}
API_URL = "http://127.0.0.1:9"


def create_keyed_table(client: Any, name: str) -> None:
    """A table keyed as Interlock's is (``pk`` and ``sk``, both strings), on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
