"""A document's text: a PDF's text layer (pypdf), UTF-8 text, the named outcome for a scan, the named errors for
what cannot be read, the limits that keep a hostile PDF from costing more than it may, and pypdf's lazy import."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
from interlock import documents, uploads
from interlock.documents import DocumentError, DocumentLimits, DocumentText, document_text
from interlock.topology import TOPOLOGY
from pdf_fixtures import Page, bomb_pdf, build, encrypted, scanned_pdf, text_pdf

PDF = "application/pdf"
INVOICE = ["Invoice INV-2041 from Acme Tools GmbH", "Issued 2026-03-02, due 2026-04-01", "Total 1,190.00 EUR"]


def _error(data: bytes, content_type: str = PDF, limits: DocumentLimits = documents.DEFAULT_LIMITS) -> DocumentError:
    with pytest.raises(DocumentError) as raised:
        document_text(data, content_type, limits)
    return raised.value


# -- the text layer -------------------------------------------------------------------------------------------


def test_given_a_pdf_with_a_text_layer_then_its_lines_are_the_text() -> None:
    result = document_text(text_pdf(INVOICE), PDF)

    assert result == DocumentText(outcome="text", text="\n".join(INVOICE), pages=1, source="pdf_text_layer")
    assert result.has_text and result.reason == ""


def test_given_several_pages_then_each_page_is_read_in_the_documents_order() -> None:
    pages = [["Invoice INV-7 page one", "Acme Tools GmbH"], ["Line items on page two"], ["Total on page three 12.00"]]

    result = document_text(text_pdf(*pages), PDF)

    assert result.pages == 3
    assert result.text.split(documents.PAGE_SEPARATOR) == ["\n".join(lines) for lines in pages]


def test_given_text_in_parentheses_and_backslashes_then_it_is_read_unescaped() -> None:
    line = r"Vendor (Acme) ref C:\ap\2041, total 5.00"

    assert document_text(text_pdf([line]), PDF).text == line


def test_given_a_compressed_content_stream_then_its_text_is_read() -> None:
    pdf = build([Page(lines=INVOICE, compress=True)])
    assert b"/FlateDecode" in pdf and b"Acme" not in pdf

    assert document_text(pdf, PDF).text == "\n".join(INVOICE)


def test_given_the_uploads_types_then_both_are_read() -> None:
    # A step hands document_text an upload's body and type as interlock.uploads.fetch_upload answers them.
    assert document_text(text_pdf(INVOICE), uploads.PDF).source == "pdf_text_layer"
    assert document_text(b"Invoice INV-1 total 5.00", uploads.TEXT).source == "text"


# -- no text layer: a result, not an error ----------------------------------------------------------------------


def test_given_a_scan_then_the_outcome_is_no_text_layer_with_a_reason() -> None:
    result = document_text(scanned_pdf(pages=2), PDF)

    assert result.outcome == "no_text_layer" and not result.has_text
    assert (result.text, result.pages, result.source) == ("", 2, "pdf_text_layer")
    assert "no text layer" in result.reason and "OCR" in result.reason


@pytest.mark.parametrize("lines", [["1"], ["Page 1 of 1"], ["- 2 -", "   "]])
def test_given_a_scan_with_a_stray_page_number_then_it_still_has_no_text_layer(lines: list[str]) -> None:
    pdf = build([Page(lines=lines, image=True)])

    assert document_text(pdf, PDF).outcome == "no_text_layer"


def test_given_a_scan_with_an_invisible_text_layer_then_that_text_is_read() -> None:
    # A scanner that recognised the text adds it under the image: that is a text layer.
    pdf = build([Page(lines=INVOICE, image=True)])

    assert document_text(pdf, PDF).text == "\n".join(INVOICE)


def test_given_the_meaningful_minimum_then_text_just_at_it_is_text_and_just_below_is_not() -> None:
    limits = DocumentLimits(min_meaningful_chars=10)

    assert document_text(text_pdf(["abcde 12345 ..."]), PDF, limits).outcome == "text"
    assert document_text(text_pdf(["abcde 1234 ...."]), PDF, limits).outcome == "no_text_layer"


# -- what cannot be read: named errors --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", b"<html>%PDF-1.4</html>", b"PK\x03\x04 a zip"])
def test_given_bytes_that_are_not_a_pdf_then_not_a_pdf(data: bytes) -> None:
    assert _error(data).code == "not_a_pdf"


@pytest.mark.parametrize("cut", [40, 120, 300])
def test_given_a_truncated_pdf_then_broken_pdf(cut: int) -> None:
    assert _error(text_pdf(INVOICE)[:cut]).code == "broken_pdf"


@pytest.mark.parametrize("data", [b"%PDF-1.4\n" + b"garbage " * 50, b"%PDF-1.7\n%%EOF\n",
                                  b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R "
                                  b">>\n%%EOF"])
def test_given_garbage_after_the_header_then_broken_pdf(data: bytes) -> None:
    error = _error(data)
    assert error.code == "broken_pdf"
    assert "cannot be read" in str(error)


def test_given_a_pdf_encrypted_with_a_password_then_encrypted() -> None:
    error = _error(encrypted(text_pdf(INVOICE), user_password="s3cret"))

    assert error.code == "encrypted"
    assert "s3cret" not in str(error)


def test_given_a_pdf_with_only_an_owner_password_then_it_is_read() -> None:
    # Many invoicing tools "protect" a PDF against editing: an empty user password, which anyone may open.
    result = document_text(encrypted(text_pdf(INVOICE), user_password=""), PDF)

    assert result.text == "\n".join(INVOICE)


def test_given_aes_and_no_cryptography_provider_then_encrypted_not_broken(tmp_path: Path) -> None:
    # The Lambda layer ships no cryptography package: pypdf can then read RC4 but not AES, and says so with a
    # DependencyError. In a fresh interpreter where cryptography cannot be imported, that is `encrypted`.
    pdf = tmp_path / "aes.pdf"
    pdf.write_bytes(encrypted(text_pdf(INVOICE), user_password="", algorithm="AES-256"))
    assert document_text(pdf.read_bytes(), PDF).has_text  # with a provider (this venv's), it reads
    code = ("import sys; sys.modules['cryptography'] = None; sys.modules['Crypto'] = None\n"
            "from interlock.documents import document_text, DocumentError\n"
            f"data = open({str(pdf)!r}, 'rb').read()\n"
            "try:\n    document_text(data, 'application/pdf'); print('read')\n"
            "except DocumentError as exc:\n    print(exc.code)\n")

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "encrypted"


def test_given_more_pages_than_the_limit_then_too_many_pages_before_any_is_read() -> None:
    limits = DocumentLimits(max_pages=3)
    # The fourth page is a decompression bomb: had any page been read, the answer would be too_large.
    pdf = build([Page(lines=["fine"])] * 3 + [Page(raw_content=b" " * 20 * documents.MIB, compress=True)])

    assert document_text(text_pdf(*[["Invoice page text here"]] * 3), PDF, limits).pages == 3
    error = _error(pdf, limits=limits)
    assert error.code == "too_many_pages"
    assert "4 pages" in str(error)


def test_given_the_default_limit_then_fifty_pages_are_read_and_fifty_one_are_not() -> None:
    assert document_text(text_pdf(*[["Invoice page text here"]] * 50), PDF).pages == 50
    assert _error(text_pdf(*[["Invoice page text here"]] * 51)).code == "too_many_pages"


def test_given_more_bytes_than_the_limit_then_too_large_before_anything_is_parsed() -> None:
    limits = DocumentLimits(max_bytes=1000)
    pdf = text_pdf(INVOICE)
    assert len(pdf) < 1000
    padded = pdf + b"%" * (1001 - len(pdf))

    assert document_text(pdf, PDF, limits).has_text
    assert _error(padded, limits=limits).code == "too_large"
    assert _error(b"x" * 1001, "text/plain", limits).code == "too_large"
    assert uploads.UploadReadSettings(uploads_bucket="b").upload_max_bytes == documents.MAX_BYTES


def test_given_more_text_than_the_limit_then_too_large() -> None:
    limits = DocumentLimits(max_text_chars=60)
    pages = [["Invoice INV-1 Acme Tools GmbH"], ["Total 1,190.00 EUR due soon"], ["one page too many"]]

    assert document_text(text_pdf(*pages[:2]), PDF, limits).has_text
    assert _error(text_pdf(*pages), limits=limits).code == "too_large"
    assert _error(("x" * 61).encode(), "text/plain", limits).code == "too_large"


def test_given_a_decompression_bomb_then_too_large_at_the_stream_cap() -> None:
    # 20 MiB of spaces in about 20 KiB: under pypdf's own 75 MB default it would be inflated and parsed whole;
    # the stream cap stops it there. A content stream of spaces has no text, so only the cap can make it an error.
    bomb = bomb_pdf(20 * documents.MIB)
    assert len(bomb) < 64 * 1024

    error = _error(bomb)

    assert error.code == "too_large"
    small = bomb_pdf(1000)
    assert document_text(small, PDF).outcome == "no_text_layer"  # the same PDF, small: read, no text


def test_given_a_stream_declaring_a_length_beyond_the_byte_cap_then_it_is_not_believed() -> None:
    # A /Length of 30 MB in a document of 20 MiB at most: a lie pypdf's own defaults (75 MB) would work around.
    forged = text_pdf(INVOICE).replace(b"<< /Length 4 /Type /XObject", b"<< /Length 30000000 /Type /XObject")
    assert "Acme" in pypdf.PdfReader(io.BytesIO(forged)).pages[0].extract_text()  # the control: pypdf alone reads it

    assert _error(forged).code == "broken_pdf"


def test_given_a_pdf_without_pages_then_empty() -> None:
    assert _error(build([])).code == "empty"


# -- text/plain -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", "Text/Plain;charset=UTF-8",
                                          'text/plain; charset="utf-8"'])
def test_given_utf8_text_then_it_is_the_text(content_type: str) -> None:
    text = "Rechnung Nr. 2041 — Müller & Söhne, Summe 1.190,00 €"

    result = document_text(text.encode(), content_type)

    assert result == DocumentText(outcome="text", text=text, pages=1, source="text")


def test_given_utf8_text_with_a_byte_order_mark_then_the_mark_is_not_text() -> None:
    assert document_text("\ufeffInvoice 7".encode(), "text/plain").text == "Invoice 7"


@pytest.mark.parametrize("data", ["Müller".encode("latin-1"), b"\xff\xfeI\x00n\x00", b"ok \xed\xa0\x80 surrogate"])
def test_given_text_that_is_not_utf8_then_not_utf8(data: bytes) -> None:
    error = _error(data, "text/plain")

    assert error.code == "not_utf8"
    assert "M" not in str(error)  # the message says where, not what


@pytest.mark.parametrize("data", [b"", b"  \n\t "])
def test_given_empty_text_then_empty(data: bytes) -> None:
    assert _error(data, "text/plain").code == "empty"


@pytest.mark.parametrize("content_type", ["image/png", "text/plain; charset=latin-1", "application/pdf; x=1",
                                          "text/html", "", "application/pdfx"])
def test_given_another_type_then_unsupported_type(content_type: str) -> None:
    assert _error(text_pdf(INVOICE), content_type).code == "unsupported_type"


def test_every_code_is_distinct_and_every_error_is_a_document_error() -> None:
    errors = [c for c in vars(documents).values() if isinstance(c, type) and issubclass(c, DocumentError)
              and c is not DocumentError]
    codes = sorted(c.code for c in errors)

    assert codes == sorted(["unsupported_type", "not_a_pdf", "encrypted", "broken_pdf", "too_many_pages",
                            "too_large", "not_utf8", "empty"])


def test_the_result_is_plain_json_for_a_step_output() -> None:
    result = document_text(scanned_pdf(), PDF)

    assert json.loads(result.model_dump_json()) == {"outcome": "no_text_layer", "text": "", "pages": 1,
                                                    "source": "pdf_text_layer", "reason": result.reason}


# -- cold start: pypdf only where a PDF is read -----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import importlib, json, sys
sys.path[:0] = {paths!r}
seen = {{}}
for module in {modules!r}:
    importlib.import_module(module)
    seen[module] = "pypdf" in sys.modules
{after}
print(json.dumps(seen))
"""


def _probe(modules: list[str], after: str = "") -> dict[str, bool]:
    from benchmarks import cold_start

    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLOCK_", "POWERTOOLS_", "AWS_", "OPENAI_"))}
    env.update({**cold_start.ENV, "POWERTOOLS_TRACE_DISABLED": "true"})
    code = PROBE.format(paths=[str(ROOT / "functions"), str(ROOT / "layers" / "interlock"), str(ROOT / "tests")],
                        modules=modules, after=after)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_given_every_handler_and_the_documents_module_imported_then_pypdf_is_not_loaded() -> None:
    modules = [fn.module for fn in TOPOLOGY.functions] + ["interlock.documents"]

    seen = _probe(modules)

    loaded_by = [module for module, loaded in seen.items() if loaded]
    assert list(seen) == modules and not loaded_by, f"importing {loaded_by[:1]} loaded pypdf"


def test_given_a_pdf_read_then_pypdf_is_loaded_and_not_for_text() -> None:
    # The control: the probe sees pypdf once a PDF is read, so the test above cannot pass by looking elsewhere.
    seen = _probe(["interlock.documents"], after=(
        "from interlock.documents import document_text\n"
        "from pdf_fixtures import text_pdf\n"
        "document_text(b'an invoice as text', 'text/plain')\n"
        "seen['after text'] = 'pypdf' in sys.modules\n"
        "document_text(text_pdf(['Invoice INV-1 from Acme Tools GmbH']), 'application/pdf')\n"
        "seen['after a PDF'] = 'pypdf' in sys.modules"))

    assert seen == {"interlock.documents": False, "after text": False, "after a PDF": True}


def test_given_mutated_pdfs_then_every_answer_is_a_result_or_a_named_error() -> None:
    # Deterministic mutations (bytes overwritten, cut, repeated) of a small PDF: whatever pypdf makes of them,
    # nothing but a DocumentText or a DocumentError comes out.
    rng = random.Random(11)
    original = build([Page(lines=INVOICE), Page(lines=INVOICE, compress=True), Page(image=True)])
    answers: set[str] = set()
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(5, len(data))
            data[at:at + rng.randint(1, 4)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.2:
            data = data[:rng.randrange(5, len(data))]
        try:
            answers.add(document_text(bytes(data), PDF).outcome)
        except DocumentError as exc:
            answers.add(exc.code)
    assert {"text", "broken_pdf"} <= answers
