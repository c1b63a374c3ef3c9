"""Email activity tracking: each event logged once on the candidate, in CATS' words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sync import services as cats
from cats_sync.models import CatsAccount, SyncTask
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.cats import T0, activities, add, candidates, connect, es_of, event

pytestmark = pytest.mark.django_db


@pytest.fixture
def seq(team_a):
    # Activity notes name the sequence: this file asserts on its title.
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Platform engineers")


# --- Email activity tracking -----------------------------------------------------------------


def test_each_event_becomes_one_activity_regarding_the_job(team_a, site, seq, cats_sandbox):
    job = site.jobs["Senior Backend Engineer"]
    connect(team_a.member, site, default_job_id=job)
    contact = add(seq, "ada@example.com")
    drain()
    event(
        contact,
        seq,
        "e1",
        "message_sent",
        subject="Platform role at Acme",
        snippet="Hi Ada, I saw your work on compilers…",
    )
    event(
        contact,
        seq,
        "e2",
        "reply_received",
        at=T0 + timedelta(hours=3),
        subject="Re: Platform role",
        snippet="Sounds interesting, tell me more",
        sentiment="interested",
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    cid = es_of(contact, seq).candidate_id
    rows = sorted(activities(snap, cid), key=lambda a: a["date"])
    assert [a["type"] for a in rows] == ["email", "email"]
    assert all(a["regarding_id"] == job for a in rows)
    assert rows[0]["date"].startswith("2026-11-02T09:30:00")
    assert "Email sent" in rows[0]["notes"] and "Platform engineers" in rows[0]["notes"]
    assert "Subject: Platform role at Acme" in rows[0]["notes"]
    assert "Hi Ada, I saw your work" in rows[0]["notes"]
    assert "Reply received" in rows[1]["notes"] and "Interested" in rows[1]["notes"]


@pytest.mark.parametrize(
    "kind,words", [("bounced", "Email bounced"), ("unsubscribed", "Unsubscribed")]
)
def test_bounce_and_unsubscribe_are_logged_in_plain_words(
    team_a, site, seq, cats_sandbox, kind, words
):
    connect(team_a.member, site)
    contact = add(seq, "b@example.com")
    drain()
    event(contact, seq, "x1", kind)
    drain()
    [row] = activities(cats_sandbox.snapshot(site.id), es_of(contact, seq).candidate_id)
    assert row["notes"].startswith(words)


def test_activity_is_written_once_even_when_the_answer_is_lost(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(seq, "once@example.com")
    drain()
    cats_sandbox.fault("drop_after_write", method="POST", route="/candidates/{id}/activities")
    event(contact, seq, "once-1", "message_sent")
    drain()
    SyncTask.objects.filter(kind="event").update(not_before=T0)
    drain()
    assert SyncTask.objects.get(kind="event").state == SyncTask.State.DONE
    assert len(activities(cats_sandbox.snapshot(site.id), es_of(contact, seq).candidate_id)) == 1


def test_events_before_sync_are_backfilled_at_sync(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    contact = add(seq, "late@example.com")
    event(contact, seq, "m1", "message_sent")
    event(contact, seq, "m2", "message_sent", at=T0 + timedelta(days=2))
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "late@example.com") == []
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(days=3))
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(activities(snap, es_of(contact, seq).candidate_id)) == 3


def test_resync_backfills_email_activity(team_a, site, seq, cats_sandbox):
    contact = add(seq, "before-connect@example.com")
    event(contact, seq, "old1", "message_sent")
    connect(team_a.member, site)
    cats.resync_start(
        enrollments=Enrollment.objects.all(),
        started_by=None,
        team=team_a.team,
        description="backfill",
    )
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(activities(snap, es_of(contact, seq).candidate_id)) == 1


def test_tracking_off_writes_no_activity(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, activity_tracking=False)
    contact = add(seq, "untracked@example.com")
    drain()
    event(contact, seq, "u1", "message_sent")
    drain()
    assert cats_sandbox.snapshot(site.id)["activities"] == []


def test_events_while_disconnected_reach_cats_after_reconnecting(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site)
    contact = add(seq, "away@example.com")
    drain()
    cats.cats_disconnect(account=account)
    event(contact, seq, "away-1", "message_sent")
    drain()
    assert cats_sandbox.snapshot(site.id)["activities"] == []
    connect(team_a.member, site)
    drain()
    assert len(activities(cats_sandbox.snapshot(site.id), es_of(contact, seq).candidate_id)) == 1
