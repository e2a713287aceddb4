"""Every log level at DEBUG, every record captured twice (caplog, and Powertools' JSON formatter on the root),
and one question: does any of it hold one of these strings? Shared by the unit and integration leak tests."""

from __future__ import annotations

import base64
import io
import logging
import quopri
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

import pytest


def spellings(value: str) -> set[str]:
    """``value`` as a log could hold it: as is, URL-encoded (``%40``), form-encoded."""
    return {value, quote(value, safe=""), quote_plus(value)}


_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def decoded(text: str) -> Iterator[str]:
    """The text inside every base64 run of ``text`` (how botocore shows a body such as SendRawEmail's message),
    quoted-printable soft line breaks undone (how an email's long lines hold a link)."""
    for run in _BASE64.findall(text):
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4))
        except ValueError:
            continue
        yield raw.decode("utf-8", "replace")
        yield quopri.decodestring(raw).decode("utf-8", "replace")


@dataclass
class Captured:
    caplog: pytest.LogCaptureFixture
    json_lines: io.StringIO = field(default_factory=io.StringIO)

    def texts(self) -> Iterator[str]:
        yield self.caplog.text
        for record in self.caplog.records:
            yield record.getMessage()
            yield repr(vars(record))  # extra keys, exc_info, args
        yield self.json_lines.getvalue()

    def leaks(self, values: Iterable[str]) -> list[str]:
        """Which of ``values`` (in any of its :func:`spellings`) a record holds, as is or base64-encoded."""
        forms = {form for value in values for form in spellings(value)}
        texts = list(self.texts())
        texts += [inner for text in texts for inner in decoded(text)]
        return sorted({form for text in texts for form in forms if form in text})


@contextmanager
def everything_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    """The root logger, every logger that exists and Powertools' at DEBUG; records captured by caplog and by a
    handler with Powertools' JSON formatter (what Lambda's JSON log format would write)."""
    from interlock.observability import logger as powertools  # loaded by every function: holds the wire loggers

    manager = logging.root.manager
    saved = {name: lg.level for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root_level = logging.root.level
    captured = Captured(caplog)
    handler = logging.StreamHandler(captured.json_lines)
    handler.setFormatter(powertools.registered_formatter)
    caplog.set_level(logging.DEBUG)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    powertools.setLevel(logging.DEBUG)
    logging.root.addHandler(handler)  # Interlock's own records propagate to it too
    try:
        yield captured
    finally:
        logging.root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        logging.root.setLevel(root_level)
