"""CSV in any common delimiter and encoding, rows numbered as a spreadsheet program shows them."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .messages import (
    MSG_NOT_SPREADSHEET,
    ImportRefused,
)
from .sheet import Sheet, build_sheet, sheet_chunks

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_DELIMITER_NAMES = {",": "comma-separated", ";": "semicolon-separated", "\t": "tab-separated"}


# Bytes decoded at a time while the encoding is checked.
_BLOCK = 1024 * 1024
# Characters at the start of the text that decide the delimiter and whether it is text at all.
_SAMPLE = 65536


def _encoding(file: BinaryIO) -> tuple[str, str]:
    """The codec the whole file decodes with, and its name for people.

    The whole file, not a prefix: a file that is UTF-8 up to its last row but one and then
    has a Windows-1252 "é" is Windows-1252 throughout (so every "é" reads right). Decoded a
    block at a time and thrown away: the rows are decoded again as they are read.
    """
    if file.read(2) in (b"\xff\xfe", b"\xfe\xff"):
        # Excel's "Unicode Text" export.
        candidates = [("utf-16", "UTF-16")]
    else:
        # A NUL or two is a bad cell (a row error if its column is imported); UTF-16 without
        # its mark, or a binary file, is mostly control characters and refused by csv_read.
        candidates = [("utf-8-sig", "UTF-8"), ("cp1252", "Windows-1252")]
    for codec, name in candidates:
        file.seek(0)
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            while block := file.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return codec, name
    raise ImportRefused(MSG_NOT_SPREADSHEET)


def _sniff_delimiter(sample: str, *, more: bool) -> str:
    """The delimiter that splits the first rows into the most equal rows of 2+ columns, from
    the text's first _SAMPLE characters (`more`: the text goes on after them).

    Not csv.Sniffer: its regular expressions take most of a minute over some 64 KiB samples
    (`,"` repeated); this reads at most the first 20 rows of the sample, three times.
    """
    if more and "\n" in sample:
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


def csv_read(
    file: BinaryIO, size: int, max_rows: int, chunk_rows: int = 0
) -> Sheet | Iterator[Sheet]:
    """The file (`size` bytes) as a Sheet, or with `chunk_rows` as Sheets of that many rows,
    read as needed: the text is decoded and split into records as it streams, never whole."""
    codec, encoding = _encoding(file)
    file.seek(0)
    # newline="": line breaks reach csv as they are, as it needs them (and quoted ones stay).
    lines = iter(io.TextIOWrapper(file, encoding=codec, newline=""))
    head: list[str] = []
    length = 0
    for line in lines:
        head.append(line)
        length += len(line)
        if length > _SAMPLE:
            break
    sample = "".join(head)[:_SAMPLE]
    # Text that is mostly control characters is a binary file that happened to decode (or
    # UTF-16 without its mark: every other character a NUL). A few are bad cells: row errors
    # if their column is imported.
    if len(_CONTROL_CHARS.findall(sample)) > max(2, len(sample) // 20):
        raise ImportRefused(MSG_NOT_SPREADSHEET)
    # csv refuses a cell over 128 KiB, a process-wide limit. The file is within
    # IMPORT_MAX_BYTES already, so let a cell be as long as the file: a long note in a column
    # nobody imports is no reason to refuse the file (a long cell in an imported column is a
    # row error). Only ever raised, so two reads at once never lower it under each other.
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)
    delimiter = _sniff_delimiter(sample, more=length > _SAMPLE)
    reader = csv.reader(
        _without_trailing_blank_lines(itertools.chain(head, lines), " \t\r\n" + delimiter),
        delimiter=delimiter,
    )

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


def _without_trailing_blank_lines(lines: Iterable[str], blank: str) -> Iterator[str]:
    """The lines up to the last one with something in it: empty rows after the last one
    (Excel's CSV export writes them for formatted cells) are not empty rows between contacts.

    A run of blank lines is held until a line with something follows it (it may be inside a
    quoted cell); at the end of the file it is dropped.
    """
    held: list[str] = []
    for line in lines:
        if not line.strip(blank):
            held.append(line)
            continue
        if held:
            yield from held
            held.clear()
        yield line
