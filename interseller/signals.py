"""Hooks that integrations subscribe to. Sent inside the writing transaction, so a receiver's
own writes (an outbox row, say) commit or roll back together with the change."""

from django.dispatch import Signal

# kwargs: enrollment (Enrollment), added_by (Membership | None), bulk (bool: one of many added
# at once, e.g. by an import, rather than a person's single add)
contact_added_to_sequence = Signal()
# kwargs: enrollments (list[Enrollment], just created, all of one sequence), sequence
# (Sequence), added_by (Membership | None). Many contacts added at once (an import): bulk work,
# sent once instead of contact_added_to_sequence for each.
contacts_added_to_sequence = Signal()
# kwargs: event (EmailEvent), enrollment (Enrollment), first_reply (bool)
email_event_recorded = Signal()
# kwargs: sequence (Sequence, already saved with its new owner), previous_owner_id (int).
# A receiver may return a notice (str) the person who made the change is shown.
sequence_owner_changed = Signal()
