"""Text that may be stored: one rule for the API, admin forms and spreadsheet cells.

Stored text must always be exportable (XLSX refuses most control characters), storable
(PostgreSQL refuses NUL) and encodable (a lone UTF-16 surrogate cannot be written as UTF-8).
So every way in (`text_clean`) turns tabs and line breaks of single-line values into spaces and
refuses any other control character with the same message, naming it; the export strips them
from rows stored before this rule existed.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# C0 controls (but tab, newline and carriage return, which multi-line text may hold), DEL,
# and lone surrogates.
_FORBIDDEN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Single-line values refuse tab and line breaks too.
_FORBIDDEN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

MSG_CONTROL_CHARACTER = (
    "Contains a character that cannot be stored ({code}); remove it and try again."
)


def bad_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character that may not be stored, as "U+0007", or None."""
    pattern = _FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_LINE
    match = pattern.search(value)
    return f"U+{ord(match.group()):04X}" if match else None


def text_validate(value: str, *, multiline: bool = False) -> str:
    """Raise ValidationError (code "control_character") if the text may not be stored."""
    code = bad_character(value, multiline=multiline)
    if code:
        raise ValidationError(MSG_CONTROL_CHARACTER.format(code=code), code="control_character")
    return value


_LINE_BREAKS = re.compile(r"[\t\r\n]+")


def text_clean(value: str, *, multiline: bool = False) -> str:
    """The text as it is stored: single-line values get their tabs and line breaks folded
    into one space; what still cannot be stored raises ValidationError."""
    if not multiline:
        value = _LINE_BREAKS.sub(" ", value)
    return text_validate(value, multiline=multiline)


def text_for_export(value: str) -> str:
    """What an export writes: any character a spreadsheet cannot hold is dropped."""
    return _FORBIDDEN_MULTILINE.sub("", value)
