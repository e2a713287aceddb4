"""A document's text: a PDF's from its text layer (pypdf), or UTF-8 text as it is. No OCR.

* A PDF whose pages carry no text (a scan: images only) is a named outcome, ``no_text_layer``: :class:`PdfText`
  with ``text_layer`` False, never an exception; a workflow hands it to a person.
* A PDF that cannot be read (not a PDF, broken, no pages) is :class:`PdfUnreadable` (``pdf_unreadable``), one that
  is encrypted (even with an empty password) :class:`PdfEncrypted` (``pdf_encrypted``), one over the limits
  :class:`PdfTooLarge` (``pdf_too_large``): named input errors (a 4xx of the sender's making: another try cannot
  help), subclasses of :class:`DocumentError` with a ``code``.
* Caps: at most :data:`MAX_PDF_BYTES` read, :data:`MAX_PAGES` pages, :data:`MAX_TEXT_CHARS` characters kept (the
  text is cut there and ``truncated`` says so).

pypdf is imported inside :func:`pdf_text`, so only the step that reads a PDF pays for its import.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

MAX_PDF_BYTES = 20 * 1024 * 1024
MAX_PAGES = 50
MAX_TEXT_CHARS = 40_000
# A page whose text layer holds fewer letters or digits than this has no text to speak of (a scan's stray marks).
MIN_TEXT_CHARS = 20


class DocumentError(ValueError):
    """A document that cannot be read as given; ``code`` names why (a flag or a run's reason)."""

    code = "document_unreadable"


class PdfUnreadable(DocumentError):
    code = "pdf_unreadable"


class PdfEncrypted(DocumentError):
    code = "pdf_encrypted"


class PdfTooLarge(DocumentError):
    code = "pdf_too_large"


class TextUnreadable(DocumentError):
    code = "text_unreadable"


@dataclass(frozen=True)
class PdfText:
    text: str  # "" when there is no text layer
    pages: int
    text_layer: bool
    truncated: bool
    bytes: int
    sha256: str

    @property
    def reason(self) -> str | None:
        return None if self.text_layer else "no_text_layer"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pdf_text(data: bytes, max_pages: int = MAX_PAGES, max_chars: int = MAX_TEXT_CHARS,
             max_bytes: int = MAX_PDF_BYTES) -> PdfText:
    """The text of the PDF ``data`` from its text layer, page by page (pages separated by a blank line)."""
    if len(data) > max_bytes:
        raise PdfTooLarge(f"the PDF is {len(data)} bytes; at most {max_bytes} are read")
    if not data.startswith(b"%PDF-"):
        raise PdfUnreadable("not a PDF (it does not start with %PDF-)")
    from io import BytesIO

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf warns through logging about every repaired oddity of a file; a sender's file is not our log's business.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise PdfEncrypted("the PDF is encrypted; send it without a password")
        count = len(reader.pages)
        if count == 0:
            raise PdfUnreadable("the PDF has no pages")
        if count > max_pages:
            raise PdfTooLarge(f"the PDF has {count} pages; at most {max_pages} are read")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError,
            ZeroDivisionError, AssertionError):
        # not chained: a parser's message may quote the file's bytes; what broke is enough
        raise PdfUnreadable("the PDF could not be read (broken or not a PDF)") from None
    text = "\n\n".join(t for t in texts if t)
    has_text = sum(ch.isalnum() for ch in text) >= MIN_TEXT_CHARS
    truncated = len(text) > max_chars
    return PdfText(text=text[:max_chars] if has_text else "", pages=count, text_layer=has_text,
                   truncated=truncated and has_text, bytes=len(data), sha256=sha256(data))


def plain_text(data: bytes | str, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, bool]:
    """UTF-8 text as it is (a BOM dropped, line ends made ``\\n``), cut at ``max_chars``; (text, truncated)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise TextUnreadable("the text is not UTF-8") from None
    text = data.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text[:max_chars], len(text) > max_chars
