"""Shared set-up for CATS sync tests: a sandbox site and connected members."""

from __future__ import annotations

from cats_sync import services as cats
from cats_sync.models import CatsAccount, SequenceSync
from cats_sync.tasks import drain
from interseller import services
from interseller.models import Contact

from .factories import ContactFactory


def connect(membership, site, **settings_) -> CatsAccount:
    account = cats.cats_connect(
        membership=membership, subdomain=site.subdomain, api_key=site.api_key
    ).account
    for name, value in settings_.items():
        setattr(account, name, value)
    account.save()
    return account


def sequence_sync(sequence, *, enabled: bool = True, job_id: int | None = None) -> SequenceSync:
    row, _ = SequenceSync.objects.update_or_create(
        sequence=sequence, defaults={"enabled": enabled, "job_id": job_id}
    )
    return row


def add(sequence, email: str, **fields) -> Contact:
    contact = Contact.objects.filter(team=sequence.team, email=email).first()
    if contact is None:
        contact = ContactFactory(team=sequence.team, owner=sequence.owner, email=email, **fields)
    services.contact_add_to_sequence(contact=contact, sequence=sequence, added_by=sequence.owner)
    return contact


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


__all__ = ["add", "candidates", "connect", "drain", "pipelines", "sequence_sync"]
