"""Spreadsheets built to make the import reader burn CPU or memory, and files of random bytes.

Each file here is small; what it claims (a million rows, a cell of 60 MiB, a part that unzips to
more than it says) is refused by a named limit before it is read, or read at the cost of what is
really in it. Memory is measured with tracemalloc, which sees what zlib and expat allocate.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable

import hypothesis
import openpyxl
import pytest
from django.template.defaultfilters import filesizeformat
from hypothesis import strategies as st

from interseller import imports
from interseller.imports import ImportRefused, columns_match, import_plan, sheet_read
from interseller.text import text_clean
from tests.support.spreadsheets import (
    MAIN_NS,
    csv_bytes,
    fixture_bytes,
    sheet_xml,
    text_cell,
    xlsx_bytes,
    xlsx_package,
    xlsx_parts,
)

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def refused(data: bytes) -> str:
    with pytest.raises(ImportRefused) as e:
        sheet_read(data)
    return str(e.value)


def peak_memory(work: Callable[[], object]) -> int:
    """Bytes allocated at the peak while `work` runs (it may raise)."""
    tracemalloc.start()
    try:
        work()
    except ImportRefused:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def streamed_xlsx(big_part: str, head: bytes, filler: bytes, count: int, tail: bytes) -> bytes:
    """A workbook whose `big_part` is head + filler * count + tail, written without holding it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in xlsx_parts(shared_strings=big_part == "xl/sharedStrings.xml").items():
            z.writestr(name, text)
        if big_part != "xl/worksheets/sheet1.xml":
            row = '<row r="1">' + text_cell("A1", "Email") + '<c r="B1" t="s"><v>0</v></c></row>'
            z.writestr("xl/worksheets/sheet1.xml", sheet_xml(row))
        with z.open(big_part, "w", force_zip64=True) as part:
            part.write(head)
            for _ in range(count):
                part.write(filler)
            part.write(tail)
    return out.getvalue()


# --- what a sheet claims: its size, its rows, its columns -------------------------------------
def test_a_sheet_claiming_a_million_rows_of_16384_columns_is_refused_for_its_one_far_cell():
    # 5 KB: the dimension says A1:XFD1048576 and the one cell is in the last row and column.
    # openpyxl trusting the dimension pads every row to 16,384 cells, a million times.
    data = xlsx_package(
        sheet_xml(
            '<row r="1048576">' + text_cell("XFD1048576", "x") + "</row>",
            before='<dimension ref="A1:XFD1048576"/>',
        )
    )
    assert len(data) < 5000
    assert refused(data) == imports.MSG_TOO_MANY_COLUMNS.format(
        cell="XFD1048576", limit=200, last="GR"
    )
    assert "(IMPORT_MAX_COLUMNS)" in imports.MSG_TOO_MANY_COLUMNS


def test_a_million_empty_rows_above_the_last_cell_are_refused():
    data = xlsx_package(
        sheet_xml(
            '<row r="1">'
            + text_cell("A1", "Email")
            + '</row><row r="2">'
            + text_cell("A2", "a@x.example")
            + '</row><row r="1048576">'
            + text_cell("A1048576", "b@x.example")
            + "</row>",
            before='<dimension ref="A1:XFD1048576"/>',
        )
    )
    assert refused(data) == (
        "The file has more than 10,000 empty rows above or between its contacts "
        "(IMPORT_MAX_BLANK_ROWS). Delete the empty rows and upload the file again."
    )


def test_a_dimension_that_lies_is_ignored_and_the_cells_there_are_read():
    data = xlsx_package(
        sheet_xml(
            '<row r="1">'
            + text_cell("A1", "Email")
            + text_cell("B1", "Name")
            + '</row><row r="3">'
            + text_cell("A3", "a@x.example")
            + text_cell("B3", "Ada")
            # Formatted, empty cells far away: nothing in them, nothing to refuse.
            + '<c r="XFD3" s="1"/></row><row r="1048576" s="1" customFormat="1"/>',
            before='<dimension ref="A1:XFD1048576"/>',
        )
    )
    sheet = sheet_read(data)
    assert sheet.headers == ["Email", "Name"]
    assert sheet.rows == [(3, ["a@x.example", "Ada"])]


def test_empty_rows_between_contacts_count_but_empty_rows_after_them_do_not(settings):
    settings.IMPORT_MAX_BLANK_ROWS = 3
    fine = b"Email,Name\r\n\r\n\r\na@x.example,A\r\n,\r\nb@x.example,B" + b"\r\n,,\r\n" * 50
    assert [n for n, _ in sheet_read(fine).rows] == [4, 6]
    assert refused(b"Email\n\n\n\n\na@x.example\n").startswith(
        "The file has more than 3 empty rows above or between its contacts"
    )
    book = openpyxl.Workbook()
    book.active.append(["Email"])
    book.active["A6"] = "a@x.example"
    out = io.BytesIO()
    book.save(out)
    assert refused(out.getvalue()).startswith("The file has more than 3 empty rows")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_value_past_the_column_limit_is_refused_naming_its_cell(settings, kind):
    settings.IMPORT_MAX_COLUMNS = 3
    rows = [["Email", "Name", "", "", ""], ["a@x.example", "A", "", "", "far"]]
    data = csv_bytes(rows) if kind == "csv" else xlsx_bytes(rows)
    assert refused(data) == (
        "Cell E2 has something in it, past column C: one import reads at most 3 columns "
        "(IMPORT_MAX_COLUMNS). Delete the columns you don't need and upload the file again."
    )
    # Empty cells past the limit (a trailing delimiter, say) are no reason to refuse.
    rows[1][4] = ""
    data = csv_bytes(rows) if kind == "csv" else xlsx_bytes(rows)
    [(number, cells)] = sheet_read(data).rows
    assert number == 2 and cells[:2] == ["a@x.example", "A"] and len(cells) <= 3


def test_a_value_past_the_last_column_openpyxl_can_name_is_refused_all_the_same():
    data = csv_bytes([["Email"], ["a@x.example"] + [""] * 18_277 + ["far"]])
    assert refused(data).startswith("Cell AAAA2 has something in it, past column GR:")


def test_a_workbook_of_more_cells_than_the_limit_is_refused(settings):
    settings.IMPORT_MAX_CELLS = 10
    data = xlsx_bytes([["Email", "Name"]] + [[f"c{i}@x.example", "C"] for i in range(5)])
    assert refused(data) == (
        "The workbook holds more than 10 cells, the most one import reads (IMPORT_MAX_CELLS). "
        "Keep only the sheet of contacts and the columns you need, or split it into smaller "
        "files."
    )


# --- what a zip claims: the size of its parts -------------------------------------------------
def test_a_workbook_over_the_unzipped_limit_is_refused(settings):
    data = xlsx_bytes([["Email"], ["a@x.example"]])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        total = sum(i.file_size for i in z.infolist())
    settings.IMPORT_MAX_UNZIPPED_BYTES = total - 1
    assert refused(data) == (
        f"The workbook unzips to {filesizeformat(total)}, over the "
        f"{filesizeformat(total - 1)} limit (IMPORT_MAX_UNZIPPED_BYTES). "
        "Split it into smaller files, or save it as CSV and upload that."
    )
    settings.IMPORT_MAX_UNZIPPED_BYTES = total
    assert sheet_read(data).rows == [(2, ["a@x.example"])]


def test_a_part_compressed_far_more_than_xml_compresses_is_refused():
    # 8 MiB of spaces inside the sheet: deflate packs them a thousand to one.
    data = streamed_xlsx(
        "xl/worksheets/sheet1.xml",
        f'<worksheet xmlns="{MAIN_NS}">'.encode(),
        b" " * MiB,
        8,
        b"<sheetData/></worksheet>",
    )
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    ratio = int(info.file_size / info.compress_size)
    assert ratio > 100
    assert refused(data) == imports.MSG_COMPRESSION_RATIO.format(ratio=ratio, limit=100)
    assert "(IMPORT_MAX_COMPRESSION_RATIO)" in imports.MSG_COMPRESSION_RATIO


def lying_zip(name: str, chunks: int) -> bytes:
    """A zip whose one part says it unzips to 100 bytes (CRC included) but holds chunks MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = b"".join(packer.compress(b"<" * MiB) for _ in range(chunks)) + packer.flush()
    crc, size, encoded = zlib.crc32(b"<" * 100), 100, name.encode()
    local = struct.pack(
        "<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(raw), size, len(encoded), 0
    )
    central = struct.pack(
        "<4s6H3I5H2I",
        *(b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(raw), size, len(encoded)),
        *(0, 0, 0, 0, 0, 0),
    )
    end = struct.pack(
        "<4s4H2IH",
        *(b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(encoded)),
        *(len(local) + len(encoded) + len(raw), 0),
    )
    return local + encoded + raw + central + encoded + end


def test_a_part_that_unzips_to_more_than_it_says_is_refused_without_unzipping_it():
    # zipfile stops at the declared size, but openpyxl reads small parts whole, and whole
    # means one call inflating everything there is: 40 MiB here, 2 GiB from a 10 MiB upload.
    data = lying_zip("[Content_Types].xml", 40)
    assert len(data) < 100_000
    assert refused(data) == imports.MSG_NOT_SPREADSHEET
    assert peak_memory(lambda: sheet_read(data)) < 4 * MiB


def test_a_part_compressed_some_other_way_than_excel_does_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_LZMA) as z:
        for name, text in xlsx_parts().items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml('<row r="1"/>'))
    assert refused(out.getvalue()) == imports.MSG_NOT_SPREADSHEET


# --- what a cell holds --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("part", "where"),
    [("xl/sharedStrings.xml", "A cell"), ("xl/worksheets/sheet1.xml", "Cell B2")],
)
def test_a_60_mib_cell_is_refused_before_it_is_read(settings, part, where):
    # A shared string (read with the workbook) or an inline one (read with the sheet).
    settings.IMPORT_MAX_COMPRESSION_RATIO = 100_000  # so that the size of the cell is what's seen
    if part == "xl/sharedStrings.xml":
        head = f'<sst xmlns="{MAIN_NS}"><si><t>'.encode()
        tail = b"</t></si></sst>"
    else:
        head = (
            f'<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1">'
            + text_cell("A1", "Email")
            + '</row><row r="2"><c r="B2" t="inlineStr"><is><t>'
        ).encode()
        tail = b"</t></is></c></row></sheetData></worksheet>"
    data = streamed_xlsx(part, head, b"A" * MiB, 60, tail)
    assert len(data) < 1 * MiB
    message = imports.MSG_CELL_TOO_LONG.format(where=where, limit=32_767)
    assert refused(data) == message
    assert message.startswith(f"{where} holds more than 32,767 characters")
    assert "(IMPORT_MAX_CELL_CHARS)" in message
    assert peak_memory(lambda: sheet_read(data)) < 4 * MiB


def test_a_tag_of_megabytes_is_refused_before_the_parser_buffers_it(settings):
    settings.IMPORT_MAX_COMPRESSION_RATIO = 100_000
    head = f'<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1" x="'.encode()
    data = streamed_xlsx(
        "xl/worksheets/sheet1.xml", head, b"A" * MiB, 16, b'"/></sheetData></worksheet>'
    )
    assert refused(data) == imports.MSG_NOT_SPREADSHEET
    assert peak_memory(lambda: sheet_read(data)) < 6 * MiB


def test_entities_in_a_dtd_are_refused():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    )
    sheet = laughs + sheet_xml('<row r="1">' + text_cell("A1", "&b;") + "</row>")
    assert refused(xlsx_package(sheet)) == imports.MSG_NOT_SPREADSHEET


def test_a_storm_of_quotes_and_commas_is_answered_by_what_it_holds():
    # Guessing its delimiter took csv.Sniffer's regular expressions most of a minute.
    data = b"Email\r\n" + b',"' * 30_000
    assert refused(data).startswith("Cell GS2 has something in it, past column GR:")


# --- anything at all: an answer or a refusal, never a crash -----------------------------------
PROPERTIES = hypothesis.settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.data_too_large,
    ],
)

SPECIAL = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\t",
    "\r",
    "\n",
    "\r\n",
    '"',
    '""',
    "'=1+1",
    '=HYPERLINK("http://x")',
    "\ud800",
    "\udfff",
    "\u202e",  # right-to-left override
    "\u200f",
    "مرحبا",
    "👩‍💻",
    "\ufeff",
    "Email",
    "E-mail",
    "Name",
    "a@x.example",
    "A@X.EXAMPLE",
    "bob@",
]
cell_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(SPECIAL),
    st.lists(st.sampled_from(SPECIAL), max_size=4).map("".join),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["x", "é", ",", '"', "\n"]), st.integers(0, 300_000)
    ),
)


@st.composite
def csv_files(draw) -> bytes:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    header = draw(st.lists(st.sampled_from(["Email", "Name", "Company", "Notes", ""]), max_size=5))
    rows = draw(st.lists(st.lists(cell_text, max_size=6), max_size=8))
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        if quote:
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        return delimiter.join(cells)

    text = newline.join(line(r) for r in [header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "wtf-8"]))
    if encoding == "wtf-8":  # lone surrogates written as UTF-8 would write them
        return text.encode("utf-8", "surrogatepass")
    return codecs.encode(
        text, encoding, "surrogatepass" if encoding.startswith("utf") else "replace"
    )


# Fixed workbooks (openpyxl's own stamp the time they were saved), a few bytes of which change.
WORKBOOKS = [fixture_bytes("excel.xlsx"), fixture_bytes("formula.xlsx")]


@st.composite
def mangled_workbooks(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(WORKBOOKS)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def handwritten_workbooks(draw) -> bytes:
    cells = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["A1", "B1", "A2", "B2", "Z9", "XFD1", "A1048576", "", "1A", "AAAA1"]
                ),
                st.sampled_from(["inlineStr", "s", "n", "str", "b", "e", "bogus"]),
                st.sampled_from(
                    [
                        "",
                        "<v>0</v>",
                        "<v>x</v>",
                        "<v/>",
                        "<f>1+1</f>",
                        "<f>A1</f><v>2</v>",
                        "<is><t>Email</t></is>",
                    ]
                ),
            ),
            max_size=8,
        )
    )
    rows = "".join(
        f'<row r="{draw(st.sampled_from(["1", "2", "x", "", "-3", "1e400"]))}">'
        f'<c r="{ref}" t="{kind}">{inner}</c></row>'
        for ref, kind, inner in cells
    )
    strings = draw(
        st.sampled_from(
            [
                None,
                f'<sst xmlns="{MAIN_NS}"><si><t>Email</t></si></sst>',
                "<sst/>",
                "not xml",
            ]
        )
    )
    return xlsx_package(sheet_xml(rows), strings)


@PROPERTIES
@hypothesis.given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=3000).map(lambda b: b"PK\x03\x04" + b),
        csv_files(),
        mangled_workbooks(),
        handwritten_workbooks(),
    )
)
def test_any_file_is_read_or_refused_with_a_message(team_a, data):
    try:
        sheet = sheet_read(data)
        columns_match(sheet.headers)
        plan = import_plan(sheet=sheet, team=team_a.team)
    except ImportRefused as e:
        assert str(e).strip()
        hypothesis.event("refused", str(e).split(":")[0][:40])
        return
    hypothesis.event("read", "with row errors" if plan.errors else "valid")
    for error in plan.errors:
        assert re.match(r"row \d+", str(error))
    for row in plan.rows:
        for value in row.fields.values():
            assert text_clean(value) == value  # storable as it is
