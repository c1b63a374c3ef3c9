"""Everything this app keeps about CATS: connections, settings, cached CATS metadata, links
between our records and CATS ids, and the sync work itself (our own outbox, not the queue's).

One module, as Django expects an app's models: each model is short, and each field says why
it exists; the length is the count of things the sync must remember to be safe to rerun."""

from __future__ import annotations

from django.db import models

from interseller.models import EmailEvent, Enrollment, Membership, Sequence


class CatsSite(models.Model):
    """One CATS account. Teammates whose keys open the same site share its request budget,
    its cached metadata and one candidate per email."""

    cats_id = models.BigIntegerField("CATS site id", unique=True)
    subdomain = models.CharField(max_length=63)
    # Budget, fed by CATS' X-Rate-Limit-* headers; see budget.py.
    rate_limit = models.PositiveIntegerField(default=500)
    rate_window_seconds = models.PositiveIntegerField(default=3600)
    header_remaining = models.IntegerField(null=True, blank=True)
    header_seen_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)
    # One runner at a time works through a site's due tasks, in priority order (engine/runner).
    runner_token = models.CharField(max_length=32, blank=True)
    runner_until = models.DateTimeField(null=True, blank=True)

    class EmailSearch(models.TextChoices):
        UNKNOWN = "", "Not probed yet"
        FILTER = "filter", "Search filters find any case"
        TEXT = "text", "Filters compare case: free-text search per email"

    # How this account's search compares the case of emails (undocumented; probed once).
    email_search = models.CharField(
        max_length=8, choices=EmailSearch.choices, default="", blank=True
    )
    email_search_probed_at = models.DateTimeField(null=True, blank=True)
    # CATS failed on this site: nothing is sent before `outage_until` but one probe, claimed
    # at `outage_probe_at`; each failure in a row doubles the wait (see gate.py).
    outage_failures = models.PositiveIntegerField(default=0)
    outage_until = models.DateTimeField(null=True, blank=True)
    outage_probe_at = models.DateTimeField(null=True, blank=True)
    jobs_refreshed_at = models.DateTimeField(null=True, blank=True)
    workflows_refreshed_at = models.DateTimeField(null=True, blank=True)
    fields_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "CATS site"

    def __str__(self) -> str:
        return f"{self.subdomain}.catsone.com"


class CatsRequest(models.Model):
    """One request spent against a site, for the rolling-window budget."""

    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="requests")
    at = models.DateTimeField()
    # "reconcile" for the safety net's reads, which may use only their share of the budget.
    purpose = models.CharField(max_length=12, blank=True)

    class Meta:
        indexes = [
            # Counting a site's requests inside the rolling window.
            models.Index(fields=["site", "at"], name="catsrequest_site_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} @ {self.at:%H:%M:%S}"


class CatsJob(models.Model):
    """Cached copy of a site's job orders (refreshed on demand, never per sync)."""

    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="jobs")
    cats_id = models.BigIntegerField()
    title = models.CharField(max_length=255)
    status_title = models.CharField(max_length=100, blank=True)
    is_open = models.BooleanField(default=True)
    workflow_id = models.BigIntegerField(null=True, blank=True)
    location = models.CharField(max_length=255, blank=True)
    # False once a refresh no longer finds it in CATS.
    exists = models.BooleanField(default=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CATS job order"
        ordering = ["-is_open", "title"]
        constraints = [
            models.UniqueConstraint(fields=["site", "cats_id"], name="catsjob_site_cats_id_unique"),
        ]

    def __str__(self) -> str:
        label = f"#{self.cats_id} {self.title}"
        if not self.exists:
            return f"{label} (deleted in CATS)"
        return label if self.is_open else f"{label} (closed)"


class CatsWorkflowStatus(models.Model):
    """Cached statuses of a site's workflows, in workflow order."""

    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="statuses")
    workflow_id = models.BigIntegerField()
    workflow_title = models.CharField(max_length=255)
    cats_id = models.BigIntegerField()
    title = models.CharField(max_length=255)
    position = models.PositiveIntegerField()
    trigger_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["workflow_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "workflow_id", "cats_id"], name="catsstatus_site_wf_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_title}: {self.title}"


class CatsCustomField(models.Model):
    """Cached candidate custom field definitions of a site."""

    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="custom_fields")
    cats_id = models.BigIntegerField()
    name = models.CharField(max_length=255)
    field_type = models.CharField(max_length=32)
    options = models.JSONField(default=list, blank=True)
    exists = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "cats_id"], name="catsfield_site_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.field_type})"


class CatsAccount(models.Model):
    """A member's CATS connection and sync settings."""

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        INVALID = "invalid", "Key refused by CATS: reconnect"
        DISCONNECTED = "disconnected", "Disconnected"

    class SyncMode(models.TextChoices):
        OFF = "off", "Off: contacts do not sync to CATS"
        ON_ADD = "on_add", "Sync contacts when added to a sequence"
        ON_REPLY = "on_reply", "Sync contacts only when they reply"
        # Not in the spec: a reply the outreach engine marks `sentiment: interested`.
        ON_INTEREST = "on_interest", "Sync contacts only when they reply with interest"

    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, related_name="cats_account"
    )
    subdomain = models.CharField(max_length=63, blank=True)
    # Fernet token of the API key; see crypto.py. Never shown again once saved.
    api_key_encrypted = models.TextField(blank=True)
    site = models.ForeignKey(
        CatsSite, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DISCONNECTED)
    status_message = models.CharField(max_length=500, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)

    sync_mode = models.CharField(max_length=16, choices=SyncMode.choices, default=SyncMode.ON_ADD)
    deduplication = models.BooleanField(
        default=True, help_text="Warn with “Exists in CATS” when a contact's email is in CATS."
    )
    default_job_id = models.BigIntegerField(
        "default job order",
        null=True,
        blank=True,
        help_text="CATS job id every contact is put on, unless the sequence names its own. "
        "Leave blank when each sequence has its own job order.",
    )
    # Part 2 settings live here too, so cloning copies the whole set.
    activity_tracking = models.BooleanField(
        default=True, help_text="Log each email event as a CATS activity."
    )
    status_sync = models.BooleanField(
        "advance statuses",
        default=True,
        help_text="Move pipelines to Messaged / Replied / Interested / Not Interested.",
    )
    fire_triggers = models.BooleanField(
        "fire CATS status triggers",
        default=False,
        help_text="CATS triggers can e-mail people; they stay off unless you turn this on.",
    )
    stop_status = models.CharField(
        "stop the sequence when CATS moves the candidate to",
        max_length=255,
        blank=True,
        help_text="A status of the job's workflow: when a recruiter moves the candidate there "
        "(or further) in CATS, the contact's sequence stops. Blank: the first status after "
        "“Interested” that the sync does not set itself. Placed/hired statuses and a deleted "
        "candidate always stop it.",
    )
    # The CATS webhook that tells us of changes made in CATS (services/webhooks.py). Its
    # secret is stored like the key; `webhook_token` names this registration in the receiver's
    # URL, so deliveries for a registration we dropped answer 410 and CATS deletes it.
    webhook_id = models.BigIntegerField(null=True, blank=True)
    webhook_token = models.CharField(max_length=43, blank=True)
    webhook_secret_encrypted = models.TextField(blank=True)
    webhook_registered_at = models.DateTimeField(null=True, blank=True)
    # Why the last registration failed (or why none is made), and when we last tried.
    webhook_error = models.CharField(max_length=500, blank=True)
    webhook_tried_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CATS connection and settings"
        verbose_name_plural = "CATS connections and settings"
        constraints = [
            models.UniqueConstraint(
                fields=["webhook_token"],
                condition=~models.Q(webhook_token=""),
                name="catsaccount_webhook_token_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"CATS · {self.membership}"

    @property
    def is_connected(self) -> bool:
        return self.status == self.Status.CONNECTED and self.site_id is not None

    # The registration itself (a reconnect carries these over; the settings page never
    # touches them). `webhook_tried_at` stays: it paces the next registration attempt.
    WEBHOOK_REGISTRATION = (
        "webhook_id",
        "webhook_token",
        "webhook_secret_encrypted",
        "webhook_registered_at",
        "webhook_error",
    )

    def webhook_reset(self) -> list[str]:
        """Forget the registration on this instance; returns the fields to save."""
        for name in self.WEBHOOK_REGISTRATION:
            setattr(self, name, self._meta.get_field(name).get_default())
        return list(self.WEBHOOK_REGISTRATION)

    @property
    def webhooks_active(self) -> bool:
        """CATS tells us of every pipeline move (our record of a status can stand in for a
        GET; reconciliation catches what a lost delivery missed)."""
        return self.is_connected and self.webhook_id is not None


class FieldMapping(models.Model):
    """One of the six outreach values mapped onto a CATS candidate custom field."""

    class Value(models.TextChoices):
        SEQUENCE_TITLE = "sequence_title", "Sequence Title"
        BOUNCED = "bounced", "Bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        FIRST_MESSAGED_AT = "first_messaged_at", "First messaged at"
        LAST_MESSAGED_AT = "last_messaged_at", "Last messaged at"
        RESPONDED_AT = "responded_at", "Responded at"

    account = models.ForeignKey(CatsAccount, on_delete=models.CASCADE, related_name="mappings")
    value = models.CharField(max_length=32, choices=Value.choices)
    field_id = models.BigIntegerField("CATS custom field id")
    field_name = models.CharField(max_length=255, blank=True)
    field_type = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "value"], name="fieldmapping_account_value_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_value_display()} → {self.field_name or self.field_id}"


class SequenceSync(models.Model):
    """The "Syncing" section of a sequence."""

    sequence = models.OneToOneField(Sequence, on_delete=models.CASCADE, related_name="cats_sync")
    enabled = models.BooleanField("sync to CATS", default=True)
    job_id = models.BigIntegerField(
        "job order", null=True, blank=True, help_text="Overrides the owner's default job order."
    )
    # Said on the Syncing section until someone saves it again (e.g. why a job was cleared).
    notice = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sequence sync setting"

    def __str__(self) -> str:
        return f"Syncing · {self.sequence}"


class CandidateLink(models.Model):
    """Which CATS candidate holds an email on a site. Also the lock that keeps two workers
    from creating the same candidate: the row is claimed before the create is sent."""

    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="candidates")
    email = models.EmailField(max_length=254)
    candidate_id = models.BigIntegerField(null=True, blank=True)
    # Held by the one worker allowed to create this email's candidate.
    claimed_by = models.CharField(max_length=40, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # A create was sent and no answer came back: it may land later. The next attempt waits a
    # settle window, looks the email up, and creates only with CATS' duplicate check on.
    create_sent_at = models.DateTimeField(null=True, blank=True)
    created_by_us = models.BooleanField(default=False)
    # The last time a search found no candidate with this email: a create soon after need not
    # search again (it goes out with CATS' duplicate check on, which catches the rest).
    absent_checked_at = models.DateTimeField(null=True, blank=True)
    # What CATS holds of the candidate as we last wrote or read it: the names a full PUT must
    # repeat, and custom field values ({field id: value}), so an unchanged value is not re-sent.
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    custom_values = models.JSONField(default=dict, blank=True)
    # The team whose contact made us create it: for that team it never "exists in CATS".
    created_for_team = models.ForeignKey(
        "interseller.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "email"], name="candidatelink_site_email_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → #{self.candidate_id or '?'}"


class EnrollmentSync(models.Model):
    """CATS state of one contact-in-a-sequence: what was captured when it was added, what it
    is linked to in CATS, and the last integration error a recruiter should see."""

    class Error(models.TextChoices):
        NONE = "", "No error"
        EXISTS_IN_CATS = "exists_in_cats", "Exists in CATS"
        AUTH = "auth", "Key refused by CATS: reconnect"
        KEY_UNREADABLE = "key_unreadable", "Stored key unreadable"
        NOT_CONNECTED = "not_connected", "No CATS connection"
        JOB_MISSING = "job_missing", "Job order missing in CATS"
        REJECTED = "rejected", "Refused by CATS"
        STATUS_MISSING = "status_missing", "Status missing in CATS"
        FIELD = "field", "Custom field error"
        UNAVAILABLE = "unavailable", "CATS kept failing"
        UNEXPECTED = "unexpected", "Unexpected error"

    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.CASCADE, related_name="cats_sync"
    )
    # Captured when the contact was added (spec: later changes do not touch it).
    account = models.ForeignKey(
        CatsAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sync_enabled = models.BooleanField(default=True)
    job_id = models.BigIntegerField(null=True, blank=True)
    # Frozen at the first sync: {value: {"field_id", "field_name", "field_type"}}.
    field_mapping = models.JSONField(null=True, blank=True)
    # What we hold in CATS.
    site = models.ForeignKey(CatsSite, on_delete=models.SET_NULL, null=True, blank=True)
    candidate_id = models.BigIntegerField(null=True, blank=True)
    pipeline_id = models.BigIntegerField(null=True, blank=True)
    created_candidate = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)
    status_id = models.BigIntegerField(null=True, blank=True)
    # When `status_id` was last known true (we set it, read it, or a webhook told us). None
    # with a pipeline means "at the workflow's first status since we made it".
    status_seen_at = models.DateTimeField(null=True, blank=True)
    # Last values sent to mapped custom fields, so unchanged ones spend no request.
    field_values_sent = models.JSONField(default=dict, blank=True)
    exists_in_cats = models.BooleanField(default=False)
    # "Push changes to CATS" moved it to another job order: where it was, and when. The old
    # pipeline id stays until it is removed (if the person asked for that); `push_moving` is
    # set from the moment the move is written down until its last step is done, so a push
    # that died half-way finishes the move when it runs again.
    previous_job_id = models.BigIntegerField(null=True, blank=True)
    previous_pipeline_id = models.BigIntegerField(null=True, blank=True)
    moved_at = models.DateTimeField(null=True, blank=True)
    push_moving = models.BooleanField(default=False)
    # Every status we set on the pipeline ourselves: a webhook reporting one of these is our
    # own write coming back, never a recruiter's move.
    statuses_written = models.JSONField(default=list, blank=True)
    # Reconciliation re-reads the pipelines of active enrollments, oldest check first (None:
    # never, or a webhook said "look again").
    reconciled_at = models.DateTimeField(null=True, blank=True)
    # Stopped by CATS: when, why (the status, or the candidate deleted), and what told us.
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_why = models.CharField(max_length=20, blank=True)
    stopped_status_id = models.BigIntegerField(null=True, blank=True)
    stopped_words = models.CharField(max_length=300, blank=True)
    stopped_source = models.CharField(max_length=40, blank=True)
    # The headline of the open SyncIssue rows, kept by services.issues for cheap list pages:
    # the newest issue that stops the sync, else "Exists in CATS".
    error_code = models.CharField(max_length=20, choices=Error.choices, default="", blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CATS sync state"
        indexes = [
            # Resync: never-synced enrollments of an account.
            models.Index(fields=["account", "synced_at"], name="enrsync_account_synced_idx"),
            # The integration-error filter.
            models.Index(fields=["error_code"], name="enrsync_error_idx"),
            # Reconciliation: a site's pipelines checked longest ago.
            models.Index(fields=["site", "reconciled_at"], name="enrsync_site_reconciled_idx"),
            # Webhooks: our enrollments on a pipeline / of a candidate.
            models.Index(fields=["site", "pipeline_id"], name="enrsync_site_pipeline_idx"),
            models.Index(fields=["site", "candidate_id"], name="enrsync_site_candidate_idx"),
        ]

    def __str__(self) -> str:
        return f"CATS sync of enrollment {self.enrollment_id}"

    @classmethod
    def of(cls, enrollment: Enrollment) -> EnrollmentSync | None:
        """The enrollment's sync row, or None (loaded or prefetched: no query when it was)."""
        try:
            return enrollment.cats_sync
        except cls.DoesNotExist:
            return None


class SyncIssue(models.Model):
    """An integration error of one contact-in-a-sequence, for one step of the sync.

    It stays until that step succeeds (or the cause is gone), and Retry re-runs the step. One
    row per step and key, so a refused status and a missing custom field are both shown.
    """

    class Step(models.TextChoices):
        CONNECTION = "connection", "CATS connection"
        CANDIDATE = "candidate", "Candidate"
        JOB = "job", "Job order"
        ACTIVITY = "activity", "Email activity"
        STATUS = "status", "Pipeline status"
        FIELD = "field", "Custom field"
        DEDUP = "dedup", "Deduplication"
        OTHER = "other", "Sync"

    enrollment_sync = models.ForeignKey(
        EnrollmentSync, on_delete=models.CASCADE, related_name="issues"
    )
    step = models.CharField(max_length=16, choices=Step.choices)
    # Tells apart issues of one step: the status title, the mapped value.
    key = models.CharField(max_length=64, blank=True)
    code = models.CharField(max_length=20, choices=EnrollmentSync.Error.choices)
    message = models.CharField(max_length=500)
    # "Exists in CATS" is a warning: the contact still syncs.
    blocking = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment_sync", "step", "key"], name="syncissue_sync_step_key_unique"
            ),
        ]
        indexes = [
            # The "CATS error" filters and the health page's counts by kind.
            models.Index(fields=["code", "enrollment_sync"], name="syncissue_code_idx"),
        ]

    def __str__(self) -> str:
        return self.message


class ActivityLink(models.Model):
    """The CATS activity written for an email event: at most one, whatever the retries."""

    event = models.OneToOneField(EmailEvent, on_delete=models.CASCADE, related_name="cats_activity")
    site = models.ForeignKey(CatsSite, on_delete=models.CASCADE, related_name="+")
    activity_id = models.BigIntegerField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"activity #{self.activity_id or '?'} for event {self.event_id}"


class ResyncRun(models.Model):
    """A bulk resync (or push of changes) with its progress, shown in the admin."""

    class Kind(models.TextChoices):
        RESYNC = "resync", "Resync to CATS"
        PUSH = "push", "Push changes to CATS"

    class State(models.TextChoices):
        PLANNING = "planning", "Queueing contacts"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    started_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey("interseller.Team", on_delete=models.CASCADE, related_name="+")
    description = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RESYNC)
    # Push only: remove moved contacts from their old job order (the person ticked it).
    remove_old_job = models.BooleanField(default=False)
    # The CATS requests its preview counted (push), for the estimated finish.
    requests_planned = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    total = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    # A big run is planned by a worker, in chunks: the enrollments it covers (scoped when the
    # person started it), how many are planned so far, and when a worker last took it on.
    selection = models.JSONField(default=list, blank=True)
    planned = models.PositiveIntegerField(default=0)
    plan_claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.description


class SyncTask(models.Model):
    """One unit of CATS work. Written in the transaction of the change that caused it;
    the queue only carries its id, and a sweeper re-enqueues whatever is due."""

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync contact"
        DEDUP = "dedup", "Deduplication check"
        EVENT = "event", "Email event"
        PUSH = "push", "Push changes"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed: needs a person"
        PAUSED = "paused", "Paused: reconnect CATS"

    class Priority(models.IntegerChoices):
        LIVE = 0, "Live"
        BULK = 10, "Bulk backfill"

    class Outcome(models.TextChoices):
        NONE = "", "—"
        CREATED = "created", "Candidate created"
        LINKED = "linked", "Linked to an existing candidate"
        SKIPPED = "skipped", "Already synced"
        EXISTS = "exists", "Exists in CATS"
        ABSENT = "absent", "Not in CATS"
        DONE = "done", "Done"
        DEFERRED = "deferred", "Waits for the contact's sync"
        SUPERSEDED = "superseded", "Replaced by newer work"
        CANCELLED = "cancelled", "Resync cancelled"
        PUSHED = "pushed", "Changes pushed to CATS"
        UNCHANGED = "unchanged", "Nothing to change in CATS"

    # States in which a task still has work to do (the constraint below spells them out).
    OPEN_STATES = ("pending", "running", "paused")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(
        EmailEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        CatsAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    run = models.ForeignKey(
        ResyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.LIVE)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField()
    # Set when a worker claims the task and refreshed before each request it sends (a
    # heartbeat): a running task whose heartbeat is older than the lease lost its worker.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Which claim is running it: a worker whose task was taken over cannot overwrite it.
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # What a pending task waits for (errors.Wait.code, or "retry" after a failure), so the
    # end of an outage wakes exactly the work that waited for it.
    waiting_on = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # At most one open task of a kind per enrollment (per event for event tasks).
            models.UniqueConstraint(
                fields=["kind", "enrollment"],
                condition=models.Q(state__in=["pending", "running", "paused"], event=None),
                name="synctask_open_kind_enrollment_unique",
            ),
            models.UniqueConstraint(
                fields=["event"],
                condition=models.Q(event__isnull=False),
                name="synctask_event_unique",
            ),
        ]
        indexes = [
            # The worker's "what is due next" query.
            models.Index(fields=["state", "priority", "not_before"], name="synctask_due_idx"),
            # Progress of a bulk run.
            models.Index(fields=["run", "state"], name="synctask_run_state_idx"),
            # The sync queue changelist, newest first (its scope joins enrollment and sequence).
            models.Index(fields=["-created_at", "-id"], name="synctask_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · enrollment {self.enrollment_id} · {self.state}"


class CatsIncident(models.Model):
    """Something about a member's CATS connection that people must hear of without opening the
    admin: a refused key, a key the server cannot read, a spike of failures. Its owner gets one
    email per incident (not per task); it closes when the cause is gone."""

    class Kind(models.TextChoices):
        KEY_REFUSED = "key_refused", "CATS refused the key"
        KEY_UNREADABLE = "key_unreadable", "The stored key cannot be read"
        FAILURES = "failures", "Many contacts failed"

    account = models.ForeignKey(CatsAccount, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=500)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind"],
                condition=models.Q(closed_at__isnull=True),
                name="catsincident_one_open_per_kind",
            ),
        ]
        indexes = [
            # The sweeper's "open incidents nobody was told of yet".
            models.Index(fields=["closed_at", "notified_at"], name="catsincident_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.account}"


class WebhookDelivery(models.Model):
    """A signed delivery CATS sent us, stored before it is processed (the receiver answers at
    once; a worker processes it). Its request id is kept so the same delivery is never taken
    twice, for longer than a delivery stays fresh enough to be taken at all."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(CatsAccount, on_delete=models.CASCADE, related_name="deliveries")
    request_id = models.CharField(max_length=100)
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # What processing did, in words ("stopped 1 enrollment", "no pipeline of ours").
    result = models.CharField(max_length=500, blank=True)
    # Whom it is about, read from the payload as it arrives (None where it does not say), so
    # that a status change waits only for deliveries about its own pipeline, and not for the
    # echoes of statuses we wrote ourselves (engine/pipelines.py).
    pipeline_id = models.BigIntegerField(null=True, blank=True)
    candidate_id = models.BigIntegerField(null=True, blank=True)
    status_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "request_id"], name="webhookdelivery_account_request_unique"
            ),
        ]
        indexes = [
            # The sweeper's "received but not processed" and the pruning of old rows.
            models.Index(fields=["state", "received_at"], name="webhookdelivery_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} · {self.request_id}"


class PipelineObservation(models.Model):
    """Something CATS told us of an enrollment's pipeline (a webhook, or a reconciliation
    read): shown on the contact's timeline, whether or not it changed anything."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "CATS webhook"
        RECONCILE = "reconcile", "Reconciliation"

    enrollment_sync = models.ForeignKey(
        EnrollmentSync, on_delete=models.CASCADE, related_name="observations"
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    at = models.DateTimeField()
    words = models.CharField(max_length=300)
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-at"]
        indexes = [
            # An enrollment's timeline.
            models.Index(fields=["enrollment_sync", "at"], name="pipelineobs_es_at_idx"),
        ]

    def __str__(self) -> str:
        return self.words
