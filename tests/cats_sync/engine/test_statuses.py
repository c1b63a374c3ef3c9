"""Pipeline statuses and reply sentiments, with triggers kept off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sync import messages as msg
from cats_sync.tasks import drain
from tests.factories import SequenceFactory
from tests.support.cats import T0, add, connect, es_of, event, pipelines

pytestmark = pytest.mark.django_db


# --- Statuses and sentiments -----------------------------------------------------------------


def _pipeline(cats_sandbox, site, contact, seq):
    snap = cats_sandbox.snapshot(site.id)
    return pipelines(snap, es_of(contact, seq).candidate_id)[0]


@pytest.mark.parametrize(
    "sentiment,final",
    [("", "Replied"), ("interested", "Interested"), ("not_interested", "Not Interested")],
)
def test_message_then_reply_advance_status_and_sentiment(
    team_a, site, seq, cats_sandbox, sentiment, final
):
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    contact = add(seq, "status@example.com")
    drain()
    event(contact, seq, "s1", "message_sent")
    drain()
    assert _pipeline(cats_sandbox, site, contact, seq)["status_title"] == "Messaged"
    event(contact, seq, "s2", "reply_received", at=T0 + timedelta(hours=1), sentiment=sentiment)
    drain()
    p = _pipeline(cats_sandbox, site, contact, seq)
    assert p["status_title"] == final
    titles = [h["title"] for h in p["status_history"]]
    assert "Replied" in titles


def test_missing_status_changes_nothing_and_says_so(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["VP of Engineering"])
    contact = add(seq, "exec@example.com")
    drain()
    event(contact, seq, "x1", "message_sent")
    event(contact, seq, "x2", "reply_received", at=T0 + timedelta(hours=1))
    drain()
    assert _pipeline(cats_sandbox, site, contact, seq)["status_title"] == "Messaged"
    assert es_of(contact, seq).error_message == msg.ERR_STATUS_MISSING.format(
        status="Replied", workflow="Executive Search"
    )


def test_status_is_never_moved_back_from_progress_made_in_cats(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    contact = add(seq, "ahead@example.com")
    drain()
    p = _pipeline(cats_sandbox, site, contact, seq)
    cats_sandbox.set_status_by_hand(site.id, p["id"], site.status_id("Submitted"))
    before = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    event(contact, seq, "a1", "message_sent")
    event(contact, seq, "a2", "reply_received", at=T0 + timedelta(hours=1))
    drain()
    after = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    assert _pipeline(cats_sandbox, site, contact, seq)["status_title"] == "Submitted"
    assert after.get("POST /pipelines/{id}/status", 0) == before.get(
        "POST /pipelines/{id}/status", 0
    )


def test_repeating_the_current_status_spends_no_request(team_a, site, seq, cats_sandbox):
    connect(
        team_a.member,
        site,
        default_job_id=site.jobs["Senior Backend Engineer"],
        activity_tracking=False,
    )
    contact = add(seq, "repeat@example.com")
    drain()
    event(contact, seq, "r1", "message_sent")
    drain()
    before = cats_sandbox.requests()["sites"][str(site.id)]["total"]
    event(contact, seq, "r2", "message_sent", at=T0 + timedelta(days=1))
    drain()
    assert cats_sandbox.requests()["sites"][str(site.id)]["total"] == before


def test_triggers_are_suppressed_unless_turned_on(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    contact = add(seq, "quiet@example.com")
    drain()
    event(contact, seq, "q1", "reply_received", sentiment="interested")
    drain()
    history = _pipeline(cats_sandbox, site, contact, seq)["status_history"]
    fired = [t for h in history for t in h["triggers"]]
    assert fired and not any(t["fired"] for t in fired)
    account.fire_triggers = True
    account.save()
    loud_seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    loud = add(loud_seq, "loud@example.com")
    drain()
    event(loud, loud_seq, "l1", "reply_received")
    drain()
    history = _pipeline(cats_sandbox, site, loud, loud_seq)["status_history"]
    replied = next(h for h in history if h["title"] == "Replied")
    assert replied["triggers"] and all(t["fired"] for t in replied["triggers"])


def test_status_sync_off_leaves_pipeline_alone(team_a, site, seq, cats_sandbox):
    connect(
        team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"], status_sync=False
    )
    contact = add(seq, "nostatus@example.com")
    drain()
    event(contact, seq, "n1", "message_sent")
    drain()
    assert _pipeline(cats_sandbox, site, contact, seq)["status_title"] == "No Contact"
