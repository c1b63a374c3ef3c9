"""CSV in any common delimiter and encoding, rows numbered as a spreadsheet program shows them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from .messages import (
    MSG_NOT_SPREADSHEET,
    ImportRefused,
)
from .sheet import Sheet, build_sheet, sheet_chunks

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_DELIMITER_NAMES = {",": "comma-separated", ";": "semicolon-separated", "\t": "tab-separated"}


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode Text" export.
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    # A NUL or two is a bad cell (a row error if its column is imported); UTF-16 without its
    # mark, or a binary file, is mostly control characters and refused by csv_read.
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        raise ImportRefused(MSG_NOT_SPREADSHEET) from None


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first rows into the most equal rows of 2+ columns.

    Not csv.Sniffer: its regular expressions take most of a minute over some 64 KiB samples
    (`,"` repeated); this reads at most the first 20 rows of the sample, three times.
    """
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best, best_score = ",", (0, 0)
    for delimiter in ",;\t":
        widths: list[int] = []
        try:
            for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
                if row:
                    widths.append(len(row))
                if len(widths) == 20:
                    break
        except csv.Error:  # the sample ends inside a quoted cell
            pass
        if not widths or widths[0] < 2:
            continue
        score = (sum(w == widths[0] for w in widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


_LINE_END = re.compile(r"\r\n?|\n")


def csv_read(data: bytes, max_rows: int, chunk_rows: int = 0) -> Sheet | Iterator[Sheet]:
    """The file as a Sheet, or with `chunk_rows` as Sheets of that many rows read as needed."""
    text, encoding = _decode(data)
    # Text that is mostly control characters is a binary file that happened to decode (or
    # UTF-16 without its mark: every other character a NUL). A few are bad cells: row errors
    # if their column is imported.
    sample = text[:65536]
    if len(_CONTROL_CHARS.findall(sample)) > max(2, len(sample) // 20):
        raise ImportRefused(MSG_NOT_SPREADSHEET)
    # csv refuses a cell over 128 KiB, a process-wide limit. The text is in memory and within
    # IMPORT_MAX_BYTES already, so let a cell be as long as the text: a long note in a column
    # nobody imports is no reason to refuse the file (a long cell in an imported column is a
    # row error). Only ever raised, so two reads at once never lower it under each other.
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    delimiter = _sniff_delimiter(text)
    # Empty rows after the last one (Excel's CSV export writes them for formatted cells) are
    # not empty rows between contacts: drop them, up to the last row's line break.
    # (Counted from the end: rstrip() would copy the whole text.)
    blank = " \t\r\n" + delimiter
    last = len(text)
    while last and text[last - 1] in blank:
        last -= 1
    end = _LINE_END.search(text, last)
    if end:
        text = text[: end.end()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows():
        try:
            # Numbered by record, as a spreadsheet program numbers rows: a line break inside
            # quotes stays in its cell, an empty line is an empty row.
            yield from enumerate(reader, start=1)
        except csv.Error:
            raise ImportRefused(MSG_NOT_SPREADSHEET) from None

    description = f"CSV, {_DELIMITER_NAMES[delimiter]}, {encoding}"
    if chunk_rows:
        return sheet_chunks(rows(), max_rows, description, [], chunk_rows)
    return build_sheet(rows(), max_rows, description)
