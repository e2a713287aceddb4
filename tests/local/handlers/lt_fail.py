"""Test handler: raises a domain error whose class name Step Functions Catch must see."""

from typing import Any


class PartnerDown(Exception):
    pass


def handler(event: Any, context: Any) -> Any:
    if isinstance(event, dict) and event.get("unserialisable"):
        return {"value": object()}
    raise PartnerDown('{"reason": "partner_down"}')
