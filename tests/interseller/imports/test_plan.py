"""The import plan: headers matched forgivingly, upserts, sequences, invalid rows reported
with nothing written, and the service layer used directly."""

from __future__ import annotations

import pytest

from interseller import imports
from interseller.admin import spreadsheets as admin_import
from interseller.imports import columns_match, import_execute, import_plan, sheet_read
from interseller.imports import execute as import_steps
from interseller.models import Contact, Enrollment
from interseller.signals import contacts_added_to_sequence
from tests.factories import ContactFactory, SequenceFactory
from tests.support.admin import message_texts
from tests.support.spreadsheets import (
    IMPORT_URL,
    confirm,
    csv_bytes,
    fixture_bytes,
    import_file,
    team_emails,
    upload,
)

pytestmark = pytest.mark.django_db


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

    def receiver(sender, enrollments, sequence, added_by, **kwargs):
        sent.extend((e.contact.email, added_by) for e in enrollments if e.sequence == sequence)

    contacts_added_to_sequence.connect(receiver)
    try:
        client = login(team_a.member)
        dry, done = import_file(
            client, fixture_bytes("linkedin_recruiter.csv"), team=team_a.team, sequence=sequence_a
        )
    finally:
        contacts_added_to_sequence.disconnect(receiver)
    assert dry.context["sequence_to_add"] == 2
    assert dry.context["plan"].already_in_sequence == 1
    assert set(
        Enrollment.objects.filter(sequence=sequence_a).values_list("contact__email", flat=True)
    ) == {"ada@analytical.example", "grace.hopper@navy.example", "linus@kernel.example"}
    # The signal integrations listen to, naming each new enrollment once, with who added it.
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
    real = import_steps.contacts_upsert_many
    calls = []

    def failing_on_second_row(**kwargs):
        calls.append(kwargs["rows"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(import_steps, "PROGRESS_EVERY", 1)  # a row at a time
    monkeypatch.setattr(import_steps, "contacts_upsert_many", failing_on_second_row)
    client = login(team_a.owner)
    dry, done = import_file(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    assert done.url == IMPORT_URL
    [text] = message_texts(done)
    assert text.startswith("Nothing was imported: row 3 could not be saved")
    existing.refresh_from_db()
    assert existing.company == "Old"  # the first row's update was rolled back too
    assert team_emails(team_a.team) == {"katherine@nasa.example"}


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
