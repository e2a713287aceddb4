"""The recovery's deterministic rules: the facts read from Stripe's invoice, the tone, the vetted templates, and the
message composed around the decision's paragraphs (the guardrail puts a template paragraph in place of a model
paragraph that says what only code may say: an amount, a link, a promise).

Every byte of a message comes from here (a template, a fact written by code) or from a model paragraph the
guardrail checked (:func:`interlock.guardrail.outsider_findings`).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from interlock.errors import MissingData
from interlock.guardrail import escalation_reason, outsider_findings
from interlock.outgoing import OutsiderPart, clean_name
from interlock.workflows.payment_recovery.models import Customer, Draft, Invoice, Message, Tone

FAILED_EVENT = "invoice.payment_failed"
OUTCOMES = {"invoice.paid": "paid", "invoice.voided": "voided", "invoice.marked_uncollectible": "uncollectible"}
# Stripe's zero-decimal and three-decimal currencies (stripe.com/docs/currencies); every other is two.
_ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                           "xaf", "xof", "xpf"})
_THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
_CURRENCY = re.compile(r"\A[a-z]{3}\Z")
_NUMBER = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,39}\Z")
_EMAIL = re.compile(r"\A[^@\s<>\"]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
# Stripe hosts its invoice pages here; a link anywhere else is not Stripe's.
HOSTED_INVOICE_HOSTS = frozenset({"invoice.stripe.com", "pay.stripe.com"})
SIGN_OFF = "The billing team"


def minor_units(currency: str) -> int:
    return 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2


def amount_text(amount: int, currency: str) -> str:
    """``USD 49.00`` from Stripe's integer amount in the currency's minor units."""
    places = minor_units(currency)
    value = Decimal(amount).scaleb(-places)
    return f"{currency.upper()} {value:,.{places}f}"


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _hosted_url(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 500:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or parts.hostname not in HOSTED_INVOICE_HOSTS or parts.username or parts.port:
        return None
    return value if not any(ch.isspace() or ord(ch) < 32 for ch in value) else None


def _date(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 32503680000:
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    return None


def invoice_from_event(payload: dict[str, Any], correlation_key: str) -> Invoice:
    """The invoice's facts from Stripe's event object; what a message cannot go without is a MissingData."""
    obj = _object(payload)
    missing = []
    email = obj.get("customer_email")
    if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
        missing.append("customer_email")
    currency = obj.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        missing.append("currency")
    amount = obj.get("amount_due")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        missing.append("amount_due")
    url = _hosted_url(obj.get("hosted_invoice_url"))
    if url is None:
        missing.append("hosted_invoice_url")
    if missing:
        raise MissingData(f"the failed invoice lacks {', '.join(missing)}", step="extract", fields=missing)
    assert isinstance(email, str) and isinstance(currency, str) and isinstance(amount, int) and url
    number = obj.get("number")
    customer = obj.get("customer")
    attempts = obj.get("attempt_count")
    name = obj.get("customer_name")
    return Invoice(
        invoice_id=str(obj["id"]), number=number if isinstance(number, str) and _NUMBER.fullmatch(number) else None,
        customer_id=customer if isinstance(customer, str) and len(customer) <= 80 else None,
        customer_email=email.strip().lower(), customer_name=name if isinstance(name, str) else None,
        amount_due=amount, currency=currency, amount_text=amount_text(amount, currency),
        due_date=_date(obj.get("due_date")), hosted_invoice_url=url,
        attempt_count=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0
        else 0,
        correlation_key=correlation_key)


def tone_for(tier: str | None, attempt_count: int) -> Tone:
    """Gentle for a first failure and for priority customers before the third; firm from the third attempt on."""
    if attempt_count >= 3:
        return "firm"
    if attempt_count <= 1 or tier == "priority":
        return "gentle"
    return "standard"


TEMPLATES: dict[Tone, tuple[str, str]] = {
    "gentle": ("We tried to collect your latest payment, but it did not go through. This happens: a card expires, "
               "or a bank declines a charge it does not recognise.",
               "Updating your payment method takes a minute. Thank you for being with us."),
    "standard": ("Your latest payment did not go through, and your invoice is still open.",
                 "Please update your payment method or pay the invoice directly, so that your service continues "
                 "without interruption."),
    "firm": ("We have tried several times to collect your payment, and it has not gone through. Your invoice is "
             "overdue.",
             "Please pay the invoice now to keep your account in good standing. If something is wrong, reply to "
             "this email and we will look into it."),
}


def greeting(invoice: Invoice, customer: Customer) -> tuple[str, list[OutsiderPart]]:
    for source, value in (("crm", customer.name), ("stripe", invoice.customer_name)):
        name = clean_name(value)
        if name:
            return f"Hi {name},", [OutsiderPart(part="name", source=source, text=name)]
    return "Hi there,", []


def subject(invoice: Invoice) -> str:
    return f"Your payment for invoice {invoice.number} did not go through" if invoice.number else \
        "Your payment did not go through"


def _facts(invoice: Invoice) -> list[str]:
    lines = [f"Amount due: {invoice.amount_text}"]
    if invoice.due_date:
        lines.append(f"Due date: {invoice.due_date}")
    lines.append(f"Pay the invoice or update your payment method: {invoice.hosted_invoice_url}")
    return lines


def _render(subject_line: str, paragraphs: list[str], facts: list[str], tone: Tone, template: bool,
            reasons: list[str], hello: str) -> Message:
    text = "\n\n".join([hello, paragraphs[0], "\n".join(facts), paragraphs[1], SIGN_OFF]) + "\n"
    esc = html.escape
    fact_html = "<br>".join(esc(f) for f in facts[:-1])
    url = esc(facts[-1].rsplit(": ", 1)[1], quote=True)
    body = (f"<p>{esc(hello)}</p><p>{esc(paragraphs[0])}</p><p>{fact_html}</p>"
            f'<p><a href="{url}">Pay the invoice or update your payment method</a></p>'
            f"<p>{esc(paragraphs[1])}</p><p>{esc(SIGN_OFF)}</p>")
    return Message(subject=subject_line, text=text, html=body, tone=tone, template=template, reasons=reasons)


def compose(invoice: Invoice, customer: Customer, draft: Draft) -> Message:
    """The message: greeting, the draft's opening, the facts (code's), its closing, the sign-off. A model paragraph
    the guardrail finds an amount, a link or a promise in, and a decision the AI layer handed to a person, give way to
    the vetted template's paragraph; a name that trips a rule is left out."""
    hello, name_parts = greeting(invoice, customer)
    reasons = outsider_findings(name_parts)
    if reasons:
        hello, reasons = "Hi there,", [f"{r}:name_dropped" for r in reasons]
    opening, closing = TEMPLATES[draft.tone]
    paragraphs, template = [opening, closing], True
    if not draft.template:
        model = [OutsiderPart(part="opening", source="model", text=draft.opening),
                 OutsiderPart(part="closing", source="model", text=draft.closing)]
        found = outsider_findings(model)
        escalated = escalation_reason(draft.decision)
        if escalated:
            found.append(escalated)
        if found:
            reasons += found
        else:
            paragraphs, template = [draft.opening, draft.closing], False
    return _render(subject(invoice), paragraphs, _facts(invoice), draft.tone, template, reasons, hello)


def reminder(invoice: Invoice, number: int) -> Message:
    """A reminder: vetted text only."""
    paragraphs = ["A reminder: your invoice is still unpaid.",
                  "If you have paid it in the meantime, thank you, and please ignore this email."]
    return _render(f"Reminder: {subject(invoice)}", paragraphs,
                   _facts(invoice), "standard", True, [], "Hi there,")


def escalation_text(invoice: Invoice, run_id: str, reminders_sent: int) -> tuple[str, str]:
    """What customer success is told: the invoice's ids and amount, never the customer's address."""
    what = f"invoice {invoice.number or invoice.invoice_id}"
    text = (f"The payment for {what} ({invoice.invoice_id}, Stripe customer {invoice.customer_id or 'unknown'}) of "
            f"{invoice.amount_text} has not been received after the dunning email and {reminders_sent} "
            f"reminder(s).\n\nInterlock run: {run_id}\nStripe's invoice page: {invoice.hosted_invoice_url}\n")
    return f"Unpaid after reminders: {what}", text
