"""Tiny PDFs built by hand for the tests: the bytes a PDF writer would produce, with nothing of the reader under
test (pypdf) in their making, except :func:`encrypted`, which has pypdf's writer encrypt one.

A page's content is a text object per line, ``BT /F1 12 Tf 72 <y> Td (<line>) Tj ET``, with the standard Type1
font Helvetica (no font file needed); a "scanned" page paints only an image XObject, as a scanner's PDF does.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    lines: Sequence[str] = ()
    image: bool = False  # paint a (tiny, grey) image over the page: the only thing on a scanned page
    raw_content: bytes | None = None  # the content stream as given, instead of one built from the lines
    compress: bool = False  # FlateDecode the content stream


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def _content(page: Page) -> bytes:
    if page.raw_content is not None:
        return page.raw_content
    ops = []
    if page.image:
        ops.append(b"q 612 0 0 792 0 0 cm /Im1 Do Q")
    for i, line in enumerate(page.lines):
        ops.append(b"BT /F1 12 Tf 72 %d Td (%s) Tj ET" % (720 - 16 * i, _escape(line)))
    return b"\n".join(ops)


def _stream(body: bytes, extra: bytes = b"", compress: bool = False) -> bytes:
    if compress:
        body = zlib.compress(body, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(body), extra, body)


def build(pages: Sequence[Page]) -> bytes:
    """A PDF of ``pages``, in that order, with a correct cross-reference table."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree, filled in below
    font = len(objects) + 1
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    image = len(objects) + 1
    objects.append(_stream(b"\x80" * 4, b" /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace "
                                        b"/DeviceGray /BitsPerComponent 8"))
    kids = []
    for page in pages:
        content = len(objects) + 1
        objects.append(_stream(_content(page), compress=page.compress))
        kids.append(len(objects) + 1)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << "
                       b"/Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >> >>" % (content, font, image))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def text_pdf(*pages: Sequence[str]) -> bytes:
    """A PDF with a text layer: one page per argument, each a list of lines."""
    return build([Page(lines=lines) for lines in pages])


def scanned_pdf(pages: int = 1) -> bytes:
    """A scan: each page only an image, no text operators at all."""
    return build([Page(image=True) for _ in range(pages)])


def encrypted(pdf: bytes, user_password: str, owner_password: str = "owner",  # noqa: S107 - a test fixture
              algorithm: str = "RC4-128") -> bytes:
    """``pdf`` encrypted by pypdf's writer (RC4 needs no cryptography provider; AES-256 does)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def bomb_pdf(inflated_bytes: int) -> bytes:
    """A one-page PDF whose content stream is a few KiB of Flate that inflates to ``inflated_bytes`` of spaces."""
    return build([Page(raw_content=b" " * inflated_bytes, compress=True)])
