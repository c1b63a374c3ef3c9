from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from interseller import services
from interseller.management.commands import seed_demo
from interseller.models import (
    ApiToken,
    Contact,
    EmailEvent,
    Enrollment,
    Group,
    Membership,
    Sequence,
    Team,
)
from interseller.signals import contact_added_to_sequence, email_event_recorded

MODELS = [get_user_model(), Team, Membership, Group, Sequence, Contact, Enrollment, EmailEvent]


def run(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in [*MODELS, ApiToken]}


@pytest.fixture
def seeded(db) -> str:
    return run()


def test_seed_creates_the_demo_team_and_its_data(seeded):
    team = Team.objects.get(name="Demo Recruiting")
    roles = sorted(team.memberships.values_list("role", flat=True))
    assert roles == ["manager", "member", "member", "owner"]
    assert team.groups.count() == 1
    assert team.sequences.count() == 3
    assert team.contacts.count() == 50
    assert Enrollment.objects.filter(sequence__team=team).count() >= 40
    assert EmailEvent.objects.filter(team=team).count() > 0
    states = set(Enrollment.objects.values_list("state", flat=True))
    assert {"active", "replied"} <= states


def test_running_twice_creates_nothing_new(seeded):
    before = counts()
    second = run()
    assert counts() == before
    assert "0 contacts, 0 enrollments and 0 email events created this run" in second


def test_rerun_sends_no_signals(seeded):
    heard = []

    def listener(sender, **kwargs):
        heard.append(sender)

    contact_added_to_sequence.connect(listener, weak=False)
    email_event_recorded.connect(listener, weak=False)
    try:
        run()
    finally:
        contact_added_to_sequence.disconnect(listener)
        email_event_recorded.disconnect(listener)
    assert heard == []


def test_first_run_goes_through_the_services_so_signals_fire(db):
    events = []

    def listener(sender, event, **kwargs):
        events.append(event.pk)

    email_event_recorded.connect(listener, weak=False)
    try:
        run()
    finally:
        email_event_recorded.disconnect(listener)
    assert sorted(events) == sorted(EmailEvent.objects.values_list("pk", flat=True))


def test_seed_data_is_deterministic(seeded):
    emails = sorted(Contact.objects.values_list("email", flat=True))
    Contact.objects.all().delete()
    run()
    assert sorted(Contact.objects.values_list("email", flat=True)) == emails


def test_printed_raw_token_authenticates_and_is_not_stored(seeded):
    raw = re.search(r"\b(isk_\S+)", seeded).group(1)
    token = services.api_token_authenticate(raw)
    assert token is not None
    assert token.team.name == "Demo Recruiting"
    assert not ApiToken.objects.filter(digest=raw).exists()


def test_rerun_says_the_token_exists_and_how_to_make_a_new_one(seeded):
    second = run()
    assert "isk_" not in second
    assert "already exists" in second
    assert "--new-token" in second


def test_new_token_option_prints_another_working_token(seeded):
    out = run("--new-token")
    raw = re.search(r"\b(isk_\S+)", out).group(1)
    assert services.api_token_authenticate(raw) is not None
    assert ApiToken.objects.count() == 2


def test_owner_is_staff_not_superuser_and_can_sign_in(seeded, client):
    owner = get_user_model().objects.get(email="owner@demo.example")
    assert owner.is_staff and not owner.is_superuser
    assert owner.memberships.get().role == Membership.Role.OWNER
    assert client.login(username="owner@demo.example", password=seed_demo.DEMO_PASSWORD)


def test_admin_superuser_is_created(seeded, client):
    admin = get_user_model().objects.get(email="admin@demo.example")
    assert admin.is_superuser and admin.is_staff
    assert client.login(username="admin@demo.example", password=seed_demo.DEMO_PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_output_has_the_login_url_and_credentials(seeded):
    assert "http://localhost:8000/admin/" in seeded
    assert f"owner@demo.example / {seed_demo.DEMO_PASSWORD}" in seeded
    assert f"admin@demo.example / {seed_demo.DEMO_PASSWORD}" in seeded
