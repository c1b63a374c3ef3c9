"""Reading spreadsheets: each format and encoding, files refused with a clear message,
workbooks written by other programs (formulas and their saved values), and CSV row numbers,
long cells and characters that cannot be stored."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from interseller import imports
from interseller.imports import (
    MSG_EMPTY,
    MSG_NO_ROWS,
    MSG_NOT_SPREADSHEET,
    MSG_OLD_EXCEL,
    ImportRefused,
    import_plan,
    sheet_read,
    sheet_read_chunks,
)
from interseller.models import Contact
from tests.support.admin import message_texts
from tests.support.spreadsheets import (
    CHANGELIST_URL,
    csv_bytes,
    file_errors,
    fixture_bytes,
    import_file,
    sheet_xml,
    team_emails,
    text_cell,
    upload,
    xlsx_bytes,
    xlsx_package,
)

pytestmark = pytest.mark.django_db


# --- reading each format and encoding ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "described", "emails"),
    [
        (
            "linkedin_recruiter.csv",
            "CSV, comma-separated, UTF-8",
            {"ada@analytical.example", "grace.hopper@navy.example", "linus@kernel.example"},
        ),
        (
            "ats_semicolon_cp1252.csv",
            "CSV, semicolon-separated, Windows-1252",
            {"jose@empresa.example", "zoe@firma.example", "smith@firm.example"},
        ),
        (
            "google_sheets.tsv",
            "CSV, tab-separated, UTF-8",
            {"katherine@nasa.example", "dorothy@nasa.example"},
        ),
        (
            "excel.xlsx",
            "Excel workbook",
            {"margaret@apollo.example", "annie@nasa.example", "radia@dec.example"},
        ),
    ],
)
def test_each_sample_file_imports_in_the_admin(team_a, login, name, described, emails):
    client = login(team_a.owner)
    dry, done = import_file(client, fixture_bytes(name), team=team_a.team, name=name)
    assert dry.context["plan"].sheet.description == described
    assert dry.context["counts"] == {"new": len(emails), "updated": 0, "unchanged": 0, "invalid": 0}
    assert done.status_code == 302 and done.url == CHANGELIST_URL
    assert team_emails(team_a.team) == emails
    assert Contact.objects.filter(team=team_a.team).exclude(owner=team_a.owner).count() == 0
    assert (
        f"Import finished: {len(emails)} new, 0 updated and 0 unchanged contacts."
        in message_texts(done)
    )


def test_cp1252_accents_and_name_column_are_read_right(team_a, login):
    import_file(login(team_a.owner), fixture_bytes("ats_semicolon_cp1252.csv"), team=team_a.team)
    jose = Contact.objects.get(email="jose@empresa.example")
    assert (jose.first_name, jose.last_name, jose.company, jose.title) == (
        "José",
        "Müller",
        "Café Société",
        "Développeur",
    )
    assert jose.phone == "+33 1 23 45 67 89" and jose.source == "Old ATS"
    smith = Contact.objects.get(email="smith@firm.example")
    assert (smith.first_name, smith.last_name) == ("Jane", "Smith")  # "Smith, Jane"


def test_linkedin_export_fields_and_scheme_less_urls(team_a, login):
    import_file(login(team_a.owner), fixture_bytes("linkedin_recruiter.csv"), team=team_a.team)
    grace = Contact.objects.get(email="grace.hopper@navy.example")
    assert grace.linkedin_url == "https://linkedin.com/in/grace-hopper"
    assert grace.title == "Rear Admiral, Compilers"
    assert Contact.objects.get(email="ada@analytical.example").location == "London, UK"


def test_xlsx_numbers_become_text_and_blank_rows_keep_row_numbers():
    sheet = sheet_read(fixture_bytes("excel.xlsx"))
    assert [number for number, _ in sheet.rows] == [2, 3, 5]
    assert sheet.rows[0][1][5] == "6175550100"


@pytest.mark.parametrize(
    "data",
    [
        fixture_bytes("excel.xlsx"),
        b"Email,Name\n\na@x.example,A\nb@x.example,B\n\n\nc@x.example,C\nd@x.example,\n",
    ],
    ids=["xlsx", "csv"],
)
def test_a_file_read_in_chunks_holds_the_same_rows_as_read_whole(data):
    whole = sheet_read(data)
    parts = list(sheet_read_chunks(data, size=2))
    assert [r for part in parts for r in part.rows] == whole.rows
    assert all(len(part.rows) <= 2 for part in parts) and len(parts) >= 2
    assert all(
        (part.headers, part.description) == (whole.headers, whole.description) for part in parts
    )


@pytest.mark.parametrize(
    ("data", "description"),
    [
        (b"\xef\xbb\xbfEmail,Name\r\na@x.example,A B\r\n", "CSV, comma-separated, UTF-8"),
        (b"Email;Name\na@x.example;A B\n", "CSV, semicolon-separated, UTF-8"),
        (b"Email\tName\na@x.example\tA B\n", "CSV, tab-separated, UTF-8"),
        (
            "Email;Name\na@x.example;Ren\u00e9e\n".encode("cp1252"),
            "CSV, semicolon-separated, Windows-1252",
        ),
        ("Email\tName\na@x.example\tRen\u00e9e\n".encode("utf-16"), "CSV, tab-separated, UTF-16"),
        (b"Email\na@x.example\n", "CSV, comma-separated, UTF-8"),
    ],
)
def test_delimiters_and_encodings_are_detected(data, description):
    sheet = sheet_read(data)
    assert sheet.description == description
    assert sheet.rows[0][1][0] == "a@x.example"


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photo.csv", fixture_bytes("photo_renamed.csv"), MSG_NOT_SPREADSHEET),
        ("report.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", MSG_NOT_SPREADSHEET),
        ("garbage.csv", bytes(range(256)) * 40, MSG_NOT_SPREADSHEET),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500, MSG_OLD_EXCEL),
        ("fake.xlsx", b"PK\x03\x04 definitely not a workbook", MSG_NOT_SPREADSHEET),
        ("empty.csv", b"", MSG_EMPTY),
        ("blank.csv", b"\r\n\r\n  \n", MSG_EMPTY),
        ("header-only.csv", b"Email,Name\r\n", MSG_NO_ROWS),
        (
            "names.csv",
            fixture_bytes("no_email_column.csv"),
            "No email column found. The columns are: “Name”, “Company”. "
            "Name the column that holds email addresses “Email”.",
        ),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(team_a, login, name, data, message):
    dry = upload(login(team_a.owner), data, team=team_a.team, name=name)
    assert dry.status_code == 200
    assert file_errors(dry) == [message]
    assert Contact.objects.count() == 0


def test_a_docx_is_not_a_spreadsheet(tmp_path):
    out = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(ImportRefused, match=re.escape(MSG_NOT_SPREADSHEET)):
        sheet_read(out.getvalue())


def test_files_over_the_size_limit_are_refused(team_a, login, settings):
    settings.IMPORT_MAX_BYTES = 1000
    data = csv_bytes([["Email"]] + [[f"c{i}@x.example"] for i in range(100)])
    dry = upload(login(team_a.owner), data, team=team_a.team)
    assert file_errors(dry) == [
        f"The file is {len(data) / 1024:.1f}\xa0KB, over the 1000\xa0bytes limit. "
        "Split it into smaller files."
    ]


def test_files_over_the_row_limit_are_refused(team_a, login, settings):
    settings.IMPORT_MAX_ROWS = 5
    client = login(team_a.owner)
    ok = upload(
        client, csv_bytes([["Email"]] + [[f"c{i}@x.example"] for i in range(5)]), team=team_a.team
    )
    assert ok.context.get("confirm_form") is not None
    for data in (
        csv_bytes([["Email"]] + [[f"c{i}@x.example"] for i in range(6)]),
        xlsx_bytes([["Email"]] + [[f"c{i}@x.example"] for i in range(6)]),
    ):
        dry = upload(client, data, team=team_a.team)
        assert file_errors(dry) == [
            "The file has more than 5 rows of contacts, the most one import can take. "
            "Split it into smaller files."
        ]


def test_an_xlsx_formula_without_a_saved_value_is_a_row_error_naming_the_cell(team_a):
    # openpyxl saves formulas without their value, as some exports do.
    book = openpyxl.Workbook()
    book.active.append(["Email", "Name"])
    book.active.append(["a@x.example", "A"])
    book.active["B5"] = '=HYPERLINK("http://evil.example","click")'
    book.active["A5"] = "b@x.example"
    out = io.BytesIO()
    book.save(out)
    plan = import_plan(sheet=sheet_read(out.getvalue()), team=team_a.team)
    assert [(e.row, e.column, str(e)) for e in plan.errors] == [
        (5, "Name", imports.MSG_ROW_FORMULA.format(row=5, cell="B5"))
    ]
    assert [r.email for r in plan.rows] == ["a@x.example"]


def test_a_formula_looking_text_cell_is_a_value_not_a_formula():
    sheet = sheet_read(xlsx_bytes([["Email", "Company"], ["a@x.example", "'=not a formula"]]))
    assert sheet.rows[0][1][1] == "'=not a formula"


# --- workbooks written by hand: formulas and their saved values -------------------------------


def test_an_xlsx_formula_imports_its_saved_value_never_the_formula(team_a):
    # As Google Sheets exports =HYPERLINK() and Excel saves any formula: with its result.
    data = xlsx_package(
        sheet_xml(
            '<row r="1">'
            + text_cell("A1", "Email")
            + text_cell("B1", "Company")
            + text_cell("C1", "Phone")
            + '</row><row r="2">'
            + '<c r="A2" t="str"><f>LOWER("ADA@X.EXAMPLE")</f><v>ada@x.example</v></c>'
            + '<c r="B2" t="str"><f>HYPERLINK("http://e.example","Engines")</f><v>Engines</v></c>'
            + '<c r="C2"><f>6175550000+100</f><v>6175550100</v></c>'
            + '</row><row r="3">'
            + text_cell("A3", "bob@x.example")
            # A formula whose result is empty text has a saved value: nothing.
            + '<c r="B3" t="str"><f>IF(TRUE,"","x")</f><v></v></c>'
            + "</row>"
        )
    )
    sheet = sheet_read(data)
    assert sheet.rows == [
        (2, ["ada@x.example", "Engines", "6175550100"]),
        (3, ["bob@x.example", "", ""]),
    ]
    plan = import_plan(sheet=sheet, team=team_a.team)
    assert plan.is_valid and [r.fields["company"] for r in plan.rows] == ["Engines", ""]


def test_a_formula_without_a_saved_value_fails_its_row_only(team_a, login):
    # The fixture's C3 is "=C2" saved without its value (as openpyxl writes formulas).
    dry = upload(
        login(team_a.owner), fixture_bytes("formula.xlsx"), team=team_a.team, name="f.xlsx"
    )
    assert file_errors(dry) == []
    plan = dry.context["plan"]
    assert [(e.row, e.column, str(e)) for e in plan.errors] == [
        (
            3,
            "Company",
            "row 3: cell C3 holds a formula with no saved value; "
            "copy the column and paste it back as values only",
        )
    ]
    assert [r.email for r in plan.rows] == ["a@formula.example"]
    assert dry.context["counts"] == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 1}
    assert dry.context.get("confirm_form") is None
    assert Contact.objects.count() == 0


def test_a_formula_without_a_saved_value_in_a_column_not_imported_does_not_matter(team_a):
    data = xlsx_package(
        sheet_xml(
            '<row r="1">'
            + text_cell("A1", "Email")
            + text_cell("B1", "Score")
            + '</row><row r="2">'
            + text_cell("A2", "a@x.example")
            + '<c r="B2"><f>A2&amp;"!"</f></c>'
            + '</row><row r="3"><c r="B3"><f>1+1</f></c></row>'
        )
    )
    plan = import_plan(sheet=sheet_read(data), team=team_a.team)
    assert plan.is_valid
    assert [r.email for r in plan.rows] == ["a@x.example"]


# --- CSV: row numbers, long cells, characters that cannot be stored ---------------------------
def test_rows_are_numbered_as_a_spreadsheet_shows_them(team_a):
    # Row 2's note spans two lines inside quotes, and row 3 is empty: in Excel or Google Sheets
    # the bad address is on row 4, though it is on the file's fifth line.
    data = (
        b"Email,Notes\r\n"
        b'ada@x.example,"first line\r\nsecond line"\r\n'
        b"\r\n"
        b"bob@,note\r\n"
        b"carl@x.example,note\r\n"
    )
    sheet = sheet_read(data)
    assert [number for number, _ in sheet.rows] == [2, 4, 5]
    plan = import_plan(sheet=sheet, team=team_a.team)
    assert [str(e) for e in plan.errors] == ["row 4: email 'bob@' is not a valid address"]
    assert [r.row for r in plan.rows] == [2, 5]


def test_a_csv_cell_over_128_kb_in_a_column_not_imported_is_ignored(team_a):
    data = csv_bytes([["Email", "Notes"], ["a@x.example", "n" * 200_000], ["b@x.example", ""]])
    sheet = sheet_read(data)
    plan = import_plan(sheet=sheet, team=team_a.team)
    assert plan.is_valid and [r.email for r in plan.rows] == ["a@x.example", "b@x.example"]


def test_a_too_long_cell_in_an_imported_column_is_a_row_error_naming_row_and_column(team_a):
    data = csv_bytes(
        [["Email", "Company"], ["a@x.example", "Acme"], ["b@x.example", "C" * 200_000]]
    )
    plan = import_plan(sheet=sheet_read(data), team=team_a.team)
    assert [(e.row, e.column, str(e)) for e in plan.errors] == [
        (
            3,
            "Company",
            "row 3, column “Company”: holds 200,000 characters, more than the 32,767 one cell "
            "may hold (IMPORT_MAX_CELL_CHARS)",
        )
    ]
    assert [r.email for r in plan.rows] == ["a@x.example"]


def test_a_control_character_in_an_imported_column_is_a_row_error(team_a, login):
    from interseller.text import MSG_CONTROL_CHARACTER

    data = csv_bytes(
        [
            ["Email", "Company", "First name", "Notes"],
            ["a@x.example", "Ac\x07me", "Ada", "ok"],
            ["b@x.example", "Bravo", "B\x00b", "ok"],
            # Not imported: anything goes.
            ["c@x.example", "Charlie", "Carl", "beep\x07\x00"],
            # A line break inside a cell of a one-line field becomes a space.
            ["d@x.example", "Delta\nDynamics", "Dee", ""],
        ]
    )
    dry = upload(login(team_a.owner), data, team=team_a.team)
    plan = dry.context["plan"]
    assert [(e.row, e.column, str(e)) for e in plan.errors] == [
        (
            2,
            "Company",
            "row 2, column “Company”: " + MSG_CONTROL_CHARACTER.format(code="U+0007"),
        ),
        (
            3,
            "First name",
            "row 3, column “First name”: " + MSG_CONTROL_CHARACTER.format(code="U+0000"),
        ),
    ]
    assert [(r.email, r.fields["company"]) for r in plan.rows] == [
        ("c@x.example", "Charlie"),
        ("d@x.example", "Delta Dynamics"),
    ]
    assert "U+0007" in dry.content.decode()
    assert Contact.objects.count() == 0


def test_a_file_of_mostly_control_characters_is_still_not_a_spreadsheet():
    data = b"Email,Name\n" + bytes(range(1, 32)) * 50
    with pytest.raises(ImportRefused, match=re.escape(MSG_NOT_SPREADSHEET)):
        sheet_read(data)


# --- read as a stream: what is decided from the whole file, and parts split anywhere -------------
def _stored(team, data: bytes):
    """The file as a worker reads it: from an import job's parts."""
    from interseller.imports.storage import import_job_file_open, import_job_file_store
    from interseller.models import ImportJob

    job = ImportJob.objects.create(team=team, file_name="contacts.csv")
    import_job_file_store(job=job, data=data)
    return import_job_file_open(job_id=job.pk)


def test_a_file_that_is_not_utf8_only_near_its_end_is_read_as_windows_1252_throughout():
    # Over a megabyte of UTF-8 (past any sample and any block), then one Windows-1252 "é":
    # the whole file is Windows-1252, as Excel wrote it, so the first "ë" is two characters.
    rows = [["Email", "Name"], ["zoe@x.example", "Zoë"]]
    rows += [[f"p{i}@x.example", f"Person {i}"] for i in range(40_000)]
    data = csv_bytes(rows) + "renee@x.example,Renée\r\n".encode("cp1252")
    assert len(data) > 1024 * 1024
    parts = list(sheet_read_chunks(data, size=1000))
    assert parts[0].description == "CSV, comma-separated, Windows-1252"
    assert parts[0].rows[0] == (2, ["zoe@x.example", "ZoÃ«"])
    assert parts[-1].rows[-1] == (40_003, ["renee@x.example", "Renée"])
    assert sum(len(p.rows) for p in parts) == 40_002


def test_a_file_that_is_neither_utf8_nor_windows_1252_is_refused_whatever_its_start():
    data = b"Email,Name\r\n" + b"a@x.example,A\r\n" * 100_000 + b"b@x.example,\x81\r\n"
    with pytest.raises(ImportRefused, match=re.escape(MSG_NOT_SPREADSHEET)):
        next(sheet_read_chunks(data, size=10))


TRICKY = (
    "\ufeffEmail,Name,Notes\r\n"
    'zoe@x.example,Zoë Ärger,"line one\r\nline two"\r\n'
    'kenji@x.example,日本語 😀,"quoted, with a comma"\r\n'
    'euro@x.example,€uro,"x\n\n\ny"\r\n'
    ",,\r\n\r\n"
)
TRICKY_ROWS = [
    (2, ["zoe@x.example", "Zoë Ärger", "line one\r\nline two"]),
    (3, ["kenji@x.example", "日本語 😀", "quoted, with a comma"]),
    (4, ["euro@x.example", "€uro", "x\n\n\ny"]),
]


@pytest.mark.parametrize("part_bytes", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("UTF-8", TRICKY.encode("utf-8")),
        ("UTF-16", TRICKY.lstrip("\ufeff").encode("utf-16")),
    ],
)
def test_parts_of_any_size_read_the_same_rows(
    team_a, monkeypatch, settings, part_bytes, encoding, data
):
    """Parts that split a character, a BOM, a "\\r\\n" or a quoted cell with line breaks in
    it; blank lines inside quotes are kept, the blank rows after the last are dropped."""
    from interseller.imports import storage

    settings.IMPORT_MAX_BLANK_ROWS = 0
    monkeypatch.setattr(storage, "PART_BYTES", part_bytes)
    file = _stored(team_a.team, data)
    parts = list(sheet_read_chunks(file, size=2))
    assert [r for p in parts for r in p.rows] == TRICKY_ROWS
    assert parts[0].headers == ["Email", "Name", "Notes"]
    assert parts[0].description == f"CSV, comma-separated, {encoding}"


def test_a_workbook_is_read_from_its_parts_a_chunk_at_a_time(team_a, monkeypatch):
    from interseller.imports import storage

    monkeypatch.setattr(storage, "PART_BYTES", 1000)
    data = xlsx_bytes([["Email", "Name"]] + [[f"p{i}@x.example", f"P {i}"] for i in range(25)])
    parts = list(sheet_read_chunks(_stored(team_a.team, data), size=10))
    assert [len(p.rows) for p in parts] == [10, 10, 5]
    assert [r for p in parts for r in p.rows] == sheet_read(data).rows
    assert parts[2].rows[-1] == (26, ["p24@x.example", "P 24"])
