"""The CATS panel on a contact's and an enrollment's page, the CATS column of their lists, and
the panel's buttons: "is this contact in CATS, where, and if not why" in one click."""

from __future__ import annotations

import re

import pytest
from django.utils.html import escape

from cats_sync import services as cats
from cats_sync.models import CatsAccount, EnrollmentSync, SequenceSync, SyncTask
from cats_sync.services.status import State
from cats_sync.tasks import drain
from interseller.models import Enrollment
from tests.factories import ContactFactory, SequenceFactory
from tests.support.admin import url
from tests.support.cats import add, connect, event

pytestmark = pytest.mark.django_db


@pytest.fixture
def seq(team_a):
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Backend engineers")


def panel_of(client, contact) -> str:
    page = client.get(url("contact", "change", contact.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="cats-panel"' in html
    return html


def test_a_synced_contact_shows_its_candidate_job_status_and_timeline(
    team_a, site, seq, login, settings
):
    settings.CATS_CANDIDATE_URL = "https://{subdomain}.example/candidates/{candidate_id}"
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    cats.metadata_refresh(account=account)
    contact = add(seq, "panel@example.com")
    drain()
    event(contact, seq, "m1", "message_sent", subject="Hello there")
    drain()
    es = EnrollmentSync.objects.get()
    html = panel_of(login(team_a.member), contact)
    assert State.SYNCED in html
    assert f"https://{site.subdomain}.example/candidates/{es.candidate_id}" in html
    assert "Senior Backend Engineer" in html and "Messaged" in html
    assert f"pipeline #{es.pipeline_id}" in html
    assert "Candidate created in CATS" in html
    assert "Email sent: “Hello there” (logged in CATS as activity #" in html
    assert "Resync to CATS</button>" not in html and "Retry</button>" not in html


@pytest.mark.parametrize(
    "setup, words",
    [
        ("sequence_off", State.SEQUENCE_OFF),
        ("waits_for_reply", State.WAITS_FOR_REPLY),
        ("waits_for_interest", "Not synced: waiting for an interested reply"),
        ("mode_off", "Not synced: {owner}'s sync mode is Off"),
        ("no_connection", "Not synced: no CATS connection for {owner}"),
        ("key_refused", State.KEY_REFUSED),
    ],
)
def test_every_not_synced_gives_its_reason(team_a, site, seq, login, setup, words):
    owner = team_a.member.user.get_full_name() or team_a.member.user.email
    if setup != "no_connection":
        account = connect(team_a.member, site)
    if setup == "sequence_off":
        SequenceSync.objects.create(sequence=seq, enabled=False)
    elif setup == "waits_for_reply":
        CatsAccount.objects.update(sync_mode=CatsAccount.SyncMode.ON_REPLY, deduplication=False)
    elif setup == "waits_for_interest":
        CatsAccount.objects.update(sync_mode=CatsAccount.SyncMode.ON_INTEREST, deduplication=False)
    elif setup == "mode_off":
        CatsAccount.objects.update(sync_mode=CatsAccount.SyncMode.OFF, deduplication=False)
    elif setup == "key_refused":
        cats.cats_account_mark_invalid(account=account)
    contact = add(seq, "reason@example.com")
    drain()
    expected = escape(words.format(owner=owner))
    assert expected in panel_of(login(team_a.member), contact)
    # The same words in the list, without opening the contact.
    listing = login(team_a.member).get(url("contact")).content.decode()
    assert expected in listing


def test_a_queued_contact_says_queued_and_the_list_agrees(team_a, site, seq, login):
    connect(team_a.member, site)
    contact = add(seq, "queued@example.com")
    client = login(team_a.member)
    html = panel_of(client, contact)
    assert f"data-cats-state>{State.QUEUED}<" in html
    listing = client.get(url("contact")).content.decode()
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*queued@example\.com.*?</tr>", listing, re.S).group(0)
    assert State.QUEUED in row


def test_the_retry_button_reruns_a_failed_step(team_a, site, seq, login, cats_sandbox):
    connect(team_a.member, site, default_job_id=site.jobs["Product Designer"])
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    contact = add(seq, "broken@example.com")
    drain()
    client = login(team_a.member)
    html = panel_of(client, contact)
    assert "Failed: Job order #" in html and "Retry</button>" in html
    # The person fixes the cause, then presses Retry on the panel.
    EnrollmentSync.objects.update(job_id=site.jobs["Senior Backend Engineer"])
    enrollment = Enrollment.objects.get(contact=contact)
    response = client.post(
        url("enrollment", "cats_retry", enrollment.pk),
        {"next": url("contact", "change", contact.pk)},
        follow=True,
    )
    assert "Queued again: 1 step(s)" in response.content.decode()
    assert SyncTask.objects.get().state == SyncTask.State.PENDING
    drain()
    assert State.SYNCED in panel_of(client, contact)


def test_the_resync_button_syncs_a_contact_added_before_connecting(
    team_a, site, seq, login, cats_sandbox
):
    contact = add(seq, "early@example.com")
    connect(team_a.member, site)
    client = login(team_a.member)
    assert "Resync to CATS</button>" in panel_of(client, contact)
    enrollment = Enrollment.objects.get(contact=contact)
    response = client.post(url("enrollment", "cats_resync", enrollment.pk), follow=True)
    assert "Queued for CATS" in response.content.decode()
    drain()
    assert State.SYNCED in panel_of(client, contact)


def test_buttons_answer_only_posts_by_people_who_may_change_the_contact(team_a, site, seq, login):
    contact = add(seq, "mine@example.com")  # before connecting: nothing queued yet
    connect(team_a.member, site)
    enrollment = Enrollment.objects.get(contact=contact)
    resync = url("enrollment", "cats_resync", enrollment.pk)
    assert login(team_a.member).get(resync).status_code == 403  # never a GET
    assert login(team_a.member2).post(resync).status_code == 404  # not theirs to see
    assert not SyncTask.objects.exists()
    # The contact's owner may: the same button queues the sync.
    login(team_a.member).post(resync)
    assert SyncTask.objects.filter(enrollment=enrollment).exists()


def test_an_unsafe_next_address_is_not_followed(team_a, site, seq, login):
    contact = add(seq, "next@example.com")
    enrollment = Enrollment.objects.get(contact=contact)
    response = login(team_a.member).post(
        url("enrollment", "cats_retry", enrollment.pk), {"next": "https://evil.example/"}
    )
    assert response["Location"] == url("enrollment", "change", enrollment.pk)


def test_the_enrollment_page_has_the_panel_too(team_a, site, seq, login):
    connect(team_a.member, site)
    contact = add(seq, "enrollment@example.com")
    drain()
    enrollment = Enrollment.objects.get(contact=contact)
    page = login(team_a.member).get(url("enrollment", "change", enrollment.pk))
    assert 'id="cats-panel"' in page.content.decode()
    assert State.SYNCED in page.content.decode()


def test_a_contact_in_two_sequences_shows_the_worst_state_in_the_list(team_a, site, login):
    connect(team_a.member, site)
    on = SequenceFactory(team=team_a.team, owner=team_a.member, title="On")
    off = SequenceFactory(team=team_a.team, owner=team_a.member, title="Off")
    SequenceSync.objects.create(sequence=off, enabled=False)
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="two@example.com")
    add(on, contact.email)
    add(off, contact.email)
    drain()
    listing = login(team_a.member).get(url("contact")).content.decode()
    assert f'{State.SEQUENCE_OFF}</span> <span class="help">(+1 more)' in listing


def test_a_queued_contact_names_its_job_order_before_its_first_sync(team_a, site, seq, login):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    cats.metadata_refresh(account=account)
    contact = add(seq, "named@example.com")
    html = panel_of(login(team_a.member), contact)
    assert f"data-cats-state>{State.QUEUED}<" in html
    assert f"#{site.jobs['Senior Backend Engineer']} Senior Backend Engineer" in html
