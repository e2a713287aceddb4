"""SES: the sender identity approval emails come from."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ses as ses
from constructs import Construct
from interlock.settings import approver_pool


class ApprovalEmail(Construct):
    def __init__(self, scope: Construct, cid: str, *, sender_email: str, approver_email: str) -> None:
        super().__init__(scope, cid)
        self.sender_email = sender_email
        self.approver_email = approver_email
        # An email identity: SES mails a verification link to the address when it is created.
        self.identity = ses.EmailIdentity(self, "SenderIdentity", identity=ses.Identity.email(sender_email))

    def identity_arn(self, address: str) -> str:
        return Stack.of(self).format_arn(
            service="ses", resource="identity", resource_name=address, arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )

    def grant_send(self, grantee: iam.IGrantable) -> None:
        """Send as the sender identity, and nothing else.

        While the account is in the SES sandbox, SES also authorises the send against the recipient's
        (verified) identity, so each approver's identity ARN (every address of the pool) is listed too; it
        grants nothing beyond mailing those addresses.
        """
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ses:SendRawEmail", "ses:SendEmail"],
            resource_arns=[self.identity.email_identity_arn,
                           *(self.identity_arn(address) for address in approver_pool(self.approver_email))],
        )
