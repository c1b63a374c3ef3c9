"""The spec's deduplication: an email already in CATS (primary or secondary, any case) gets
no second candidate."""

from __future__ import annotations

import pytest

from cats_sync.models import CatsAccount
from cats_sync.tasks import drain
from interseller import services
from tests.factories import ContactFactory, SequenceFactory
from tests.support.cats import add, candidates, connect, es_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(sandbox, cats_variant):
    """A CATS that already holds two people, one of them with a second address."""
    return sandbox.create_site(
        **cats_variant,
        candidates=[
            {
                "first_name": "Known",
                "last_name": "Person",
                "emails": {"primary": "Known.Person@Example.com"},
            },
            {
                "first_name": "Second",
                "last_name": "Address",
                "emails": {"primary": "work@corp.example", "secondary": "alt@corp.example"},
            },
        ],
    )


# --- Deduplication ---------------------------------------------------------------------------


def test_same_email_in_cats_creates_no_second_record_and_warns(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    contact = add(seq, "known.person@example.com")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    assert len(candidates(snap, "known.person@example.com")) == 1
    es = es_of(contact, seq)
    assert es.exists_in_cats is True and es.created_candidate is False
    assert es.candidate_id == site.candidates[0]


def test_secondary_email_match_counts_as_existing(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    add(seq, "alt@corp.example")
    drain()
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 2


def test_different_email_for_same_person_creates_a_second_record(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site)
    add(seq, "known.person@newjob.example", first_name="Known", last_name="Person")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    people = [c for c in snap["candidates"] if c["first_name"] == "Known"]
    assert len(people) == 2


def test_dedup_off_gives_no_warning_but_still_no_duplicate(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, deduplication=False)
    contact = add(seq, "known.person@example.com")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "known.person@example.com")) == 1
    assert es_of(contact, seq).exists_in_cats is False


def test_dedup_check_runs_at_add_even_when_mode_syncs_on_reply(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    contact = add(seq, "known.person@example.com")
    drain()
    assert es_of(contact, seq).exists_in_cats is True
    assert len(cats_sandbox.snapshot(site.id)["candidates"]) == 2  # nothing created


def test_dedup_off_makes_no_lookup(team_a, site, seq, cats_sandbox):
    connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY, deduplication=False)
    before = cats_sandbox.requests()
    add(seq, "known.person@example.com")
    drain()
    after = cats_sandbox.requests()
    assert after == before


def test_teammates_on_same_site_share_one_candidate(team_a, site, cats_sandbox):
    connect(team_a.member, site)
    connect(team_a.member2, site)
    s1 = SequenceFactory(team=team_a.team, owner=team_a.member)
    s2 = SequenceFactory(team=team_a.team, owner=team_a.member2)
    add(s1, "shared@example.com")
    drain()
    c2 = ContactFactory(team=team_a.team, owner=team_a.member2, email="shared2@example.com")
    services.contact_add_to_sequence(contact=c2, sequence=s2)
    contact = add(s2, "shared@example.com")
    drain()
    assert len(candidates(cats_sandbox.snapshot(site.id), "shared@example.com")) == 1
    assert es_of(contact, s2).candidate_id == es_of(contact, s1).candidate_id
