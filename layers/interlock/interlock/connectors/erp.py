"""The ERP: the vendor master, purchase orders and the accounts-payable ledger (the invoice intake workflow), and
customers' sales orders (where a customer's order is).

One connector, one base URL, one ``httpx.Client`` reused by every call
(:class:`interlock.connectors.http.SharedClient`), the token as a bearer token when one is configured.

Protocol (JSON; amounts are decimal strings, never floats, so that no cent is lost on the way):

* ``GET {base}/vendors/{vendor_id}``: the vendor (``{"vendor_id", "name", "tax_id", "currency", "bank": {"iban",
  "bic"}}``), 404 when there is none;
* ``POST {base}/vendors/search`` with ``{"tax_id": "..."}``: ``{"results": [vendor]}`` (none, or the one vendor
  with that tax id; the tax id is in the body, not the URL: a sole trader's tax id is personal data);
* ``GET {base}/purchase-orders/{number}``: the PO (``{"number", "vendor_id", "status": "open" | "closed",
  "currency", "amount", "invoiced"}``), 404 when there is none; what is left to invoice is ``amount - invoiced``;
* ``GET {base}/sales-orders/{number}``: a customer's order (``{"number", "status": "received" | "processing" |
  "shipped" | "delivered" | "cancelled", "placed_on", "shipped_on", "carrier", "tracking_number", "items",
  "customer_phone"}``; dates ISO, ``shipped_on``, ``carrier`` and ``tracking_number`` null until it ships,
  ``customer_phone`` the customer's number in E.164 without the ``+``, as WhatsApp's ``wa_id``), 404 when there is
  none; the number is checked before it goes into the URL, as a PO's is;
* ``POST {base}/ledger-entries/search`` with ``{"vendor_id", "invoice_number"}``: ``{"results": [entry]}``;
* ``POST {base}/ledger-entries`` with the entry and an ``Idempotency-Key`` (the workflow's key: vendor + invoice
  number): 201 with the entry; the same key again answers the first entry (``Idempotent-Replayed: true``), so an
  invoice is never recorded twice however often the step runs; the same key with other figures is 409
  (``idempotency_key_reused``): that invoice number of that vendor was recorded with other figures;
* ``POST {base}/payments`` with ``{"entry_id", "vendor_id", "amount", "currency", "pay_on"}`` and an
  ``Idempotency-Key`` (one payment per ledger entry): 201 with the payment (``{"payment_id", "entry_id",
  "vendor_id", "amount", "currency", "pay_on", "status": "scheduled"}``), the same key again answers the first
  payment; the ERP pays the vendor master's bank account, so no bank details travel with the request (an
  invoice's own bank details are never where money goes).

429 and 5xx, a timeout or a refused connection are :class:`ErpUnavailable` (retried by the state machine); other
4xx are :class:`ErpRejected` (another try cannot help); the 409 of a create is :class:`LedgerConflict`. Errors name a
status, an exception's class or the fields that did not validate, never a URL, a body, a token or a value.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from interlock.aws import once_per_process
from interlock.connectors.http import SharedClient, TokenSource, bearer, no_token, read_model
from interlock.errors import StepError, TransientError

if TYPE_CHECKING:
    import httpx

# Identifiers that may sit in a URL path: letters, digits and - _ . / no slashes, nothing else.
_PATH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ErpUnavailable(TransientError):
    """The ERP timed out, refused the connection, or answered 429 or 5xx: retried."""

    reason = "erp_unavailable"


class ErpRejected(StepError):
    """The ERP refused a request (a bad token, a malformed entry): another try cannot help."""

    reason = "erp_rejected"


class LedgerConflict(StepError):
    """The ledger holds this vendor's invoice number already, with other figures (409 on the create)."""

    reason = "duplicate_invoice"


class BankDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    iban: str | None = Field(default=None, max_length=64)
    bic: str | None = Field(default=None, max_length=16)


class Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    vendor_id: str = Field(min_length=1, max_length=64)
    name: str = Field(max_length=200)
    tax_id: str | None = Field(default=None, max_length=32)
    currency: str | None = Field(default=None, max_length=3)
    bank: BankDetails = Field(default_factory=BankDetails)


class PurchaseOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: str = Field(min_length=1, max_length=64)
    vendor_id: str = Field(min_length=1, max_length=64)
    status: Literal["open", "closed"]
    currency: str = Field(min_length=3, max_length=3)
    amount: Decimal
    invoiced: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.invoiced


class SalesOrder(BaseModel):
    """A customer's order (not a purchase order): where it is, and the phone number of the customer who placed it."""

    model_config = ConfigDict(extra="ignore")

    number: str = Field(min_length=1, max_length=64)
    status: Literal["received", "processing", "shipped", "delivered", "cancelled"]
    placed_on: date
    shipped_on: date | None = None
    carrier: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=64)
    items: int = Field(ge=0)
    customer_phone: str = Field(pattern=r"^[1-9][0-9]{5,14}$")  # E.164 without the "+" (WhatsApp's wa_id)


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entry_id: str = Field(min_length=1, max_length=64)
    vendor_id: str
    invoice_number: str
    currency: str
    total: Decimal
    po_number: str | None = None
    issue_date: str | None = None
    due_date: str | None = None
    status: str = "posted"
    run_id: str | None = None


class NewLedgerEntry(BaseModel):
    """What the workflow records: the invoice as checked, approved or not, and the run that recorded it."""

    vendor_id: str
    invoice_number: str
    currency: str
    total: str  # a decimal string in the currency's minor units ("476.00")
    subtotal: str | None = None
    tax: str | None = None
    po_number: str | None = None
    issue_date: str | None = None
    due_date: str | None = None
    run_id: str
    approved_by: list[str] = Field(default_factory=list)


class LedgerWrite(BaseModel):
    entry: LedgerEntry
    created: bool  # False: the ledger answered an entry it held for the same key (a repeat)


class NewPayment(BaseModel):
    """A payment of a recorded ledger entry, to the vendor master's account, on ``pay_on`` (ISO date)."""

    entry_id: str
    vendor_id: str
    amount: str  # a decimal string
    currency: str
    pay_on: str


class Payment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    payment_id: str = Field(min_length=1, max_length=64)
    entry_id: str
    vendor_id: str
    amount: Decimal
    currency: str
    pay_on: str
    status: str = "scheduled"


class PaymentWrite(BaseModel):
    payment: Payment
    created: bool  # False: the ERP answered the payment it held for the same key (a repeat)


class _Results(BaseModel):
    model_config = ConfigDict(extra="ignore")
    results: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class Erp(Protocol):
    def get_vendor(self, vendor_id: str) -> Vendor | None: ...
    def find_vendor_by_tax_id(self, tax_id: str) -> Vendor | None: ...
    def get_purchase_order(self, number: str) -> PurchaseOrder | None: ...
    def get_sales_order(self, number: str) -> SalesOrder | None: ...
    def find_ledger_entry(self, vendor_id: str, invoice_number: str) -> LedgerEntry | None: ...
    def create_ledger_entry(self, entry: NewLedgerEntry, idempotency_key: str) -> LedgerWrite: ...
    def schedule_payment(self, payment: NewPayment, idempotency_key: str) -> PaymentWrite: ...


def ledger_key(vendor_id: str, invoice_number: str) -> str:
    """The ledger entry's idempotency key: one entry per vendor and invoice number, whichever run records it."""
    return f"invoice:{vendor_id}:{normalise_invoice_number(invoice_number)}"


def normalise_invoice_number(value: str) -> str:
    """Invoice numbers compared as the ledger compares them: without surrounding space, case or inner spaces."""
    return "".join(value.split()).upper()


def is_identifier(value: str) -> bool:
    """``value`` can name an ERP record in a URL path (letters, digits, ``.``, ``_``, ``-``; at most 64)."""
    return bool(_PATH_ID.fullmatch(value))


def _path_id(value: str, step: str) -> str:
    if not is_identifier(value):
        raise ErpRejected("not an ERP identifier", step=step)
    return quote(value, safe="")


class HttpErp:
    def __init__(self, base_url: str, timeout_seconds: float = 3.0, transport: httpx.BaseTransport | None = None,
                 token: TokenSource = no_token) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.token = token
        self._http = SharedClient(timeout_seconds, transport)

    # -- the vendor master -------------------------------------------------------------------------------------

    def get_vendor(self, vendor_id: str, step: str = "compare") -> Vendor | None:
        response = self._call("GET", f"/vendors/{_path_id(vendor_id, step)}", step=step)
        if response.status_code == 404:
            return None
        self._check(response, step)
        vendor: Vendor = read_model(response, Vendor, ErpUnavailable, "ERP answered with an unreadable vendor", step)
        return vendor

    def find_vendor_by_tax_id(self, tax_id: str, step: str = "compare") -> Vendor | None:
        found = self._search("/vendors/search", {"tax_id": tax_id.strip()}, step)
        return read_model_from(found, Vendor, "vendor", step) if found else None

    # -- purchase orders -----------------------------------------------------------------------------------------

    def get_purchase_order(self, number: str, step: str = "compare") -> PurchaseOrder | None:
        po: PurchaseOrder | None = self._get_one("purchase-orders", number, PurchaseOrder, "purchase order", step)
        return po

    # -- sales orders ----------------------------------------------------------------------------------------------

    def get_sales_order(self, number: str, step: str = "look_up_order") -> SalesOrder | None:
        order: SalesOrder | None = self._get_one("sales-orders", number, SalesOrder, "sales order", step)
        return order

    def _get_one(self, collection: str, number: str, model: type[Any], what: str, step: str) -> Any:
        """``GET {base}/{collection}/{number}`` as ``model``; None for a 404."""
        response = self._call("GET", f"/{collection}/{_path_id(number, step)}", step=step)
        if response.status_code == 404:
            return None
        self._check(response, step)
        return read_model(response, model, ErpUnavailable, f"ERP answered with an unreadable {what}", step)

    # -- the ledger ------------------------------------------------------------------------------------------------

    def find_ledger_entry(self, vendor_id: str, invoice_number: str, step: str = "compare") -> LedgerEntry | None:
        found = self._search("/ledger-entries/search", {"vendor_id": vendor_id,
                                                         "invoice_number": invoice_number.strip()}, step)
        return read_model_from(found, LedgerEntry, "ledger entry", step) if found else None

    def create_ledger_entry(self, entry: NewLedgerEntry, idempotency_key: str, step: str = "record") -> LedgerWrite:
        response = self._call("POST", "/ledger-entries", step=step, json=entry.model_dump(mode="json"),
                              key=idempotency_key)
        if response.status_code == 409:
            raise LedgerConflict("the ledger holds this vendor's invoice number with other figures", step=step,
                                 status=409)
        self._check(response, step)
        made: LedgerEntry = read_model(response, LedgerEntry, ErpUnavailable,
                                       "ERP answered with an unreadable ledger entry", step)
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return LedgerWrite(entry=made, created=response.status_code == 201 and not replayed)

    # -- payments ----------------------------------------------------------------------------------------------

    def schedule_payment(self, payment: NewPayment, idempotency_key: str, step: str = "schedule_payment"
                         ) -> PaymentWrite:
        response = self._call("POST", "/payments", step=step, json=payment.model_dump(mode="json"),
                              key=idempotency_key)
        if response.status_code == 409:
            raise LedgerConflict("the ERP holds a payment of this entry with other figures", step=step, status=409)
        self._check(response, step)
        made: Payment = read_model(response, Payment, ErpUnavailable, "ERP answered with an unreadable payment",
                                   step)
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return PaymentWrite(payment=made, created=response.status_code == 201 and not replayed)

    # -- the calls ---------------------------------------------------------------------------------------------

    def _search(self, path: str, body: dict[str, str], step: str) -> dict[str, Any] | None:
        response = self._call("POST", path, step=step, json=body)
        self._check(response, step)
        found: _Results = read_model(response, _Results, ErpUnavailable, "ERP answered with an unreadable search",
                                     step)
        return found.results[0] if found.results else None

    def _call(self, method: str, path: str, *, step: str, json: Any = None, key: str | None = None) -> httpx.Response:
        import httpx

        headers = bearer(self.token())
        if key:
            headers["Idempotency-Key"] = key
        try:
            return self._http.get().request(method, f"{self.base_url}{path}", json=json, headers=headers)
        except httpx.HTTPError as exc:  # not chained: an exception's text may quote the request (its URL, its body)
            raise ErpUnavailable(f"ERP request failed: {type(exc).__name__}", step=step) from None

    @staticmethod
    def _check(response: httpx.Response, step: str) -> None:
        status = response.status_code
        if status in (200, 201):
            return
        if status == 429 or status >= 500:
            raise ErpUnavailable(f"ERP answered {status}", step=step, status=status)
        raise ErpRejected(f"ERP refused the request ({status})", step=step, status=status)


def read_model_from(data: dict[str, Any], model: type[Any], what: str, step: str) -> Any:
    """One search result as ``model``, or :class:`ErpUnavailable` naming only the fields that did not validate."""
    from pydantic import ValidationError

    from interlock.connectors.http import fields_of

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ErpUnavailable(f"ERP answered with an unreadable {what} ({fields_of(exc)})", step=step) from None


@once_per_process
def from_settings() -> HttpErp | None:
    """The process's ERP connector (one client for every call), or None when ``erp_base_url`` is not set."""
    from interlock.connectors.http import token_source
    from interlock.settings import ErpSettings, load

    settings = load(ErpSettings)
    if not settings.erp_base_url:
        return None
    return HttpErp(settings.erp_base_url, settings.erp_timeout_seconds,
                   token=token_source(settings.erp_token_secret, "", settings.erp_token_cache_seconds,
                                      reason="erp_token_unreadable"))
