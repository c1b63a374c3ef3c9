"""A budget wait is not a lost answer, nor an hour: after a burst spends the bulk share, the
work waiting for the budget asks CATS again within seconds (one probe learns the window),
never waits out the hour the gate assumes before CATS taught it the window, and a runner
never leaves a short wait to the once-a-minute sweeper. Against the sandbox over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cats_sync import budget
from cats_sync.engine import site_runner, tasks_execute
from cats_sync.models import CatsRequest, CatsSite, EnrollmentSync, SyncTask
from tests.factories import SequenceFactory
from tests.support.cats import add, candidates, connect, resync_sequence

pytestmark = pytest.mark.django_db

# The sandbox's account: 10 requests per 2 s. The app is told nothing: it assumes 500 an hour.
LIMIT, WINDOW = 10, 2


@pytest.fixture
def site(cats_sandbox, settings):
    settings.CATS_API_URL = cats_sandbox.url
    created = cats_sandbox.create_site()
    cats_sandbox.configure(created.id, rate_limit=LIMIT, rate_window=WINDOW)
    return created


@pytest.fixture
def backlog(team_a, site, monkeypatch):
    """Twelve contacts resynced (bulk work) on a site whose window the app has not learned."""
    # Seconds, not the production margins: the sandbox answers on loopback at once.
    monkeypatch.setattr(budget, "PROBE_MIN_SECONDS", 1)
    monkeypatch.setattr(budget, "IN_FLIGHT_SECONDS", 1)
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    for i in range(12):
        add(seq, f"burst{i}@example.com")
    connect(team_a.member, site, deduplication=False)
    resync_sequence(seq, "burst")
    site_id = CatsSite.objects.get().pk
    assert set(SyncTask.objects.values_list("priority", flat=True)) == {SyncTask.Priority.BULK}
    return site_id


def waiting_for_budget():
    return SyncTask.objects.filter(state=SyncTask.State.PENDING, waiting_on="budget")


def all_ids() -> list[int]:
    return list(SyncTask.objects.values_list("id", flat=True))


def test_a_budget_wait_after_a_burst_is_seconds_not_the_assumed_window(backlog):
    tasks_execute(task_ids=all_ids(), site_id=backlog)
    row = CatsSite.objects.get(pk=backlog)
    # CATS taught the limit at once; the window it could not teach yet: an hour is assumed.
    assert (row.rate_limit, row.rate_window_seconds) == (LIMIT, 3600)
    waiting = list(waiting_for_budget())
    assert waiting, "the burst spent the bulk share; the rest waits for the budget"
    newest = CatsRequest.objects.filter(site_id=backlog).order_by("-at").first().at
    for task in waiting:
        # Back when CATS can be asked again (a probe), not when the assumed hour has passed.
        assert task.not_before <= newest + timedelta(seconds=budget.PROBE_MIN_SECONDS + 1)
        # A wait for our own budget is not a failed attempt.
        assert task.attempts == 0


def test_the_probe_learns_the_window_and_brings_every_budget_wait_forward(backlog, cats_sandbox):
    tasks_execute(task_ids=all_ids(), site_id=backlog)
    sent = CatsRequest.objects.filter(site_id=backlog).count()
    time.sleep(WINDOW + 0.5)  # CATS' window passes: it counts none of the burst any more
    SyncTask.objects.filter(state=SyncTask.State.PENDING).update(not_before=timezone.now())
    tasks_execute(task_ids=all_ids(), site_id=backlog)
    row = CatsSite.objects.get(pk=backlog)
    # One request went out though our count of the assumed hour said wait; its answer showed
    # the burst aged out, and the window was learned from it.
    assert CatsRequest.objects.filter(site_id=backlog).count() > sent
    assert CatsRequest.objects.filter(site_id=backlog, purpose=budget.PROBE).exists()
    assert row.rate_window_seconds <= budget.WINDOW_FLOOR_SECONDS + WINDOW + 1
    # Nothing waits longer than the learned window, and nothing was answered 429.
    horizon = timezone.now() + timedelta(seconds=row.rate_window_seconds + 1)
    assert not SyncTask.objects.filter(state=SyncTask.State.PENDING, not_before__gt=horizon)
    entries = cats_sandbox.request_log(0)["entries"]
    assert all(e["status"] != 429 for e in entries)
    # The tasks that waited did not search again: the batch's one search still answers them.
    searches = [e for e in entries if e["route"].startswith("/candidates/search")]
    assert len(searches) == 1


def test_the_live_reserve_is_left_to_live_work(backlog):
    tasks_execute(task_ids=all_ids(), site_id=backlog)
    for _ in range(3):  # probes due again and again: at most half the reserve goes to them
        SyncTask.objects.filter(state=SyncTask.State.PENDING).update(
            not_before=timezone.now() - timedelta(hours=1)
        )
        CatsRequest.objects.filter(site_id=backlog).update(at=timezone.now() - timedelta(seconds=5))
        tasks_execute(task_ids=all_ids(), site_id=backlog)
    reserve = int(LIMIT * budget.BULK_RESERVE_FRACTION)
    assert CatsRequest.objects.filter(site_id=backlog, purpose=budget.PROBE).count() <= (
        reserve // 2
    )


def test_a_runner_out_of_time_before_a_short_wait_hands_on_to_a_successor(
    team_a, site, monkeypatch
):
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    connect(team_a.member, site, deduplication=False)
    add(seq, "soon@example.com")
    site_id = CatsSite.objects.get().pk
    SyncTask.objects.update(not_before=timezone.now() + timedelta(seconds=5))
    woken: list[list[int]] = []
    monkeypatch.setattr(site_runner.queue, "enqueue_sites", lambda ids: woken.append(list(ids)))
    monkeypatch.setattr(site_runner, "RUNNER_SECONDS", 0)
    site_runner.site_run(site_id=site_id)
    # Not left for the sweeper: a successor is queued to take the task when it is due.
    assert woken == [[site_id]]


def test_bulk_work_is_estimated_behind_the_live_reserve_at_the_bulk_pace():
    """Every "finishes at" (resync, push, the health page) is this one sum."""
    view = budget.BudgetView(limit=100, used=0, remaining=100, window_seconds=3600)
    # 20 of the 100 are kept for live work: 80 go now, the rest at 80 an hour.
    assert view.bulk_seconds(80) == 0
    assert view.bulk_seconds(120) == pytest.approx(40 * 3600 / 80)
    spent = budget.BudgetView(limit=100, used=90, remaining=10, window_seconds=3600)
    assert spent.bulk_seconds(8) == pytest.approx(8 * 3600 / 80)


@pytest.fixture
def waiting_task(team_a, site, monkeypatch):
    """One task of a site no runner holds, due in a few seconds (a window about to free up),
    with the queue's wake-ups recorded instead of sent."""
    from django.core.cache import cache

    cache.delete(site_runner.WAKER_LEASE_KEY)
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    connect(team_a.member, site, deduplication=False)
    add(seq, "window@example.com")
    due = timezone.now() + timedelta(seconds=2)
    SyncTask.objects.update(not_before=due, waiting_on="budget")
    calls: list[tuple] = []
    monkeypatch.setattr(
        site_runner.queue,
        "enqueue_sites",
        lambda ids: calls.append(("sites", list(ids), timezone.now())),
    )
    monkeypatch.setattr(
        site_runner.queue, "enqueue_call", lambda func, *args: calls.append(("call", func))
    )
    yield CatsSite.objects.get().pk, due, calls
    cache.delete(site_runner.WAKER_LEASE_KEY)


def test_the_sweeper_starts_a_waker_for_work_due_before_its_next_round(waiting_task):
    from cats_sync import tasks

    site_id, due, calls = waiting_task
    tasks.sweep()
    # Nothing is due yet, so no runner; but it is due before the next sweep: a waker.
    assert ("call", "cats_sync.tasks.wake_sites") in calls
    assert not [c for c in calls if c[0] == "sites" and c[1]]
    # Work due after the next sweep is that sweep's to wake.
    calls.clear()
    SyncTask.objects.update(
        not_before=timezone.now() + timedelta(seconds=site_runner.WAKE_AHEAD_SECONDS + 60)
    )
    tasks.sweep()
    assert ("call", "cats_sync.tasks.wake_sites") not in calls
    # And a site whose runner is at work (it sleeps through its own short waits) needs none.
    SyncTask.objects.update(not_before=timezone.now() + timedelta(seconds=10))
    CatsSite.objects.filter(pk=site_id).update(
        runner_token="x", runner_until=timezone.now() + timedelta(minutes=3)
    )
    tasks.sweep()
    assert ("call", "cats_sync.tasks.wake_sites") not in calls


def test_the_waker_starts_the_sites_runner_when_its_work_is_due_not_at_a_sweep(
    waiting_task, site, cats_sandbox
):
    site_id, due, calls = waiting_task
    assert site_runner.sites_wake() == 1
    woken = [c for c in calls if c[0] == "sites"]
    assert [c[1] for c in woken] == [[site_id]]
    # Not before the work is due, and within seconds of it (the sweeper: up to 90 s later).
    assert due <= woken[0][2] < due + timedelta(seconds=5)
    # Nothing else is due soon: no successor.
    assert ("call", "cats_sync.tasks.wake_sites") not in calls
    # The runner it woke finds the work due and syncs the contact into CATS.
    site_runner.site_run(site_id=site_id)
    es = EnrollmentSync.objects.get(enrollment__contact__email="window@example.com")
    assert es.synced_at is not None and es.candidate_id
    [candidate] = candidates(cats_sandbox.snapshot(site.id), "window@example.com")
    assert candidate["id"] == es.candidate_id


def test_one_waker_at_a_time_and_a_successor_when_its_time_is_up(waiting_task, monkeypatch):
    from django.core.cache import cache

    site_id, due, calls = waiting_task
    cache.add(site_runner.WAKER_LEASE_KEY, "another waker", timeout=60)
    assert site_runner.sites_wake() == 0  # at once: the other one is at work
    assert calls == []
    cache.delete(site_runner.WAKER_LEASE_KEY)
    # Its time ends before the work is due: it hands on instead of leaving it to the sweeper.
    monkeypatch.setattr(site_runner, "WAKER_SECONDS", 0)
    assert site_runner.sites_wake() == 0
    assert calls == [("call", "cats_sync.tasks.wake_sites")]
    assert cache.get(site_runner.WAKER_LEASE_KEY) is None


def test_a_cache_that_does_not_answer_does_not_stop_the_waker(waiting_task, monkeypatch):
    site_id, due, calls = waiting_task

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(site_runner.cache, "add", down)
    monkeypatch.setattr(site_runner.cache, "get", down)
    # No lease, but the work is still started when it is due.
    assert site_runner.sites_wake() == 1
    assert [c[1] for c in calls if c[0] == "sites"] == [[site_id]]
