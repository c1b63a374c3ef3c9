"""Importing contacts from spreadsheets in the admin, and exporting them."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from interseller import imports, tasks
from interseller.admin import spreadsheets as admin_import
from interseller.imports import (
    MSG_EMPTY,
    MSG_NO_ROWS,
    MSG_NOT_SPREADSHEET,
    MSG_OLD_EXCEL,
    ImportRefused,
    columns_match,
    import_execute,
    import_plan,
    sheet_read,
)
from interseller.imports import execute as import_steps
from interseller.models import Contact, Enrollment, ImportJob
from interseller.resources import ContactExportResource, escape_formula
from interseller.signals import contact_added_to_sequence

from .factories import ContactFactory, MembershipFactory, SequenceFactory, UserFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
IMPORT_URL = reverse("admin:interseller_contact_import")
PROCESS_URL = reverse("admin:interseller_contact_process_import")
CHANGELIST_URL = reverse("admin:interseller_contact_changelist")
EXPORT_URL = reverse("admin:interseller_contact_export")


# --- helpers ----------------------------------------------------------------------------------
def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def csv_bytes(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data: bytes, *, team, sequence=None, name: str = "contacts.csv"):
    """The first step: upload and dry run."""
    return client.post(
        IMPORT_URL,
        {
            "team": team.pk,
            "sequence": sequence.pk if sequence else "",
            "format": "0",
            "resource": "",
            "import_file": SimpleUploadedFile(name, data),
        },
    )


def confirm(client, response):
    """The second step: post the confirm form the dry run rendered."""
    form = response.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return client.post(PROCESS_URL, data)


def import_file(client, data: bytes, **kwargs):
    before = Contact.objects.count()
    dry = upload(client, data, **kwargs)
    assert dry.status_code == 200
    assert Contact.objects.count() == before  # the dry run writes nothing
    assert dry.context.get("confirm_form") is not None, dry.context.get("shown_errors") or (
        dry.context["form"].errors
    )
    return dry, confirm(client, dry)


def file_errors(response) -> list[str]:
    return response.context["form"].errors.get("import_file", [])


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def team_emails(team) -> set[str]:
    return set(Contact.objects.filter(team=team).values_list("email", flat=True))


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


# --- headers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email", "email"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("  EMAIL_ADDRESS ", "email"),
        ("Work Email", "email"),
        ("First Name", "first name"),
        ("Given name", "first name"),
        ("firstname", "first name"),
        ("Last Name", "last name"),
        ("Surname", "last name"),
        ("Family name", "last name"),
        ("Name", "first and last name"),
        ("Full Name", "first and last name"),
        ("Company", "company"),
        ("Current Company", "company"),
        ("Company Name", "company"),
        ("Job Title", "job title"),
        ("Title", "job title"),
        ("Position", "job title"),
        ("LinkedIn", "LinkedIn URL"),
        ("LinkedIn Profile URL", "LinkedIn URL"),
        ("Phone Number", "phone"),
        ("Mobile", "phone"),
        ("Location", "location"),
        ("City", "location"),
        ("Source", "source"),
    ],
)
def test_header_synonyms_are_recognised(header, field):
    columns = columns_match([header, "Email"] if field != "email" else [header])
    assert (header, field) in columns.recognised


def test_first_screen_lists_recognised_and_ignored_columns(team_a, login):
    dry = upload(login(team_a.owner), fixture_bytes("linkedin_recruiter.csv"), team=team_a.team)
    page = dry.content.decode()
    assert "Recognised: “Email Address” → email" in page
    assert "Recognised: “Current Company” → company" in page
    assert "Ignored: “Notes”" in page


def test_a_repeated_column_is_ignored_not_merged():
    columns = columns_match(["Email", "Email Address", "Company"])
    assert columns.index["email"] == 0
    assert columns.ignored == ["Email Address"]


# --- upsert -----------------------------------------------------------------------------------
def test_reimporting_the_same_file_changes_nothing_and_says_unchanged(team_a, login):
    client = login(team_a.owner)
    data = fixture_bytes("linkedin_recruiter.csv")
    import_file(client, data, team=team_a.team)
    before = {c.email: c.updated_at for c in Contact.objects.all()}
    dry, done = import_file(client, data, team=team_a.team)
    assert dry.context["counts"] == {"new": 0, "updated": 0, "unchanged": 3, "invalid": 0}
    assert "Import finished: 0 new, 0 updated and 3 unchanged contacts." in message_texts(done)
    assert {c.email: c.updated_at for c in Contact.objects.all()} == before


def test_existing_contact_is_updated_and_blank_cells_never_erase(team_a, login):
    existing = ContactFactory(
        team=team_a.team,
        owner=team_a.member,
        email="ada@analytical.example",
        company="Old Co",
        phone="+44 1",
        title="Engineer",
    )
    data = csv_bytes(
        [
            ["Email", "Company", "Phone", "Job Title"],
            ["ADA@analytical.example", "Analytical Engines", "", "Engineer"],
        ]
    )
    dry, _ = import_file(login(team_a.owner), data, team=team_a.team)
    assert dry.context["counts"]["updated"] == 1
    existing.refresh_from_db()
    assert existing.company == "Analytical Engines"
    assert existing.phone == "+44 1"  # blank cell kept what was known
    assert existing.owner == team_a.member  # the owner of an existing contact is kept
    assert Contact.objects.count() == 1


# --- sequences --------------------------------------------------------------------------------
def test_chosen_sequence_gets_every_contact_through_the_service(team_a, login, sequence_a):
    already = ContactFactory(team=team_a.team, owner=team_a.member, email="ada@analytical.example")
    Enrollment.objects.create(contact=already, sequence=sequence_a)
    sent = []

    def receiver(sender, enrollment, added_by, **kwargs):
        sent.append((enrollment.contact.email, added_by))

    contact_added_to_sequence.connect(receiver)
    try:
        client = login(team_a.member)
        dry, done = import_file(
            client, fixture_bytes("linkedin_recruiter.csv"), team=team_a.team, sequence=sequence_a
        )
    finally:
        contact_added_to_sequence.disconnect(receiver)
    assert dry.context["sequence_to_add"] == 2
    assert dry.context["plan"].already_in_sequence == 1
    assert set(
        Enrollment.objects.filter(sequence=sequence_a).values_list("contact__email", flat=True)
    ) == {"ada@analytical.example", "grace.hopper@navy.example", "linus@kernel.example"}
    # The signal integrations listen to, once per new enrollment, with who added it.
    assert sorted(sent) == [
        ("grace.hopper@navy.example", team_a.member),
        ("linus@kernel.example", team_a.member),
    ]
    assert any(
        "2 added to the sequence “Backend engineers” (1 already in it)." in m
        for m in message_texts(done)
    )


def test_member_may_only_choose_their_own_sequences(team_a, login, sequence_a):
    boss_seq = SequenceFactory(team=team_a.team, owner=team_a.owner, title="Boss")
    archived = SequenceFactory(team=team_a.team, owner=team_a.member, archived=True)
    client = login(team_a.member)
    page = client.get(IMPORT_URL)
    choices = set(page.context["form"].fields["sequence"].queryset)
    assert choices == {sequence_a}
    for seq in (boss_seq, archived):
        dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team, sequence=seq)
        assert "sequence" in dry.context["form"].errors
    assert Contact.objects.count() == 0


def test_managers_choose_among_all_the_teams_sequences(team_a, login, sequence_a):
    boss_seq = SequenceFactory(team=team_a.team, owner=team_a.owner, title="Boss")
    page = login(team_a.manager).get(IMPORT_URL)
    assert set(page.context["form"].fields["sequence"].queryset) == {sequence_a, boss_seq}


# --- invalid rows: reported, nothing written --------------------------------------------------
def test_invalid_rows_are_listed_with_row_column_and_message(team_a, login):
    dry = upload(login(team_a.owner), fixture_bytes("invalid_rows.csv"), team=team_a.team)
    assert dry.context.get("confirm_form") is None
    errors = dry.context["plan"].errors
    assert [str(e) for e in errors] == [
        "row 3: email 'bob@' is not a valid address",
        "row 4: email is missing",
        "row 5: email 'good@example.com' already appears in row 2",
        "row 6: LinkedIn URL 'not a url at all': Enter a valid URL.",
    ]
    assert [(e.row, e.column) for e in errors] == [
        (3, "Email"),
        (4, "Email"),
        (5, "Email"),
        (6, "LinkedIn"),
    ]
    assert dry.context["counts"] == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 4}
    assert "row 3: email &#x27;bob@&#x27; is not a valid address" in dry.content.decode()
    assert Contact.objects.count() == 0


def test_too_long_values_are_invalid_rows_not_server_errors(team_a):
    sheet = sheet_read(csv_bytes([["Email", "Company"], ["a@x.example", "C" * 300]]))
    plan = import_plan(sheet=sheet, team=team_a.team)
    assert len(plan.errors) == 1
    assert plan.errors[0].message.startswith("row 2: company 'CCCC")
    assert "at most 255 characters" in plan.errors[0].message


def test_the_process_step_refuses_a_file_that_has_become_invalid(team_a, login, monkeypatch):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    # Simulate the file changing between the steps: the process step re-reads and re-checks.
    monkeypatch.setattr(
        admin_import, "sheet_read", lambda data: sheet_read(fixture_bytes("invalid_rows.csv"))
    )
    done = confirm(client, dry)
    assert done.status_code == 302 and done.url == IMPORT_URL
    assert message_texts(done) == [
        "Nothing was imported: row 3: email 'bob@' is not a valid address"
    ]
    assert Contact.objects.count() == 0


def test_an_error_during_the_real_import_rolls_all_of_it_back(team_a, login, monkeypatch):
    existing = ContactFactory(
        team=team_a.team, owner=team_a.owner, email="katherine@nasa.example", company="Old"
    )
    real = import_steps.contact_upsert
    calls = []

    def failing_on_second_row(**kwargs):
        calls.append(kwargs["email"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(import_steps, "contact_upsert", failing_on_second_row)
    client = login(team_a.owner)
    dry, done = import_file(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    assert done.url == IMPORT_URL
    [text] = message_texts(done)
    assert text.startswith("Nothing was imported: row 3 could not be saved")
    existing.refresh_from_db()
    assert existing.company == "Old"  # the first row's update was rolled back too
    assert team_emails(team_a.team) == {"katherine@nasa.example"}


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


# --- scoping ----------------------------------------------------------------------------------
def test_importing_never_touches_another_teams_contact_with_the_same_email(team_a, team_b, login):
    theirs = ContactFactory(
        team=team_b.team,
        owner=team_b.owner,
        email="ada@analytical.example",
        company="Bravo's secret",
    )
    dry, _ = import_file(
        login(team_a.owner), fixture_bytes("linkedin_recruiter.csv"), team=team_a.team
    )
    assert dry.context["counts"]["new"] == 3  # no match in team B
    theirs.refresh_from_db()
    assert theirs.company == "Bravo's secret" and theirs.team == team_b.team
    assert Contact.objects.filter(email="ada@analytical.example").count() == 2
    assert Contact.objects.get(team=team_a.team, email="ada@analytical.example").company == (
        "Analytical Engines"
    )


def teammate_file(email: str) -> bytes:
    """Row 7 holds `email`; the rows before it are new contacts or the importer's own."""
    return csv_bytes(
        [
            ["Email", "Company"],
            ["mine@x.example", "Mine now"],
            *[[f"new{i}@x.example", "New"] for i in range(4)],
            [email.upper(), "Changed by a teammate"],
        ]
    )


def test_a_member_cannot_change_a_teammates_contact_by_import(team_a, login):
    theirs = ContactFactory(
        team=team_a.team, owner=team_a.member2, email="grace@x.example", company="Theirs"
    )
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example", company="Old")
    client = login(team_a.member)
    dry = upload(client, teammate_file("grace@x.example"), team=team_a.team)
    assert dry.context.get("confirm_form") is None
    assert [str(e) for e in dry.context["plan"].errors] == [
        "row 7: grace@x.example belongs to a contact of another teammate; "
        "ask them or a manager to update it"
    ]
    assert dry.context["plan"].errors[0].column == "Email"
    assert dry.context["counts"] == {"new": 4, "updated": 1, "unchanged": 0, "invalid": 1}
    assert "belongs to a contact of another teammate" in dry.content.decode()
    theirs.refresh_from_db()
    assert theirs.company == "Theirs" and theirs.owner == team_a.member2
    assert Contact.objects.count() == 2


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_update_any_contact_of_the_team(team_a, login, role):
    theirs = ContactFactory(
        team=team_a.team, owner=team_a.member2, email="grace@x.example", company="Theirs"
    )
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example", company="Old")
    dry, done = import_file(
        login(getattr(team_a, role)), teammate_file("grace@x.example"), team=team_a.team
    )
    assert dry.context["counts"] == {"new": 4, "updated": 2, "unchanged": 0, "invalid": 0}
    theirs.refresh_from_db()
    assert theirs.company == "Changed by a teammate"
    assert theirs.owner == team_a.member2  # updating never changes who owns a contact


def test_a_superuser_who_is_a_plain_member_updates_any_contact(team_a, login):
    boss = MembershipFactory(team=team_a.team, user=UserFactory(is_superuser=True))
    ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    dry, _ = import_file(login(boss), teammate_file("grace@x.example"), team=team_a.team)
    assert dry.context["counts"]["invalid"] == 0
    assert dry.context["counts"]["updated"] == 1


def test_a_teammates_contact_created_after_the_dry_run_stops_a_members_import(team_a):
    plan = import_plan(
        sheet=sheet_read(teammate_file("grace@x.example")),
        team=team_a.team,
        only_own=team_a.member,
    )
    assert plan.is_valid
    theirs = ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    with pytest.raises(imports.ImportFailed, match="row 7: grace@x.example belongs to a contact"):
        import_execute(plan=plan, team=team_a.team, owner=team_a.member, only_own=team_a.member)
    assert list(Contact.objects.all()) == [theirs]


def test_a_user_cannot_import_into_a_team_they_do_not_belong_to(team_a, team_b, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_b.team)
    assert "team" in dry.context["form"].errors
    other_seq = SequenceFactory(team=team_b.team, owner=team_b.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team, sequence=other_seq)
    assert "sequence" in dry.context["form"].errors
    assert Contact.objects.count() == 0


def test_the_confirm_step_cannot_be_redirected_to_another_team(team_a, team_b, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    form = dry.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["team"] = team_b.team.pk
    done = client.post(PROCESS_URL, data)
    assert done.status_code == 302 and done.url == IMPORT_URL
    assert Contact.objects.count() == 0


def test_the_confirm_step_only_reads_the_uploaders_own_file(team_a, login, client):
    dry = upload(login(team_a.owner), fixture_bytes("google_sheets.tsv"), team=team_a.team)
    form = dry.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    login(team_a.manager)
    assert client.post(PROCESS_URL, data).status_code == 403
    assert Contact.objects.count() == 0


def test_an_expired_upload_says_so(team_a, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    Path("/tmp", dry.context["confirm_form"].initial["import_file_name"]).unlink()
    done = confirm(client, dry)
    assert done.url == IMPORT_URL
    assert message_texts(done) == [imports.MSG_FILE_EXPIRED]


def test_one_team_is_preselected_and_hidden(team_a, login):
    form = login(team_a.member).get(IMPORT_URL).context["form"]
    assert form.fields["team"].widget.is_hidden
    assert form.fields["team"].initial == team_a.team.pk


def test_superuser_without_membership_imports_as_the_teams_first_owner(team_a, team_b, login):
    admin = UserFactory(is_superuser=True)
    client = login(admin)
    form = client.get(IMPORT_URL).context["form"]
    assert not form.fields["team"].widget.is_hidden
    import_file(client, fixture_bytes("google_sheets.tsv"), team=team_b.team)
    assert set(Contact.objects.values_list("owner", flat=True)) == {team_b.owner.pk}


# --- export -----------------------------------------------------------------------------------
def export(client, query: str = "", fmt: str = "0") -> bytes:
    response = client.post(
        EXPORT_URL + query,
        {
            "format": fmt,
            "resource": "0",
            **{f"contactexportresource_{name}": "on" for name in ContactExportResource().fields},
        },
    )
    assert response.status_code == 200, response.content[:2000]
    return response.content


def exported_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_export_csv_has_the_contacts_with_owner_and_sequences(team_a, login, sequence_a):
    contact = ContactFactory(
        team=team_a.team,
        owner=team_a.member,
        email="ada@x.example",
        first_name="Ada",
        company="Engines",
        source="LinkedIn",
    )
    other = SequenceFactory(team=team_a.team, owner=team_a.owner, title="Alpha")
    Enrollment.objects.create(contact=contact, sequence=sequence_a)
    Enrollment.objects.create(contact=contact, sequence=other)
    [row] = exported_rows(export(login(team_a.owner)))
    assert row["Email"] == "ada@x.example"
    assert row["First name"] == "Ada" and row["Company"] == "Engines"
    assert row["Owner"] == team_a.member.user.email
    assert row["Sequences"] == "Alpha; Backend engineers"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["Created at"])


@pytest.mark.parametrize("value", ["=1+1", "+1 555 0100", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_export_escapes_formula_cells_in_csv_and_xlsx(team_a, login, value):
    ContactFactory(
        team=team_a.team, owner=team_a.owner, email="f@x.example", company=value, phone=value
    )
    client = login(team_a.owner)
    [row] = exported_rows(export(client, fmt="0"))
    assert row["Company"] == "'" + value
    book = openpyxl.load_workbook(io.BytesIO(export(client, fmt="1")))
    sheet = book.active
    headers = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=headers.index("Company") + 1)
    # XML turns a lone carriage return into a newline; the escape is what matters.
    assert cell.data_type == "s" and cell.value == "'" + value.replace("\r", "\n")


def test_escape_formula_leaves_ordinary_values_alone():
    assert escape_formula("Acme") == "Acme"
    assert escape_formula("a=b") == "a=b"
    assert escape_formula(3) == 3


def test_an_exported_sheet_imports_back_unchanged(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="p@x.example", phone="+1 555 0100")
    client = login(team_a.owner)
    dry = upload(client, export(client), team=team_a.team)
    assert dry.context["counts"] == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0}


def test_export_respects_the_changelist_filters_and_search(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="a@x.example", source="Fair")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="b@x.example", source="Web")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="needle@x.example", source="Web")
    client = login(team_a.owner)
    assert [r["Email"] for r in exported_rows(export(client, "?source=Fair"))] == ["a@x.example"]
    assert [r["Email"] for r in exported_rows(export(client, "?q=needle"))] == ["needle@x.example"]


def test_export_never_includes_another_teams_contacts(team_a, team_b, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="ours@x.example")
    ContactFactory(team=team_b.team, owner=team_b.owner, email="theirs@x.example")
    client = login(team_a.owner)
    assert [r["Email"] for r in exported_rows(export(client))] == ["ours@x.example"]
    rows = exported_rows(export(client, f"?team__id__exact={team_b.team.pk}"))
    assert "theirs@x.example" not in [r["Email"] for r in rows]


def test_member_exports_only_their_own_contacts(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="boss@x.example")
    assert [r["Email"] for r in exported_rows(export(login(team_a.member)))] == ["mine@x.example"]


def test_an_integration_adds_export_columns_through_the_core_hook(team_a, login):
    from interseller.extensions import AdminExtension, extend, retract

    shout = AdminExtension(export_columns=(("Shout", lambda c: "=" + c.email.upper()),))
    extend(Contact, shout)
    try:
        ContactFactory(team=team_a.team, owner=team_a.owner, email="x@x.example")
        [row] = exported_rows(export(login(team_a.owner)))
    finally:
        retract(Contact, shout)
    assert row["Shout"] == "'=X@X.EXAMPLE"


def test_import_and_export_links_are_on_the_changelist(team_a, login):
    page = login(team_a.owner).get(CHANGELIST_URL).content.decode()
    assert IMPORT_URL in page and EXPORT_URL in page


# --- the service layer used directly ----------------------------------------------------------
def test_import_execute_refuses_an_invalid_plan(team_a):
    plan = import_plan(sheet=sheet_read(fixture_bytes("invalid_rows.csv")), team=team_a.team)
    with pytest.raises(imports.ImportFailed, match="row 3: email 'bob@'"):
        import_execute(plan=plan, team=team_a.team, owner=team_a.owner)
    assert Contact.objects.count() == 0


def test_dry_run_of_a_big_file_needs_few_queries(team_a, django_assert_max_num_queries):
    data = csv_bytes([["Email", "Name"]] + [[f"c{i}@x.example", f"C {i}"] for i in range(3000)])
    for i in range(0, 3000, 7):
        ContactFactory(team=team_a.team, owner=team_a.owner, email=f"c{i}@x.example")
    sheet = sheet_read(data)
    with django_assert_max_num_queries(4):
        plan = import_plan(sheet=sheet, team=team_a.team)
    assert plan.counts["updated"] + plan.counts["unchanged"] == len(range(0, 3000, 7))


# --- sequence assignment syncs to CATS, as if added by hand -----------------------------------
@pytest.mark.parametrize("in_background", [False, True], ids=["in-request", "background"])
def test_importing_into_a_sequence_syncs_each_contact_to_cats_once(
    team_a, login, sequence_a, cats_sandbox, settings, in_background
):
    from cats_sync.models import CatsAccount, EnrollmentSync

    from .cats_helpers import candidates, connect, drain

    if in_background:
        settings.IMPORT_BACKGROUND_ROWS = 1
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(
        candidates=[
            {
                "first_name": "Grace",
                "last_name": "Hopper",
                "emails": {"primary": "grace.hopper@navy.example"},
            }
        ]
    )
    connect(
        team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_ADD, deduplication=True
    )  # the sequence's owner: their connection and settings apply
    before = len(cats_sandbox.snapshot(site.id)["candidates"])
    client = login(team_a.member)
    _, done = import_file(
        client, fixture_bytes("linkedin_recruiter.csv"), team=team_a.team, sequence=sequence_a
    )
    if in_background:
        assert tasks.import_job_run(ImportJob.objects.get().pk) == "done"
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(snap["candidates"]) == before + 2
    for email in ("ada@analytical.example", "linus@kernel.example"):
        [candidate] = candidates(snap, email)
        es = EnrollmentSync.objects.get(enrollment__contact__email=email)
        assert es.candidate_id == candidate["id"] and es.created_candidate
    # Already in CATS: no second record, and the dedup warning.
    assert len(candidates(snap, "grace.hopper@navy.example")) == 1
    es = EnrollmentSync.objects.get(enrollment__contact__email="grace.hopper@navy.example")
    assert es.exists_in_cats is True and es.created_candidate is False
    assert es.candidate_id == site.candidates[0]


# --- big files: imported by a worker ----------------------------------------------------------
def job_url(job) -> str:
    return reverse("admin:interseller_importjob_change", args=[job.pk])


@pytest.fixture
def background(settings):
    settings.IMPORT_BACKGROUND_ROWS = 2


def test_a_big_file_is_queued_on_confirm_and_imported_by_the_worker_once(
    team_a, login, sequence_a, background, monkeypatch, django_capture_on_commit_callbacks
):
    data = fixture_bytes("linkedin_recruiter.csv")
    client = login(team_a.member)
    dry = upload(client, data, team=team_a.team, sequence=sequence_a)
    assert dry.context["in_background"]
    assert 'id="import-in-background"' in dry.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        done = confirm(client, dry)
    job = ImportJob.objects.get()
    assert done.status_code == 302 and done.url == job_url(job)
    assert Contact.objects.count() == 0  # nothing imported inside the request
    assert (job.state, job.total_rows, job.team, job.owner, job.sequence) == (
        ImportJob.State.QUEUED,
        3,
        team_a.team,
        team_a.member,
        sequence_a,
    )
    assert bytes(job.data) == data and job.created_by == team_a.member.user
    # Enqueued once the job row is committed.
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    for callback in callbacks:
        callback()
    assert queued == [("interseller.tasks.import_job_run", job.pk)]

    page = client.get(job_url(job))
    html = page.content.decode()
    assert page.status_code == 200
    assert imports.MSG_JOB_QUEUED.format(rows=3) in message_texts(page)
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "Waiting for a worker" in html

    assert tasks.import_job_run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.state, job.processed_rows, job.created, job.updated, job.unchanged) == (
        ImportJob.State.DONE,
        3,
        3,
        0,
        0,
    )
    assert (job.added_to_sequence, job.already_in_sequence) == (3, 0)
    assert bytes(job.data) == b"" and job.started_at and job.finished_at
    assert team_emails(team_a.team) == {
        "ada@analytical.example",
        "grace.hopper@navy.example",
        "linus@kernel.example",
    }
    assert set(Contact.objects.values_list("owner", flat=True)) == {team_a.member.pk}
    assert Enrollment.objects.filter(sequence=sequence_a, added_by=team_a.member).count() == 3

    html = client.get(job_url(job)).content.decode()
    # The same words the import in the request ends with.
    assert (
        "Import finished: 3 new, 0 updated and 0 unchanged contacts. 3 added to the sequence "
        "“Backend engineers” (0 already in it)."
    ) in html
    assert 'http-equiv="refresh"' not in html

    # A second delivery of the task does nothing.
    assert tasks.import_job_run(job.pk) == "nothing to do"
    assert Contact.objects.count() == 3 and Enrollment.objects.count() == 3
    job.refresh_from_db()
    assert job.created == 3


def test_a_small_file_is_still_imported_in_the_request(team_a, login, background):
    _, done = import_file(login(team_a.owner), fixture_bytes("google_sheets.tsv"), team=team_a.team)
    assert done.url == CHANGELIST_URL
    assert not ImportJob.objects.exists()
    assert team_emails(team_a.team) == {"katherine@nasa.example", "dorothy@nasa.example"}


def queue_job(client, team, data: bytes = b"", **kwargs) -> ImportJob:
    done = confirm(
        client, upload(client, data or fixture_bytes("linkedin_recruiter.csv"), team=team, **kwargs)
    )
    job = ImportJob.objects.get()
    assert done.url == job_url(job)
    return job


def test_a_file_that_became_invalid_fails_the_job_and_imports_nothing(team_a, login, background):
    client = login(team_a.member)
    job = queue_job(client, team_a.team, teammate_file("grace@x.example"))
    # Meanwhile a teammate adds the same person: the worker checks the file again.
    ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    assert tasks.import_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == (
        "Nothing was imported: row 7: grace@x.example belongs to a contact of another "
        "teammate; ask them or a manager to update it"
    )
    assert job.processed_rows == 0 and bytes(job.data) == b""
    assert list(Contact.objects.values_list("email", flat=True)) == ["grace@x.example"]
    html = client.get(job_url(job)).content.decode()
    assert "belongs to a contact of another teammate" in html
    assert 'http-equiv="refresh"' not in html


def test_an_error_during_the_background_import_rolls_all_of_it_back(
    team_a, login, background, monkeypatch
):
    existing = ContactFactory(
        team=team_a.team, owner=team_a.owner, email="ada@analytical.example", company="Old"
    )
    job = queue_job(login(team_a.owner), team_a.team)
    real = import_steps.contact_upsert
    calls = []

    def failing_on_second_row(**kwargs):
        calls.append(kwargs["email"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(import_steps, "contact_upsert", failing_on_second_row)
    assert tasks.import_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert job.error.startswith("Nothing was imported: row 3 could not be saved (RuntimeError)")
    existing.refresh_from_db()
    assert existing.company == "Old"
    assert team_emails(team_a.team) == {"ada@analytical.example"}


def test_a_job_left_running_by_a_dead_worker_is_run_again(team_a, login, background):
    from django.utils import timezone

    job = queue_job(login(team_a.owner), team_a.team)
    recent = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING, started_at=recent)
    assert tasks.import_job_run(job.pk) == "nothing to do"  # still running somewhere
    long_ago = recent - timezone.timedelta(seconds=imports.import_job_lease() + 1)
    ImportJob.objects.filter(pk=job.pk).update(started_at=long_ago)
    assert tasks.import_job_run(job.pk) == "done"
    assert Contact.objects.count() == 3


def test_progress_while_running_comes_from_the_cache(team_a, login, background):
    from django.core.cache import cache

    client = login(team_a.owner)
    job = queue_job(client, team_a.team)
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING)
    cache.set(imports.import_job_progress_key(job.pk), 2)
    html = client.get(job_url(job)).content.decode()
    assert "Importing: 2 of 3 rows written" in html
    assert '<progress value="2" max="3"' in html
    cache.delete(imports.import_job_progress_key(job.pk))


def test_import_jobs_are_scoped_like_contacts(team_a, team_b, login, client, background):
    job = queue_job(login(team_a.member), team_a.team)
    assert client.get(job_url(job)).status_code == 200
    listing = client.get(reverse("admin:interseller_importjob_changelist") + "?q=linkedin")
    assert listing.status_code == 200 and "linkedin_recruiter.csv" not in listing.content.decode()
    listing = client.get(reverse("admin:interseller_importjob_changelist") + "?q=contacts")
    assert "contacts.csv" in listing.content.decode()
    for who, status in [
        (team_a.owner, 200),
        (team_a.manager, 200),
        (team_a.member2, 404),  # members see their own imports only
        (team_b.owner, 404),
    ]:
        assert login(who).get(job_url(job)).status_code == status, who
    changelist = login(team_b.owner).get(reverse("admin:interseller_importjob_changelist"))
    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == []
    # Read-only: no add, change or delete for anyone but a superuser.
    assert login(team_a.owner).post(job_url(job), {"state": "done"}).status_code == 403
    assert client.get(reverse("admin:interseller_importjob_add")).status_code == 403


# --- workbooks written by hand: formulas and their saved values -------------------------------
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def xlsx_parts(shared_strings: bool = False) -> dict[str, str]:
    """Every part of a one-sheet workbook but the sheet (and the shared strings) themselves."""
    strings_type = (
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_TYPE}.sharedStrings+xml"/>'
    )
    strings_rel = (
        f'<Relationship Id="rId2" Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
    )
    return {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{_TYPE}.worksheet+xml"/>{strings_type if shared_strings else ""}'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{_REL_NS}"><sheets>'
            '<sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{strings_rel if shared_strings else ''}</Relationships>"
        ),
    }


def sheet_xml(rows: str, before: str = "") -> str:
    return f'<worksheet xmlns="{MAIN_NS}">{before}<sheetData>{rows}</sheetData></worksheet>'


def text_cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def xlsx_package(sheet: str, shared_strings: str | None = None) -> bytes:
    """An .xlsx with this worksheet XML, as a program other than openpyxl may write it."""
    parts = {**xlsx_parts(shared_strings is not None), "xl/worksheets/sheet1.xml": sheet}
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            # A fixed date: the same sheet gives the same bytes.
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED)
    return out.getvalue()


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
