"""The admin action "Push changes to CATS…" on sequences, contacts and enrollments: a preview
that asks CATS nothing, the option to remove contacts from their old job order, and a run with
progress."""

from __future__ import annotations

import pytest

from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.admin.common import MSG_PUSH_OPTION_CHANGED
from cats_sync.models import CatsAccount, EnrollmentSync, ResyncRun, SyncTask
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.factories import SequenceFactory
from tests.support.admin import act, cats_url, message_texts, url
from tests.support.cats import add, candidates, connect, pipelines, sequence_sync

pytestmark = pytest.mark.django_db

SENIOR, DESIGNER = "Senior Backend Engineer", "Product Designer"


@pytest.fixture
def moved(team_a, site, sandbox):
    """Two contacts synced onto Senior Backend Engineer, one never synced, and then the
    sequence's job order changed to Product Designer."""
    seq = SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend")
    account = connect(team_a.member, site, deduplication=False, default_job_id=site.jobs[SENIOR])
    cats.metadata_refresh(account=account)  # the preview judges job orders from our cache
    contacts = [add(seq, "a@push.example"), add(seq, "b@push.example")]
    drain()
    CatsAccount.objects.update(sync_mode=CatsAccount.SyncMode.OFF)
    contacts.append(add(seq, "late@push.example"))
    CatsAccount.objects.update(sync_mode=CatsAccount.SyncMode.ON_ADD)
    sequence_sync(seq, job_id=site.jobs[DESIGNER])
    return {"seq": seq, "contacts": contacts}


@pytest.mark.parametrize("page", ["sequence", "contact", "enrollment"])
def test_the_preview_counts_without_calling_cats(team_a, moved, sandbox, login, page):
    ids = {
        "sequence": [moved["seq"].pk],
        "contact": [c.pk for c in moved["contacts"]],
        "enrollment": list(Enrollment.objects.values_list("pk", flat=True)),
    }[page]
    before = sandbox.requests()
    response = act(login(team_a.member), url(page), "push_changes_to_cats", ids)
    assert response.status_code == 200
    plan = response.context["plan"]
    assert (plan.change_count, plan.move_job, plan.unchanged) == (2, 2, 0)
    assert plan.blocked == {msg.BLOCK_PUSH_NOT_SYNCED: 1}
    assert plan.notes == {msg.PUSH_NOTE_OLD_KEPT: 2}
    assert plan.requests == 2
    html = response.content.decode()
    assert '<strong id="push-change">2</strong>' in html
    assert '<strong id="push-requests">2</strong>' in html
    assert msg.BLOCK_PUSH_NOT_SYNCED in html
    assert "the request budget lets it finish now" in html
    assert sandbox.requests() == before
    assert not SyncTask.objects.filter(kind=SyncTask.Kind.PUSH).exists()


def test_ticking_remove_counts_the_removals_and_the_run_does_them(
    team_a, site, moved, sandbox, login
):
    client = login(team_a.member)
    ids = [moved["seq"].pk]
    preview = act(client, url("sequence"), "push_changes_to_cats", ids, remove_old="on")
    assert preview.context["plan"].requests == 4
    assert 'name="previewed_remove_old" value="on"' in preview.content.decode()
    response = act(
        client,
        url("sequence"),
        "push_changes_to_cats",
        ids,
        remove_old="on",
        previewed_remove_old="on",
        confirm="yes",
    )
    run = ResyncRun.objects.get()
    assert response.status_code == 302
    assert response.url == cats_url("resyncrun", "change", run.pk)
    assert (run.kind, run.remove_old_job, run.total, run.blocked) == ("push", True, 2, 1)
    page = client.get(response.url).content.decode()
    assert '<td id="p-requests">4</td>' in page and 'http-equiv="refresh"' in page
    drain()
    page = client.get(response.url).content.decode()
    assert '<td id="p-pushed">2</td>' in page
    snap = sandbox.snapshot(site.id)
    for contact in moved["contacts"][:2]:
        [cand] = candidates(snap, contact.email)
        assert [p["job_id"] for p in pipelines(snap, cand["id"])] == [site.jobs[DESIGNER]]
    # The contact's CATS panel tells the move.
    es = EnrollmentSync.objects.get(enrollment__contact=moved["contacts"][0])
    panel = cats.enrollment_panel(es.enrollment)
    words = [m.words for m in panel.timeline]
    assert f"Moved from job order #{site.jobs[SENIOR]} to #{site.jobs[DESIGNER]}" in words
    assert "Changes pushed to CATS" in words


def test_an_option_changed_after_the_preview_shows_the_preview_again(team_a, moved, login):
    client = login(team_a.member)
    response = act(
        client,
        url("sequence"),
        "push_changes_to_cats",
        [moved["seq"].pk],
        remove_old="on",
        previewed_remove_old="off",
        confirm="yes",
    )
    assert response.status_code == 200 and response.context["plan"].requests == 4
    assert MSG_PUSH_OPTION_CHANGED in message_texts(response)
    assert not ResyncRun.objects.exists()


def test_another_team_cannot_push_our_contacts(team_a, team_b, moved, login):
    response = act(login(team_b.owner), url("sequence"), "push_changes_to_cats", [moved["seq"].pk])
    # Another team's rows are not found, as everywhere in the admin.
    assert response.status_code == 404
    assert not ResyncRun.objects.exists()


def test_a_push_cats_refuses_says_why_on_the_contact_and_offers_retry(team_a, site, moved, sandbox):
    enrollments = Enrollment.objects.filter(sequence=moved["seq"])
    cats.push_start(
        enrollments=enrollments,
        started_by=None,
        team=team_a.team,
        description="t",
        remove_old=False,
    )
    sandbox.delete_job(site.id, site.jobs[DESIGNER])  # gone between the preview and the run
    drain()
    enrollment = Enrollment.objects.select_related("sequence").get(contact=moved["contacts"][0])
    state = cats.enrollment_states([enrollment])[enrollment.pk]
    assert state.words == "Failed: " + msg.ERR_JOB_MISSING.format(job_id=site.jobs[DESIGNER])
    assert state.can_retry
    es = EnrollmentSync.objects.get(enrollment=enrollment)
    assert es.push_moving  # the move is written down: Retry finishes it
