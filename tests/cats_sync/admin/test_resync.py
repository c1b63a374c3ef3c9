"""Resync in the admin: confirmation, runs with progress, retry of failed enrollments and
queue rows, the CATS columns and filters on contacts and enrollments, and the resync-run
filter."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import EnrollmentSync, ResyncRun, SyncTask
from cats_sync.tasks import drain
from interseller import services
from interseller.extensions import export_columns_for
from interseller.models import Contact, Enrollment
from interseller.resources import ContactExportResource
from tests.factories import ContactFactory, SequenceFactory, UserFactory
from tests.support.admin import act, cats_url, url

pytestmark = pytest.mark.django_db


# --- resync ------------------------------------------------------------------------------------


def test_resync_confirmation_counts_without_calling_cats(team_a, resync_world, sandbox, login):
    client = login(team_a.owner)
    before = sandbox.requests()
    ids = [c.pk for c in resync_world["contacts"]]
    page = act(client, url("contact"), "resync_to_cats", ids)
    assert page.status_code == 200
    plan = page.context["plan"]
    assert plan.sync_count == 3
    assert plan.skipped == 1
    assert plan.blocked == {msg.BLOCK_SEQUENCE_OFF: 1, msg.BLOCK_NO_CONNECTION: 1}
    text = page.content.decode()
    assert msg.BLOCK_SEQUENCE_OFF in text and msg.BLOCK_NO_CONNECTION in text
    assert sandbox.requests() == before
    assert not SyncTask.objects.exists()


def test_resync_starts_a_run_whose_tasks_reach_cats(team_a, resync_world, site, sandbox, login):
    client = login(team_a.owner)
    ids = [str(c.pk) for c in resync_world["contacts"]]
    page = act(client, url("contact"), "resync_to_cats", ids)
    assert page.context["selected"] == ids
    # What the confirmation page posts back: no "index", like any action with a second step.
    response = client.post(
        url("contact"),
        {
            "action": "resync_to_cats",
            ACTION_CHECKBOX_NAME: ids,
            "select_across": "0",
            "confirm": "yes",
        },
    )
    run = ResyncRun.objects.get()
    assert response.status_code == 302
    assert response.url == cats_url("resyncrun", "change", run.pk)
    assert (run.total, run.skipped, run.blocked) == (3, 1, 2)
    assert SyncTask.objects.filter(run=run, state=SyncTask.State.PENDING).count() == 3
    page = client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' in page
    assert '<td id="p-waiting">3</td>' in page
    drain()
    emails = {
        (c.get("emails") or {}).get("primary") for c in sandbox.snapshot(site.id)["candidates"]
    }
    assert {f"new{i}@resync.example" for i in range(3)} <= emails
    page = client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert '<td id="p-created">3</td>' in page and '<td id="p-done">3</td>' in page
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE


def test_selecting_all_never_sends_the_selected_ids_as_parameters(
    team_a, resync_world, sandbox, login, monkeypatch
):
    """ "Select all 100,000" must not put 100,000 ids in every query of the action (it took
    10 s): the selection travels as a subquery of the changelist's filter."""
    import re

    from django.contrib import admin
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # A page of 5 rows, so that the page's own ids are not mistaken for the selection's.
    monkeypatch.setattr(admin.site._registry[Contact], "list_per_page", 5)
    client = login(team_a.owner)
    for _ in range(30):
        ContactFactory(team=team_a.team, owner=team_a.owner)
    page = Contact.objects.order_by("-pk").values_list("pk", flat=True)[:5]  # as ticked
    for confirm in ("", "yes"):
        with CaptureQueriesContext(connection) as queries:
            response = act(
                client, url("contact"), "resync_to_cats", page, select_across="1", confirm=confirm
            )
        assert response.status_code == (302 if confirm else 200)
        longest = max(
            (
                len(in_list.split(","))
                for query in queries
                for in_list in re.findall(r" IN \(([0-9, ]+)\)", query["sql"])
            ),
            default=0,
        )
        # The 34 selected contacts never; a page's 5, or a planned chunk's 6 enrollments.
        assert longest < Contact.objects.count() // 2
    assert ResyncRun.objects.get().total == 3


def test_resync_from_sequence_enrollment_and_account_actions(team_a, resync_world, login):
    client = login(team_a.owner)
    live = resync_world["live"]
    page = act(client, url("sequence"), "resync_to_cats", [live.pk])
    assert page.context["plan"].sync_count == 3 and page.context["plan"].skipped == 1
    enrollment = Enrollment.objects.get(sequence=live, contact=resync_world["contacts"][2])
    page = act(client, url("enrollment"), "resync_to_cats", [enrollment.pk])
    assert page.context["plan"].sync_count == 1
    account = resync_world["account"]
    page = act(client, cats_url("catsaccount"), "resync_to_cats", [account.pk])
    plan = page.context["plan"]
    assert plan.sync_count == 3 and plan.blocked == {msg.BLOCK_SEQUENCE_OFF: 1}


def test_failed_enrollments_are_linked_and_retried(team_a, resync_world, sandbox, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, url("contact"), "resync_to_cats", ids, confirm="yes")
    run = ResyncRun.objects.get()
    task = SyncTask.objects.filter(run=run).first()
    SyncTask.objects.filter(pk=task.pk).update(state=SyncTask.State.FAILED, last_error="boom")
    EnrollmentSync.objects.filter(enrollment_id=task.enrollment_id).update(
        error_code=EnrollmentSync.Error.REJECTED, error_message="CATS rejected the contact: boom"
    )
    page = client.get(cats_url("resyncrun", "change", run.pk)).content.decode()
    failed_url = url("enrollment") + f"?cats_run={run.pk}&amp;cats_state=error"
    assert failed_url in page
    listing = client.get(url("enrollment"), {"cats_run": run.pk, "cats_state": "error"})
    assert list(listing.context["cl"].result_list) == [task.enrollment]
    assert "CATS rejected the contact: boom" in listing.content.decode()
    response = act(client, url("enrollment"), "retry_cats_sync", [task.enrollment_id], follow=True)
    assert "1 failed CATS task(s) queued again" in response.content.decode()
    task.refresh_from_db()
    assert task.state == SyncTask.State.PENDING and task.attempts == 0


def test_sync_queue_retry_action(team_a, resync_world, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, url("contact"), "resync_to_cats", ids, confirm="yes")
    SyncTask.objects.update(state=SyncTask.State.FAILED)
    task_ids = list(SyncTask.objects.values_list("pk", flat=True))
    response = act(client, cats_url("synctask"), "retry", task_ids, follow=True)
    assert "3 failed task(s) queued again" in response.content.decode()
    assert SyncTask.objects.filter(state=SyncTask.State.PENDING).count() == 3


# --- contacts and enrollments: CATS columns and filters ----------------------------------------


def test_exists_in_cats_column_filter_and_export(team_a, resync_world, login):
    client = login(team_a.owner)
    known, unknown = resync_world["contacts"][0], resync_world["contacts"][1]
    for es in EnrollmentSync.objects.filter(enrollment__contact=known):
        cats.exists_in_cats_mark(enrollment_sync_id=es.pk)
    for es in EnrollmentSync.objects.filter(enrollment__contact=unknown):
        cats.issue_raise(
            enrollment_sync_id=es.pk,
            step="job",
            code=EnrollmentSync.Error.JOB_MISSING,
            message="Job order #9 no longer exists",
        )
    page = client.get(url("contact"), {"in_cats": "yes"})
    assert list(page.context["cl"].result_list) == [known]
    page = client.get(url("contact"), {"in_cats": "no"})
    assert known not in page.context["cl"].result_list
    page = client.get(url("contact"), {"cats_error": "job_missing"})
    assert list(page.context["cl"].result_list) == [unknown]
    assert "Job order #9 no longer exists" in page.content.decode()
    # The spec's integration error "Exists in CATS" is one of the errors the filter lists.
    page = client.get(url("contact"), {"cats_error": "exists_in_cats"})
    assert list(page.context["cl"].result_list) == [known]
    headers = [h for h, _ in export_columns_for(Contact)]
    assert headers == ["Exists in CATS", "CATS error"]
    fields = {f"contactexportresource_{name}": "on" for name in ContactExportResource().fields}
    response = client.post(url("contact", "export"), {"format": "0", "resource": "0", **fields})
    assert response.status_code == 200
    rows = {
        row["Email"]: row
        for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    }
    assert rows[known.email]["Exists in CATS"] == "yes"
    assert rows[unknown.email]["Exists in CATS"] == "no"
    assert rows[unknown.email]["CATS error"] == "Job order #9 no longer exists"


def test_enrollment_sync_state_filters(team_a, resync_world, login):
    client = login(team_a.owner)
    synced = client.get(url("enrollment"), {"cats_state": "synced"})
    assert [e.contact.email for e in synced.context["cl"].result_list] == ["done@resync.example"]
    not_synced = client.get(url("enrollment"), {"cats_state": "not_synced"})
    assert len(not_synced.context["cl"].result_list) == 5


# --- resync-run filter: the same runs as the resync-run list --------------------------------


def run_choices(client) -> set[int]:
    listing = client.get(url("enrollment"))
    specs = listing.context["cl"].filter_specs
    spec = next(s for s in specs if getattr(s, "parameter_name", "") == "cats_run")
    return {int(pk) for pk, _ in spec.lookup_choices}


def listed_runs(client) -> set[int]:
    return {run.pk for run in client.get(cats_url("resyncrun")).context["cl"].result_list}


def test_resync_run_filter_offers_the_runs_the_user_may_see(team_a, team_b, login):
    runs = {
        who: ResyncRun.objects.create(
            team=graph.team, description=f"{who} run", started_by=getattr(graph, role).user
        )
        for who, graph, role in [
            ("member", team_a, "member"),
            ("member2", team_a, "member2"),
            ("owner", team_a, "owner"),
            ("other team", team_b, "owner"),
        ]
    }
    expected = {
        team_a.member: {runs["member"].pk},
        team_a.manager: {runs[w].pk for w in ("member", "member2", "owner")},
        team_a.owner: {runs[w].pk for w in ("member", "member2", "owner")},
        UserFactory(is_superuser=True): {run.pk for run in runs.values()},
    }
    for who, pks in expected.items():
        client = login(who)
        assert run_choices(client) == pks == listed_runs(client), who


def test_a_teammates_run_typed_into_the_url_filters_nothing(team_a, login):
    theirs = ResyncRun.objects.create(
        team=team_a.team, description="theirs", started_by=team_a.member2.user
    )
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    mine = services.contact_add_to_sequence(
        contact=ContactFactory(team=team_a.team, owner=team_a.member), sequence=seq
    ).enrollment
    client = login(team_a.member)
    listing = client.get(url("enrollment"), {"cats_run": theirs.pk})
    assert listing.status_code == 200
    assert "theirs" not in listing.content.decode()
    assert list(listing.context["cl"].result_list) == [mine]
