"""CATS sync services, a module per job:

- connection: connecting and disconnecting a member, the client every part uses;
- metadata: our cached copy of a site's job orders, workflows and custom fields;
- outbox: domain changes become SyncTask rows; Retry;
- issues: integration errors per step, shown to recruiters;
- resync: backfilling never-synced contacts as a run with progress;
- push: pushing later job order and mapping changes of synced contacts, on purpose;
- clone: copying settings to teammates;
- check: the settings check;
- sequences: a sequence changing owner (and CATS site);
- status: where a contact stands with CATS, in words, and its timeline (reads only);
- health: the health page's answer, scoped (reads only);
- incidents: what is emailed to a connection's owner, once per incident;
- webhooks: registering our CATS webhook, receiving and processing its deliveries;
- stops: what a recruiter's move or deletion in CATS means (the enrollment stops);
- reconcile: the safety net re-reading active pipelines within a share of the budget.

The names below are the public API; admin, forms and tests use them from here.
"""

from .check import Finding, cats_settings_check, cats_settings_lint
from .clients import cats_client_for, require_connected
from .clone import CLONED_FIELDS, CloneLine, cats_settings_clone, clone_plan
from .connection import (
    CheckedKey,
    Connected,
    cats_account_mark_invalid,
    cats_connect,
    cats_connect_check,
    cats_disconnect,
)
from .health import Health, health_for
from .incidents import incident_close, incident_open, incidents_notify, incidents_review
from .issues import exists_in_cats_mark, issue_clear, issue_raise, issues_clear_for_account
from .metadata import (
    COMPATIBLE_TYPES,
    REQUIRED_STATUSES,
    STATUS_FOR_SENTIMENT,
    STATUS_MESSAGED,
    STATUS_REPLIED,
    custom_fields_refresh,
    jobs_refresh,
    mapping_check,
    metadata_refresh,
    workflows_refresh,
)
from .outbox import (
    account_of,
    enrollment_sync_capture,
    on_contact_added,
    on_contacts_added,
    on_email_event,
    sync_retry,
    task_create,
)
from .planning import resync_plan_run
from .push import PushPlan, push_finish_at, push_plan, push_start
from .reconcile import reconcile_bound, reconcile_site
from .resync import (
    ResyncPlan,
    RunProgress,
    resync_cancel,
    resync_counts,
    resync_plan,
    resync_progress,
    resync_run_close_if_done,
    resync_start,
    retry_bound_text,
)
from .sequences import sequence_owner_changed
from .status import CatsState, Panel, candidate_url, enrollment_panel, enrollment_states
from .webhooks import webhook_register, webhook_unregister, webhook_words

__all__ = [
    "webhook_words",
    "webhook_register",
    "webhook_unregister",
    "reconcile_site",
    "reconcile_bound",
    "Health",
    "health_for",
    "incident_close",
    "incident_open",
    "incidents_notify",
    "incidents_review",
    "CatsState",
    "Panel",
    "candidate_url",
    "enrollment_panel",
    "enrollment_states",
    "CLONED_FIELDS",
    "COMPATIBLE_TYPES",
    "REQUIRED_STATUSES",
    "STATUS_FOR_SENTIMENT",
    "STATUS_MESSAGED",
    "STATUS_REPLIED",
    "CheckedKey",
    "CloneLine",
    "Connected",
    "Finding",
    "PushPlan",
    "ResyncPlan",
    "RunProgress",
    "account_of",
    "cats_account_mark_invalid",
    "cats_client_for",
    "cats_connect",
    "cats_connect_check",
    "cats_disconnect",
    "cats_settings_check",
    "cats_settings_clone",
    "cats_settings_lint",
    "clone_plan",
    "custom_fields_refresh",
    "enrollment_sync_capture",
    "exists_in_cats_mark",
    "issue_clear",
    "issue_raise",
    "issues_clear_for_account",
    "jobs_refresh",
    "mapping_check",
    "metadata_refresh",
    "on_contact_added",
    "on_contacts_added",
    "on_email_event",
    "push_finish_at",
    "push_plan",
    "push_start",
    "require_connected",
    "resync_cancel",
    "resync_counts",
    "resync_plan",
    "resync_plan_run",
    "resync_progress",
    "resync_run_close_if_done",
    "resync_start",
    "retry_bound_text",
    "sequence_owner_changed",
    "sync_retry",
    "task_create",
    "workflows_refresh",
]
