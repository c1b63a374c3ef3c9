"""A team's outreach engine hears of stopped enrollments by a signed POST to the URL the team
set: signed like CATS signs (HMAC-SHA256 over body + X-Request-Id), retried with the same bytes
until answered 2xx, given up on after MAX_ATTEMPTS with the reason on the team's page."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from interseller import services
from interseller.models import Team, TeamWebhookDelivery
from interseller.services.webhooks import MAX_ATTEMPTS
from tests.factories import ContactFactory
from tests.support.admin import url

pytestmark = pytest.mark.django_db


def stop_one(team_a, sequence_a, email="ada@example.com"):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email=email)
    enrollment = services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment
    services.enrollment_stop(enrollment_id=enrollment.pk, reason="Stopped by CATS: moved")
    return enrollment


def make_due():
    TeamWebhookDelivery.objects.update(not_before=timezone.now())


@pytest.fixture
def hooked(team_a, receiver):
    Team.objects.filter(pk=team_a.team.pk).update(webhook_url=receiver.url)
    team_a.team.refresh_from_db()
    return team_a


def test_a_stop_is_posted_signed_to_the_teams_url(hooked, sequence_a, receiver):
    enrollment = stop_one(hooked, sequence_a)
    (delivery,) = TeamWebhookDelivery.objects.all()

    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "delivered"

    (got,) = receiver.received
    secret = Team.objects.get(pk=hooked.team.pk).webhook_secret
    request_id = got["headers"]["X-Request-Id"]
    digest = hmac.new(secret.encode(), got["body"] + request_id.encode(), hashlib.sha256)
    assert got["headers"]["X-Signature"] == f"HMAC-SHA256 {digest.hexdigest()}"
    payload = json.loads(got["body"])
    assert payload["event"] == "enrollment.stopped"
    assert payload["enrollment"]["id"] == enrollment.pk
    assert payload["enrollment"]["stopped_reason"] == "Stopped by CATS: moved"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("done", 1)
    # Running the task again sends nothing more.
    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "not due"
    assert len(receiver.received) == 1


def test_a_failed_post_is_retried_with_the_same_bytes(hooked, sequence_a, receiver):
    stop_one(hooked, sequence_a)
    receiver.script = [500]
    (delivery,) = TeamWebhookDelivery.objects.all()

    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "will retry"
    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "not due"  # backing off
    make_due()
    assert services.team_webhooks_sweep() == 1
    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "delivered"

    first, second = receiver.received
    assert first["body"] == second["body"]
    assert first["headers"]["X-Request-Id"] == second["headers"]["X-Request-Id"]


def test_given_up_after_max_attempts_and_said_on_the_team_page(hooked, sequence_a, receiver, login):
    stop_one(hooked, sequence_a)
    receiver.script = [503] * MAX_ATTEMPTS
    (delivery,) = TeamWebhookDelivery.objects.all()

    outcomes = []
    for _ in range(MAX_ATTEMPTS):
        make_due()
        outcomes.append(services.team_webhook_deliver(delivery_id=delivery.pk))

    assert outcomes == ["will retry"] * (MAX_ATTEMPTS - 1) + ["given up"]
    html = login(hooked.owner).get(url("team", "change", hooked.team.pk)).content.decode()
    assert f"Given up after {MAX_ATTEMPTS} attempts: answered 503" in html


def test_without_a_url_nothing_is_queued_and_each_stop_is_told_once(team_a, sequence_a, receiver):
    stop_one(team_a, sequence_a, "a@example.com")
    assert not TeamWebhookDelivery.objects.exists()

    Team.objects.filter(pk=team_a.team.pk).update(webhook_url=receiver.url)
    enrollment = stop_one(team_a, sequence_a, "b@example.com")
    # Stopped again (a second webhook of the same move, say): no second stop, no second post.
    assert not services.enrollment_stop(enrollment_id=enrollment.pk, reason="again")
    assert TeamWebhookDelivery.objects.count() == 1


def test_setting_the_url_on_the_team_page_makes_a_secret(team_a, login):
    client = login(team_a.owner)
    page = client.get(url("team", "change", team_a.team.pk))
    assert page.status_code == 200

    answer = client.post(
        url("team", "change", team_a.team.pk),
        {"name": team_a.team.name, "webhook_url": "https://engine.example.com/hooks"},
    )

    assert answer.status_code == 302
    team = Team.objects.get(pk=team_a.team.pk)
    assert team.webhook_url == "https://engine.example.com/hooks"
    assert len(team.webhook_secret) == 64
    assert team.webhook_secret in client.get(url("team", "change", team.pk)).content.decode()


def test_members_never_see_the_signing_secret(team_a, login):
    Team.objects.filter(pk=team_a.team.pk).update(
        webhook_url="https://engine.example.com/h", webhook_secret="f" * 64
    )

    as_member = login(team_a.member).get(url("team", "change", team_a.team.pk))
    as_owner = login(team_a.owner).get(url("team", "change", team_a.team.pk))

    assert as_member.status_code == as_owner.status_code == 200
    assert "f" * 64 not in as_member.content.decode()
    assert "f" * 64 in as_owner.content.decode()


def test_a_url_on_a_private_or_local_address_is_refused_with_why(
    hooked, sequence_a, receiver, settings
):
    settings.TEAM_WEBHOOK_ALLOW_PRIVATE = False
    stop_one(hooked, sequence_a)
    (delivery,) = TeamWebhookDelivery.objects.all()

    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "refused"

    delivery.refresh_from_db()
    assert delivery.state == TeamWebhookDelivery.State.FAILED
    assert "private or local address (127.0.0.1)" in delivery.last_error
    assert receiver.received == []


def test_an_unexpected_error_is_recorded_and_retried_like_any_failure(
    hooked, sequence_a, receiver, monkeypatch
):
    stop_one(hooked, sequence_a)
    (delivery,) = TeamWebhookDelivery.objects.all()

    def broken(*args, **kwargs):
        raise ValueError("bad header value")

    monkeypatch.setattr("interseller.services.webhooks.requests.post", broken)
    assert services.team_webhook_deliver(delivery_id=delivery.pk) == "will retry"
    delivery.refresh_from_db()
    assert delivery.state == TeamWebhookDelivery.State.PENDING
    assert delivery.last_error == "ValueError: bad header value"
