"""The text of a document a step was handed: a PDF's text layer (pypdf, no OCR) or UTF-8 text.

:func:`document_text` is the one entry point. What it answers:

* a :class:`DocumentText` with ``outcome="text"``: the text, the number of pages and where the text came from
  (``source``: ``"text"`` for ``text/plain``, ``"pdf_text_layer"`` for a PDF);
* a :class:`DocumentText` with ``outcome="no_text_layer"``: a valid PDF whose pages yield no meaningful text (a
  scan; Interlock does no OCR). This is a *result*, not an error: the workflow sends the document to a person with
  that reason;
* a named :class:`DocumentError` for a document that cannot be read (``code``: ``not_a_pdf``, ``encrypted``,
  ``broken_pdf``, ``too_many_pages``, ``too_large``, ``not_utf8``, ``empty``, ``unsupported_type``). Its message
  says what is wrong without quoting the document, and ``code`` is safe to log: the step records it as the
  run's reason (never a 5xx, never an unhandled exception).

The PDF is untrusted input, so it is read under limits (:class:`DocumentLimits`): its size before pypdf sees it,
its page count before any page is read, the text's length while the pages are read, and pypdf's own
``Configuration`` tightened for the whole read: every decompression filter stops at ``stream_output_bytes`` per
stream (a decompression bomb, which Flate can make a thousand times its size, stops at that cap with
``too_large`` instead of exhausting memory), a declared stream length beyond the file's own cap is refused, the
parsing and decoding work per stream is bounded, and the external ``jbig2dec`` program is never run. pypdf is
imported here, inside the function, so only the steps that read a PDF pay its import at cold start.

A step that was handed an upload reference reads it first (:func:`interlock.uploads.fetch_upload`, its own named
upload errors), then ``document_text(upload.body, upload.content_type)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pypdf import PdfReader

PDF = "application/pdf"
TEXT = "text/plain"
MIB = 1024 * 1024
# The same cap as an upload's (uploads.UploadReadSettings.upload_max_bytes): no document read is larger.
MAX_BYTES = 20 * MIB
MAX_PAGES = 50
MAX_TEXT_CHARS = 200_000  # about 50 pages of dense text; more is not an invoice
# Fewer letters and digits than this in the whole PDF is no text layer (a scan with a stray page number).
MIN_MEANINGFUL_CHARS = 20
PAGE_SEPARATOR = "\n\n"

Outcome = Literal["text", "no_text_layer"]
Source = Literal["text", "pdf_text_layer"]


@dataclass(frozen=True)
class DocumentLimits:
    """What a document may cost to read. The defaults are Interlock's; a test or a step may pass smaller ones."""

    max_bytes: int = MAX_BYTES
    max_pages: int = MAX_PAGES
    max_text_chars: int = MAX_TEXT_CHARS
    min_meaningful_chars: int = MIN_MEANINGFUL_CHARS
    # The most one PDF stream may inflate to (every filter: Flate, LZW, run-length, Brotli, JBIG2, images). An
    # invoice page's content stream is some KiB; pypdf's own default is 75 MB.
    stream_output_bytes: int = 4 * MIB
    # pypdf's bounds on the work per content stream (operands and operators parsed; bytes decoded by all filters).
    stream_parsing_elements: int = 1_000_000
    stream_decoding_bytes: int = 16 * MIB


DEFAULT_LIMITS = DocumentLimits()


class DocumentText(BaseModel):
    """What a document's text is, or that a PDF has none. ``text`` is empty when ``outcome`` is
    ``no_text_layer``; ``pages`` is the PDF's page count (1 for a text document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    text: str
    pages: int
    source: Source
    reason: str = ""  # why there is no text (for the person the document goes to); empty when there is text

    @property
    def has_text(self) -> bool:
        return self.outcome == "text"


# -- errors ---------------------------------------------------------------------------------------------------


class DocumentError(Exception):
    """A document that cannot be read; ``code`` names why (for a step's reason) and, like the message, is safe
    to log: neither quotes the document."""

    code = "document_error"


class UnsupportedType(DocumentError):
    code = "unsupported_type"


class NotAPdf(DocumentError):
    code = "not_a_pdf"


class EncryptedPdf(DocumentError):
    """Encrypted with a password Interlock does not have (a PDF whose user password is empty is read)."""

    code = "encrypted"


class BrokenPdf(DocumentError):
    code = "broken_pdf"


class TooManyPages(DocumentError):
    code = "too_many_pages"


class DocumentTooLarge(DocumentError):
    """Over a limit: the bytes, the text's length, or a stream that inflates past its cap (a decompression bomb)."""

    code = "too_large"


class NotUtf8(DocumentError):
    code = "not_utf8"


class EmptyDocument(DocumentError):
    """Nothing to read: a text document of only white space, a PDF without pages."""

    code = "empty"


# -- the entry point ------------------------------------------------------------------------------------------


def document_text(data: bytes, content_type: str, limits: DocumentLimits = DEFAULT_LIMITS) -> DocumentText:
    """The text of ``data``, a document of ``content_type`` (``application/pdf``, or ``text/plain`` with no
    charset or ``charset=utf-8``); ``outcome="no_text_layer"`` for a PDF without text; a :class:`DocumentError`
    for what cannot be read."""
    kind = _kind(content_type)
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(f"the document is {len(data)} bytes; the limit is {limits.max_bytes}")
    if kind == TEXT:
        return _plain_text(data, limits)
    return _pdf_text(data, limits)


def _kind(content_type: str) -> str:
    if not isinstance(content_type, str):
        raise UnsupportedType("the document's type is not a string")
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media == PDF and not params:
        return PDF
    if media == TEXT and all(re.fullmatch(r'charset="?utf-8"?', p) for p in params) and len(params) <= 1:
        return TEXT
    raise UnsupportedType("the document is neither application/pdf nor UTF-8 text/plain")


def _meaningful(text: str) -> int:
    return sum(1 for c in text if c.isalnum())


# -- text -----------------------------------------------------------------------------------------------------


def _plain_text(data: bytes, limits: DocumentLimits) -> DocumentText:
    try:
        text = data.decode("utf-8-sig")  # a leading byte order mark is not text
    except UnicodeDecodeError as exc:
        raise NotUtf8(f"the text is not UTF-8 (byte {exc.start} is not valid)") from None
    if len(text) > limits.max_text_chars:
        raise DocumentTooLarge(f"the text is {len(text)} characters; the limit is {limits.max_text_chars}")
    if not text.strip():
        raise EmptyDocument("the text document is empty")
    return DocumentText(outcome="text", text=text, pages=1, source="text")


# -- PDF ------------------------------------------------------------------------------------------------------


def _pdf_text(data: bytes, limits: DocumentLimits) -> DocumentText:
    # What the uploads reader checks too: pypdf would look for a header further in (and tolerate junk before it).
    if not data.startswith(b"%PDF-"):
        raise NotAPdf("the document does not start with %PDF-")
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

    try:
        with _pypdf_limits(limits):
            reader = _open(data)
            pages = _page_count(reader, limits)
            texts = _page_texts(reader, pages, limits)
    except DocumentError:
        raise
    except DependencyError:  # AES without a cryptography provider installed: it cannot be decrypted here
        raise EncryptedPdf("the PDF is encrypted in a way that cannot be read here") from None
    except FileNotDecryptedError:
        raise EncryptedPdf("the PDF is encrypted with a password") from None
    except LimitReachedError:
        raise DocumentTooLarge("the PDF holds more than the limits allow (a stream inflates past "
                               f"{limits.stream_output_bytes} bytes, or too many objects)") from None
    except Exception as exc:  # pypdf reading untrusted bytes can fail in many ways; each is a broken PDF
        raise BrokenPdf(f"the PDF cannot be read ({type(exc).__name__})") from None
    text = PAGE_SEPARATOR.join(texts)
    if _meaningful(text) < limits.min_meaningful_chars:
        return DocumentText(outcome="no_text_layer", text="", pages=pages, source="pdf_text_layer",
                            reason=f"the PDF's {pages} page(s) have no text layer (a scan?): its text cannot be "
                                   "read without OCR")
    return DocumentText(outcome="text", text=text, pages=pages, source="pdf_text_layer")


@contextmanager
def _pypdf_limits(limits: DocumentLimits) -> Iterator[None]:
    from pypdf import apply_configuration

    out = limits.stream_output_bytes
    with apply_configuration(
        maximum_declared_stream_length=limits.max_bytes,
        array_based_stream_maximum_output_length=out,
        zlib_maximum_output_length=out,
        lzw_maximum_output_length=out,
        run_length_maximum_output_length=out,
        brotli_maximum_output_length=out,
        jbig2_maximum_output_length=out,
        image_maximum_buffer_size=out,
        stream_parsing_work_maximum_count=limits.stream_parsing_elements,
        stream_decoding_work_maximum_length=limits.stream_decoding_bytes,
        jbig2dec_binary=None,  # never run an external program on untrusted bytes
    ):
        yield


def _open(data: bytes) -> PdfReader:
    import io

    from pypdf import PasswordType, PdfReader

    reader = PdfReader(io.BytesIO(data))
    # Encrypted with an empty user password (only an owner password, restricting editing): it can be read.
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise EncryptedPdf("the PDF is encrypted with a password")
    return reader


def _page_count(reader: PdfReader, limits: DocumentLimits) -> int:
    pages = len(reader.pages)
    if pages > limits.max_pages:
        raise TooManyPages(f"the PDF has {pages} pages; the limit is {limits.max_pages}")
    if pages == 0:
        raise EmptyDocument("the PDF has no pages")
    return pages


def _page_texts(reader: PdfReader, pages: int, limits: DocumentLimits) -> list[str]:
    texts: list[str] = []
    length = 0
    for number in range(pages):  # in the document's order
        text = (reader.pages[number].extract_text() or "").strip()
        length += len(text) + len(PAGE_SEPARATOR)
        if length > limits.max_text_chars + len(PAGE_SEPARATOR):
            raise DocumentTooLarge(f"the PDF's text is over {limits.max_text_chars} characters")
        texts.append(text)
    return texts
