"""Reading an uploaded file: which kind it is, told from its bytes, not its name."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

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
from .sheet import Sheet
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


# Bytes read at a time when a file is checked or copied as a whole.
_BLOCK = 1024 * 1024


def sheet_read(data: bytes, *, max_rows: int | None = None) -> Sheet:
    """Read the first sheet of an XLSX workbook or a CSV file, or refuse it."""
    return _read(io.BytesIO(data), max_rows=max_rows, chunk_rows=0)


def sheet_read_chunks(
    file: bytes | BinaryIO, *, size: int, max_rows: int | None = None
) -> Iterator[Sheet]:
    """sheet_read in Sheets of `size` rows, read as the chunks are asked for, from the bytes
    or a seekable binary file (an import job's parts): memory holds one chunk, not the file.
    A CSV is read as a stream; a workbook is copied to a temporary file (zip needs to seek)
    and its rows streamed from there."""
    if isinstance(file, bytes):
        file = io.BytesIO(file)
    return _read(file, max_rows=max_rows, chunk_rows=size)


def _read(file: BinaryIO, *, max_rows: int | None, chunk_rows: int):
    max_rows = import_max_rows() if max_rows is None else max_rows
    limit = import_max_bytes()
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    if size > limit:
        raise ImportRefused(
            MSG_TOO_LARGE.format(size=filesizeformat(size), limit=filesizeformat(limit))
        )
    head = file.read(len(_OLE_SIGNATURE))
    if not size or _is_space(file, head):
        raise ImportRefused(MSG_EMPTY)
    file.seek(0)
    if head.startswith(_OLE_SIGNATURE):
        raise ImportRefused(MSG_OLD_EXCEL)
    if head.startswith(b"PK\x03\x04"):
        return xlsx_read(_seekable_copy(file), max_rows, chunk_rows)
    if head.startswith(_BINARY_SIGNATURES):
        raise ImportRefused(MSG_NOT_SPREADSHEET)
    return csv_read(file, size, max_rows, chunk_rows)


def _is_space(file: BinaryIO, head: bytes) -> bool:
    """Whether the file holds only whitespace: read further only while it does."""
    if not head.isspace():
        return False
    while block := file.read(_BLOCK):
        if not block.isspace():
            return False
    return True


def _seekable_copy(file: BinaryIO) -> BinaryIO:
    """The file itself when it is in memory already, else a copy in a temporary file (in
    memory while small): a zip is read by seeking back and forth, one query per part apart."""
    if isinstance(file, io.BytesIO):
        return file
    # Not closed here: the rows are read from it after this returns (deleted once dropped).
    copy = tempfile.SpooledTemporaryFile(max_size=_BLOCK)  # noqa: SIM115
    shutil.copyfileobj(file, copy, _BLOCK)
    copy.seek(0)
    return copy
