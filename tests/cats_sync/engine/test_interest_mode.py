"""The fourth sync mode, "Sync contacts only when they reply with interest": only a reply the
outreach engine marks interested syncs a contact, and then everything before it is backfilled.
Asserted on what the sandbox holds and on the requests it logged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, EnrollmentSync, FieldMapping, SyncTask
from cats_sync.services.status import State, enrollment_states
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.cats_sync.engine.test_requests import FIELDS, Requests, ready, search_route
from tests.support.cats import T0, activities, add, candidates, connect, es_of, event, pipelines

pytestmark = pytest.mark.django_db

INTEREST = CatsAccount.SyncMode.ON_INTEREST


@pytest.fixture
def site(cats_sandbox, settings, cats_variant):
    """A site with a mixed-case email in CATS, so the search probe can tell how it compares
    case (as in test_requests.py): the counts below then match each variant."""
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox.create_site(
        **cats_variant,
        candidates=[
            {"first_name": "K", "last_name": "P", "emails": {"primary": "K.P@Example.com"}}
        ],
    )


def interest_account(team_a, site, **settings_):
    settings_.setdefault("deduplication", False)
    return connect(
        team_a.member,
        site,
        sync_mode=INTEREST,
        default_job_id=site.jobs["Senior Backend Engineer"],
        **settings_,
    )


def state_words(contact, seq) -> str:
    enrollment = Enrollment.objects.select_related("sequence").get(contact=contact, sequence=seq)
    return enrollment_states([enrollment])[enrollment.pk].words


def test_a_message_and_an_uninterested_reply_do_not_sync(team_a, site, seq, cats_sandbox):
    interest_account(team_a, site)
    contact = add(seq, "maybe@example.com")
    event(contact, seq, "m1", "message_sent")
    drain()
    assert state_words(contact, seq) == State.WAITS_FOR_INTEREST
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1))
    event(
        contact,
        seq,
        "r2",
        "reply_received",
        at=T0 + timedelta(hours=2),
        sentiment="not_interested",
    )
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "maybe@example.com") == []
    assert es_of(contact, seq).synced_at is None
    assert not SyncTask.objects.filter(kind=SyncTask.Kind.SYNC).exists()
    assert state_words(contact, seq) == "Not synced: waiting for an interested reply"


def test_an_interested_reply_syncs_with_everything_backfilled(team_a, site, seq, cats_sandbox):
    account = interest_account(team_a, site)
    ready(account)
    for value, (name, field_type) in FIELDS.items():
        FieldMapping.objects.create(
            account=account,
            value=value,
            field_id=site.custom_fields[name],
            field_name=name,
            field_type=field_type,
        )
    contact = add(seq, "yes.please@example.com")
    event(contact, seq, "m1", "message_sent", subject="Hello")
    # "Not now" first, then yes: the second reply is the one that syncs.
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1), sentiment="")
    drain()
    assert candidates(cats_sandbox.snapshot(site.id), "yes.please@example.com") == []
    event(contact, seq, "r2", "reply_received", at=T0 + timedelta(hours=2), sentiment="interested")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [cand] = candidates(snap, "yes.please@example.com")
    [pipe] = pipelines(snap, cand["id"])
    assert pipe["job_id"] == site.jobs["Senior Backend Engineer"]
    assert pipe["status_title"] == "Interested"
    assert [h["title"] for h in pipe["status_history"]][-3:] == [
        "Messaged",
        "Replied",
        "Interested",
    ]
    assert len(activities(snap, cand["id"])) == 3
    fields = cand["custom_fields_by_name"]
    assert fields["Sequence Title"] == "Backend engineers"
    assert fields["First messaged at"] == "2026-11-02"
    assert fields["Responded at"] == "2026-11-02"
    es = es_of(contact, seq)
    assert es.synced_at is not None and es.candidate_id == cand["id"]
    assert state_words(contact, seq) == State.SYNCED


def test_an_interested_reply_costs_pinned_requests(team_a, site, seq, cats_sandbox, cats_variant):
    account = ready(interest_account(team_a, site))
    for value, (name, field_type) in FIELDS.items():
        FieldMapping.objects.create(
            account=account,
            value=value,
            field_id=site.custom_fields[name],
            field_name=name,
            field_type=field_type,
        )
    contact = add(seq, "counted@example.com")
    event(contact, seq, "m1", "message_sent")
    log = Requests(cats_sandbox, site)
    drain()
    assert log.routes() == []  # nothing is sent before the interested reply
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=1), sentiment="interested")
    drain()
    # One search and one create carrying every mapped value, the pipeline, an activity per
    # event, and one move per status: the backfill spends nothing twice.
    assert sorted(log.routes()) == sorted(
        [
            search_route(cats_variant),
            "POST /candidates",
            "POST /pipelines",
            "POST /candidates/{id}/activities",
            "POST /candidates/{id}/activities",
            "POST /pipelines/{id}/status",
            "POST /pipelines/{id}/status",
            "POST /pipelines/{id}/status",
        ]
    )
    log.restart()
    event(contact, seq, "m2", "message_sent", at=T0 + timedelta(days=1))
    drain()
    # Once synced, later events go as in any mode.
    assert "POST /candidates/{id}/activities" in log.routes()


def test_resync_waits_for_interest_and_syncs_those_who_showed_it(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.OFF)
    cold = add(seq, "cold@example.com")
    warm = add(seq, "warm@example.com")
    event(cold, seq, "c1", "reply_received", sentiment="not_interested")
    event(warm, seq, "w1", "reply_received", sentiment="interested")
    CatsAccount.objects.filter(pk=account.pk).update(sync_mode=INTEREST)
    enrollments = Enrollment.objects.filter(sequence=seq)
    plan = cats.resync_plan(enrollments=enrollments)
    counts = cats.resync_counts(enrollments=enrollments)
    assert plan.blocked == counts.blocked == {msg.BLOCK_WAITS_FOR_INTEREST: 1}
    assert counts.will_sync == len(plan.to_sync) == 1
    run = cats.resync_start(
        enrollments=enrollments, started_by=None, team=team_a.team, description="t"
    )
    drain()
    assert run.total == 1
    snap = cats_sandbox.snapshot(site.id)
    assert len(candidates(snap, "warm@example.com")) == 1
    assert candidates(snap, "cold@example.com") == []
    assert EnrollmentSync.objects.get(enrollment__contact=warm).synced_at is not None
