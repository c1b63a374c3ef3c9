"""One site of the demo seed (the admin's pages do not depend on the open questions), and
contacts waiting for a resync."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cats_sync.models import EnrollmentSync, SequenceSync
from interseller import services
from tests.factories import ContactFactory, SequenceFactory
from tests.support.cats import connect
from tests.support.sandbox import SiteHandle


@pytest.fixture
def site(sandbox) -> SiteHandle:
    return sandbox.create_site()


@pytest.fixture
def resync_world(team_a, site):
    """Contacts added before CATS was connected, one already synced, one sequence off."""
    owner = team_a.owner
    live = SequenceFactory(team=team_a.team, owner=owner, title="Live")
    off = SequenceFactory(team=team_a.team, owner=owner, title="Off")
    SequenceSync.objects.create(sequence=off, enabled=False)
    unconnected = SequenceFactory(team=team_a.team, owner=team_a.member2, title="Unconnected")
    contacts = []
    for i in range(3):
        c = ContactFactory(team=team_a.team, owner=owner, email=f"new{i}@resync.example")
        services.contact_add_to_sequence(contact=c, sequence=live)
        contacts.append(c)
    done = ContactFactory(team=team_a.team, owner=owner, email="done@resync.example")
    enr = services.contact_add_to_sequence(contact=done, sequence=live).enrollment
    EnrollmentSync.objects.filter(enrollment=enr).update(synced_at=timezone.now())
    services.contact_add_to_sequence(contact=contacts[0], sequence=off)
    services.contact_add_to_sequence(contact=contacts[1], sequence=unconnected)
    account = connect(owner, site)
    return {"live": live, "contacts": [*contacts, done], "account": account}
