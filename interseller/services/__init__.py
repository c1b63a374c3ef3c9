"""Writes that touch the domain, a module per job. Every multi-row change goes through here,
in a transaction, and sends the signals integrations listen to (signals.py)."""

from __future__ import annotations

from .contacts import (  # noqa: F401
    CONTACT_FIELDS,
    AddResult,
    ManyResult,
    TeammatesContact,
    UpsertResult,
    contact_add_to_sequence,
    contact_remove_from_sequence,
    contact_upsert,
    contacts_upsert_many,
    email_validate,
    normalize_email,
)
from .enrollments import enrollment_state_set, enrollment_stop  # noqa: F401
from .events import (  # noqa: F401
    EVENT_DATE_WINDOW,
    MSG_EVENT_DATE_WINDOW,
    DateWindow,
    EventResult,
    email_event_record,
)
from .messages import (  # noqa: F401
    MSG_ALREADY_IN_SEQUENCE,
    MSG_EMAIL_INVALID,
    MSG_EMAIL_REQUIRED,
    MSG_LAST_OWNER,
    MSG_NOT_IN_SEQUENCE,
    MSG_ONLY_OWNERS_GRANT_OWNER,
    MSG_OWNER_OTHER_TEAM,
    MSG_SENTIMENT_NOT_REPLY,
    MSG_SEQUENCE_ARCHIVED,
    MSG_SEQUENCE_OTHER_TEAM,
    MSG_TEAMMATE_AMBIGUOUS,
    MSG_TEAMMATE_EXISTS,
    MSG_TEAMMATE_INACTIVE,
    MSG_TEAMMATE_OTHER_TEAM,
    MSG_TEAMMATE_PASSWORD,
    MSG_TEAMMATE_PROTECTED,
)
from .sequences import (  # noqa: F401
    sequence_owner_announce,
    sequence_save,
)
from .teammates import (  # noqa: F401
    TeammateRefused,
    membership_change_check,
    membership_remove,
    membership_role_change,
    teammate_add,
    teammate_add_check,
)
from .tokens import (  # noqa: F401
    TOKEN_PREFIX,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from .webhooks import (  # noqa: F401
    team_webhook_deliver,
    team_webhook_secret_ensure,
    team_webhooks_sweep,
)
