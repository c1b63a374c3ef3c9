from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from interseller import api, services
from interseller.models import Contact, EmailEvent, Enrollment
from interseller.signals import contact_added_to_sequence
from interseller.text import MSG_CONTROL_CHARACTER

from .factories import ContactFactory, SequenceFactory

CONTACTS = "/api/v1/contacts"
EVENTS = "/api/v1/events"


@pytest.fixture
def token_a(team_a) -> str:
    _, raw = services.api_token_create(team=team_a.team, name="engine")
    return raw


@pytest.fixture
def post(client, token_a):
    def _post(url, body, *, token=None, content_type="application/json", **extra):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return client.post(
            url,
            data=data,
            content_type=content_type,
            headers={"Authorization": f"Bearer {token or token_a}"},
            **extra,
        )

    return _post


@pytest.fixture
def enrolled(team_a, sequence_a):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    return services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment


def event(sequence, **overrides):
    body = {
        "id": "evt-1",
        "type": "message_sent",
        "sequence_id": sequence.pk,
        "contact_email": "ada@prospect.example",
        "occurred_at": "2024-05-01T09:30:00Z",
        "subject": "Backend role at Acme",
    }
    body.update(overrides)
    return body


# --- auth, method, transport ----------------------------------------------------------------


def test_missing_token_is_401_with_bearer_challenge(client, team_a):
    response = client.post(CONTACTS, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"errors": {"authorization": [api.MSG_AUTH_MISSING]}}


def test_unknown_token_is_401(post, team_a):
    response = post(CONTACTS, {"email": "a@b.example"}, token="isk_not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"]["authorization"] == [api.MSG_AUTH_INVALID]


def test_revoked_token_is_401_and_stores_nothing(post, team_a):
    token, raw = services.api_token_create(team=team_a.team, name="old")
    services.api_token_revoke(token=token)
    response = post(CONTACTS, {"email": "a@b.example"}, token=raw)
    assert response.status_code == 401
    assert not Contact.objects.exists()


def test_non_bearer_scheme_is_401(client, token_a):
    response = client.post(
        CONTACTS,
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Basic {token_a}"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_is_allowed(client, token_a, method):
    response = getattr(client, method)(EVENTS, headers={"Authorization": f"Bearer {token_a}"})
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"errors": {"method": [api.MSG_METHOD]}}


def test_form_encoded_body_is_415(client, token_a):
    response = client.post(
        CONTACTS, data={"email": "a@b.example"}, headers={"Authorization": f"Bearer {token_a}"}
    )
    assert response.status_code == 415
    assert response.json() == {"errors": {"body": [api.MSG_CONTENT_TYPE]}}


def test_json_with_charset_is_accepted(post, team_a):
    response = post(
        CONTACTS, {"email": "a@b.example"}, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


@override_settings(API_MAX_BODY_BYTES=200)
def test_body_over_the_limit_is_413(post, team_a):
    response = post(CONTACTS, {"email": "a@b.example", "company": "x" * 300})
    assert response.status_code == 413
    assert not Contact.objects.exists()


@override_settings(API_MAX_BODY_BYTES=200)
def test_body_longer_than_its_content_length_header_is_cut_and_refused(post, team_a):
    # A client (or proxy) that understates Content-Length must not slip a big body through:
    # only the declared bytes are read, and half a JSON document is a 400.
    body = json.dumps({"email": "a@b.example", "company": "x" * 300})
    response = post(CONTACTS, body, CONTENT_LENGTH="50")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert not Contact.objects.exists()


@override_settings(API_MAX_BODY_BYTES=200)
def test_declared_content_length_over_the_limit_is_413_before_reading(post, team_a):
    response = post(CONTACTS, "{}", CONTENT_LENGTH="100000")
    assert response.status_code == 413


def test_default_body_limit_is_64_kib(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, snippet="x" * (64 * 1024)))
    assert response.status_code == 413
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("body", ["{not json", b"\xff\xfe", '{"email": '])
def test_malformed_json_is_400(post, team_a, body):
    response = post(CONTACTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [api.MSG_BAD_JSON]}}


@pytest.mark.parametrize("body", [[], "a string", 3, None])
def test_json_that_is_not_an_object_is_400(post, team_a, body):
    response = post(CONTACTS, json.dumps(body))
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [api.MSG_NOT_OBJECT]}}


# --- POST /api/v1/contacts ------------------------------------------------------------------


def test_new_contact_is_created_with_201_and_normalised_email(post, team_a):
    response = post(
        CONTACTS,
        {"email": "  Ada@Prospect.Example ", "first_name": "Ada", "company": "Analytical"},
    )
    assert response.status_code == 201
    body = response.json()
    contact = Contact.objects.get()
    assert body["id"] == contact.pk
    assert body["email"] == contact.email == "ada@prospect.example"
    assert body["first_name"] == "Ada"
    assert body["status"] == "created"
    assert "enrollment" not in body
    # Without a sequence, the team's first owner owns the contact.
    assert contact.owner == team_a.owner
    assert contact.team == team_a.team


def test_existing_contact_is_updated_with_200_and_blanks_do_not_erase(post, team_a):
    ContactFactory(
        team=team_a.team, owner=team_a.member, email="ada@prospect.example", phone="555-0100"
    )
    response = post(CONTACTS, {"email": "ADA@prospect.example", "phone": "", "company": "New Co"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "updated"
    assert body["phone"] == "555-0100"
    assert body["company"] == "New Co"
    assert Contact.objects.count() == 1


def test_contact_added_to_sequence_is_owned_by_the_sequence_owner(post, team_a, sequence_a):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    assert response.status_code == 201
    enrollment = Enrollment.objects.get()
    assert response.json()["enrollment"] == {
        "id": enrollment.pk,
        "sequence_id": sequence_a.pk,
        "state": "active",
        "created": True,
    }
    assert enrollment.contact.owner == sequence_a.owner


def test_adding_an_enrolled_contact_again_reports_the_existing_enrollment(
    post, sequence_a, enrolled
):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    assert response.status_code == 200
    assert response.json()["enrollment"]["created"] is False
    assert response.json()["enrollment"]["id"] == enrolled.pk
    assert Enrollment.objects.count() == 1


def test_owner_email_picks_a_team_member(post, team_a):
    response = post(
        CONTACTS,
        {"email": "ada@prospect.example", "owner_email": team_a.member2.user.email.upper()},
    )
    assert response.status_code == 201
    assert Contact.objects.get().owner == team_a.member2
    assert response.json()["owner_email"] == team_a.member2.user.email


def test_owner_email_of_another_team_is_400(post, team_a, team_b):
    response = post(
        CONTACTS, {"email": "ada@prospect.example", "owner_email": team_b.owner.user.email}
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["owner_email"]
    assert not Contact.objects.exists()


def test_sequence_of_another_team_is_404_and_stores_nothing(post, team_a, team_b):
    other = SequenceFactory(team=team_b.team, owner=team_b.owner)
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": other.pk})
    assert response.status_code == 404
    assert response.json() == {"errors": {"sequence_id": [api.MSG_NO_SEQUENCE]}}
    assert not Contact.objects.exists()


def test_unknown_sequence_is_404(post, team_a):
    response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": 999999})
    assert response.status_code == 404


def test_contact_is_not_kept_when_adding_it_to_the_sequence_fails(post, team_a, sequence_a):
    # An integration refusing the enrollment (its receiver runs inside the transaction) must
    # take the contact created a moment earlier in the same request down with it.
    def refuse(sender, enrollment, **kwargs):
        raise ValidationError("The ATS refused this candidate.")

    contact_added_to_sequence.connect(refuse, dispatch_uid="test-refuse")
    try:
        response = post(CONTACTS, {"email": "ada@prospect.example", "sequence_id": sequence_a.pk})
    finally:
        contact_added_to_sequence.disconnect(dispatch_uid="test-refuse")
    assert response.status_code == 400
    assert response.json() == {"errors": {"email": ["The ATS refused this candidate."]}}
    assert not Contact.objects.exists()
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "email", api.MSG_REQUIRED),
        ({"email": None}, "email", api.MSG_REQUIRED),
        ({"email": "   "}, "email", api.MSG_BLANK),
        ({"email": 42}, "email", "Must be a string."),
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address."),
        ({"email": "a@b.example", "nickname": "x"}, "nickname", api.MSG_UNKNOWN_FIELD),
        ({"email": "a@b.example", "sequence_id": "1"}, "sequence_id", "Must be an integer."),
        ({"email": "a@b.example", "sequence_id": True}, "sequence_id", "Must be an integer."),
        ({"email": "a@b.example", "first_name": ["Ada"]}, "first_name", "Must be a string."),
        ({"email": "a@b.example", "linkedin_url": "nope"}, "linkedin_url", "Enter a valid URL."),
        (
            {"email": "a@b.example", "first_name": "x" * 151},
            "first_name",
            "Ensure this value has at most 150 characters (it has 151).",
        ),
    ],
)
def test_invalid_contact_fields_are_400_per_field(post, team_a, body, field, message):
    response = post(CONTACTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert not Contact.objects.exists()


def test_all_field_errors_are_reported_together(post, team_a):
    response = post(CONTACTS, {"first_name": 1, "extra": True})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "first_name", "extra"}


def test_contacts_are_scoped_to_the_tokens_team(client, team_a, team_b):
    _, raw_a = services.api_token_create(team=team_a.team, name="a")
    _, raw_b = services.api_token_create(team=team_b.team, name="b")
    for raw in (raw_a, raw_b):
        response = client.post(
            CONTACTS,
            data={"email": "shared@prospect.example"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert response.status_code == 201
    assert {c.team for c in Contact.objects.all()} == {team_a.team, team_b.team}


# --- POST /api/v1/events --------------------------------------------------------------------


def test_message_sent_is_recorded_with_201(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a))
    assert response.status_code == 201
    body = response.json()
    stored = EmailEvent.objects.get()
    assert stored.external_id == body["id"] == "evt-1"
    assert stored.kind == body["type"] == "message_sent"
    assert stored.occurred_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert body["created"] is True
    assert body["contact_email"] == "ada@prospect.example"
    assert body["enrollment"]["id"] == enrolled.pk
    assert body["enrollment"]["state"] == "active"
    assert body["enrollment"]["first_messaged_at"] == "2024-05-01T09:30:00Z"
    assert body["enrollment"]["last_messaged_at"] == "2024-05-01T09:30:00Z"


def test_reply_with_sentiment_updates_the_enrollment(post, sequence_a, enrolled):
    response = post(
        EVENTS,
        event(
            sequence_a,
            id="evt-2",
            type="reply_received",
            occurred_at="2024-05-02T10:00:00+02:00",
            sentiment="interested",
            snippet="Sounds good, let's talk",
        ),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sentiment"] == "interested"
    assert body["enrollment"]["state"] == "replied"
    assert body["enrollment"]["sentiment"] == "interested"
    assert body["enrollment"]["responded_at"] == "2024-05-02T08:00:00Z"
    enrolled.refresh_from_db()
    assert enrolled.state == Enrollment.State.REPLIED


def test_replayed_event_id_is_200_with_the_same_result_and_no_second_event(
    post, sequence_a, enrolled
):
    first = post(EVENTS, event(sequence_a, type="bounced"))
    again = post(EVENTS, event(sequence_a, type="bounced"))
    assert first.status_code == 201
    assert again.status_code == 200
    first_body, again_body = first.json(), again.json()
    assert first_body.pop("created") is True
    assert again_body.pop("created") is False
    assert first_body == again_body
    assert EmailEvent.objects.count() == 1


def test_email_case_does_not_matter_for_events(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, contact_email=" ADA@Prospect.example"))
    assert response.status_code == 201


def test_event_for_a_contact_not_in_the_sequence_is_422(post, team_a, sequence_a):
    ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    response = post(EVENTS, event(sequence_a))
    assert response.status_code == 422
    message = services.MSG_NOT_IN_SEQUENCE.format(
        email="ada@prospect.example", sequence=sequence_a.title
    )
    assert response.json() == {"errors": {"contact_email": [message]}}
    assert not EmailEvent.objects.exists()


def test_event_for_an_unknown_contact_is_422(post, sequence_a):
    response = post(EVENTS, event(sequence_a, contact_email="nobody@prospect.example"))
    assert response.status_code == 422
    assert (
        "nobody@prospect.example is not in the sequence"
        in (response.json()["errors"]["contact_email"][0])
    )


def test_event_for_another_teams_sequence_is_404(post, team_b, enrolled):
    other = SequenceFactory(team=team_b.team, owner=team_b.owner)
    contact = ContactFactory(team=team_b.team, owner=team_b.owner, email="ada@prospect.example")
    services.contact_add_to_sequence(contact=contact, sequence=other)
    response = post(EVENTS, event(other))
    assert response.status_code == 404
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2024-05-01T09:30:00",  # no timezone
        "2024-05-01 09:30:00Z",  # not RFC 3339
        "2024-05-01",
        "01/05/2024 09:30",
        "2024-13-01T09:30:00Z",
        "2024-05-01T25:30:00Z",
        "yesterday",
    ],
)
def test_occurred_at_must_be_rfc3339_with_timezone(post, sequence_a, enrolled, occurred_at):
    response = post(EVENTS, event(sequence_a, occurred_at=occurred_at))
    assert response.status_code == 400
    assert response.json() == {"errors": {"occurred_at": [api.MSG_DATETIME]}}


@pytest.mark.parametrize(
    "occurred_at",
    ["2024-05-01T09:30:00.123456Z", "2024-05-01t09:30:00z", "2024-05-01T09:30:00-05:00"],
)
def test_rfc3339_variants_are_accepted(post, sequence_a, enrolled, occurred_at):
    assert post(EVENTS, event(sequence_a, occurred_at=occurred_at)).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"type": "opened"},
            "type",
            api.MSG_CHOICE.format(choices=", ".join(EmailEvent.Kind.values)),
        ),
        (
            {"sentiment": "maybe", "type": "reply_received"},
            "sentiment",
            "Must be one of: interested, not_interested.",
        ),
        ({"sentiment": "interested"}, "sentiment", services.MSG_SENTIMENT_NOT_REPLY),
        ({"id": ""}, "id", api.MSG_BLANK),
        ({"id": 17}, "id", "Must be a string."),
        ({"id": "x" * 201}, "id", "Must be at most 200 characters."),
        ({"sequence_id": "1"}, "sequence_id", "Must be an integer."),
        ({"contact_email": "ada@"}, "contact_email", "'ada@' is not a valid email address."),
        ({"subject": 5}, "subject", "Must be a string."),
        ({"occurred_at": 1714555800}, "occurred_at", "Must be a string."),
        ({"when": "now"}, "when", api.MSG_UNKNOWN_FIELD),
    ],
)
def test_invalid_event_fields_are_400_per_field(
    post, sequence_a, enrolled, overrides, field, message
):
    response = post(EVENTS, event(sequence_a, **overrides))
    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}
    assert not EmailEvent.objects.exists()
    enrolled.refresh_from_db()
    assert enrolled.first_messaged_at is None


def test_missing_event_fields_are_each_reported(post, sequence_a):
    response = post(EVENTS, {})
    assert response.status_code == 400
    assert response.json()["errors"] == {
        name: [api.MSG_REQUIRED]
        for name in ("id", "type", "sequence_id", "contact_email", "occurred_at")
    }


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


def control(code: str) -> str:
    return MSG_CONTROL_CHARACTER.format(code=code)


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
