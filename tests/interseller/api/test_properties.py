"""Whatever a client sends the events API, the answer is a 2xx or a 4xx with a JSON error body,
never a 5xx, and the team's admin pages still render afterwards.

Property-based (hypothesis), over HTTP with the Django test client. Every example of a test
runs in the same database transaction: rows stored by one example are there for the next
(a replayed event id is a 200, an existing contact is updated), which the properties allow.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from interseller import services
from interseller.models import Contact, EmailEvent, Sequence
from interseller.services import CONTACT_FIELDS
from interseller.text import bad_character
from tests.factories import ContactFactory, TeamGraph
from tests.support.api import CONTACTS, EVENTS

ADMIN_LISTS = [f"/admin/interseller/{m}/" for m in ("contact", "enrollment", "emailevent")]

PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# --- what a client may send -------------------------------------------------------------------

# Pieces of text that have broken APIs before; several are more than one code point.
SPECIAL_PIECES = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\t",
    "\r\n",
    "\ud800",  # lone surrogates: the JSON text carries them as \ud800 escapes
    "\udfff",
    "\u202e",  # right-to-left override
    "\u200f",
    "\ufeff",
    "e\u0301",
    "😀",
    "👩🏽‍💻",
    "עברית",
    "العربية",
    "=",
    "@",
]
short_text = st.lists(
    st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(SPECIAL_PIECES)),
    max_size=20,
).map("".join)
texts = st.one_of(
    short_text,
    st.sampled_from(SPECIAL_PIECES),
    # Around the column lengths, and past the 64 KiB body limit.
    st.builds(
        lambda n, c: c * n,
        st.one_of(st.integers(0, 600), st.integers(0, 70_000)),
        st.sampled_from(["x", "é", "😀"]),
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(short_text, children, max_size=4)
    ),
    max_leaves=12,
)

# RFC 3339 look-alikes, valid or not: every part may be out of range.
rfc3339_like = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}{}".format,
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".123456789"]),
    st.one_of(
        st.sampled_from(["Z", "z", ""]),
        st.builds(
            "{}{:02d}:{:02d}".format,
            st.sampled_from("+-"),
            st.integers(0, 99),
            st.integers(0, 59),
        ),
    ),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt_timezone(timedelta(minutes=m)))
real_datetimes = st.builds(
    lambda when, tz: when.replace(tzinfo=UTC).astimezone(tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets,
)
# Around the window's edges: the start of 2000 and a day from now.
near_now = st.builds(
    lambda seconds, tz: (timezone.now() + timedelta(seconds=seconds)).astimezone(tz).isoformat(),
    st.integers(-3 * 86400, 3 * 86400),
    offsets,
)
near_2000 = st.builds(
    lambda seconds, tz: (
        (datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).astimezone(tz).isoformat()
    ),
    st.integers(-86400, 86400),
    offsets,
)
dates = st.one_of(
    rfc3339_like,
    real_datetimes,
    near_now,
    near_2000,
    st.just("9999-12-31T23:59:59-14:00"),
    st.just("0001-01-01T00:00:00+14:00"),
)


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def bodies(draw, valid: dict[str, Any], specific: dict[str, st.SearchStrategy]) -> dict:
    """A valid body with a few fields dropped, retyped or replaced, maybe unknown keys."""
    body = dict(valid)
    for key in draw(st.sets(st.sampled_from(sorted(valid)), max_size=4)):
        how = draw(st.sampled_from(["specific", "specific", "any", "drop"]))
        if how == "specific":
            body[key] = draw(specific.get(key, texts))
        elif how == "any":
            body[key] = draw(json_values)
        else:
            del body[key]
    if draw(st.integers(0, 3)) == 0:
        body.update(draw(st.dictionaries(short_text, json_values, min_size=1, max_size=2)))
    return body


@st.composite
def raw_requests(draw, bodies_strategy: st.SearchStrategy) -> bytes:
    """The body as bytes: JSON text (surrogates as escapes or as invalid UTF-8), cut short,
    or a field nested thousands deep."""
    body = draw(bodies_strategy)
    how = draw(st.sampled_from(["ascii", "ascii", "ascii", "utf-8", "cut", "nested"]))
    if how == "utf-8":
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    text = json.dumps(body)
    if how == "cut":
        # A share of the text, not a length: the text's length varies with the fresh ids.
        return text[: int(len(text) * draw(st.floats(0, 1)))].encode()
    if how == "nested":
        depth = draw(st.integers(1, 6000))
        return ('{"email": ' + nested(depth) + ', "id": ' + nested(depth, '"x"') + "}").encode()
    return text.encode()


# --- the team the examples post to ------------------------------------------------------------


@dataclass
class Api:
    client: Client
    token: str
    graph: TeamGraph
    sequence: Sequence

    def post(self, url: str, body: bytes):
        response = self.client.post(
            url,
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code < 500, response.content[:500]
        assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500
        assert response["Content-Type"] == "application/json"
        payload = response.json()
        if response.status_code >= 400:
            errors = payload["errors"]
            assert errors and isinstance(errors, dict)
            for messages in errors.values():
                assert messages and all(isinstance(m, str) and m for m in messages)
        return response

    def assert_nothing_poisoned(self) -> None:
        """What the team has stored obeys the text rule and the date window, and its admin
        lists render."""
        team = self.graph.team
        for contact in Contact.objects.filter(team=team).values("email", *CONTACT_FIELDS):
            for name, value in contact.items():
                assert bad_character(value) is None, (name, value)
        window = services.EVENT_DATE_WINDOW
        for stored in EmailEvent.objects.filter(team=team):
            assert window.earliest <= stored.occurred_at <= timezone.now() + window.ahead
            assert bad_character(stored.external_id) is None
            assert bad_character(stored.subject) is None
            assert bad_character(stored.snippet, multiline=True) is None
        self.client.force_login(self.graph.owner.user)
        for url in ADMIN_LISTS:
            assert self.client.get(url).status_code == 200, url

    def assert_event_listed(self, event: EmailEvent) -> None:
        """The events list drilled down to the event's day (its date hierarchy) renders."""
        self.client.force_login(self.graph.owner.user)
        at = timezone.localtime(event.occurred_at)
        query = {f"occurred_at__{p}": getattr(at, p) for p in ("year", "month", "day")}
        response = self.client.get(ADMIN_LISTS[2], {**query, "q": event.external_id})
        assert response.status_code == 200
        assert event.pk in {e.pk for e in response.context["cl"].result_list}


@pytest.fixture
def api(client, team_a, sequence_a) -> Api:
    _, raw = services.api_token_create(team=team_a.team, name="engine")
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="ada@prospect.example")
    services.contact_add_to_sequence(contact=contact, sequence=sequence_a)
    return Api(client=client, token=raw, graph=team_a, sequence=sequence_a)


# Event ids and contact emails of valid bodies: fresh in every example, or each example
# would replay the first.
fresh = itertools.count()


def valid_event(api: Api) -> dict[str, Any]:
    return {
        "id": f"evt-{next(fresh)}",
        "type": "reply_received",
        "sequence_id": api.sequence.pk,
        "contact_email": "ada@prospect.example",
        "occurred_at": "2024-05-01T09:30:00Z",
        "subject": "Backend role",
        "snippet": "Sounds good",
        "sentiment": "interested",
    }


def event_fields(api: Api) -> dict[str, st.SearchStrategy]:
    return {
        "id": st.one_of(short_text, st.builds("evt-{}".format, st.integers(0, 20))),
        "type": st.one_of(st.sampled_from(EmailEvent.Kind.values), short_text),
        "sequence_id": st.one_of(
            st.just(api.sequence.pk), st.integers(), st.integers(-(2**80), 2**80), st.floats()
        ),
        "contact_email": st.one_of(
            st.just("ADA@prospect.example"), st.builds("ada{}@prospect.example".format, texts)
        ),
        "occurred_at": dates,
        "sentiment": st.one_of(st.sampled_from(["interested", "not_interested", ""]), texts),
    }


def valid_contact(api: Api) -> dict[str, Any]:
    return {
        "email": f"grace{next(fresh)}@prospect.example",
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "Navy",
        "title": "Rear admiral",
        "phone": "+1 555 0100",
        "linkedin_url": "https://www.linkedin.com/in/grace",
        "location": "Arlington",
        "source": "Fair",
        "sequence_id": api.sequence.pk,
        "owner_email": api.graph.member2.user.email,
    }


def contact_fields(api: Api) -> dict[str, st.SearchStrategy]:
    return {
        "email": st.one_of(
            st.builds("p{}@prospect.example".format, st.integers(0, 20)),
            st.builds("{}@prospect.example".format, texts),
            st.builds("p@{}".format, texts),
        ),
        "linkedin_url": st.one_of(
            st.builds("https://www.linkedin.com/in/{}".format, texts),
            st.builds("http://{}".format, texts),
            texts,
        ),
        "sequence_id": st.one_of(st.just(api.sequence.pk), st.integers(), st.floats()),
        "owner_email": st.one_of(
            st.just(api.graph.owner.user.email.upper()),
            st.builds("{}@example.com".format, texts),
        ),
    }


# --- properties -------------------------------------------------------------------------------


@PROPERTIES
@given(data=st.data())
def test_events_api_never_answers_5xx_and_leaves_the_admin_readable(api, data):
    body = data.draw(raw_requests(bodies(valid_event(api), event_fields(api))), label="body")
    response = api.post(EVENTS, body)
    event(f"status {response.status_code}")
    if response.status_code < 300:
        api.assert_nothing_poisoned()


@PROPERTIES
@given(data=st.data())
def test_contacts_api_never_answers_5xx_and_leaves_the_admin_readable(api, data):
    body = data.draw(raw_requests(bodies(valid_contact(api), contact_fields(api))), label="body")
    response = api.post(CONTACTS, body)
    event(f"status {response.status_code}")
    if response.status_code < 300:
        api.assert_nothing_poisoned()


@PROPERTIES
@given(occurred_at=dates)
def test_an_event_date_is_stored_only_inside_the_window(api, occurred_at):
    body = {**valid_event(api), "occurred_at": occurred_at}
    response = api.post(EVENTS, json.dumps(body).encode())
    stored = EmailEvent.objects.filter(external_id=body["id"]).first()
    if response.status_code >= 400:
        assert list(response.json()["errors"]) == ["occurred_at"]
        assert stored is None
        return
    assert response.status_code == 201
    window = services.EVENT_DATE_WINDOW
    assert window.earliest <= stored.occurred_at <= timezone.now() + window.ahead
    assert stored.occurred_at == datetime.fromisoformat(occurred_at.upper())
    api.assert_event_listed(stored)


@pytest.mark.parametrize("depth", [1, 100, 1000, 5000, 20_000])
def test_nesting_at_any_depth_is_a_4xx_for_the_body_or_a_field(api, depth):
    response = api.post(CONTACTS, ('{"email": ' + nested(depth) + "}").encode())
    assert response.status_code in (400, 413)
