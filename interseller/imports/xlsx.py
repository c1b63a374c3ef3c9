"""XLSX values, at the cost of the cells the workbook really holds.

Before openpyxl sees the file, every part is unzipped once in bounded chunks and its XML
scanned (sizes, cell count, formulas without a saved value, the last filled row and column),
so a workbook that lies about its size, or holds one huge cell, is refused cheaply."""

from __future__ import annotations

import copy
import logging
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from xml.parsers import expat

from django.template.defaultfilters import filesizeformat

from .limits import (
    import_max_blank_rows,
    import_max_cell_chars,
    import_max_cells,
    import_max_columns,
    import_max_compression_ratio,
    import_max_unzipped_bytes,
)
from .messages import (
    MSG_CELL_TOO_LONG,
    MSG_COMPRESSION_RATIO,
    MSG_EMPTY,
    MSG_NOT_SPREADSHEET,
    MSG_ROW_FORMULA,
    MSG_TOO_MANY_BLANK_ROWS,
    MSG_TOO_MANY_CELLS,
    MSG_TOO_MANY_COLUMNS,
    MSG_UNZIPPED_TOO_LARGE,
    ImportRefused,
)
from .sheet import CellProblem, Sheet, build_sheet, column_letters, sheet_chunks

logger = logging.getLogger(__name__)


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
        return self.ref or f"{column_letters(self.column)}{self.row}"

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


def xlsx_read(file: BinaryIO, max_rows: int, chunk_rows: int = 0) -> Sheet | Iterator[Sheet]:
    """The workbook's first sheet as a Sheet, or with `chunk_rows` as Sheets of that many
    rows, streamed from the file as they are asked for (openpyxl's read-only mode)."""
    from openpyxl.reader.excel import ExcelReader

    try:
        with zipfile.ZipFile(file) as archive:
            _zip_check(archive)
            scans = _xlsx_scan(archive)
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles it can't read
            # data_only: a formula cell reads as the value saved with it (the scan found those
            # that have none).
            reader = ExcelReader(file, read_only=True, data_only=True)
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
                    last=column_letters(import_max_columns()),
                )
            )
        if scan.last_row - scan.filled_rows > import_max_blank_rows():
            raise ImportRefused(MSG_TOO_MANY_BLANK_ROWS.format(limit=import_max_blank_rows()))
        if not scan.last_row:
            raise ImportRefused(MSG_EMPTY)
    except ImportRefused:
        book.close()
        raise
    except Exception as e:  # a broken sheet inside a valid zip
        book.close()
        logger.info("Unreadable worksheet: %r", e)
        raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    problems = [
        CellProblem(
            row,
            column - 1,
            MSG_ROW_FORMULA.format(row=row, cell=f"{column_letters(column)}{row}"),
        )
        for row, column in scan.unsaved_formulas
    ]
    rows = _sheet_rows(book, sheet, scan)
    if chunk_rows:
        return sheet_chunks(rows, max_rows, "Excel workbook", problems, chunk_rows)
    return build_sheet(rows, max_rows, "Excel workbook", problems)


def _sheet_rows(book, sheet, scan: _SheetScan) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """The sheet's rows, numbered, as openpyxl streams them; the workbook closed after."""
    try:
        # Not the size the sheet declares (it may claim a million rows of 16,384 columns):
        # what the scan found, so the rows read are the rows that hold something.
        sheet.reset_dimensions()
        yield from enumerate(
            sheet.iter_rows(max_row=scan.last_row, max_col=scan.last_column, values_only=True),
            start=1,
        )
    except Exception as e:  # a broken sheet inside a valid zip
        logger.info("Unreadable worksheet: %r", e)
        raise ImportRefused(MSG_NOT_SPREADSHEET) from None
    finally:
        book.close()
