"""A read spreadsheet: its headers, its rows as the person numbers them, and the cells that
could not be read, plus the checks every kind of file shares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from ..text import text_for_export
from .limits import (
    import_max_blank_rows,
    import_max_columns,
)
from .messages import (
    MSG_EMPTY,
    MSG_NO_ROWS,
    MSG_TOO_MANY_BLANK_ROWS,
    MSG_TOO_MANY_COLUMNS,
    MSG_TOO_MANY_ROWS,
    ImportRefused,
)


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


def cell_text(value: Any) -> str:
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


def column_letters(number: int) -> str:
    """1 → A, 27 → AA: a column as spreadsheet programs name it (openpyxl's stop at ZZZ)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _read_rows(
    rows: Iterable[tuple[int, list[Any] | tuple[Any, ...]]],
    max_rows: int,
    problems: list[CellProblem],
) -> Iterator[Any]:
    """The header cells first, then (number, cells) for each row of contacts below them, as
    they are read, refusing what is over the limits."""
    # A formula without a saved value is an empty cell that is not blank.
    with_problems = {p.row for p in problems}
    max_columns = import_max_columns()
    max_blank = import_max_blank_rows()
    headers: list[str] | None = None
    count = 0
    blank = 0
    for number, raw in rows:
        if len(raw) > max_columns:
            beyond = next(
                (
                    i
                    for i in range(max_columns, len(raw))
                    if raw[i] is not None and raw[i] != "" and cell_text(raw[i])
                ),
                None,
            )
            if beyond is not None:
                raise ImportRefused(
                    MSG_TOO_MANY_COLUMNS.format(
                        cell=f"{column_letters(beyond + 1)}{number}",
                        limit=max_columns,
                        last=column_letters(max_columns),
                    )
                )
            raw = raw[:max_columns]
        cells = [cell_text(v) for v in raw]
        if not any(cells) and number not in with_problems:
            # Blank lines, and the formatted-but-empty rows Excel leaves behind.
            blank += 1
            if blank > max_blank:
                raise ImportRefused(MSG_TOO_MANY_BLANK_ROWS.format(limit=max_blank))
            continue
        if headers is None:
            # Headers are only matched and shown: drop what a page or a message can't hold.
            headers = [text_for_export(c) for c in cells]
            yield headers
            continue
        if count >= max_rows:
            raise ImportRefused(MSG_TOO_MANY_ROWS.format(limit=max_rows))
        count += 1
        width = len(headers)
        yield number, cells[:width] + [""] * (width - len(cells))
    if headers is None:
        raise ImportRefused(MSG_EMPTY)
    if not count:
        raise ImportRefused(MSG_NO_ROWS)


def build_sheet(
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
    read = _read_rows(rows, max_rows, problems)
    headers = next(read)
    out = list(read)
    width = len(headers)
    return Sheet(
        headers=headers,
        rows=out,
        description=description,
        problems=[p for p in problems if p.column < width],
    )


def sheet_chunks(
    rows: Iterable[tuple[int, list[Any] | tuple[Any, ...]]],
    max_rows: int,
    description: str,
    problems: list[CellProblem] | None,
    size: int,
) -> Iterator[Sheet]:
    """build_sheet as Sheets of `size` rows, read as they are needed: a worker importing a
    long file holds one chunk of it at a time, not every row."""
    problems = problems or []
    read = _read_rows(rows, max_rows, problems)
    headers = next(read)
    problems = [p for p in problems if p.column < len(headers)]
    chunk: list[tuple[int, list[str]]] = []
    for row in read:
        chunk.append(row)
        if len(chunk) == size:
            yield sheet_part(headers, chunk, description, problems)
            chunk = []
    if chunk:
        yield sheet_part(headers, chunk, description, problems)


def sheet_part(
    headers: list[str], rows: list, description: str, problems: list[CellProblem]
) -> Sheet:
    first, last = rows[0][0], rows[-1][0]
    return Sheet(
        headers=headers,
        rows=rows,
        description=description,
        problems=[p for p in problems if first <= p.row <= last],
    )


# The parts of an .xlsx are read this much at a time.
