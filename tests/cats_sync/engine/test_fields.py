"""Custom field mapping: the six values inline on create, then following each event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from cats_sandbox import custom_field
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, CatsCustomField, EnrollmentSync, FieldMapping
from cats_sync.tasks import drain
from tests.factories import SequenceFactory
from tests.support.cats import (
    SIX,
    T0,
    activities,
    add,
    candidates,
    connect,
    es_of,
    event,
    map_fields,
    pipelines,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def seq(team_a):
    # The Sequence Title field holds it: this file asserts on the title.
    return SequenceFactory(team=team_a.team, owner=team_a.member, title="Platform engineers")


# --- Custom field mapping --------------------------------------------------------------------


def test_six_values_go_inline_on_create_and_follow_new_events(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    map_fields(account, site, SIX)
    contact = add(seq, "fields@example.com")
    event(contact, seq, "f1", "message_sent", at=T0)
    event(contact, seq, "f2", "reply_received", at=T0 + timedelta(days=1))
    before = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [cand] = candidates(snap, "fields@example.com")
    assert cand["custom_fields_by_name"] == {
        "Sequence Title": "Platform engineers",
        "Bounced": False,
        "Unsubscribed": False,
        "First messaged at": "2026-11-02",
        "Last messaged at": "2026-11-02",
        "Responded at": "2026-11-03",
    }
    after = cats_sandbox.requests()["sites"][str(site.id)]["by_route"]
    # Sent inline with the create: no separate custom field writes.
    assert after.get("PUT /candidates/{id}/custom_fields/{id}", 0) == before.get(
        "PUT /candidates/{id}/custom_fields/{id}", 0
    )
    event(contact, seq, "f3", "message_sent", at=T0 + timedelta(days=5))
    event(contact, seq, "f4", "bounced", at=T0 + timedelta(days=5))
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "fields@example.com")
    assert cand["custom_fields_by_name"]["Last messaged at"] == "2026-11-07"
    assert cand["custom_fields_by_name"]["Bounced"] is True


@pytest.mark.parametrize("value", list(SIX))
@pytest.mark.parametrize("field_type", ["text", "textarea"])
def test_each_value_fits_a_text_field(team_a, cats_sandbox, settings, seq, value, field_type):
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(custom_fields=[custom_field("Target", field_type)])
    account = connect(team_a.member, site)
    map_fields(account, site, {value: "Target"})
    contact = add(seq, "text@example.com")
    drain()
    event(contact, seq, "t1", "message_sent", at=T0)
    event(contact, seq, "t2", "reply_received", at=T0 + timedelta(hours=1))
    event(contact, seq, "t3", "unsubscribed", at=T0 + timedelta(hours=2))
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "text@example.com")
    got = cand["custom_fields_by_name"]["Target"]
    expected = {
        "sequence_title": "Platform engineers",
        "bounced": "No",
        "unsubscribed": "Yes",
    }.get(value)
    if expected is not None:
        assert got == expected
    else:
        assert got.startswith("2026-11-02T")


@pytest.mark.parametrize(
    "value,field_type",
    [
        ("sequence_title", "date"),
        ("sequence_title", "checkbox"),
        ("bounced", "date"),
        ("first_messaged_at", "checkbox"),
        ("responded_at", "number"),
        ("unsubscribed", "dropdown"),
    ],
)
def test_mapping_onto_a_type_that_cannot_hold_the_value_is_refused(value, field_type):
    field = CatsCustomField(name="X", field_type=field_type, cats_id=1)
    with pytest.raises(ValidationError) as exc:
        cats.mapping_check(value=value, field=field)
    assert "cannot hold" in str(exc.value)


def test_mapping_changed_later_applies_only_to_contacts_synced_afterwards(
    team_a, site, seq, cats_sandbox
):
    account = connect(team_a.member, site)
    map_fields(account, site, {"sequence_title": "Sequence Title"})
    first = add(seq, "first@example.com")
    drain()
    FieldMapping.objects.filter(account=account).delete()
    map_fields(account, site, {"first_messaged_at": "First messaged at"})
    second = add(seq, "second@example.com")
    drain()
    event(first, seq, "s1", "message_sent")
    event(second, seq, "s2", "message_sent")
    drain()
    snap = cats_sandbox.snapshot(site.id)
    [c1] = candidates(snap, "first@example.com")
    [c2] = candidates(snap, "second@example.com")
    assert c1["custom_fields_by_name"] == {"Sequence Title": "Platform engineers"}
    assert c2["custom_fields_by_name"] == {"First messaged at": "2026-11-02"}


def test_mapped_fields_are_set_on_a_linked_existing_candidate(team_a, cats_sandbox, settings, seq):
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site(
        candidates=[
            {"first_name": "Old", "last_name": "Timer", "emails": {"primary": "old@example.com"}}
        ]
    )
    account = connect(team_a.member, site)
    map_fields(account, site, {"sequence_title": "Sequence Title"})
    add(seq, "old@example.com")
    drain()
    [cand] = candidates(cats_sandbox.snapshot(site.id), "old@example.com")
    assert cand["custom_fields_by_name"] == {"Sequence Title": "Platform engineers"}


def test_deleted_field_is_an_error_naming_it_and_the_rest_goes_on(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    map_fields(
        account, site, {"last_messaged_at": "Last messaged at", "sequence_title": "Sequence Title"}
    )
    contact = add(seq, "gone@example.com")
    drain()
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Last messaged at"])
    event(contact, seq, "g1", "message_sent")
    drain()
    es = es_of(contact, seq)
    assert es.error_code == EnrollmentSync.Error.FIELD
    assert es.error_message == msg.ERR_FIELD_MISSING.format(
        name="Last messaged at", value="Last messaged at"
    )
    snap = cats_sandbox.snapshot(site.id)
    assert len(activities(snap, es.candidate_id)) == 1
    assert pipelines(snap, es.candidate_id)[0]["status_title"] == "Messaged"
