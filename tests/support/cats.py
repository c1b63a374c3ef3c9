"""Shared set-up for CATS tests: a sandbox site and connected members, contacts added to
sequences, email events, what the sandbox holds afterwards; and CatsClient against the sandbox.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cats_sync import services as cats
from cats_sync.client import CatsClient
from cats_sync.models import (
    CatsAccount,
    CatsCustomField,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SequenceSync,
)
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Contact, Enrollment
from tests.factories import ContactFactory

# When test events happen, unless a test says otherwise.
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

# The six values a member can map to CATS custom fields, each to the demo seed's field.
SIX = {
    "sequence_title": "Sequence Title",
    "bounced": "Bounced",
    "unsubscribed": "Unsubscribed",
    "first_messaged_at": "First messaged at",
    "last_messaged_at": "Last messaged at",
    "responded_at": "Responded at",
}


# --- our side ---------------------------------------------------------------------------------


def connect(membership, site, **settings_) -> CatsAccount:
    account = cats.cats_connect(
        membership=membership, subdomain=site.subdomain, api_key=site.api_key
    ).account
    for name, value in settings_.items():
        setattr(account, name, value)
    account.save()
    return account


def resync_sequence(seq, description: str = "Resync", *, started_by=None) -> ResyncRun:
    """ "Resync to CATS" of every contact of `seq`, as the admin action starts it."""
    return cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=seq),
        started_by=started_by,
        team=seq.team,
        description=description,
    )


def sequence_sync(sequence, *, enabled: bool = True, job_id: int | None = None) -> SequenceSync:
    row, _ = SequenceSync.objects.update_or_create(
        sequence=sequence, defaults={"enabled": enabled, "job_id": job_id}
    )
    return row


def map_fields(account, site, pairs: dict[str, str]) -> None:
    """Map each value to the CATS custom field of that name, as the settings page would."""
    cats.custom_fields_refresh(account=account)
    for value, field_name in pairs.items():
        cf = CatsCustomField.objects.get(site=account.site, name=field_name)
        cats.mapping_check(value=value, field=cf)
        FieldMapping.objects.update_or_create(
            account=account,
            value=value,
            defaults={"field_id": cf.cats_id, "field_name": cf.name, "field_type": cf.field_type},
        )


def add(sequence, email: str, **fields) -> Contact:
    contact = Contact.objects.filter(team=sequence.team, email=email).first()
    if contact is None:
        contact = ContactFactory(team=sequence.team, owner=sequence.owner, email=email, **fields)
    services.contact_add_to_sequence(contact=contact, sequence=sequence, added_by=sequence.owner)
    return contact


def event(contact, sequence, external_id, kind, *, at=T0, **extra):
    enrollment = Enrollment.objects.get(contact=contact, sequence=sequence)
    return services.email_event_record(
        enrollment=enrollment, external_id=external_id, kind=kind, occurred_at=at, **extra
    )


def es_of(contact, sequence) -> EnrollmentSync:
    return EnrollmentSync.objects.get(enrollment__contact=contact, enrollment__sequence=sequence)


# --- what CATS holds (a sandbox snapshot) -----------------------------------------------------


def candidates(snapshot: dict, email: str | None = None) -> list[dict]:
    rows = snapshot["candidates"]
    if email is None:
        return rows
    email = email.lower()
    return [
        c
        for c in rows
        if email
        in {
            (c["emails"].get("primary") or "").lower(),
            (c["emails"].get("secondary") or "").lower(),
        }
    ]


def pipelines(snapshot: dict, candidate_id: int) -> list[dict]:
    return [p for p in snapshot["pipelines"] if p["candidate_id"] == candidate_id]


def activities(snapshot: dict, candidate_id: int) -> list[dict]:
    return [a for a in snapshot["activities"] if a["data_item"]["id"] == candidate_id]


# --- CatsClient against the sandbox -----------------------------------------------------------


def make_client(cats_sandbox, api_key: str, **kwargs) -> CatsClient:
    kwargs.setdefault("timeout", (1, 0.3))
    kwargs.setdefault("retry_backoff", 0.01)
    return CatsClient(api_key, base_url=cats_sandbox.url, **kwargs)


def new_candidate(client: CatsClient, email: str = "ada@example.com", **kwargs) -> int:
    return client.create_candidate(first_name="Ada", last_name="Lovelace", email=email, **kwargs)


def route_count(cats_sandbox, route: str) -> int:
    return cats_sandbox.requests()["by_route"].get(route, 0)


__all__ = [
    "SIX",
    "T0",
    "activities",
    "add",
    "candidates",
    "connect",
    "drain",
    "es_of",
    "event",
    "make_client",
    "map_fields",
    "new_candidate",
    "pipelines",
    "route_count",
    "sequence_sync",
]
