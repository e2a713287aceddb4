"""Constants shared by the local-cloud tests."""

SECRETS = {"form": ["whsec_" + "A" * 32, "whsec_" + "B" * 32]}
API_URL = "http://127.0.0.1:9"
