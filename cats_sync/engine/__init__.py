"""The sync engine: running SyncTask rows against CATS.

- runner: claiming tasks, settling how each ended (waits, retries, pauses, failures);
- steps: what each kind of task does (sync a contact, deduplication, an email event);
- candidates: one candidate per email and site, whatever the retries and lost answers;
- lookups: batched, case-proof email searches;
- pipelines: the candidate on a job order, and its status (forward only);
- activities: one CATS activity per email event;
- fields: the mapped custom field values.

Every step is idempotent on the ids we keep (CandidateLink, EnrollmentSync, ActivityLink), so a
task that runs twice, or after its answer was lost, never creates anything twice.
"""

from .runner import running_lease, tasks_execute

__all__ = ["running_lease", "tasks_execute"]
