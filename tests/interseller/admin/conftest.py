"""Two teams' worth of admin objects."""

from __future__ import annotations

import pytest

from interseller import services
from tests.factories import ContactFactory, GroupFactory, SequenceFactory


@pytest.fixture
def world(team_a, team_b):
    """Two teams, each with sequences, contacts and an event, owned by different members."""
    data = {}
    for key, graph in (("a", team_a), ("b", team_b)):
        own_seq = SequenceFactory(team=graph.team, owner=graph.member, title=f"{key} member seq")
        boss_seq = SequenceFactory(team=graph.team, owner=graph.owner, title=f"{key} owner seq")
        mine = ContactFactory(team=graph.team, owner=graph.member, email=f"mine-{key}@x.example")
        theirs = ContactFactory(team=graph.team, owner=graph.owner, email=f"boss-{key}@x.example")
        enr = services.contact_add_to_sequence(contact=mine, sequence=own_seq).enrollment
        services.contact_add_to_sequence(contact=theirs, sequence=boss_seq)
        event = services.email_event_record(
            enrollment=enr,
            external_id=f"ev-{key}",
            kind="message_sent",
            occurred_at="2026-11-01T10:00:00Z",
            subject=f"Hello {key}",
        ).event
        group = GroupFactory(team=graph.team, name=f"{key} group")
        token, _ = services.api_token_create(team=graph.team, name=f"{key} engine")
        data[key] = dict(
            graph=graph,
            own_seq=own_seq,
            boss_seq=boss_seq,
            mine=mine,
            theirs=theirs,
            enrollment=enr,
            event=event,
            group=group,
            token=token,
        )
    return data
