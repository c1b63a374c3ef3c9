"""Reading an uploaded file: which kind it is, told from its bytes, not its name."""

from __future__ import annotations

from collections.abc import Iterator

from django.template.defaultfilters import filesizeformat

from .csvfile import csv_read
from .limits import (
    import_max_bytes,
    import_max_rows,
)
from .messages import (
    MSG_EMPTY,
    MSG_NOT_SPREADSHEET,
    MSG_OLD_EXCEL,
    MSG_TOO_LARGE,
    ImportRefused,
)
from .sheet import Sheet, sheet_part
from .xlsx import xlsx_read

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


def sheet_read(data: bytes, *, max_rows: int | None = None) -> Sheet:
    """Read the first sheet of an XLSX workbook or a CSV file, or refuse it."""
    return _read(data, max_rows=max_rows, chunk_rows=0)


def sheet_read_chunks(data: bytes, *, size: int, max_rows: int | None = None) -> Iterator[Sheet]:
    """sheet_read in Sheets of `size` rows. A CSV is read as the chunks are asked for, so
    memory holds one chunk and the file's text; a workbook is read whole, then split."""
    return _read(data, max_rows=max_rows, chunk_rows=size)


def _read(data: bytes, *, max_rows: int | None, chunk_rows: int):
    max_rows = import_max_rows() if max_rows is None else max_rows
    limit = import_max_bytes()
    if len(data) > limit:
        raise ImportRefused(
            MSG_TOO_LARGE.format(size=filesizeformat(len(data)), limit=filesizeformat(limit))
        )
    if not data or data.isspace():  # not strip(): a copy of the whole file
        raise ImportRefused(MSG_EMPTY)
    if data.startswith(_OLE_SIGNATURE):
        raise ImportRefused(MSG_OLD_EXCEL)
    if data.startswith(b"PK\x03\x04"):
        sheet = xlsx_read(data, max_rows)
        if not chunk_rows:
            return sheet
        return (
            sheet_part(
                sheet.headers, sheet.rows[i : i + chunk_rows], sheet.description, sheet.problems
            )
            for i in range(0, len(sheet.rows), chunk_rows)
        )
    if data.startswith(_BINARY_SIGNATURES):
        raise ImportRefused(MSG_NOT_SPREADSHEET)
    return csv_read(data, max_rows, chunk_rows)
