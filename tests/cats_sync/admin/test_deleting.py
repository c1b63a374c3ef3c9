"""Deleting a contact: its sync records go with it, CATS is not touched."""

from __future__ import annotations

import pytest

from cats_sync.models import EnrollmentSync, SyncTask
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Contact, EmailEvent, Enrollment
from tests.factories import ContactFactory, SequenceFactory
from tests.support.admin import act, cats_url, url
from tests.support.cats import connect

pytestmark = pytest.mark.django_db


# --- deleting a contact: its sync records go with it, CATS is not touched ---------------------


@pytest.fixture
def synced(team_a, site, sandbox):
    """Contacts of two members, synced to CATS, each with an enrollment, an email event and
    the sync records (tasks, sync state) that hang off them."""
    connect(team_a.member, site)
    connect(team_a.member2, site)
    contacts = {}
    for owner in (team_a.member, team_a.member2):
        seq = SequenceFactory(team=team_a.team, owner=owner)
        for i in range(2):
            contact = ContactFactory(
                team=team_a.team, owner=owner, email=f"gone{i}-{owner.pk}@delete.example"
            )
            enrollment = services.contact_add_to_sequence(contact=contact, sequence=seq).enrollment
            services.email_event_record(
                enrollment=enrollment,
                external_id=f"delete-{contact.pk}",
                kind="message_sent",
                occurred_at="2026-11-01T10:00:00Z",
                subject="Hello",
            )
            contacts.setdefault(owner, []).append(contact)
    drain()
    for contact in [*contacts[team_a.member], *contacts[team_a.member2]]:
        assert EnrollmentSync.objects.get(enrollment__contact=contact).synced_at is not None
        assert SyncTask.objects.filter(enrollment__contact=contact, event__isnull=False).exists()
    return contacts


def gone(contact: Contact) -> bool:
    return not (
        Contact.objects.filter(pk=contact.pk).exists()
        or Enrollment.objects.filter(contact_id=contact.pk).exists()
        or SyncTask.objects.filter(enrollment__contact_id=contact.pk).exists()
        or EnrollmentSync.objects.filter(enrollment__contact_id=contact.pk).exists()
        or EmailEvent.objects.filter(enrollment__contact_id=contact.pk).exists()
    )


def cats_candidate_ids(sandbox, site) -> set[int]:
    return {c["id"] for c in sandbox.snapshot(site.id)["candidates"]}


@pytest.mark.parametrize("who", ["manager", "member"])
def test_deleting_a_synced_contact_takes_its_records_and_leaves_cats_alone(
    team_a, synced, site, sandbox, login, who
):
    one, other = synced[team_a.member]
    in_cats = cats_candidate_ids(sandbox, site)
    requests_before = sandbox.requests()
    client = login(getattr(team_a, who))

    page = client.get(url("contact", "delete", one.pk))
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert client.post(url("contact", "delete", one.pk), {"post": "yes"}).status_code == 302
    assert gone(one)

    response = act(client, url("contact"), "delete_selected", [other.pk], post="yes")
    assert response.status_code == 302
    assert gone(other)

    assert sandbox.requests() == requests_before
    assert cats_candidate_ids(sandbox, site) == in_cats


def test_member_still_cannot_delete_a_teammates_contact(team_a, synced, login):
    theirs = synced[team_a.member2][0]
    client = login(team_a.member)
    assert client.get(url("contact", "delete", theirs.pk)).status_code == 404
    assert client.post(url("contact", "delete", theirs.pk), {"post": "yes"}).status_code == 404
    response = act(client, url("contact"), "delete_selected", [theirs.pk], post="yes")
    assert response.status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_system_records_alone_stay_superuser_only(team_a, synced, login):
    task = SyncTask.objects.filter(enrollment__contact__owner=team_a.member).first()
    client = login(team_a.manager)
    assert client.get(cats_url("synctask", "delete", task.pk)).status_code == 403
