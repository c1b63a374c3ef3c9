"""One rule for text that may be stored (interseller.text), at every way in and out: the
services, the admin contact form and the spreadsheet export."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from interseller import services
from interseller.forms import ContactForm
from interseller.models import Contact, EmailEvent
from tests.factories import ContactFactory
from tests.support.domain import control
from tests.support.spreadsheets import CHANGELIST_URL, export

ADD_URL = reverse("admin:interseller_contact_add")

BAD_TEXT = [("\x00", "U+0000"), ("\ud800", "U+D800"), ("\x07", "U+0007"), ("\x1b", "U+001B")]


# --- services ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", *services.CONTACT_FIELDS])
@pytest.mark.parametrize(("bad", "code"), BAD_TEXT)
def test_contact_upsert_refuses_a_control_character_on_the_field(team_a, field, bad, code):
    email = "ada@prospect.example" + (bad if field == "email" else "")
    fields = {} if field == "email" else {field: "x" + bad}
    with pytest.raises(ValidationError) as error:
        services.contact_upsert(team=team_a.team, owner=team_a.owner, email=email, fields=fields)
    assert error.value.message_dict == {field: [control(code)]}
    assert not Contact.objects.exists()


def test_contact_upsert_reports_every_bad_field_at_once(team_a):
    with pytest.raises(ValidationError) as error:
        services.contact_upsert(
            team=team_a.team,
            owner=team_a.owner,
            email="ada@prospect.example",
            fields={"first_name": "A\x00", "company": "B\x07", "phone": "555"},
        )
    assert error.value.message_dict == {
        "first_name": [control("U+0000")],
        "company": [control("U+0007")],
    }


def test_contact_upsert_refuses_a_control_character_on_update_and_keeps_the_row(team_a):
    contact = ContactFactory(
        team=team_a.team, owner=team_a.owner, email="ada@prospect.example", company="Engines"
    )
    with pytest.raises(ValidationError):
        services.contact_upsert(
            team=team_a.team, owner=team_a.owner, email=contact.email, fields={"company": "\x00"}
        )
    contact.refresh_from_db()
    assert contact.company == "Engines"


def test_contact_upsert_folds_tabs_and_line_breaks_into_one_space(team_a):
    result = services.contact_upsert(
        team=team_a.team,
        owner=team_a.owner,
        email="\tada@prospect.example\r\n",
        fields={"first_name": " Ada\tAugusta ", "company": "Analytical\r\nEngines"},
    )
    assert result.contact.email == "ada@prospect.example"
    assert result.contact.first_name == "Ada Augusta"
    assert result.contact.company == "Analytical Engines"


@pytest.fixture
def enrollment(team_a, sequence_a):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    return services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment


@pytest.mark.parametrize("field", ["external_id", "subject", "snippet"])
@pytest.mark.parametrize(("bad", "code"), BAD_TEXT)
def test_email_event_record_refuses_a_control_character_on_the_field(enrollment, field, bad, code):
    texts = {"external_id": "e1", "subject": "Hello", "snippet": "Hi"}
    texts[field] += bad
    with pytest.raises(ValidationError) as error:
        services.email_event_record(
            enrollment=enrollment,
            kind="message_sent",
            occurred_at="2024-05-01T09:30:00Z",
            **texts,
        )
    assert error.value.message_dict == {field: [control(code)]}
    assert not EmailEvent.objects.exists()


def test_email_event_record_keeps_line_breaks_in_the_snippet_only(enrollment):
    event = services.email_event_record(
        enrollment=enrollment,
        external_id="e1",
        kind="message_sent",
        occurred_at="2024-05-01T09:30:00Z",
        subject="Backend\nrole",
        snippet="Hi,\n\tthanks",
    ).event
    event.refresh_from_db()
    assert event.subject == "Backend role"
    assert event.snippet == "Hi,\n\tthanks"


# --- the admin contact form -------------------------------------------------------------------


def contact_form_data(team_a, **overrides) -> dict[str, object]:
    return {
        "team": team_a.team.pk,
        "owner": team_a.owner.pk,
        "email": "ada@prospect.example",
        "first_name": "Ada",
        "enrollments-TOTAL_FORMS": 0,
        "enrollments-INITIAL_FORMS": 0,
        **overrides,
    }


@pytest.mark.parametrize("field", ["email", *services.CONTACT_FIELDS])
@pytest.mark.parametrize(("bad", "code"), [b for b in BAD_TEXT if b[0] != "\ud800"])
def test_admin_contact_form_refuses_a_control_character_on_the_field(
    team_a, login, field, bad, code
):
    value = {"email": "ada@prospect.example", "linkedin_url": "https://x.example/a"}.get(field, "x")
    response = login(team_a.owner).post(ADD_URL, contact_form_data(team_a, **{field: value + bad}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [control(code)]}
    assert not Contact.objects.exists()


def test_contact_form_refuses_a_lone_surrogate(team_a):
    # A browser cannot send one (the test client cannot either); a script could.
    form = ContactForm(data=contact_form_data(team_a, company="Acme\ud800"))
    assert not form.is_valid()
    assert form.errors == {"company": [control("U+D800")]}


def test_admin_contact_form_folds_tabs_and_line_breaks(team_a, login):
    response = login(team_a.owner).post(
        ADD_URL, contact_form_data(team_a, first_name="Ada\tAugusta", company="A\r\nB")
    )
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.first_name, contact.company) == ("Ada Augusta", "A B")


# --- export of rows stored before the rule ----------------------------------------------------


@pytest.fixture
def poisoned(team_a):
    """A contact stored before the rule existed, with control characters in several fields."""
    contact = ContactFactory(team=team_a.team, owner=team_a.owner, email="bell@x.example")
    Contact.objects.filter(pk=contact.pk).update(
        company="Acme\x07 Corp", title="\x1bLead\x0b", first_name="\x07=1+1", phone="555\x7f"
    )
    return contact


def test_xlsx_export_drops_characters_a_spreadsheet_cannot_hold(team_a, login, poisoned):
    book = openpyxl.load_workbook(io.BytesIO(export(login(team_a.owner), fmt="1")))
    sheet = book.active
    headers = [c.value for c in sheet[1]]
    row = {h: c.value for h, c in zip(headers, sheet[2], strict=True)}
    assert row["Company"] == "Acme Corp"
    assert row["Job title"] == "Lead"
    assert row["Phone"] == "555"
    # Dropping the character must not uncover a formula.
    assert row["First name"] == "'=1+1"


def test_csv_export_drops_the_same_characters(team_a, login, poisoned):
    content = export(login(team_a.owner), fmt="0")
    [row] = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert row["Company"] == "Acme Corp"
    assert row["Job title"] == "Lead"
    assert row["First name"] == "'=1+1"


def test_changelist_renders_a_row_stored_before_the_rule(team_a, login, poisoned):
    assert login(team_a.owner).get(CHANGELIST_URL).status_code == 200
