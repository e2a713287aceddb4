"""Test step: emails a link, as the approval step does, through SES send_raw_email."""

import os
from email.message import EmailMessage
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    message = EmailMessage()
    message["From"] = os.environ["LT_SENDER"]
    message["To"] = "approver@example.com"
    message["Subject"] = f"Please look at {event['id']}"
    message.set_content(f"Open {os.environ['LT_API_URL']}/things/{event['id']} to decide.")
    message["X-Interlock-Approval-Link"] = f"{os.environ['LT_API_URL']}/things/{event['id']}"
    message.add_alternative("<p>html part</p>", subtype="html")
    boto3.client("ses").send_raw_email(Source=os.environ["LT_SENDER"], Destinations=["approver@example.com"],
                                       RawMessage={"Data": message.as_bytes()})
    return {"mailed": event["id"]}
