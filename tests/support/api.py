"""The events API as the outreach engine calls it."""

from __future__ import annotations

CONTACTS = "/api/v1/contacts"
EVENTS = "/api/v1/events"


def event(sequence, **overrides) -> dict:
    """A valid `POST /api/v1/events` body for ada@prospect.example in `sequence`."""
    body = {
        "id": "evt-1",
        "type": "message_sent",
        "sequence_id": sequence.pk,
        "contact_email": "ada@prospect.example",
        "occurred_at": "2024-05-01T09:30:00Z",
        "subject": "Backend role at Acme",
    }
    body.update(overrides)
    return body
