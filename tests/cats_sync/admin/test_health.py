"""The CATS sync health page and its summary on the admin index: "is our sync healthy?" at a
glance, scoped like everything else, and incidents that reach people by email once."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from cats_sync import services as cats
from cats_sync.models import CatsIncident, CatsRequest, SyncTask
from cats_sync.tasks import drain, sweep
from tests.factories import SequenceFactory
from tests.support.cats import add, connect

pytestmark = pytest.mark.django_db

HEALTH = "/admin/cats_sync/catsaccount/health/"


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


def test_the_health_page_shows_connections_sequences_budget_and_errors(
    team_a, site, seq, login, cats_sandbox
):
    assert reverse("admin:cats_sync_health") == HEALTH
    connect(team_a.member, site, default_job_id=site.jobs["Product Designer"])
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    add(seq, "one@example.com")
    add(seq, "two@example.com")
    drain()
    html = login(team_a.owner).get(HEALTH).content.decode()
    # Connections: the member's works; teammates never connected.
    assert "Connected" in html and "Never connected" in html
    # The sequence, with its failures linked.
    assert "Backend engineers" in html and "cats_state=error" in html
    # Errors grouped by kind, with the fix.
    assert re.search(r"Job order missing in CATS</a></td><td class=\"num\">2<", html)
    assert "choose another job order for the sequence, then Retry" in html
    # The budget of the site, with its chart.
    assert f"{site.subdomain}" in html and "requests used in the last" in html
    assert "<rect" in html


def test_a_member_sees_only_their_own_connection_and_sequences(team_a, site, seq, login):
    connect(team_a.member, site)
    connect(team_a.member2, site)
    SequenceFactory(team=team_a.team, owner=team_a.member2, title="Not mine")
    html = login(team_a.member).get(HEALTH).content.decode()
    assert "Backend engineers" in html and "Not mine" not in html
    assert str(team_a.member) in html and "Connected" in html
    assert str(team_a.member2) not in html


def test_a_refused_key_is_a_problem_on_the_index_with_a_reconnect_link(team_a, site, login):
    account = connect(team_a.member, site)
    client = login(team_a.owner)
    index = client.get("/admin/").content.decode()
    assert 'id="cats-health-summary"' in index and "Healthy" in index
    cats.cats_account_mark_invalid(account=account)
    index = client.get("/admin/").content.decode()
    assert "Key refused by CATS: reconnect" in index and "Healthy" not in index
    html = client.get(HEALTH).content.decode()
    assert reverse("admin:cats_sync_catsaccount_change", args=[account.pk]) in html


def test_the_summary_box_is_only_on_the_index(team_a, site, login):
    connect(team_a.member, site)
    page = login(team_a.owner).get("/admin/interseller/contact/").content.decode()
    assert "cats-health-summary" not in page


def test_a_refused_key_emails_its_owner_once(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site)
    cats_sandbox.revoke_key(site.id, site.api_key)
    for i in range(3):
        add(seq, f"refused{i}@example.com")
    drain()
    sweep()
    sweep()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [team_a.member.user.email]
    assert "CATS refused the API key" in mail.outbox[0].body
    assert HEALTH in mail.outbox[0].body
    # Reconnecting closes it; a later refusal is a new incident, and a new email.
    new_key = cats_sandbox.rotate_key(site.id)
    cats.cats_connect(membership=team_a.member, subdomain=site.subdomain, api_key=new_key)
    assert not CatsIncident.objects.filter(closed_at__isnull=True).exists()
    cats.cats_account_mark_invalid(account=account)
    sweep()
    assert len(mail.outbox) == 2


def test_a_spike_of_failures_emails_the_owner_once_and_closes_when_quiet(
    team_a, site, seq, cats_sandbox, settings
):
    settings.CATS_FAILURE_ALERT = 3
    connect(team_a.member, site, default_job_id=site.jobs["Product Designer"])
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    for i in range(4):
        add(seq, f"spike{i}@example.com")
    drain()
    sweep()
    sweep()
    assert len(mail.outbox) == 1 and "4 contacts" in mail.outbox[0].body
    SyncTask.objects.update(updated_at=timezone.now() - timezone.timedelta(hours=2))
    sweep()
    assert not CatsIncident.objects.filter(closed_at__isnull=True).exists()


def test_request_history_is_kept_for_the_days_chart(team_a, site):
    account = connect(team_a.member, site)
    old = CatsRequest.objects.create(
        site=account.site, at=timezone.now() - timezone.timedelta(hours=20)
    )
    older = CatsRequest.objects.create(
        site=account.site, at=timezone.now() - timezone.timedelta(hours=26)
    )
    sweep()
    assert CatsRequest.objects.filter(pk=old.pk).exists()
    assert not CatsRequest.objects.filter(pk=older.pk).exists()  # past the chart's day


def test_a_sequence_names_the_owners_default_job_and_counts_paused_contacts(
    team_a, site, seq, login, cats_sandbox
):
    job = site.jobs["Senior Backend Engineer"]
    account = connect(team_a.member, site, default_job_id=job)
    cats.metadata_refresh(account=account)
    add(seq, "synced@example.com")
    drain()
    cats_sandbox.revoke_key(site.id, site.api_key)
    add(seq, "paused@example.com")
    drain()
    html = login(team_a.owner).get(HEALTH).content.decode()
    row = re.search(r"<tr><td><a [^>]*>Backend engineers</a>.*?</tr>", html, re.S).group(0)
    assert f"#{job} Senior Backend Engineer (the owner&#x27;s default)" in row
    # Synced, pending, paused, failed: the contact waiting for a new key is not hidden.
    numbers = re.findall(r'<td class="num[^"]*">(?:<a [^>]*>)?(\d+)', row)
    assert numbers == ["1", "0", "1", "0"]


def test_the_health_page_shows_each_sync_mode_and_who_waits_for_interest(team_a, site, seq, login):
    from cats_sync.models import CatsAccount
    from tests.support.cats import event

    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_INTEREST, deduplication=False)
    add(seq, "waiting1@example.com")
    add(seq, "waiting2@example.com")
    keen = add(seq, "keen@example.com")
    event(keen, seq, "r1", "reply_received", sentiment="interested")
    drain()
    html = login(team_a.owner).get(HEALTH).content.decode()
    assert "Sync contacts only when they reply with interest" in html
    assert "2 contacts waiting for an interested reply" in html
