"""Webhook signing secrets: one Secrets Manager secret per webhook source, named by the topology.

The value is what the provider issues (:data:`SECRET_FORMATS`): one or more whitespace-separated signing
secrets, every one of them accepted, so a provider's secret can be rotated by adding the new one next to
the old and removing the old later; or, for a provider that needs more than a signing secret (WhatsApp's
verify token), a JSON object ``{"signing": [...], "verify_token": "..."}``
(``interlock.ingest.ports.parse_secret``). The stack only creates a placeholder holding no signing secret
(:data:`PLACEHOLDER`), so the source answers 404, as a disabled one, until an operator stores the
provider's value (see docs/deploy.md). Only functions granted ``SECRETS_READ`` can read these secrets.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from interlock.topology import Topology

from infra.nag import acknowledge
from infra.naming import construct_id

# What a new source's secret holds: no signing secret (interlock.ingest.ports.parse_secret reads it as none).
PLACEHOLDER = '{"signing": []}'

# scheme -> what the secret holds, as the secret's description tells the operator who sets it
SECRET_FORMATS = {
    "standard-webhooks": "the sender's signing secret, whsec_<base64>",
    "stripe": "the endpoint's signing secret from the Stripe dashboard, whsec_...",
    "slack": "the Slack app's Signing Secret (Basic Information > App Credentials)",
    "whatsapp": 'JSON {"signing": ["<Meta app secret>"], "verify_token": "<the Verify token typed into the '
                'app\'s webhook setup>"}',
    "hubspot": "the HubSpot app's client secret",
    "github": "the webhook's secret, as typed into GitHub's webhook settings",
}


class WebhookSecrets(Construct):
    def __init__(self, scope: Construct, cid: str, *, topology: Topology) -> None:
        super().__init__(scope, cid)
        self.by_source: dict[str, secretsmanager.Secret] = {}
        for source in topology.webhook_sources:
            secret = secretsmanager.Secret(
                self,
                construct_id(source.name),
                secret_name=topology.secret_name(source.name),
                description=(
                    f"Interlock webhook secret for source {source.name!r} ({source.scheme}): "
                    f"{SECRET_FORMATS[source.scheme]}. Several signing secrets, whitespace-separated (or all "
                    "in the JSON's signing list), are all accepted while rotating. Until the provider's secret "
                    "replaces the placeholder, the source answers 404."
                ),
                # No value is a secret here: the placeholder holds none, so the source is disabled (404), as
                # the issue of an unconfigured source wants, until an operator stores the provider's.
                secret_string_value=SecretValue.unsafe_plain_text(PLACEHOLDER),
                # The value is provider-issued and not re-creatable: keep it if the stack goes.
                removal_policy=RemovalPolicy.RETAIN,
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "The value is issued by the webhook provider, so Secrets Manager has nothing to rotate it with. "
                "Rotation is manual and without downtime: the value holds several signing secrets, all accepted.",
            )
            self.by_source[source.name] = secret

    def grant_read(self, grantee: iam.IGrantable, source: str = "") -> None:
        """Read every source's secret, or only ``source``'s (the uploads function: the form source's)."""
        for name, secret in self.by_source.items():
            if not source or name == source:
                secret.grant_read(grantee)
