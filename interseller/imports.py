"""Spreadsheet import of contacts: reading, header matching, the dry run, the real import and
the background job for big files.

A file is read (CSV in any common delimiter and encoding, or XLSX values only) at the cost of
what it holds, within the IMPORT_* limits; its headers are matched forgivingly, and every row
checked in a dry run that needs no per-row query. The real import then goes row by row through
`contact_upsert` and `contact_add_to_sequence`, in one transaction, so integrations see exactly
what they would for contacts added by hand. A file of more than IMPORT_BACKGROUND_ROWS rows is
imported the same way by a django-q2 worker (an `ImportJob`), with its progress on the job's
admin page. The admin pages are in `admin_import.py`, the export in `resources.py`.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from xml.parsers import expat

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from .models import Contact, Enrollment, ImportJob, Membership, Sequence, Team
from .services import CONTACT_FIELDS, contact_add_to_sequence, contact_upsert, normalize_email
from .text import text_clean, text_for_export

logger = logging.getLogger(__name__)

# --- Messages (tests assert on these) ---------------------------------------------------------
MSG_TOO_LARGE = "The file is {size}, over the {limit} limit. Split it into smaller files."
MSG_TOO_MANY_ROWS = (
    "The file has more than {limit:,} rows of contacts, the most one import can take. "
    "Split it into smaller files."
)
MSG_NOT_SPREADSHEET = (
    "This file is not a spreadsheet we can read. Upload a CSV file or an Excel workbook (.xlsx)."
)
MSG_OLD_EXCEL = (
    "Old Excel files (.xls) can't be read. In Excel, choose File › Save As › "
    "Excel Workbook (.xlsx) or CSV, and upload that."
)
MSG_EMPTY = "The file is empty: it needs a header row and at least one row of contacts."
MSG_NO_ROWS = "The file has a header row but no contacts below it."
MSG_NO_EMAIL_COLUMN = (
    "No email column found. The columns are: {columns}. "
    "Name the column that holds email addresses “Email”."
)
MSG_TOO_MANY_COLUMNS = (
    "Cell {cell} has something in it, past column {last}: one import reads at most {limit:,} "
    "columns (IMPORT_MAX_COLUMNS). Delete the columns you don't need and upload the file again."
)
MSG_TOO_MANY_BLANK_ROWS = (
    "The file has more than {limit:,} empty rows above or between its contacts "
    "(IMPORT_MAX_BLANK_ROWS). Delete the empty rows and upload the file again."
)
MSG_CELL_TOO_LONG = (
    "{where} holds more than {limit:,} characters, the most one cell may hold "
    "(IMPORT_MAX_CELL_CHARS). Shorten it and upload the file again."
)
MSG_TOO_MANY_CELLS = (
    "The workbook holds more than {limit:,} cells, the most one import reads "
    "(IMPORT_MAX_CELLS). Keep only the sheet of contacts and the columns you need, or split "
    "it into smaller files."
)
MSG_UNZIPPED_TOO_LARGE = (
    "The workbook unzips to {size}, over the {limit} limit (IMPORT_MAX_UNZIPPED_BYTES). "
    "Split it into smaller files, or save it as CSV and upload that."
)
MSG_COMPRESSION_RATIO = (
    "Part of the workbook unzips to {ratio:,} times its size, more than the {limit:,} times "
    "a real workbook may (IMPORT_MAX_COMPRESSION_RATIO). Open it in your spreadsheet program, "
    "save it as CSV and upload that."
)
MSG_ROW_FORMULA = (
    "row {row}: cell {cell} holds a formula with no saved value; "
    "copy the column and paste it back as values only"
)
MSG_ROW_CELL = "row {row}, column “{column}”: {problem}"
MSG_CELL_CHARS = (
    "holds {length:,} characters, more than the {limit:,} one cell may hold (IMPORT_MAX_CELL_CHARS)"
)
MSG_ROW_EMAIL_MISSING = "row {row}: email is missing"
MSG_ROW_EMAIL_INVALID = "row {row}: email '{email}' is not a valid address"
MSG_ROW_DUPLICATE = "row {row}: email '{email}' already appears in row {first}"
MSG_ROW_FIELD_INVALID = "row {row}: {label} '{value}': {problem}"
MSG_ROW_TEAMMATES_CONTACT = (
    "row {row}: {email} belongs to a contact of another teammate; "
    "ask them or a manager to update it"
)
MSG_SEQUENCE_OTHER_TEAM = "Choose a sequence of the team “{team}”."
MSG_NO_OWNER = "The team “{team}” has no members to own the imported contacts."
MSG_FILE_EXPIRED = "The uploaded file is no longer available. Upload it again."
MSG_IMPORT_FAILED = "Nothing was imported: {error}"
MSG_IMPORT_DONE = (
    "Import finished: {created} new, {updated} updated and {unchanged} unchanged contacts."
)
MSG_SEQUENCE_DONE = " {added} added to the sequence “{sequence}” ({already} already in it)."
MSG_JOB_QUEUED = (
    "The file has {rows:,} rows, so it is imported in the background. "
    "This page shows how far it has got."
)
MSG_JOB_SEQUENCE_GONE = "the sequence “{sequence}” was deleted before the import started."
MSG_JOB_NO_OWNER = "the person who uploaded the file is no longer a member of “{team}”."
MSG_JOB_CRASHED = (
    "the import stopped unexpectedly. Try again, or ask an administrator to look at the server log."
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Rows read from the file are checked in chunks of this many emails: one query per chunk,
# under SQLite's limit on query parameters.
EMAIL_QUERY_CHUNK = 900


def import_max_bytes() -> int:
    return getattr(settings, "IMPORT_MAX_BYTES", 10 * 1024 * 1024)


def import_max_rows() -> int:
    return getattr(settings, "IMPORT_MAX_ROWS", 50_000)


def import_max_columns() -> int:
    return getattr(settings, "IMPORT_MAX_COLUMNS", 200)


def import_max_blank_rows() -> int:
    """Empty rows allowed above and between the rows of contacts, not after them."""
    return getattr(settings, "IMPORT_MAX_BLANK_ROWS", 10_000)


def import_max_cell_chars() -> int:
    return getattr(settings, "IMPORT_MAX_CELL_CHARS", 32_767)


def import_max_cells() -> int:
    """Cells, and texts of the shared string table, in the whole of an .xlsx."""
    return getattr(settings, "IMPORT_MAX_CELLS", 2_000_000)


def import_max_unzipped_bytes() -> int:
    return getattr(settings, "IMPORT_MAX_UNZIPPED_BYTES", 100 * 1024 * 1024)


def import_max_compression_ratio() -> int:
    return getattr(settings, "IMPORT_MAX_COMPRESSION_RATIO", 100)


def import_background_rows() -> int:
    """Files with more rows than this are imported by a worker, not inside the request."""
    return getattr(settings, "IMPORT_BACKGROUND_ROWS", 2_000)


class ImportRefused(Exception):
    """The file as a whole can't be imported; the message is for the person who uploaded it."""


# --- Reading ----------------------------------------------------------------------------------
# Whatever a file claims about itself, reading it costs what it actually holds, within the
# IMPORT_* limits: an .xlsx is checked part by part as it unzips, before openpyxl reads it.
@dataclass(frozen=True)
class CellProblem:
    """A cell the reader could not take a value from: a row error if its column is imported."""

    row: int
    column: int  # index into Sheet.headers
    message: str  # the row error, e.g. MSG_ROW_FORMULA


@dataclass
class Sheet:
    headers: list[str]
    # (row number as the spreadsheet shows it, cells as trimmed strings padded to the headers)
    rows: list[tuple[int, list[str]]]
    description: str  # "CSV, semicolon-separated, Windows-1252" — shown on the confirm page
    problems: list[CellProblem] = field(default_factory=list)


_BINARY_SIGNATURES = (
    b"\x89PNG",
    b"%PDF",
    b"GIF8",
    b"\xff\xd8\xff",  # JPEG
    b"\x1f\x8b",  # gzip
    b"Rar!",
    b"7z\xbc\xaf",
    b"BM",  # bitmap
    b"\x7fELF",
    b"MZ",  # Windows executable
)
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (and .doc): Office 97 files
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def sheet_read(data: bytes, *, max_rows: int | None = None) -> Sheet:
    """Read the first sheet of an XLSX workbook or a CSV file, or refuse it."""
    max_rows = import_max_rows() if max_rows is None else max_rows
    limit = import_max_bytes()
    if len(data) > limit:
        raise ImportRefused(
            MSG_TOO_LARGE.format(size=filesizeformat(len(data)), limit=filesizeformat(limit))
        )
    if not data.strip():
        raise ImportRefused(MSG_EMPTY)
    if data.startswith(_OLE_SIGNATURE):
        raise ImportRefused(MSG_OLD_EXCEL)
    if data.startswith(b"PK\x03\x04"):
        return _xlsx_read(data, max_rows)
    if data.startswith(_BINARY_SIGNATURES):
        raise ImportRefused(MSG_NOT_SPREADSHEET)
    return _csv_read(data, max_rows)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        # Phone numbers typed into Excel come back as floats.
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def _column_letters(number: int) -> str:
    """1 → A, 27 → AA: a column as spreadsheet programs name it (openpyxl's stop at ZZZ)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _build_sheet(
    rows: Iterable[tuple[int, list[Any] | tuple[Any, ...]]],
    max_rows: int,
    description: str,
    problems: list[CellProblem] | None = None,
) -> Sheet:
    """The header row and the rows of contacts below it, refusing what is over the limits.

    Empty rows count against IMPORT_MAX_BLANK_ROWS as they are read, so `rows` should stop at
    the last row that has something in it.
    """
    problems = problems or []
    # A formula without a saved value is an empty cell that is not blank.
    with_problems = {p.row for p in problems}
    max_columns = import_max_columns()
    max_blank = import_max_blank_rows()
    headers: list[str] | None = None
    out: list[tuple[int, list[str]]] = []
    blank = 0
    for number, raw in rows:
        if len(raw) > max_columns:
            beyond = next(
                (
                    i
                    for i in range(max_columns, len(raw))
                    if raw[i] is not None and raw[i] != "" and _cell_text(raw[i])
                ),
                None,
            )
            if beyond is not None:
                raise ImportRefused(
                    MSG_TOO_MANY_COLUMNS.format(
                        cell=f"{_column_letters(beyond + 1)}{number}",
                        limit=max_columns,
                        last=_column_letters(max_columns),
                    )
                )
            raw = raw[:max_columns]
        cells = [_cell_text(v) for v in raw]
        if not any(cells) and number not in with_problems:
            # Blank lines, and the formatted-but-empty rows Excel leaves behind.
            blank += 1
            if blank > max_blank:
                raise ImportRefused(MSG_TOO_MANY_BLANK_ROWS.format(limit=max_blank))
            continue
        if headers is None:
            # Headers are only matched and shown: drop what a page or a message can't hold.
            headers = [text_for_export(c) for c in cells]
            continue
        if len(out) >= max_rows:
            raise ImportRefused(MSG_TOO_MANY_ROWS.format(limit=max_rows))
        width = len(headers)
        cells = cells[:width] + [""] * (width - len(cells))
        out.append((number, cells))
    if headers is None:
        raise ImportRefused(MSG_EMPTY)
    if not out:
        raise ImportRefused(MSG_NO_ROWS)
    width = len(headers)
    return Sheet(
        headers=headers,
        rows=out,
        description=description,
        problems=[p for p in problems if p.column < width],
    )


# The parts of an .xlsx are read this much at a time.
_XLSX_CHUNK = 64 * 1024
# A part smaller than this is never refused for its compression ratio: small parts (styles,
# shared formulas) can be very repetitive, and they are cheap whatever they unzip to.
_RATIO_FREE_BYTES = 1024 * 1024
# No tag, and no text outside cells, in a real workbook comes near this size; past it, XML is
# refused before the parser buffers it (the size of a cell is IMPORT_MAX_CELL_CHARS).
_XML_MAX_RUN = 1024 * 1024

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
# Element names as expat reports them with namespace_separator=" ".
_ROW, _CELL, _VALUE, _FORMULA, _TEXT, _SHARED_STRING = (
    f"{_MAIN_NS} {name}" for name in ("row", "c", "v", "f", "t", "si")
)


def _zip_check(archive: zipfile.ZipFile) -> None:
    """Refuse a workbook by what its parts say they unzip to, before unzipping any of them."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    limit = import_max_unzipped_bytes()
    if total > limit:
        raise ImportRefused(
            MSG_UNZIPPED_TOO_LARGE.format(size=filesizeformat(total), limit=filesizeformat(limit))
        )
    max_ratio = import_max_compression_ratio()
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Excel never writes them, and zipfile inflates bzip2 and LZMA without a bound.
            logger.info(
                "Workbook part %r compressed by method %s", info.filename, info.compress_type
            )
            raise ImportRefused(MSG_NOT_SPREADSHEET)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FREE_BYTES and ratio > max_ratio:
            raise ImportRefused(MSG_COMPRESSION_RATIO.format(ratio=int(ratio), limit=max_ratio))


@dataclass
class _SheetScan:
    """What the streaming pass saw of one worksheet's cells."""

    last_row: int = 0  # the last row with something in it
    last_column: int = 0  # the rightmost column with something in it
    filled_rows: int = 0
    too_wide: str = ""  # the first filled cell past IMPORT_MAX_COLUMNS, e.g. "XFD7"
    # (row, column) of each formula cell without a saved value
    unsaved_formulas: list[tuple[int, int]] = field(default_factory=list)


class _PartScan:
    """One pass of expat over one part of a workbook, in bounded memory.

    Refuses a cell of more than IMPORT_MAX_CELL_CHARS characters (texts of the shared string
    table included) and counts cells and shared strings against IMPORT_MAX_CELLS, before
    openpyxl reads any of it; for a worksheet, notes what `_SheetScan` holds. A part that is
    not XML (a picture) is left to openpyxl, which refuses it if it needs it.
    """

    def __init__(self, *, cells_left: int, max_chars: int, max_columns: int) -> None:
        self.cells_left = cells_left
        self.max_chars = max_chars
        self.max_columns = max_columns
        self.sheet = _SheetScan()
        self.row = self.column = 0
        self.ref = ""  # the cell being read, as its <c r="..."> says
        self.container = ""  # _CELL or _SHARED_STRING while inside one
        self.chars = 0  # characters of the current cell, or of the current text outside cells
        self.leaf = ""
        self.cell_type = ""
        self.has_value = self.has_formula = self.has_saved = False
        self.last_filled_row = 0
        self.alive = True
        self.fed = 0
        from openpyxl.utils.cell import coordinate_to_tuple

        self.coordinate_to_tuple = coordinate_to_tuple
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        # Workbooks have no DTD; one can only be there to expand entities.
        parser.StartDoctypeDeclHandler = self._refuse
        self.parser = parser

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if not self.alive:
            return
        self.fed += len(chunk)
        try:
            self.parser.Parse(chunk, final)
        except expat.ExpatError:
            self.alive = False
            return
        # Outside handlers, the index is where parsing stopped: expat holds the rest, an
        # unfinished tag or comment.
        if self.fed - self.parser.CurrentByteIndex > _XML_MAX_RUN:
            logger.info("Workbook XML with a tag of more than %s bytes", _XML_MAX_RUN)
            raise ImportRefused(MSG_NOT_SPREADSHEET)

    def _refuse(self, *args: Any) -> None:
        logger.info("Workbook XML with a DTD")
        raise ImportRefused(MSG_NOT_SPREADSHEET)

    def _count_cell(self) -> None:
        self.cells_left -= 1
        if self.cells_left < 0:
            raise ImportRefused(MSG_TOO_MANY_CELLS.format(limit=import_max_cells()))

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == _CELL:
            self._count_cell()
            # Numbered as openpyxl numbers them, so its rows and ours agree.
            self.ref = attrs.get("r", "")
            self.column = self.coordinate_to_tuple(self.ref)[1] if self.ref else self.column + 1
            self.cell_type = attrs.get("t", "n")
            self.has_value = self.has_formula = self.has_saved = False
            self.container = name
            self.chars = 0
        elif name == _ROW:
            number = attrs.get("r")
            self.row = int(float(number)) if number else self.row + 1
            self.column = 0
        elif name == _SHARED_STRING:
            self._count_cell()
            self.container = name
            self.chars = 0
        elif name == _FORMULA:
            self.has_formula = True
        if not self.container:
            self.chars = 0
        self.leaf = name

    def _end(self, name: str) -> None:
        if name == _CELL:
            # A formula cell's saved value is its <v>; one computed to "" is t="str" and no <v>
            # text, which is a value, not a missing one.
            if self.has_formula and not self.has_saved and self.cell_type != "str":
                self.sheet.unsaved_formulas.append((self.row, self.column))
            if self.has_value or self.has_formula:
                self._filled()
            self.container = ""
        elif name == _SHARED_STRING:
            self.container = ""
        if not self.container:
            self.chars = 0
        self.leaf = ""

    def _text(self, data: str) -> None:
        self.chars += len(data)
        if self.container:
            if self.chars > self.max_chars:
                where = f"Cell {self._ref()}" if self.container == _CELL else "A cell"
                raise ImportRefused(MSG_CELL_TOO_LONG.format(where=where, limit=self.max_chars))
            if self.leaf == _VALUE:
                self.has_value = self.has_saved = True
            elif self.leaf == _TEXT:
                self.has_value = True
        elif self.chars > _XML_MAX_RUN:
            logger.info("Workbook XML with a text of more than %s characters", _XML_MAX_RUN)
            raise ImportRefused(MSG_NOT_SPREADSHEET)

    def _ref(self) -> str:
        return self.ref or f"{_column_letters(self.column)}{self.row}"

    def _filled(self) -> None:
        sheet = self.sheet
        sheet.last_column = max(sheet.last_column, self.column)
        if self.column > self.max_columns and not sheet.too_wide:
            sheet.too_wide = self._ref()
        if self.row != self.last_filled_row:
            sheet.filled_rows += 1
            self.last_filled_row = self.row
        sheet.last_row = max(sheet.last_row, self.row)


def _xlsx_scan(archive: zipfile.ZipFile) -> dict[str, _SheetScan]:
    """Unzip every part once, in chunks, checking it as above; what was seen, by part name."""
    scans: dict[str, _SheetScan] = {}
    cells_left = import_max_cells()
    max_chars = import_max_cell_chars()
    max_columns = import_max_columns()
    for info in archive.infolist():
        scan = _PartScan(cells_left=cells_left, max_chars=max_chars, max_columns=max_columns)
        # One byte more than the part says it holds: a part that unzips to more than it says
        # is refused here, where openpyxl would inflate all of it in one go.
        probe = copy.copy(info)
        probe.file_size += 1
        size = 0
        with archive.open(probe) as part:
            while chunk := part.read(_XLSX_CHUNK):
                size += len(chunk)
                if size > info.file_size:
                    logger.info("Workbook part %r is bigger than it says", info.filename)
                    raise ImportRefused(MSG_NOT_SPREADSHEET)
                scan.feed(chunk)
        scan.feed(b"", final=True)
        cells_left = scan.cells_left
        scans[info.filename] = scan.sheet
    return scans


def _xlsx_read(data: bytes, max_rows: int) -> Sheet:
    from openpyxl.reader.excel import ExcelReader

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _zip_check(archive)
            scans = _xlsx_scan(archive)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles it can't read
            # data_only: a formula cell reads as the value saved with it (the scan found those
            # that have none).
            reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
            reader.read()
    except ImportRefused:
        raise
    except Exception as e:
        # A .docx, a zip of photos, a truncated upload, an encrypted part, a bad cell address,
        # a part that says it unzips to less than it does...
        logger.info("Unreadable workbook: %r", e)
        raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    book = reader.wb
    try:
        sheet = book.active if book.active in book.worksheets else book.worksheets[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = {s.name: rel.target for s, rel in reader.parser.find_sheets()}
        scan = scans.get(parts.get(sheet.title, ""), _SheetScan())
        if scan.too_wide:
            raise ImportRefused(
                MSG_TOO_MANY_COLUMNS.format(
                    cell=scan.too_wide,
                    limit=import_max_columns(),
                    last=_column_letters(import_max_columns()),
                )
            )
        if scan.last_row - scan.filled_rows > import_max_blank_rows():
            raise ImportRefused(MSG_TOO_MANY_BLANK_ROWS.format(limit=import_max_blank_rows()))
        if not scan.last_row:
            raise ImportRefused(MSG_EMPTY)
        problems = [
            CellProblem(
                row,
                column - 1,
                MSG_ROW_FORMULA.format(row=row, cell=f"{_column_letters(column)}{row}"),
            )
            for row, column in scan.unsaved_formulas
        ]
        # Not the size the sheet declares (it may claim a million rows of 16,384 columns):
        # what the scan found, so the rows read are the rows that hold something.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(max_row=scan.last_row, max_col=scan.last_column, values_only=True)
        return _build_sheet(enumerate(rows, start=1), max_rows, "Excel workbook", problems)
    except ImportRefused:
        raise
    except Exception as e:  # a broken sheet inside a valid zip
        logger.info("Unreadable worksheet: %r", e)
        raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    finally:
        book.close()


_DELIMITER_NAMES = {",": "comma-separated", ";": "semicolon-separated", "\t": "tab-separated"}


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode Text" export.
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    # A NUL or two is a bad cell (a row error if its column is imported); UTF-16 without its
    # mark, or a binary file, is mostly control characters and refused by _csv_read.
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


def _csv_read(data: bytes, max_rows: int) -> Sheet:
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
    end = _LINE_END.search(text, len(text.rstrip(" \t\r\n" + delimiter)))
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

    return _build_sheet(rows(), max_rows, f"CSV, {_DELIMITER_NAMES[delimiter]}, {encoding}")


# --- Headers ----------------------------------------------------------------------------------
NAME = "name"  # a single "Name" column, split into first and last name
FIELD_LABELS = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    NAME: "first and last name",
    "company": "company",
    "title": "job title",
    "phone": "phone",
    "linkedin_url": "LinkedIn URL",
    "location": "location",
    "source": "source",
}
# Header text with case, spaces and punctuation removed → field.
HEADER_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "email",
            "emailaddress",
            "mail",
            "emailid",
            "email1",
            "primaryemail",
            "workemail",
            "businessemail",
            "contactemail",
            "personalemail",
            "emails",
        ],
        "email",
    ),
    **dict.fromkeys(
        ["firstname", "first", "givenname", "forename", "fname", "prenom"], "first_name"
    ),
    **dict.fromkeys(["lastname", "last", "surname", "familyname", "lname", "nom"], "last_name"),
    **dict.fromkeys(
        ["name", "fullname", "contactname", "candidatename", "displayname", "candidate"], NAME
    ),
    **dict.fromkeys(
        [
            "company",
            "companyname",
            "currentcompany",
            "employer",
            "currentemployer",
            "organization",
            "organisation",
            "account",
            "accountname",
        ],
        "company",
    ),
    **dict.fromkeys(
        [
            "jobtitle",
            "title",
            "position",
            "currenttitle",
            "currentposition",
            "currentjobtitle",
            "role",
            "occupation",
        ],
        "title",
    ),
    **dict.fromkeys(
        [
            "phone",
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "cell",
            "cellphone",
            "telephone",
            "tel",
            "workphone",
            "phone1",
            "directphone",
        ],
        "phone",
    ),
    **dict.fromkeys(
        [
            "linkedin",
            "linkedinurl",
            "linkedinprofile",
            "linkedinprofileurl",
            "profileurl",
            "publicprofileurl",
            "linkedinpublicurl",
            "linkedinlink",
        ],
        "linkedin_url",
    ),
    **dict.fromkeys(
        ["location", "city", "currentlocation", "region", "geo", "address"], "location"
    ),
    **dict.fromkeys(["source", "leadsource", "sourcedfrom"], "source"),
}


def header_key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


@dataclass
class Columns:
    index: dict[str, int]  # field → column index
    recognised: list[tuple[str, str]]  # (header as in the file, what it fills)
    ignored: list[str]

    def header_of(self, headers: list[str], name: str) -> str:
        return headers[self.index[name]] if name in self.index else FIELD_LABELS[name]


def columns_match(headers: list[str]) -> Columns:
    index: dict[str, int] = {}
    recognised: list[tuple[str, str]] = []
    ignored: list[str] = []
    for i, header in enumerate(headers):
        name = HEADER_SYNONYMS.get(header_key(header))
        if name is None or name in index:
            if header:
                ignored.append(header)
            continue
        index[name] = i
        recognised.append((header, FIELD_LABELS[name]))
    if "email" not in index:
        shown = ", ".join(f"“{h}”" for h in headers if h) or "none"
        raise ImportRefused(MSG_NO_EMAIL_COLUMN.format(columns=shown))
    return Columns(index=index, recognised=recognised, ignored=ignored)


# --- Dry run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowError:
    row: int
    column: str  # header as in the file
    message: str  # "row 14: email 'bob@' is not a valid address"

    def __str__(self) -> str:
        return self.message


@dataclass
class PlannedRow:
    row: int
    email: str
    fields: dict[str, str]
    status: str  # new / updated / unchanged, as contact_upsert will report it
    changed: tuple[str, ...] = ()


@dataclass
class ImportPlan:
    sheet: Sheet
    columns: Columns
    rows: list[PlannedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Rows already in the chosen sequence (only counted when a sequence is chosen).
    already_in_sequence: int = 0

    @property
    def is_valid(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.rows)
        return {
            "new": c["new"],
            "updated": c["updated"],
            "unchanged": c["unchanged"],
            "invalid": len({e.row for e in self.errors}),
        }


def _split_name(full: str) -> tuple[str, str]:
    full = " ".join(full.split())
    if "," in full:  # "Smith, Jane"
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.partition(" ")
    return first, last


def _fix_linkedin(value: str) -> str:
    # Exports often drop the scheme ("linkedin.com/in/jane"); the model needs a full URL.
    if value and "://" not in value and re.match(r"^(www\.)?[a-z0-9-]+\.[a-z]", value, re.I):
        return "https://" + value
    return value


def _unescape(value: str) -> str:
    # Undo our own export's formula escaping, so an exported sheet imports unchanged.
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


_MODEL_FIELDS = {name: Contact._meta.get_field(name) for name in CONTACT_FIELDS}


def row_fields(cells: list[str], columns: Columns) -> dict[str, str]:
    values = {
        name: _unescape(cells[i]) for name, i in columns.index.items() if name in _MODEL_FIELDS
    }
    if NAME in columns.index and not values.get("first_name") and not values.get("last_name"):
        first, last = _split_name(cells[columns.index[NAME]])
        values["first_name"], values["last_name"] = first, last
    if "linkedin_url" in values:
        values["linkedin_url"] = _fix_linkedin(values["linkedin_url"])
    return values


def _cells_clean(
    number: int,
    cells: list[str],
    headers: list[str],
    used: list[int],
    problems: list[CellProblem],
    max_chars: int,
) -> tuple[list[str], set[int], list[RowError]]:
    """The row with its imported cells as they will be stored (`text_clean`), the columns
    whose cell can't be, and a row error for each of those. Other columns don't matter."""
    cells = list(cells)
    bad: set[int] = set()
    errors: list[RowError] = []
    for problem in problems:
        if problem.column in used:
            bad.add(problem.column)
            errors.append(RowError(number, headers[problem.column], problem.message))
    for i in used:
        if i in bad:
            continue
        if len(cells[i]) > max_chars:
            problem_text = MSG_CELL_CHARS.format(length=len(cells[i]), limit=max_chars)
        else:
            try:
                cells[i] = text_clean(cells[i])
                continue
            except ValidationError as e:
                problem_text = " ".join(e.messages)
        bad.add(i)
        errors.append(
            RowError(
                number,
                headers[i],
                MSG_ROW_CELL.format(row=number, column=headers[i], problem=problem_text),
            )
        )
    return cells, bad, errors


def import_plan(
    *,
    sheet: Sheet,
    team: Team,
    sequence: Sequence | None = None,
    only_own: Membership | None = None,
) -> ImportPlan:
    """Check every row and predict what the import will do, without writing anything.

    Catches everything `contact_upsert` would refuse (its `full_clean`), so a file that passes
    here imports whole. With `only_own` (a member's import, see `import_only_own`), a row
    matching a teammate's contact is invalid: members may change only their own contacts.
    """
    columns = columns_match(sheet.headers)
    plan = ImportPlan(sheet=sheet, columns=columns)
    email_col = columns.index["email"]
    email_header = sheet.headers[email_col]
    first_row_of: dict[str, int] = {}
    used = sorted(set(columns.index.values()))
    max_chars = import_max_cell_chars()
    problems: dict[int, list[CellProblem]] = {}
    for problem in sheet.problems:
        problems.setdefault(problem.row, []).append(problem)
    for number, cells in sheet.rows:
        cells, bad, row_errors = _cells_clean(
            number, cells, sheet.headers, used, problems.get(number, []), max_chars
        )
        if not row_errors and not any(cells):
            continue  # only a formula without a saved value, in a column not imported
        raw_email = _unescape(cells[email_col])
        email = normalize_email(raw_email)
        if email_col in bad:
            pass  # its cell is an error already
        elif not email:
            row_errors.append(
                RowError(number, email_header, MSG_ROW_EMAIL_MISSING.format(row=number))
            )
        else:
            try:
                Contact._meta.get_field("email").run_validators(email)
            except ValidationError:
                row_errors.append(
                    RowError(
                        number,
                        email_header,
                        MSG_ROW_EMAIL_INVALID.format(row=number, email=raw_email.strip()),
                    )
                )
            else:
                first = first_row_of.setdefault(email, number)
                if first != number:
                    row_errors.append(
                        RowError(
                            number,
                            email_header,
                            MSG_ROW_DUPLICATE.format(row=number, email=email, first=first),
                        )
                    )
        values = row_fields(cells, columns)
        for name, value in values.items():
            source = (
                NAME
                if name in ("first_name", "last_name") and (name not in columns.index)
                else name
            )
            if not value or columns.index.get(source) in bad:
                continue
            try:
                _MODEL_FIELDS[name].clean(value, None)
            except ValidationError as e:
                shown = value if len(value) <= 60 else value[:57] + "..."
                row_errors.append(
                    RowError(
                        number,
                        columns.header_of(sheet.headers, source),
                        MSG_ROW_FIELD_INVALID.format(
                            row=number,
                            label=FIELD_LABELS[name],
                            value=shown,
                            problem=" ".join(e.messages),
                        ),
                    )
                )
        if row_errors:
            plan.errors.extend(row_errors)
        else:
            plan.rows.append(PlannedRow(row=number, email=email, fields=values, status="new"))

    _plan_against_existing(plan, team, sequence, only_own)
    return plan


def _plan_against_existing(
    plan: ImportPlan, team: Team, sequence: Sequence | None, only_own: Membership | None
) -> None:
    by_email = {r.email: r for r in plan.rows}
    emails = list(by_email)
    existing_ids: list[int] = []
    refused: list[PlannedRow] = []
    for start in range(0, len(emails), EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + EMAIL_QUERY_CHUNK]
        # The team's own contacts only: another team's contact with the same email is no match.
        for found in Contact.objects.filter(team=team, email__in=chunk).values(
            "id", "email", "owner_id", *CONTACT_FIELDS
        ):
            row = by_email[found["email"]]
            if only_own is not None and found["owner_id"] != only_own.pk:
                refused.append(row)
                continue
            existing_ids.append(found["id"])
            # Same rule as contact_upsert: blank cells never erase.
            row.changed = tuple(
                k for k, v in row.fields.items() if v and (found[k] or "") != v.strip()
            )
            row.status = "updated" if row.changed else "unchanged"
    if refused:
        header = plan.sheet.headers[plan.columns.index["email"]]
        gone = {r.row for r in refused}
        plan.rows = [r for r in plan.rows if r.row not in gone]
        plan.errors.extend(
            RowError(r.row, header, MSG_ROW_TEAMMATES_CONTACT.format(row=r.row, email=r.email))
            for r in refused
        )
        plan.errors.sort(key=lambda e: e.row)
    if sequence is not None:
        for start in range(0, len(existing_ids), EMAIL_QUERY_CHUNK):
            plan.already_in_sequence += Enrollment.objects.filter(
                sequence=sequence, contact_id__in=existing_ids[start : start + EMAIL_QUERY_CHUNK]
            ).count()


# --- The real import --------------------------------------------------------------------------
class ImportFailed(Exception):
    pass


@dataclass
class ImportOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    added_to_sequence: int = 0
    already_in_sequence: int = 0
    contact_ids: list[int] = field(default_factory=list)


# Progress is reported every this many rows.
PROGRESS_EVERY = 100


def _contacts_locked(team: Team, emails: list[str]) -> dict[str, Contact]:
    """The team's contacts with these emails, locked until the import commits."""
    found: dict[str, Contact] = {}
    for start in range(0, len(emails), EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + EMAIL_QUERY_CHUNK]
        for contact in Contact.objects.select_for_update().filter(team=team, email__in=chunk):
            found[contact.email] = contact
    return found


def _enrolled_contact_ids(sequence: Sequence, contact_ids: list[int]) -> set[int]:
    enrolled: set[int] = set()
    for start in range(0, len(contact_ids), EMAIL_QUERY_CHUNK):
        chunk = contact_ids[start : start + EMAIL_QUERY_CHUNK]
        enrolled.update(
            Enrollment.objects.select_for_update()
            .filter(sequence=sequence, contact_id__in=chunk)
            .values_list("contact_id", flat=True)
        )
    return enrolled


def import_execute(
    *,
    plan: ImportPlan,
    team: Team,
    owner: Membership,
    sequence: Sequence | None = None,
    added_by: Membership | None = None,
    only_own: Membership | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Write a valid plan, all or nothing. Raises ImportFailed naming the row that failed.

    The team's existing contacts (and who of them is already in the sequence) are loaded
    once, locked, instead of once per row; every write still goes through the services.
    `progress` is called with the number of rows written so far, every PROGRESS_EVERY rows.
    """
    if not plan.is_valid:
        raise ImportFailed(str(plan.errors[0]))
    outcome = ImportOutcome()
    current = 0
    try:
        with transaction.atomic():
            known = _contacts_locked(team, [r.email for r in plan.rows])
            enrolled = (
                _enrolled_contact_ids(sequence, [c.pk for c in known.values()])
                if sequence is not None
                else set()
            )
            for done, row in enumerate(plan.rows, start=1):
                current = row.row
                existing = known.get(row.email)
                if only_own is not None and existing and existing.owner_id != only_own.pk:
                    # The dry run refuses these; a teammate's contact created since then.
                    raise ImportFailed(
                        MSG_ROW_TEAMMATES_CONTACT.format(row=row.row, email=row.email)
                    )
                result = contact_upsert(
                    team=team,
                    owner=owner,
                    email=row.email,
                    fields=row.fields,
                    contacts_by_email=known,
                )
                setattr(outcome, result.status, getattr(outcome, result.status) + 1)
                outcome.contact_ids.append(result.contact.pk)
                if sequence is not None:
                    if result.contact.pk in enrolled:
                        # What contact_add_to_sequence would answer, without asking again.
                        outcome.already_in_sequence += 1
                    else:
                        added = contact_add_to_sequence(
                            contact=result.contact, sequence=sequence, added_by=added_by
                        )
                        if added.created:
                            outcome.added_to_sequence += 1
                        else:
                            outcome.already_in_sequence += 1
                if progress is not None and done % PROGRESS_EVERY == 0:
                    progress(done)
    except ImportFailed:
        raise
    except ValidationError as e:
        raise ImportFailed(f"row {current}: {' '.join(e.messages)}") from e
    except Exception as e:
        logger.exception("Contact import failed at row %s", current)
        raise ImportFailed(
            f"row {current} could not be saved ({type(e).__name__}). Try again, or ask an "
            "administrator to look at the server log."
        ) from e
    return outcome


def import_owner(*, team: Team, user) -> Membership | None:
    """The membership that owns contacts this user imports into this team."""
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is not None:
        return membership
    if user.is_superuser:
        members = Membership.objects.filter(team=team).order_by("created_at", "pk")
        return members.filter(role=Membership.Role.OWNER).first() or members.first()
    return None


def import_only_own(*, owner: Membership, user) -> Membership | None:
    """The membership whose contacts alone this import may update, or None for all of them.

    The admin's rule: a member sees and changes only their own contacts; owners, managers
    and superusers change any contact of the team.
    """
    if (user is not None and user.is_superuser) or owner.can_manage_team:
        return None
    return owner


def import_result_message(outcome: ImportOutcome | ImportJob, sequence_title: str = "") -> str:
    """What the person who imported is told, whether the import ran in the request or not."""
    text = MSG_IMPORT_DONE.format(
        created=outcome.created, updated=outcome.updated, unchanged=outcome.unchanged
    )
    if sequence_title:
        text += MSG_SEQUENCE_DONE.format(
            added=outcome.added_to_sequence,
            sequence=sequence_title,
            already=outcome.already_in_sequence,
        )
    return text


# --- Background import ------------------------------------------------------------------------
# How many invalid rows a failed job lists.
JOB_ERRORS_KEPT = 200


def import_job_create(
    *,
    team: Team,
    owner: Membership,
    created_by,
    sequence: Sequence | None,
    sheet: Sheet,
    data: bytes,
    file_name: str,
) -> ImportJob:
    """Queue a confirmed import for a worker; it starts once the caller's transaction commits."""
    job = ImportJob.objects.create(
        team=team,
        owner=owner,
        created_by=created_by,
        sequence=sequence,
        sequence_title=sequence.title if sequence else "",
        file_name=file_name[:255],
        file_description=sheet.description[:100],
        data=data,
        total_rows=len(sheet.rows),
    )
    transaction.on_commit(lambda: _job_enqueue(job.pk))
    return job


def _job_enqueue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("interseller.tasks.import_job_run", job_id, group="contact-import")


def _progress_key(job_id: int) -> str:
    return f"interseller:import-job:{job_id}:processed"


def import_job_progress(job: ImportJob) -> int:
    """Rows written so far.

    The import is one transaction, so the job row says nothing until it commits; while it
    runs, the worker reports through the cache. That is live with Redis (REDIS_URL); with the
    per-process local-memory cache the page shows the count when the job ends.
    """
    if job.state == ImportJob.State.RUNNING:
        return max(job.processed_rows, cache.get(_progress_key(job.pk)) or 0)
    return job.processed_rows


def import_job_lease() -> int:
    """Seconds after which a job still `running` belonged to a worker that died.

    django-q2 kills a task at Q_CLUSTER["timeout"] and hands it out again at "retry"; the
    killed run's transaction rolled back, so running the job again is safe.
    """
    return int(settings.Q_CLUSTER.get("timeout", 240)) + 30


def _job_fail(job: ImportJob, error: str) -> None:
    job.state = ImportJob.State.FAILED
    job.error = MSG_IMPORT_FAILED.format(error=error)
    job.processed_rows = 0
    job.finished_at = timezone.now()
    job.data = b""
    job.save(update_fields=["state", "error", "processed_rows", "finished_at", "data"])


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a queued job: the same checks and writes as an import confirmed in the request.

    Safe to run twice: only a queued job (or one whose worker died) is claimed. Returns the
    job, or None when there was nothing to do.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=import_job_lease())
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(state=ImportJob.State.QUEUED) | Q(state=ImportJob.State.RUNNING, started_at__lt=stale)
        )
        .update(state=ImportJob.State.RUNNING, started_at=now, processed_rows=0)
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("team", "owner__team", "sequence", "created_by").get(
        pk=job_id
    )
    team = job.team
    if job.owner is None:
        _job_fail(job, MSG_JOB_NO_OWNER.format(team=team))
        return job
    sequence = job.sequence
    if job.sequence_title and sequence is None:
        _job_fail(job, MSG_JOB_SEQUENCE_GONE.format(sequence=job.sequence_title))
        return job
    key = _progress_key(job.pk)
    try:
        # Checked again, exactly as the dry run did: the team's contacts may have changed.
        plan = import_plan(
            sheet=sheet_read(bytes(job.data)),
            team=team,
            sequence=sequence,
            only_own=import_only_own(owner=job.owner, user=job.created_by),
        )
        if not plan.is_valid:
            lines = [str(e) for e in plan.errors[:JOB_ERRORS_KEPT]]
            if len(plan.errors) > JOB_ERRORS_KEPT:
                lines.append(f"… and {len(plan.errors) - JOB_ERRORS_KEPT} more.")
            _job_fail(job, "\n".join(lines))
            return job
        with transaction.atomic():
            outcome = import_execute(
                plan=plan,
                team=team,
                owner=job.owner,
                sequence=sequence,
                added_by=job.owner,
                only_own=import_only_own(owner=job.owner, user=job.created_by),
                progress=lambda done: cache.set(key, done, timeout=3600),
            )
            # In the import's transaction: the contacts and "done" commit together, so a
            # worker dying in between cannot leave an import that runs again.
            for name in (
                "created",
                "updated",
                "unchanged",
                "added_to_sequence",
                "already_in_sequence",
            ):
                setattr(job, name, getattr(outcome, name))
            job.processed_rows = len(plan.rows)
            job.state = ImportJob.State.DONE
            job.finished_at = timezone.now()
            job.data = b""
            job.save()
    except (ImportRefused, ImportFailed) as e:
        _job_fail(job, str(e))
        return job
    except Exception:
        logger.exception("Contact import job %s failed", job.pk)
        _job_fail(job, MSG_JOB_CRASHED)
        return job
    finally:
        cache.delete(key)
    return job
