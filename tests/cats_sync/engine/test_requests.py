"""Request counts of each flow, pinned: CATS allows ~500 requests an hour per account, so a
request more per contact is a real loss. Counted in the sandbox's own request log."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from cats_sync import services as cats
from cats_sync.engine import site_runner, tasks_execute
from cats_sync.models import CatsSite, FieldMapping, SyncTask
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.cats import add, candidates, connect, resync_sequence

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FIELDS = {
    "sequence_title": ("Sequence Title", "text"),
    "first_messaged_at": ("First messaged at", "date"),
    "last_messaged_at": ("Last messaged at", "date"),
    "responded_at": ("Responded at", "date"),
    "bounced": ("Bounced", "checkbox"),
    "unsubscribed": ("Unsubscribed", "checkbox"),
}


@pytest.fixture
def site(cats_sandbox, settings, cats_variant):
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox.create_site(
        **cats_variant,
        candidates=[
            {
                "first_name": "Known",
                "last_name": "Person",
                "emails": {"primary": "Known.Person@Example.com"},
                "custom_fields": {"Sequence Title": "Backend engineers"},
            }
        ],
    )


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


def ready(account):
    """What a connection does once: read job orders, workflows and fields, and find out how
    the account's search treats case (metadata_refresh does both). Flows below are counted
    after it, so a probe left for the first sync to make would show in their counts."""
    cats.metadata_refresh(account=account)
    return account


def mapped_account(team_a, site, **settings_):
    account = connect(
        team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"], **settings_
    )
    ready(account)
    for value, (name, field_type) in FIELDS.items():
        FieldMapping.objects.create(
            account=account,
            value=value,
            field_id=site.custom_fields[name],
            field_name=name,
            field_type=field_type,
        )
    return account


def search_route(cats_variant) -> str:
    """A CATS whose filters compare case is searched by free text, one email a request."""
    if cats_variant["contains_case_sensitive"]:
        return "GET /candidates/search"
    return "POST /candidates/search"


class Requests:
    """The sandbox's log of one site, counted from a point on."""

    def __init__(self, cats_sandbox, site):
        self.sandbox, self.site = cats_sandbox, site
        self.since = self._now()

    def _log(self, since: int):
        return self.sandbox.request_log(since, site_id=self.site.id)

    def _now(self) -> int:
        return self._log(0)["next"]

    def routes(self) -> list[str]:
        return [f"{e['method']} {e['route']}" for e in self._log(self.since)["entries"]]

    def count(self) -> int:
        return len(self.routes())

    def restart(self) -> None:
        self.since = self._now()


def event(contact, sequence, external_id, kind, *, at=T0, **extra):
    enrollment = Enrollment.objects.get(contact=contact, sequence=sequence)
    return services.email_event_record(
        enrollment=enrollment, external_id=external_id, kind=kind, occurred_at=at, **extra
    )


# --- per event ----------------------------------------------------------------------------------


def test_a_first_message_costs_three_requests(team_a, site, seq, cats_sandbox):
    mapped_account(team_a, site)
    contact = add(seq, "first@example.com")
    drain()
    log = Requests(cats_sandbox, site)
    event(contact, seq, "m1", "message_sent")
    drain()
    # The activity, the status, and both dates in one PUT of the candidate: no pipeline GET.
    assert sorted(log.routes()) == [
        "POST /candidates/{id}/activities",
        "POST /pipelines/{id}/status",
        "PUT /candidates/{id}",
    ]
    [row] = candidates(cats_sandbox.snapshot(site.id), "first@example.com")
    assert row["custom_fields_by_name"]["First messaged at"] == "2026-11-02"
    assert row["custom_fields_by_name"]["Last messaged at"] == "2026-11-02"


def test_an_interested_reply_costs_four_requests(team_a, site, seq, cats_sandbox):
    mapped_account(team_a, site)
    contact = add(seq, "reply@example.com")
    drain()
    event(contact, seq, "m1", "message_sent")
    drain()
    log = Requests(cats_sandbox, site)
    event(contact, seq, "r1", "reply_received", at=T0 + timedelta(hours=2), sentiment="interested")
    drain()
    assert sorted(log.routes()) == [
        "POST /candidates/{id}/activities",
        "POST /pipelines/{id}/status",
        "POST /pipelines/{id}/status",
        "PUT /candidates/{id}/custom_fields/{field_id}",
    ]


def test_a_message_repeating_known_values_sends_no_field(team_a, site, seq, cats_sandbox):
    mapped_account(team_a, site)
    contact = add(seq, "again@example.com")
    drain()
    event(contact, seq, "m1", "message_sent")
    drain()
    log = Requests(cats_sandbox, site)
    event(contact, seq, "m2", "message_sent")  # same day: same dates, status already Messaged
    drain()
    assert log.routes() == ["POST /candidates/{id}/activities"]


def test_linking_an_existing_candidate_costs_the_pipeline_and_the_fields_that_differ(
    team_a, site, seq, cats_sandbox, cats_variant
):
    mapped_account(team_a, site)
    log = Requests(cats_sandbox, site)
    add(seq, "known.person@example.com")
    drain()
    routes = log.routes()
    # One search, the pipeline, and the one value CATS lacks (its sequence title is right):
    # the bounce and unsubscribe flags (both false) go in one PUT.
    assert sorted(routes) == sorted(
        [search_route(cats_variant), "POST /pipelines", "PUT /candidates/{id}"]
    )


# --- live adds and priorities -------------------------------------------------------------------


def test_live_adds_arriving_together_share_one_search(
    team_a, site, seq, cats_sandbox, monkeypatch, cats_variant
):
    if site_runner.MAX_BATCH < 10:
        pytest.skip("batch too small")
    ready(connect(team_a.member, site, deduplication=False))
    monkeypatch.setattr(site_runner, "COLLECT_QUIET_SECONDS", 0.3)
    for i in range(10):
        add(seq, f"live{i}@example.com")
    log = Requests(cats_sandbox, site)
    site_runner.site_run(site_id=CatsSite.objects.get().pk)
    routes = log.routes()
    assert routes.count("POST /candidates") == 10
    searches = routes.count(search_route(cats_variant))
    assert searches == (10 if cats_variant["contains_case_sensitive"] else 1)


def test_live_adds_arriving_while_the_runner_collects_join_its_batch(
    team_a, site, seq, cats_sandbox, monkeypatch
):
    ready(connect(team_a.member, site, deduplication=False))
    add(seq, "first@example.com")
    arrivals = iter(f"later{i}@example.com" for i in range(4))

    def a_moment_passes(seconds):
        # An outreach engine posts the next contact while the runner waits.
        email = next(arrivals, None)
        if email is None:
            monkeypatch.setattr(site_runner, "COLLECT_MAX_SECONDS", 0)
        else:
            add(seq, email)

    monkeypatch.setattr(site_runner.time, "sleep", a_moment_passes)
    batch = site_runner._next_batch(CatsSite.objects.get().pk, deadline=time.monotonic() + 60)
    assert len(batch) == 5


def test_live_work_goes_before_a_bulk_backlog(team_a, site, seq, cats_sandbox):
    for i in range(30):
        add(seq, f"backlog{i}@example.com")
    connect(team_a.member, site, deduplication=False)
    resync_sequence(seq, "backlog")
    other = SequenceFactory(team=team_a.team, owner=team_a.member)
    live = add(other, "urgent@example.com")
    site_id = CatsSite.objects.get().pk
    batch = site_runner._next_batch(site_id, deadline=time.monotonic() + 5)
    live_task = SyncTask.objects.get(enrollment__contact=live)
    assert batch == [live_task.pk]
    # A bulk batch already under way stops when live work is due.
    bulk_ids = list(
        SyncTask.objects.filter(priority=SyncTask.Priority.BULK).values_list("id", flat=True)
    )
    assert tasks_execute(task_ids=bulk_ids, site_id=site_id) == {}


def test_an_import_is_bulk_work(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    from interseller.imports import import_execute, import_plan, sheet_read

    data = ("Email\n" + "\n".join(f"imported{i}@example.com" for i in range(5))).encode()
    plan = import_plan(sheet=sheet_read(data), team=team_a.team, sequence=seq)
    import_execute(plan=plan, team=team_a.team, owner=team_a.member, sequence=seq)
    assert set(SyncTask.objects.values_list("priority", flat=True)) == {SyncTask.Priority.BULK}


def test_a_single_add_by_a_person_is_live(team_a, site, seq):
    connect(team_a.member, site)
    add(seq, "one@example.com")
    assert SyncTask.objects.get().priority == SyncTask.Priority.LIVE


# --- the budget learns the window ----------------------------------------------------------------


def test_the_budget_learns_a_shorter_window_from_cats(team_a, site, seq, cats_sandbox):
    cats_sandbox.configure(site.id, rate_limit=40, rate_window=4)
    account = connect(team_a.member, site, deduplication=False)
    for i in range(12):
        add(seq, f"window{i}@example.com")
    drain()
    time.sleep(6)  # the window passes: CATS counts none of them any more
    cats.jobs_refresh(account=account)
    row = CatsSite.objects.get(pk=account.site_id)
    assert row.rate_limit == 40
    assert row.rate_window_seconds <= 30


def test_work_waiting_for_the_budget_resumes_within_seconds(team_a, site, seq, cats_sandbox):
    cats_sandbox.configure(site.id, rate_limit=8, rate_window=3)
    account = connect(team_a.member, site, deduplication=False)
    CatsSite.objects.filter(pk=account.site_id).update(rate_limit=8, rate_window_seconds=3)
    for i in range(6):
        add(seq, f"patient{i}@example.com")
    site_runner.site_run(site_id=account.site_id)
    # Thirteen requests at eight per three seconds: one runner slept through the waits (no
    # sweeper), and never went over CATS' limit.
    assert not SyncTask.objects.exclude(state=SyncTask.State.DONE).exists()
    log = cats_sandbox.request_log(site_id=site.id)["entries"]
    assert log and not [e for e in log if e.get("status") == 429]
