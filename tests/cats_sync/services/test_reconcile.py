"""The safety net under webhooks: reconciliation re-reads the pipelines of active enrollments
within its share of the CATS budget (never the live reserve), and catches a move whose webhook
delivery was lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cats_sync.budget import BULK_RESERVE_FRACTION, RECONCILE
from cats_sync.models import (
    CatsAccount,
    CatsIncident,
    CatsRequest,
    CatsSite,
    EnrollmentSync,
    PipelineObservation,
    WebhookDelivery,
)
from cats_sync.services.reconcile import reconcile_bound, reconcile_site
from cats_sync.tasks import drain, webhook_process, webhook_register
from interseller.models import Enrollment
from tests.support.cats import add, connect, es_of

SUBMITTED = "Submitted"


@pytest.fixture
def site(sandbox):
    return sandbox.create_site()


def pipeline_reads(sandbox, site) -> int:
    log = sandbox.request_log(site_id=site.id)["entries"]
    return sum(1 for e in log if (e["method"], e["route"]) == ("GET", "/pipelines/{id}"))


def synced(team_a, site, seq, *emails, ago=timedelta(hours=1)):
    """Contacts synced `ago` (the status we set then is all we know since)."""
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    contacts = [add(seq, email) for email in emails]
    drain()
    EnrollmentSync.objects.update(status_seen_at=timezone.now() - ago)
    return [es_of(c, seq) for c in contacts]


@pytest.mark.django_db(transaction=True)
def test_a_dropped_delivery_is_caught_by_reconciliation(
    team_a, site, seq, sandbox, settings, live_server
):
    settings.SITE_URL = live_server.url
    (es,) = synced(team_a, site, seq, "ada@example.com")
    assert webhook_register(es.account_id) == "registered"
    sandbox.drop_deliveries(1)

    sandbox.set_status_by_hand(site.id, es.pipeline_id, site.status_id(SUBMITTED))

    (lost,) = sandbox.wait_for_deliveries()
    assert (lost["status"], lost["error"]) == (None, "dropped")
    assert not WebhookDelivery.objects.exists()
    assert Enrollment.objects.get(pk=es.enrollment_id).state == Enrollment.State.ACTIVE

    assert reconcile_site(site_id=es.site_id) == 1

    enrollment = Enrollment.objects.get(pk=es.enrollment_id)
    assert enrollment.state == Enrollment.State.STOPPED
    assert enrollment.stopped_reason == "Stopped by CATS: moved to “Submitted” in CATS"
    es.refresh_from_db()
    assert (es.stopped_source, es.stopped_why) == ("reconcile", "status")
    seen = PipelineObservation.objects.get(enrollment_sync=es)
    assert seen.source == PipelineObservation.Source.RECONCILE
    # The lost delivery, replayed late, changes nothing more.
    sandbox.replay_delivery(lost["n"])
    sandbox.wait_for_deliveries()
    (delivery,) = WebhookDelivery.objects.all()
    assert webhook_process(delivery.pk) == "unchanged"
    assert PipelineObservation.objects.filter(enrollment_sync=es).count() == 1


@pytest.mark.django_db
def test_reconciliation_reads_oldest_checked_first_and_skips_stopped_and_finished(
    team_a, site, seq, sandbox
):
    first, second, third = synced(team_a, site, seq, "a@example.com", "b@example.com", "c@x.io")
    Enrollment.objects.filter(pk=third.enrollment_id).update(state=Enrollment.State.FINISHED)
    sandbox.clear_requests()

    assert reconcile_site(site_id=first.site_id, limit=10) == 2
    # Read a moment ago: nothing is read again yet.
    assert reconcile_site(site_id=first.site_id, limit=10) == 0
    now = timezone.now()
    for es, minutes in ((first, 20), (second, 30)):
        EnrollmentSync.objects.filter(pk=es.pk).update(
            reconciled_at=now - timedelta(minutes=minutes),
            status_seen_at=now - timedelta(minutes=minutes),
        )
    assert reconcile_site(site_id=first.site_id, limit=1) == 1

    assert pipeline_reads(sandbox, site) == 3
    first.refresh_from_db()
    second.refresh_from_db()
    # The third tick took the one checked longest ago.
    assert second.reconciled_at > first.reconciled_at
    # Unchanged pipelines leave nothing on the timeline.
    assert not PipelineObservation.objects.exists()


@pytest.mark.django_db
def test_reconciliation_uses_at_most_its_share_of_the_budget(team_a, site, seq, sandbox, settings):
    settings.CATS_RECONCILE_SHARE = 0.004  # 2 of 500 requests an hour
    (es, *_) = synced(team_a, site, seq, "a@example.com", "b@example.com", "c@example.com")
    sandbox.clear_requests()

    reads = [reconcile_site(site_id=es.site_id, limit=10) for _ in range(3)]

    assert reads == [2, 0, 0]
    assert pipeline_reads(sandbox, site) == 2
    assert CatsRequest.objects.filter(purpose=RECONCILE).count() == 2


@pytest.mark.django_db
def test_reconciliation_never_spends_the_live_reserve(team_a, site, seq, sandbox):
    (es,) = synced(team_a, site, seq, "a@example.com")
    cats_site = CatsSite.objects.get(pk=es.site_id)
    used = CatsRequest.objects.filter(site=cats_site).count()
    reserve = int(cats_site.rate_limit * BULK_RESERVE_FRACTION)
    # Live work has left exactly the reserve.
    now = timezone.now()
    CatsRequest.objects.bulk_create(
        CatsRequest(site=cats_site, at=now - timedelta(seconds=1))
        for _ in range(cats_site.rate_limit - reserve - used)
    )
    sandbox.clear_requests()

    assert reconcile_site(site_id=es.site_id, limit=10) == 0
    assert pipeline_reads(sandbox, site) == 0


@pytest.mark.django_db
def test_the_bound_grows_with_the_contacts_watched(team_a, site, seq, sandbox):
    (es,) = synced(team_a, site, seq, "a@example.com")
    cats_site = CatsSite.objects.get(pk=es.site_id)

    one = reconcile_bound(cats_site)
    many = reconcile_bound(cats_site, watched=120)

    # 10% of 500 an hour: 50 reads an hour, one a minute at most; plus a minute's tick. One
    # pipeline alone is read again no sooner than RECENT after we last knew it.
    assert (one.watched, one.per_window) == (1, 50)
    assert one.within == timedelta(minutes=5, seconds=60)
    assert many.within == timedelta(seconds=120 * 72 + 60)


@pytest.mark.django_db
def test_a_pipeline_whose_status_we_just_set_is_not_read_again(team_a, site, seq, sandbox):
    fresh, old = synced(team_a, site, seq, "a@example.com", "b@example.com", ago=timedelta(0))
    EnrollmentSync.objects.filter(pk=old.pk).update(
        status_seen_at=timezone.now() - timedelta(minutes=6)
    )
    sandbox.clear_requests()

    assert reconcile_site(site_id=fresh.site_id, limit=10) == 1

    fresh.refresh_from_db()
    old.refresh_from_db()
    assert (fresh.reconciled_at, old.reconciled_at is not None) == (None, True)
    assert pipeline_reads(sandbox, site) == 1


@pytest.mark.django_db
def test_the_sweeper_wakes_only_sites_with_pipelines_to_watch(team_a, site, seq, sandbox):
    from cats_sync.services.reconcile import sites_to_reconcile

    assert sites_to_reconcile() == []
    (es,) = synced(team_a, site, seq, "a@example.com")
    assert sites_to_reconcile() == [es.site_id]

    Enrollment.objects.filter(pk=es.enrollment_id).update(state=Enrollment.State.STOPPED)

    assert sites_to_reconcile() == []


@pytest.mark.django_db
def test_a_refused_key_stops_reconciliation_and_tells_the_member(team_a, site, seq, sandbox):
    first, second = synced(team_a, site, seq, "a@example.com", "b@example.com")
    sandbox.revoke_key(site.id, site.api_key)
    sent = CatsRequest.objects.filter(site_id=first.site_id, purpose=RECONCILE)

    assert reconcile_site(site_id=first.site_id, limit=10) == 0

    # One refused request, not one per pipeline, and none on the next tick.
    assert sent.count() == 1
    account = CatsAccount.objects.get(pk=first.account_id)
    assert account.status == CatsAccount.Status.INVALID
    assert CatsIncident.objects.filter(
        account=account, kind=CatsIncident.Kind.KEY_REFUSED, closed_at=None
    ).exists()
    assert reconcile_site(site_id=first.site_id, limit=10) == 0
    assert sent.count() == 1
