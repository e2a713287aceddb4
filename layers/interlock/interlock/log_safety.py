"""What keeps tokens, secrets and personal data out of logs, and outsider text from steering a terminal.

Standard library only: ``interlock run`` sets up its console logging with it before anything heavy loads.

* :func:`hold_wire_loggers` holds the loggers of the libraries that talk to the network (botocore, boto3,
  urllib3, s3transfer, httpx, httpcore, openai, Powertools' own, moto) at WARNING, whatever the root
  logger, ``POWERTOOLS_LOG_LEVEL``, ``INTERLOCK_LOG_LEVEL`` or Lambda's log level says. Below WARNING
  they log whole requests and answers: botocore's DEBUG has GetSecretValue's secret and SendRawEmail's
  message (with its approval link), httpx's INFO has every URL it calls, Powertools' event handler's DEBUG
  has the route's arguments (an approval token). A record such a logger makes below WARNING all the same
  (a logger set to DEBUG by hand) is emptied as it is made, so no handler can write what it held.
* :func:`escape_controls` makes control and invisible formatting characters visible (``\\x1b``, ``\\n``,
  ``\\u202e``), so text an outsider wrote cannot clear a terminal, forge a log line or reorder one;
  :class:`ConsoleFormatter` applies it to every plain-text log line, :func:`escape_json_controls` to the
  JSON ones (JSON already escapes C0 controls, not DEL, C1 or bidirectional overrides).

docs/logging.md says what never reaches a log and how each is made impossible.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TextIO

from interlock.safe_log import escape_char

# The libraries whose records below WARNING carry URLs, headers or bodies (or, for moto, the local cloud's data).
WIRE_LOGGERS = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "httpx",
    "httpcore",
    "openai",
    "aws_lambda_powertools",
    "moto",
)
WIRE_LEVEL = logging.WARNING

# C0 controls but tab and newline, DEL, C1 controls, and the invisible characters that reorder or hide text:
# the Arabic letter mark, zero-width and directional marks, line/paragraph separators, bidi embeddings,
# overrides and isolates, word joiners, the BOM.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_UNSAFE_TEXT = re.compile(f"[{_CONTROLS}\t\n]")
_UNSAFE_BLOCK = re.compile(f"[{_CONTROLS}]")  # keeps tabs and line breaks: tracebacks have them
_UNSAFE_JSON = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or escape_char(char)


def escape_controls(text: str, *, keep_line_breaks: bool = False) -> str:
    """``text`` with every control and invisible formatting character written as an escape (``\\x1b``,
    ``\\n``, ``\\u202e``). ``keep_line_breaks`` leaves tabs and newlines (a traceback's own) alone."""
    return (_UNSAFE_BLOCK if keep_line_breaks else _UNSAFE_TEXT).sub(_escape, text)


def escape_json_controls(document: str) -> str:
    """A JSON document with the characters :func:`json.dumps` (``ensure_ascii=False``) leaves raw -- DEL, C1
    controls, bidirectional and invisible marks -- written as ``\\uXXXX`` escapes. Outside strings a JSON
    document is ASCII, so every such character is inside a string, where the escape means the same."""
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def is_wire_record(record: logging.LogRecord) -> bool:
    """A record of a wire logger (or one of its children) below :data:`WIRE_LEVEL`."""
    if record.levelno >= WIRE_LEVEL:
        return False
    name = record.name
    return any(name == wire or name.startswith(wire + ".") for wire in WIRE_LOGGERS)


WITHHELD = "a %s record of %s was withheld: below WARNING it can carry secrets, tokens and personal data " \
           "(docs/logging.md)"


def _withholding(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if is_wire_record(record):
            record.msg, record.args = WITHHELD, (record.levelname, record.name)
            record.exc_info = record.exc_text = record.stack_info = None
        return record

    make.interlock_withholding = True  # type: ignore[attr-defined]
    return make


def hold_wire_loggers() -> None:
    """Hold :data:`WIRE_LOGGERS` at WARNING (or higher, if one is set higher), and make sure that a record one
    of them makes below WARNING all the same (a child logger set to DEBUG by hand, ``OPENAI_LOG=debug``,
    ``boto3.set_stream_logger``) carries nothing but :data:`WITHHELD`, whichever handler gets it.

    Idempotent and cheap; called when :mod:`interlock.observability` loads (every function, at cold start)
    and by ``interlock run`` once its console logging is set up.
    """
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < WIRE_LEVEL:  # NOTSET (0) included: never inherit DEBUG from the root
            logger.setLevel(max(WIRE_LEVEL, logging.getLogger().getEffectiveLevel()))
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "interlock_withholding", False):
        logging.setLogRecordFactory(_withholding(factory))


class ConsoleFormatter(logging.Formatter):
    """A plain-text formatter whose lines show outsider text's control characters as escapes.

    The message (and every argument interpolated into it) is escaped completely, line breaks included, so a
    record is one line however it was made; an exception's traceback keeps its own line breaks.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = escape_controls(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # another handler's formatter may have cached it: escaped here, whoever made it
            line += "\n" + escape_controls(record.exc_text, keep_line_breaks=True)
        if record.stack_info:
            line += "\n" + escape_controls(self.formatStack(record.stack_info), keep_line_breaks=True)
        return line


CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_console(level: str | int, stream: TextIO | None = None) -> logging.Handler:
    """The local runtime's console logging: one escaped line per record on stderr, the root at ``level``,
    wire loggers held. Returns the handler (replacing an earlier one this function installed)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "interlock_console", False):
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter(CONSOLE_FORMAT, datefmt="%H:%M:%S"))
    setattr(handler, "interlock_console", True)  # noqa: B010 (marks the handler this function installed)
    root.addHandler(handler)
    root.setLevel(level)
    hold_wire_loggers()
    return handler
