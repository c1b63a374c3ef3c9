"""Bad input to the events API: dates, text that cannot be stored, nesting (issue "Security
and bad input"); the admin lists still render afterwards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from interseller import api, services
from interseller.models import Contact, EmailEvent
from tests.factories import ContactFactory
from tests.support.api import CONTACTS, EVENTS, event
from tests.support.domain import control

# --- bad input: dates, text that cannot be stored, nesting (issue "Security and bad input") ---

ADMIN_LISTS = ("contact", "enrollment", "emailevent")


def assert_admin_lists_render(client, who) -> None:
    client.force_login(who.user)
    for model in ADMIN_LISTS:
        response = client.get(f"/admin/interseller/{model}/")
        assert response.status_code == 200, model


def in_days(days: float) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "occurred_at",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2000-01-01T00:00:00+00:01",  # 1999-12-31T23:59:00Z
        "in 2 days",
    ],
)
def test_occurred_at_outside_the_date_window_is_400_and_stores_nothing(
    post, client, team_a, sequence_a, enrolled, occurred_at
):
    if occurred_at == "in 2 days":
        occurred_at = in_days(2)
    response = post(EVENTS, event(sequence_a, occurred_at=occurred_at))
    assert response.status_code == 400
    assert response.json() == {"errors": {"occurred_at": [services.MSG_EVENT_DATE_WINDOW]}}
    assert not EmailEvent.objects.exists()
    enrolled.refresh_from_db()
    assert enrolled.first_messaged_at is None
    assert_admin_lists_render(client, team_a.owner)


def test_the_date_window_message_states_the_window():
    window = services.EVENT_DATE_WINDOW
    assert window.earliest == datetime(2000, 1, 1, tzinfo=UTC)
    assert window.ahead == timedelta(days=1)
    assert "2000-01-01T00:00:00Z" in services.MSG_EVENT_DATE_WINDOW
    assert "one day from now" in services.MSG_EVENT_DATE_WINDOW


@pytest.mark.parametrize("occurred_at", ["2000-01-01T00:00:00Z", "in 23 hours"])
def test_occurred_at_at_the_edges_of_the_date_window_is_accepted(
    post, sequence_a, enrolled, occurred_at
):
    if occurred_at == "in 23 hours":
        occurred_at = in_days(23 / 24)
    assert post(EVENTS, event(sequence_a, occurred_at=occurred_at)).status_code == 201


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.get_fixed_timezone(-14 * 60)),
        "9999-12-31T23:59:59-14:00",
        "not a date",
    ],
)
def test_email_event_record_refuses_a_date_outside_the_window(enrolled, occurred_at):
    # The service is the boundary: no caller (CATS, seed, a shell) can store such a date.
    with pytest.raises(ValidationError) as error:
        services.email_event_record(
            enrollment=enrolled, external_id="e1", kind="message_sent", occurred_at=occurred_at
        )
    assert list(error.value.message_dict) == ["occurred_at"]
    assert not EmailEvent.objects.exists()


def test_email_event_record_refuses_a_date_one_day_past_now(enrolled):
    with pytest.raises(ValidationError) as error:
        services.email_event_record(
            enrollment=enrolled,
            external_id="e1",
            kind="message_sent",
            occurred_at=timezone.now() + timedelta(days=1, minutes=1),
        )
    assert error.value.message_dict == {"occurred_at": [services.MSG_EVENT_DATE_WINDOW]}


BAD_TEXT = [("\x00", "U+0000"), ("\ud800", "U+D800"), ("\x07", "U+0007"), ("\x7f", "U+007F")]


@pytest.mark.parametrize("field", ["id", "subject", "snippet", "contact_email"])
@pytest.mark.parametrize(("bad", "code"), BAD_TEXT)
def test_event_text_that_cannot_be_stored_is_400_on_the_field(
    post, client, team_a, sequence_a, enrolled, field, bad, code
):
    value = {"contact_email": "ada@prospect.example"}.get(field, "text") + bad
    response = post(EVENTS, event(sequence_a, **{field: value}))
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [control(code)]}}
    assert not EmailEvent.objects.exists()
    assert_admin_lists_render(client, team_a.owner)


def test_lone_surrogate_is_sent_as_a_raw_json_escape(post, sequence_a, enrolled):
    body = json.dumps(event(sequence_a, snippet="a\ud800b"))
    assert "\\ud800" in body
    response = post(EVENTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {"snippet": [control("U+D800")]}}


def test_event_line_breaks_fold_in_one_line_fields_and_stay_in_the_snippet(
    post, sequence_a, enrolled
):
    response = post(
        EVENTS,
        event(sequence_a, subject="Backend\r\nrole\tat Acme", snippet="Hi,\r\n\tthanks!\n"),
    )
    assert response.status_code == 201
    stored = EmailEvent.objects.get()
    assert stored.subject == response.json()["subject"] == "Backend role at Acme"
    assert stored.snippet == "Hi,\r\n\tthanks!\n"


def test_event_id_of_only_line_breaks_is_blank(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, id="\n\t"))
    assert response.status_code == 400
    assert response.json() == {"errors": {"id": [api.MSG_BLANK]}}


def test_event_subject_longer_than_the_column_is_400_not_truncated(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, subject="s" * 501))
    assert response.status_code == 400
    assert response.json() == {"errors": {"subject": ["Must be at most 500 characters."]}}
    assert not EmailEvent.objects.exists()
    assert post(EVENTS, event(sequence_a, subject="s" * 500)).status_code == 201
    assert EmailEvent.objects.get().subject == "s" * 500


@pytest.mark.parametrize("field", ["email", "owner_email", *services.CONTACT_FIELDS])
@pytest.mark.parametrize(("bad", "code"), BAD_TEXT)
def test_contact_text_that_cannot_be_stored_is_400_on_the_field(
    post, client, team_a, field, bad, code
):
    body = {"email": "ada@prospect.example"}
    body[field] = body.get(field, "x") + bad
    response = post(CONTACTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [control(code)]}}
    assert not Contact.objects.exists()
    assert_admin_lists_render(client, team_a.owner)


def test_contact_line_breaks_fold_into_one_space(post, team_a):
    response = post(
        CONTACTS, {"email": "ada@prospect.example\n", "company": "Analytical\r\nEngines\t"}
    )
    assert response.status_code == 201
    assert Contact.objects.get().company == response.json()["company"] == "Analytical Engines"


def test_contact_update_with_a_control_character_changes_nothing(post, team_a):
    ContactFactory(
        team=team_a.team, owner=team_a.owner, email="ada@prospect.example", company="Engines"
    )
    response = post(CONTACTS, {"email": "ada@prospect.example", "company": "Evil\x00 Co"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"company": [control("U+0000")]}}
    assert Contact.objects.get().company == "Engines"


@pytest.mark.parametrize("field", services.CONTACT_FIELDS)
def test_contact_fields_longer_than_their_column_are_400_on_the_field(post, team_a, field):
    limit = Contact._meta.get_field(field).max_length
    value = (
        "https://www.linkedin.com/in/" + "a" * limit
        if field == "linkedin_url"
        else "a" * (limit + 1)
    )
    response = post(CONTACTS, {"email": "ada@prospect.example", field: value})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "linkedin.com/in/ada lovelace", "http://", "http://[::1", "ftp//x"],
)
def test_linkedin_url_must_be_a_valid_url(post, team_a, url):
    response = post(CONTACTS, {"email": "ada@prospect.example", "linkedin_url": url})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["linkedin_url"]
    assert not Contact.objects.exists()


def test_contacts_api_reports_every_field_contact_upsert_refuses(post, team_a):
    response = post(
        CONTACTS,
        {"email": "ada@prospect.example", "phone": "5" * 65, "linkedin_url": "nope"},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"phone", "linkedin_url"}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"email": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"email": "a@b.example", "x": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "}",
    ],
)
@pytest.mark.parametrize("url", [CONTACTS, EVENTS])
def test_deeply_nested_json_is_400_for_the_body(post, team_a, url, body):
    response = post(url, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [api.MSG_TOO_DEEP]}}
    assert not Contact.objects.exists()
