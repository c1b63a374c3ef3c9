"""Every sentence the CATS sync shows a person, in one place so tests assert on the same text.

Errors say what happened and what to do about it; waits say when work resumes.
"""

from __future__ import annotations

# --- connecting ---------------------------------------------------------------------------------
MSG_SUBDOMAIN_INVALID = "A CATS subdomain has only letters, digits and hyphens (e.g. “acme”)."
MSG_KEY_REQUIRED = "Enter the API key made in CATS under Administration → API Keys."
MSG_KEY_REJECTED = "CATS rejected this API key. Check it in CATS under Administration → API Keys."
MSG_UNREACHABLE = "CATS could not be reached to check the key ({detail}). Try again in a minute."
MSG_SUBDOMAIN_MISMATCH = "This API key belongs to the CATS site “{actual}”, not “{entered}”."
MSG_NOT_CONNECTED = "Connect CATS first."
MSG_DISCONNECTED = "Disconnected: queued work waits until CATS is reconnected."
MSG_OTHER_SITE_CLEARED = (
    "Connected to another CATS site ({site}): the default job order, the custom field mapping "
    "and the job orders of {sequences} sequence(s) belonged to the old site and were cleared. "
    "Choose them again for this site."
)

# --- errors a person must act on (per step; they clear when the step succeeds) -----------------
ERR_AUTH = "CATS refused the API key: reconnect CATS with a new key"
ERR_KEY_UNREADABLE = (
    "The stored CATS API key cannot be decrypted: restore the old key in CATS_ENCRYPTION_KEYS "
    "(work resumes by itself within a minute) or reconnect CATS"
)
ERR_NOT_CONNECTED = "{owner} has no CATS connection: connect CATS, then use Resync to CATS"
ERR_JOB_MISSING = (
    "Job order #{job_id} no longer exists in CATS: choose another job order for the sequence, "
    "then Retry"
)
ERR_JOB_OTHER_SITE = (
    "Job order #{job_id} belongs to another CATS site than {site}: the contact was synced "
    "without a job order"
)
ERR_REJECTED = "CATS refused the contact: {message}. Correct the contact, then Retry"
ERR_STATUS_MISSING = (
    "Status '{status}' does not exist in the CATS workflow '{workflow}': create it in CATS "
    "(spelled exactly so), then Retry"
)
ERR_STATUS_REFUSED = (
    "CATS refused to move the pipeline to '{status}': {message}. Fix it, then Retry"
)
ERR_FIELD_MISSING = (
    "Custom field '{name}' no longer exists in CATS: map “{value}” to another field, then Retry"
)
ERR_FIELD_REJECTED = "CATS refused the value of custom field '{name}': {message}"
ERR_ACTIVITY_REJECTED = "CATS refused the email activity: {message}"
ERR_UNEXPECTED = (
    "Sync stopped on an unexpected error ({kind}) after {attempts} attempts: Retry, and tell "
    "an administrator if it happens again"
)
ERR_UNAVAILABLE_GAVE_UP = (
    "CATS failed {n} times in a row on this contact although it answered others: Retry, "
    "and contact CATS support if it keeps failing"
)
EXISTS_IN_CATS = "Exists in CATS"

# --- waits (shown on the task and the contact while they last) ---------------------------------
WAIT_RATE = "CATS asked us to slow down: retrying at {at:%H:%M:%S}"
WAIT_BUDGET = "CATS request budget used up: retrying at {at:%H:%M:%S}"
WAIT_OUTAGE = "CATS is not answering: next try at {at:%H:%M:%S}"
WAIT_UNEXPECTED = "Unexpected error ({kind}): retrying at {at:%H:%M:%S}"
WAIT_CLAIMED = "Another worker is creating this candidate: retrying shortly"
WAIT_CANDIDATE_DELETED = "The candidate was deleted in CATS: syncing the contact again"
WAIT_SETTLE = "The last create was not answered: checking CATS before creating again"

# --- resync -------------------------------------------------------------------------------------
BLOCK_NO_CONNECTION = "no CATS connection"
BLOCK_INVALID = "CATS key refused: reconnect"
BLOCK_SEQUENCE_OFF = "sequence sync is off"
BLOCK_MODE_OFF = "sync mode is Off"
BLOCK_WAITS_FOR_REPLY = "waits for a reply (sync mode: only when they reply)"
BLOCK_WAITS_FOR_INTEREST = (
    "waits for an interested reply (sync mode: only when they reply with interest)"
)

# --- push changes to CATS -----------------------------------------------------------------------
BLOCK_PUSH_NOT_SYNCED = "not synced yet: use Resync to CATS"
BLOCK_PUSH_OTHER_SITE = "synced to another CATS site than its owner's connection"
BLOCK_PUSH_JOB_MISSING = (
    "the new job order #{job_id} is not in CATS (or not refreshed yet): refresh job orders"
)
BLOCK_PUSH_JOB_CLOSED = "the new job order “{job}” is closed in CATS"
BLOCK_PUSH_WORKFLOW_UNKNOWN = (
    "the statuses of job order “{job}” are not known yet: refresh job orders and workflows"
)
PUSH_NOTE_STOPPED_STAYS = (
    "stopped by CATS (a recruiter moved it): stays on its job order; mapped values are still sent"
)
PUSH_NOTE_OLD_KEPT = "stays on its old job order too (not asked to remove it)"
PUSH_NOTE_OLD_KEPT_IN_USE = (
    "old job order kept: another of your sequences still has the contact on it"
)

# --- settings check: the sync mode "only when they reply with interest" ------------------------
CHECK_INTEREST_OK = (
    "Sync mode: a contact syncs when a reply is marked interested; {marked} of the {n} "
    "replies of the last {days} days carried a sentiment."
)
CHECK_INTEREST_NO_REPLIES = (
    "Sync mode: a contact syncs when a reply is marked interested (no reply in the last "
    "{days} days to tell whether replies carry a sentiment)."
)
CHECK_INTEREST_NO_SENTIMENT = (
    "Sync mode only syncs replies marked interested, but none of the {n} replies of the last "
    "{days} days carried a sentiment: nobody would sync."
)
CHECK_INTEREST_NO_SENTIMENT_FIX = (
    "Have the outreach engine send “sentiment”: “interested” with replies, or choose "
    "“Sync contacts only when they reply”."
)

# --- clone --------------------------------------------------------------------------------------
CLONE_SKIP_OTHER = "uses another integration ({name})"
CLONE_SKIP_NONE = "has no integration set up"
CLONE_SKIP_INVALID = "CATS connection is invalid: they must reconnect"
CLONE_NOTE_OTHER_SITE = "on another CATS site: job order and custom field mapping not copied"

# --- sequences moving between CATS sites --------------------------------------------------------
NOTICE_JOB_CLEARED_OWNER = (
    "Job order #{job_id} was cleared: the new owner {owner} syncs to another CATS site. "
    "Choose a job order of that site."
)

# --- custom field mapping -----------------------------------------------------------------------
MSG_MAPPING_INCOMPATIBLE = (
    "The CATS field “{name}” is a {type} field and cannot hold {value}. "
    "Choose a field of type: {types}."
)
