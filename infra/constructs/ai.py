"""The AI provider's API key: one Secrets Manager secret, named by the topology (``AI_KEY_SECRET_NAME``).

The value is the OpenAI (or OpenAI-compatible endpoint's) API key, as plain text or as JSON
``{"api_key": "..."}`` (``interlock.ai.choice.parse_key``). Secrets Manager refuses an empty value, so the
stack creates the secret holding :data:`PLACEHOLDER`, which names no key: until an operator stores one,
every decision is made by the offline provider (docs/deploy.md, AI decisions). The functions re-read the
secret after ``ai_secret_cache_seconds``, so a stored key is picked up without a redeploy.

Only the functions granted ``AI_KEY_READ`` can read it, and only with ``secretsmanager:GetSecretValue``:
the one call Powertools' ``parameters.get_secret`` makes.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from interlock.topology import AI_KEY_SECRET_NAME

from infra.nag import acknowledge

# What a new deployment's secret holds: no key (interlock.ai.choice.parse_key reads it as none), so offline.
PLACEHOLDER = '{"api_key": ""}'
READ_ACTIONS = ("secretsmanager:GetSecretValue",)


class AiKeySecret(Construct):
    def __init__(self, scope: Construct, cid: str, *, name: str = AI_KEY_SECRET_NAME) -> None:
        super().__init__(scope, cid)
        self.name = name
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=name,
            description=(
                "Interlock AI provider API key: the OpenAI API key (sk-...), or the key of the OpenAI-compatible "
                "endpoint set by interlock:openai_base_url, as plain text or JSON {\"api_key\": \"...\"}. "
                "While it holds no key, every decision is made by the offline provider. A stored key is used "
                "within ai_secret_cache_seconds (300 s), with no redeploy."
            ),
            # No value is a secret here: the placeholder holds no key, so a fresh deployment decides offline
            # until an operator stores one.
            secret_string_value=SecretValue.unsafe_plain_text(PLACEHOLDER),
            # As the webhook secrets: the value is provider-issued and not re-creatable, keep it if the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The value is an API key issued by the model provider, so Secrets Manager has nothing to rotate it "
            "with. Rotation is manual and without downtime: store the new key, and revoke the old one at the "
            "provider once the functions' secret cache (ai_secret_cache_seconds, 300 s) has expired.",
        )

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Read the key's value, and nothing else: no describe, no list, no other secret."""
        iam.Grant.add_to_principal(grantee=grantee, actions=list(READ_ACTIONS),
                                   resource_arns=[self.secret.secret_arn])
