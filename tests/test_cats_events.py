"""CATS sync, part 2: activities, custom field mapping, statuses and sentiments, settings check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from cats_sandbox import custom_field
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, CatsCustomField, EnrollmentSync, FieldMapping, SyncTask
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Enrollment

from .cats_helpers import add, candidates, connect, pipelines, sequence_sync
from .factories import SequenceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def site(cats_sandbox, settings, cats_variant):
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox.create_site(**cats_variant)


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Platform engineers")


def event(contact, sequence, ext, kind, at=T0, **kw):
    enrollment = Enrollment.objects.get(contact=contact, sequence=sequence)
    return services.email_event_record(
        enrollment=enrollment, external_id=ext, kind=kind, occurred_at=at, **kw
    ).event


def es_of(contact, sequence) -> EnrollmentSync:
    return EnrollmentSync.objects.get(enrollment__contact=contact, enrollment__sequence=sequence)


def map_fields(account, site, pairs: dict[str, str]):
    cats.custom_fields_refresh(account=account)
    for value, field_name in pairs.items():
        cf = CatsCustomField.objects.get(site=account.site, name=field_name)
        cats.mapping_check(value=value, field=cf)
        FieldMapping.objects.update_or_create(
            account=account,
            value=value,
            defaults={"field_id": cf.cats_id, "field_name": cf.name, "field_type": cf.field_type},
        )


def activities(snapshot, candidate_id):
    return [a for a in snapshot["activities"] if a["data_item"]["id"] == candidate_id]


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


# --- Custom field mapping --------------------------------------------------------------------

SIX = {
    "sequence_title": "Sequence Title",
    "bounced": "Bounced",
    "unsubscribed": "Unsubscribed",
    "first_messaged_at": "First messaged at",
    "last_messaged_at": "Last messaged at",
    "responded_at": "Responded at",
}


def test_six_values_go_inline_on_create_and_follow_new_events(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    map_fields(account, site, SIX)
    contact = add(seq, "fields@example.com")
    event(contact, seq, "f1", "message_sent", at=T0)
    event(contact, seq, "f2", "reply_received", at=T0 + timedelta(days=1))
    before = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [cand] = candidates(snap, "fields@example.com")
    assert cand["custom_fields_by_name"] == {
        "Sequence Title": "Platform engineers",
        "Bounced": False,
        "Unsubscribed": False,
        "First messaged at": "2026-11-02",
        "Last messaged at": "2026-11-02",
        "Responded at": "2026-11-03",
    }
    after = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    # Sent inline with the create: no separate custom field writes.
    assert after.get("PUT /candidates/{id}/custom_fields/{id}", 0) == before.get(
        "PUT /candidates/{id}/custom_fields/{id}", 0
    )
    event(contact, seq, "f3", "message_sent", at=T0 + timedelta(days=5))
    event(contact, seq, "f4", "bounced", at=T0 + timedelta(days=5))
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "fields@example.com")
    assert cand["custom_fields_by_name"]["Last messaged at"] == "2026-11-07"
    assert cand["custom_fields_by_name"]["Bounced"] is True


@pytest.mark.parametrize("value", list(SIX))
@pytest.mark.parametrize("field_type", ["text", "textarea"])
def test_each_value_fits_a_text_field(team_a, cats_sandbox, settings, seq, value, field_type):
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(custom_fields=[custom_field("Target", field_type)])
    account = connect(team_a.member, site)
    map_fields(account, site, {value: "Target"})
    contact = add(seq, "text@example.com")
    drain()
    event(contact, seq, "t1", "message_sent", at=T0)
    event(contact, seq, "t2", "reply_received", at=T0 + timedelta(hours=1))
    event(contact, seq, "t3", "unsubscribed", at=T0 + timedelta(hours=2))
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "text@example.com")
    got = cand["custom_fields_by_name"]["Target"]
    expected = {
        "sequence_title": "Platform engineers",
        "bounced": "No",
        "unsubscribed": "Yes",
    }.get(value)
    if expected is not None:
        assert got == expected
    else:
        assert got.startswith("2026-11-02T")


@pytest.mark.parametrize(
    "value,field_type",
    [
        ("sequence_title", "date"),
        ("sequence_title", "checkbox"),
        ("bounced", "date"),
        ("first_messaged_at", "checkbox"),
        ("responded_at", "number"),
        ("unsubscribed", "dropdown"),
    ],
)
def test_mapping_onto_a_type_that_cannot_hold_the_value_is_refused(value, field_type):
    field = CatsCustomField(name="X", field_type=field_type, cats_id=1)
    with pytest.raises(ValidationError) as exc:
        cats.mapping_check(value=value, field=field)
    assert "cannot hold" in str(exc.value)


def test_mapping_changed_later_applies_only_to_contacts_synced_afterwards(
    team_a, site, seq, cats_sandbox
):
    account = connect(team_a.member, site)
    map_fields(account, site, {"sequence_title": "Sequence Title"})
    first = add(seq, "first@example.com")
    drain()
    FieldMapping.objects.filter(account=account).delete()
    map_fields(account, site, {"first_messaged_at": "First messaged at"})
    second = add(seq, "second@example.com")
    drain()
    event(first, seq, "s1", "message_sent")
    event(second, seq, "s2", "message_sent")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [c1] = candidates(snap, "first@example.com")
    [c2] = candidates(snap, "second@example.com")
    assert c1["custom_fields_by_name"] == {"Sequence Title": "Platform engineers"}
    assert c2["custom_fields_by_name"] == {"First messaged at": "2026-11-02"}


def test_mapped_fields_are_set_on_a_linked_existing_candidate(team_a, cats_sandbox, settings, seq):
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(
        candidates=[
            {"first_name": "Old", "last_name": "Timer", "emails": {"primary": "old@example.com"}}
        ]
    )
    account = connect(team_a.member, site)
    map_fields(account, site, {"sequence_title": "Sequence Title"})
    add(seq, "old@example.com")
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "old@example.com")
    assert cand["custom_fields_by_name"] == {"Sequence Title": "Platform engineers"}


def test_deleted_field_is_an_error_naming_it_and_the_rest_goes_on(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    map_fields(
        account, site, {"last_messaged_at": "Last messaged at", "sequence_title": "Sequence Title"}
    )
    contact = add(seq, "gone@example.com")
    drain()
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Last messaged at"])
    event(contact, seq, "g1", "message_sent")
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.FIELD
    assert es.error_message == msg.ERR_FIELD_MISSING.format(
        name="Last messaged at", value="Last messaged at"
    )
    snap = cats_sandbox.snapshot(site.id)
    assert len(activities(snap, es.candidate_id)) == 1
    assert pipelines(snap, es.candidate_id)[0]["status_title"] == "Messaged"


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


# --- Settings check --------------------------------------------------------------------------


def test_settings_check_reports_every_problem_with_a_fix(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Office Manager"])
    map_fields(account, site, {"bounced": "Bounced"})
    sequence_sync(seq, job_id=site.jobs["VP of Engineering"])
    other = SequenceFactory(team=team_a.team, owner=team_a.member, title="Gone job")
    sequence_sync(other, job_id=site.jobs["Product Designer"])
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Bounced"])
    findings = cats.cats_settings_check(account=account)
    problems = [f for f in findings if not f.ok]
    text = "\n".join(f.message for f in problems)
    assert "The API key works" in findings[0].message
    assert "“Office Manager” is Closed" in text
    assert "“Gone job”" in text and "does not exist in CATS" in text
    assert "Workflow “Executive Search” has no status “Replied”" in text
    assert "Bounced is mapped to a custom field that no longer exists" in text
    assert all(f.fix for f in problems)


def test_settings_check_is_clean_for_good_settings(team_a, site, seq):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    map_fields(account, site, SIX)
    findings = cats.cats_settings_check(account=account)
    assert findings and all(f.ok for f in findings)


def test_settings_check_says_when_key_is_refused(team_a, site, cats_sandbox):
    account = connect(team_a.member, site)
    cats_sandbox.rotate_key(site.id)
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "rejected the API key" in finding.message


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
