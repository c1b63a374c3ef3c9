"""The CATS admin's pages and scoping, query counts independent of rows, and the settings
check as staff see it."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cats_sync import services as cats
from cats_sync.models import (
    CatsAccount,
    CatsJob,
    EnrollmentSync,
    ResyncRun,
    SyncTask,
    WebhookDelivery,
)
from interseller import services
from interseller.models import Contact, Enrollment
from tests.factories import ContactFactory, MembershipFactory, SequenceFactory
from tests.support.admin import act, cats_url, change_post, url
from tests.support.cats import connect

pytestmark = pytest.mark.django_db


# --- pages and scoping -------------------------------------------------------------------------


@pytest.fixture
def run_world(team_a, team_b, resync_world, site, login):
    client = login(team_a.owner)
    act(
        client,
        url("contact"),
        "resync_to_cats",
        [resync_world["contacts"][0].pk],
        confirm="yes",
    )
    theirs = connect(team_b.owner, site)
    seq_b = SequenceFactory(team=team_b.team, owner=team_b.owner)
    contact_b = ContactFactory(team=team_b.team, owner=team_b.owner)
    enr_b = services.contact_add_to_sequence(contact=contact_b, sequence=seq_b).enrollment
    run_b = cats.resync_start(
        enrollments=Enrollment.objects.filter(pk=enr_b.pk),
        started_by=team_b.owner.user,
        team=team_b.team,
        description="b run",
    )

    def delivery(account, request_id):
        return WebhookDelivery.objects.create(
            account=account,
            request_id=request_id,
            event="pipeline.status_changed",
            payload={"event": "pipeline.status_changed", "pipeline_id": 1},
        )

    return {
        "a": {
            "webhookdelivery": delivery(resync_world["account"], "a-1"),
            "catsaccount": resync_world["account"],
            "resyncrun": ResyncRun.objects.filter(team=team_a.team).get(),
            "synctask": SyncTask.objects.filter(account=resync_world["account"]).first(),
        },
        "b": {
            "webhookdelivery": delivery(theirs, "b-1"),
            "catsaccount": theirs,
            "resyncrun": run_b,
            "synctask": SyncTask.objects.filter(account=theirs).first(),
        },
    }


@pytest.mark.parametrize("model", ["catsaccount", "resyncrun", "synctask", "webhookdelivery"])
def test_new_admins_render_for_an_owner_and_hide_other_teams(team_a, run_world, login, model):
    client = login(team_a.owner)
    assert client.get(cats_url(model)).status_code == 200
    assert client.get(cats_url(model), {"q": "a"}).status_code == 200
    mine, theirs = run_world["a"][model], run_world["b"][model]
    assert mine is not None and theirs is not None
    assert client.get(cats_url(model, "change", mine.pk)).status_code == 200
    assert client.get(cats_url(model, "change", theirs.pk)).status_code == 404
    listing = client.get(cats_url(model))
    assert theirs not in listing.context["cl"].result_list


def test_catsaccount_add_page_renders(team_a, login):
    assert login(team_a.owner).get(cats_url("catsaccount", "add")).status_code == 200


def test_member_sees_only_their_own_connection(team_a, site, login):
    mine = connect(team_a.member, site)
    other = connect(team_a.member2, site)
    client = login(team_a.member)
    listing = client.get(cats_url("catsaccount"))
    assert list(listing.context["cl"].result_list) == [mine]
    assert client.get(cats_url("catsaccount", "change", other.pk)).status_code == 404
    response = act(client, cats_url("catsaccount"), "disconnect", [other.pk])
    assert response.status_code == 404
    assert CatsAccount.objects.get(pk=other.pk).is_connected


def test_disconnect_action_says_how_many_tasks_wait(team_a, resync_world, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, url("contact"), "resync_to_cats", ids, confirm="yes")
    account = resync_world["account"]
    # First a confirmation that counts what will wait, and nothing changes yet.
    asked = act(client, cats_url("catsaccount"), "disconnect", [account.pk])
    assert "<strong>3</strong> queued tasks will wait" in asked.content.decode()
    account.refresh_from_db()
    assert account.status != CatsAccount.Status.DISCONNECTED
    response = act(
        client, cats_url("catsaccount"), "disconnect", [account.pk], confirm="yes", follow=True
    )
    assert "3 queued task(s) wait" in response.content.decode()
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.DISCONNECTED


def test_extended_core_pages_still_render(team_a, resync_world, login):
    client = login(team_a.owner)
    contact = resync_world["contacts"][0]
    enrollment = Enrollment.objects.filter(contact=contact).first()
    for page in [
        url("contact", "change", contact.pk),
        url("enrollment", "change", enrollment.pk),
        url("sequence", "change", resync_world["live"].pk),
        url("sequence", "add"),
        url("contact"),
        url("enrollment"),
        url("sequence"),
    ]:
        assert client.get(page).status_code == 200, page


def test_cats_metadata_admin_is_for_superusers_only(team_a, site, login):
    connect(team_a.owner, site)
    assert login(team_a.owner).get(cats_url("catsjob")).status_code == 403


# --- performance: query counts independent of rows ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        cats_url("catsaccount"),
        cats_url("resyncrun"),
        cats_url("synctask"),
        url("contact"),
        url("enrollment"),
        url("sequence"),
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(team_a, site, login, path):
    client = login(team_a.owner)
    connect(team_a.owner, site)

    def grow(n: int) -> None:
        for _ in range(n):
            member = MembershipFactory(team=team_a.team)
            account = connect(member, site)
            seq = SequenceFactory(team=team_a.team, owner=member)
            contact = ContactFactory(team=team_a.team, owner=member)
            enr = services.contact_add_to_sequence(contact=contact, sequence=seq).enrollment
            EnrollmentSync.objects.filter(enrollment=enr).update(
                exists_in_cats=True, error_code="rejected", error_message="x", candidate_id=1
            )
            CatsJob.objects.get_or_create(site=account.site, cats_id=7, defaults={"title": "J"})
            account.default_job_id = 7
            account.save()
            cats.resync_start(
                enrollments=Enrollment.objects.filter(pk=enr.pk),
                started_by=member.user,
                team=team_a.team,
                description="grow",
            )

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    grow(1)
    before = count()
    grow(5)
    assert count() == before
    assert Contact.objects.count() >= 6


# --- settings check ----------------------------------------------------------------------------


def test_check_settings_button_reports_problems_with_fixes(team_a, site, sandbox, login):
    account = connect(team_a.member, site, default_job_id=site.jobs["Office Manager"])
    client = login(team_a.member)
    change = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    check_url = reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    assert check_url in change
    body = client.get(check_url).content.decode()
    assert "The API key works" in body
    assert "“Office Manager” is Closed in CATS" in body
    assert "Reopen it in CATS or choose an open job order." in body


def test_check_settings_action_and_scoping(team_a, team_b, site, sandbox, login):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    client = login(team_a.owner)
    body = act(client, cats_url("catsaccount"), "check_settings", [account.pk]).content.decode()
    assert "Everything checked is ready." in body
    outsider = login(team_b.owner)
    check_url = reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    assert outsider.get(check_url).status_code == 404


def test_saving_settings_warns_about_problems_without_blocking(team_a, site, sandbox, login):
    account = connect(team_a.member, site)
    cats.jobs_refresh(account=account)
    client = login(team_a.member)
    response = change_post(client, account, default_job_id=str(site.jobs["Office Manager"]))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.default_job_id == site.jobs["Office Manager"]
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is Closed in CATS" in m for m in shown)


def test_members_see_only_resync_runs_they_started(team_a, site, sandbox, login):
    from cats_sync.models import ResyncRun

    mine = ResyncRun.objects.create(
        team=team_a.team, description="mine", started_by=team_a.member.user
    )
    theirs = ResyncRun.objects.create(
        team=team_a.team, description="theirs", started_by=team_a.owner.user
    )
    client = login(team_a.member)
    assert client.get(cats_url("resyncrun", "change", mine.pk)).status_code == 200
    assert client.get(cats_url("resyncrun", "change", theirs.pk)).status_code == 404
    assert login(team_a.owner).get(cats_url("resyncrun", "change", mine.pk)).status_code == 200
