"""Writes the invoice intake's samples (``form_invoice_*.json``, for ``interlock send form <name>``), the two PDFs
among them made here byte for byte: a PDF whose page carries the invoice as text (Helvetica, one line per text
line) and a "scan" whose page is an image and nothing else. Deterministic: the same bytes every time (a test
checks that the committed samples are what this writes). Run ``python
layers/interlock/interlock/workflows/invoice_intake/samples/make_samples.py`` after changing an invoice here.

The vendors, POs and the recorded invoice they name are the local fake ERP's seeds (``interlock.local.fakes``).
"""

from __future__ import annotations

import base64
import json
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).parent
ISSUED = "2025-03-03"
DUE = "2025-04-02"


def invoice_text(vendor: str, tax_id: str, number: str, currency: str, po: str, lines: list[str], subtotal: str,
                 tax_label: str, tax: str, total: str, iban: str, bic: str, note: str = "") -> str:
    body = [
        "INVOICE",
        f"Vendor: {vendor}",
        f"Vendor tax ID: {tax_id}",
        f"Invoice number: {number}",
        f"Issue date: {ISSUED}",
        f"Due date: {DUE}",
        f"Currency: {currency}",
        f"PO number: {po}",
        "",
        "Lines:",
        *lines,
        "",
        f"Subtotal: {subtotal}",
        f"{tax_label}: {tax}",
        f"Total: {total}",
        "",
        f"IBAN: {iban}",
        f"BIC: {bic}",
    ]
    if note:
        body += ["", note]
    return "\n".join(body) + "\n"


ACME = ("Acme Office Supplies GmbH", "DE123456789")
NORTHWIND = ("Northwind Logistics Ltd", "GB123456789")
GLOBEX = ("Globex Industrial B.V.", "NL123456789B01")
ACME_BANK = ("DE89 3704 0044 0532 0130 00", "COBADEFFXXX")
NORTHWIND_BANK = ("GB82 WEST 1234 5698 7654 32", "WESTGB2L")
GLOBEX_BANK = ("NL91 ABNA 0417 1643 00", "ABNANL2A")

TEXTS = {
    # PO-4500 has 480.00 left: 476.00 is within 2 %; no flag, under the automatic limit: recorded at once.
    "clean": invoice_text(*ACME, "ACME-2025-1001", "EUR", "PO-4500",
                          ["- 20 x Printer paper A4, 500 sheets @ 5.00 = 100.00",
                           "- 4 x Toner cartridge, black @ 75.00 = 300.00"],
                          "400.00", "Tax (VAT 19%)", "76.00", "476.00", *ACME_BANK),
    # PO-4501 has 800.00 left: 1,150.00 is far over it, and over the automatic limit: one approver.
    "mismatch": invoice_text(*NORTHWIND, "NW-88120", "GBP", "PO-4501",
                             ["- 1 x Freight London to Hamburg, 3 pallets @ 958.34 = 958.34"],
                             "958.34", "Tax (VAT 20%)", "191.66", "1,150.00", *NORTHWIND_BANK),
    # 48,400.00 is at or over the two-person limit: two different approvers.
    "large": invoice_text(*GLOBEX, "GLX-77001", "EUR", "PO-4502",
                          ["- 2 x Hydraulic press overhaul @ 15,000.00 = 30,000.00",
                           "- 1 x Spare parts kit @ 10,000.00 = 10,000.00"],
                          "40,000.00", "Tax (VAT 21%)", "8,400.00", "48,400.00", *GLOBEX_BANK),
    # ACME-2025-0990 is in the ledger already: refused as a duplicate, never recorded twice.
    "duplicate": invoice_text(*ACME, "ACME-2025-0990", "EUR", "PO-4400",
                              ["- 1 x Desk lamp @ 260.50 = 260.50"],
                              "260.50", "Tax (VAT 19%)", "49.50", "310.00", *ACME_BANK),
    # The vendor master has another account for Acme: the bank change always needs a person.
    "bank_change": invoice_text(*ACME, "ACME-2025-1002", "EUR", "PO-4503",
                                ["- 5 x Office chair @ 100.00 = 500.00"],
                                "500.00", "Tax (VAT 19%)", "95.00", "595.00",
                                "GB33 BUKB 2020 1555 5555 55", "BUKBGB22",
                                "Please note our new bank details and pay to the account above."),
    # The PDF with a text layer: PO-4504 has 300.00 left; recorded at once.
    "pdf": invoice_text(*NORTHWIND, "NW-88123", "GBP", "PO-4504",
                        ["- 1 x Courier service, 12 parcels @ 250.00 = 250.00"],
                        "250.00", "Tax (VAT 20%)", "50.00", "300.00", *NORTHWIND_BANK),
}


# -- tiny PDFs, written by hand so that every byte is known --------------------------------------------------------


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF of ``objects`` (object 1 is the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _stream(data: bytes, extra: str = "") -> bytes:
    packed = zlib.compress(data, 9)
    return f"<< /Length {len(packed)} /Filter /FlateDecode{extra} >>\nstream\n".encode() + packed + b"\nendstream"


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(text: str) -> bytes:
    """One A4 page with ``text`` in its text layer, a line per line (latin-1 only)."""
    lines = text.rstrip("\n").split("\n")
    ops = ["BT", "/F1 10 Tf", "12 TL", "56 790 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    content = "\n".join(ops).encode("latin-1")
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        _stream(content),
    ])


def scanned_pdf() -> bytes:
    """One A4 page that is an image (a 16 x 16 grey "scan") and no text at all."""
    pixels = bytes((x * 16 + y) % 256 for y in range(16) for x in range(16))
    image = _stream(pixels, " /Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray "
                            "/BitsPerComponent 8")
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        image,
        _stream(b"q 483 0 0 730 56 56 cm /Im1 Do Q"),
    ])


# -- the samples --------------------------------------------------------------------------------------------------


def event(document: dict[str, str]) -> dict[str, object]:
    return {"type": "invoice.received", "timestamp": "2025-03-04T08:15:00Z", "data": {"document": document}}


def samples() -> dict[str, dict[str, object]]:
    """``form_invoice_<name>.json`` -> its content."""
    found: dict[str, dict[str, object]] = {
        f"form_invoice_{name}.json": event({"text": text}) for name, text in TEXTS.items() if name != "pdf"
    }
    found["form_invoice_pdf.json"] = event({"pdf_base64": base64.b64encode(text_pdf(TEXTS["pdf"])).decode(),
                                           "filename": "NW-88123.pdf"})
    found["form_invoice_scanned.json"] = event({"pdf_base64": base64.b64encode(scanned_pdf()).decode(),
                                               "filename": "scan-0001.pdf"})
    return found


def render(content: dict[str, object]) -> str:
    return json.dumps(content, indent=2) + "\n"


def main(folder: Path = HERE) -> int:
    for name, content in samples().items():
        (folder / name).write_text(render(content), encoding="utf-8")
        print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
