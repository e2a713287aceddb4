"""Constants shared by the local-cloud tests."""

from interlock.webhooks.base import SourceSecrets

SECRETS = {
    "form": SourceSecrets(signing=("whsec_" + "A" * 32, "whsec_" + "B" * 32)),
    "chat": SourceSecrets(signing=("c0ffee" * 5,), extras={"verify_token": "let-me-in"}),
    "gh": SourceSecrets(signing=()),  # deliberately none: no Secrets Manager secret, the source answers 404
}
API_URL = "http://127.0.0.1:9"
