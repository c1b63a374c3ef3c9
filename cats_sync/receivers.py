"""cats_sync listens to the core; the core never imports this app."""

from interseller.signals import (
    contact_added_to_sequence,
    contacts_added_to_sequence,
    email_event_recorded,
    sequence_owner_changed,
)

from . import services


def _on_added(sender, enrollment, bulk=False, **kwargs) -> None:
    services.on_contact_added(enrollment=enrollment, bulk=bulk)


def _on_added_many(sender, enrollments, sequence, **kwargs) -> None:
    services.on_contacts_added(enrollments=enrollments, sequence=sequence)


def _on_event(sender, event, enrollment, first_reply=False, **kwargs) -> None:
    services.on_email_event(event=event, enrollment=enrollment, first_reply=first_reply)


def _on_owner_changed(sender, sequence, previous_owner_id, **kwargs) -> str:
    return services.sequence_owner_changed(sequence=sequence, previous_owner_id=previous_owner_id)


def connect() -> None:
    contact_added_to_sequence.connect(_on_added, dispatch_uid="cats_sync.on_added")
    contacts_added_to_sequence.connect(_on_added_many, dispatch_uid="cats_sync.on_added_many")
    email_event_recorded.connect(_on_event, dispatch_uid="cats_sync.on_event")
    sequence_owner_changed.connect(_on_owner_changed, dispatch_uid="cats_sync.on_owner_changed")
