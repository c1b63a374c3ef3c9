"""The outreach domain: teams and their members, sequences, contacts, enrollments and events.

This app knows nothing of any ATS. Integrations subscribe to the signals in `signals.py`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from .formats import datetime_text


class Team(models.Model):
    name = models.CharField(max_length=200)
    # Where the team's outreach engine hears of enrollments stopped by an integration (signed
    # POSTs, see services/webhooks.py); blank: it polls GET /api/v1/enrollments instead.
    webhook_url = models.URLField(
        "webhook URL",
        max_length=500,
        blank=True,
        help_text="We POST “enrollment.stopped” here, signed with the secret below, when an "
        "integration stops a contact's sequence. Leave blank to poll the API instead.",
    )
    # The signing key; the team's engine needs it to check signatures, so it is shown to
    # owners and managers (it signs, it does not authenticate anything we receive).
    webhook_secret = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="team_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        MEMBER = "member", "Member"

    class Integration(models.TextChoices):
        # Which ATS this member's account is wired to. Cloning CATS settings skips anyone not
        # on CATS, so the other ATSs must be representable even though we only sync CATS.
        NONE = "none", "No integration"
        CATS = "cats", "CATS"
        GREENHOUSE = "greenhouse", "Greenhouse"
        BULLHORN = "bullhorn", "Bullhorn"
        LEVER = "lever", "Lever"
        OTHER = "other", "Other ATS"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    integration = models.CharField(
        "ATS integration", max_length=16, choices=Integration.choices, default=Integration.NONE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_team_user_unique"),
        ]

    def __str__(self) -> str:
        who = self.user.get_full_name() or self.user.email or self.user.username
        return f"{who} ({self.team.name})"

    @property
    def can_manage_team(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.MANAGER)


class Group(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(Membership, related_name="groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="group_team_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Sequence(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sequences")
    owner = models.ForeignKey(Membership, on_delete=models.RESTRICT, related_name="sequences")
    title = models.CharField(max_length=255)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sequence changelist of one team, newest first.
            models.Index(fields=["team", "-created_at"], name="sequence_team_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Contact(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="contacts")
    owner = models.ForeignKey(Membership, on_delete=models.RESTRICT, related_name="contacts")
    # Always stored trimmed and lower-cased (services normalise), so equality is exact.
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    company = models.CharField(max_length=255, blank=True)
    title = models.CharField("job title", max_length=255, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    linkedin_url = models.URLField("LinkedIn URL", max_length=500, blank=True)
    location = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "email"], name="contact_team_email_unique"),
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="contact_email_lowercase"
            ),
        ]
        indexes = [
            # The contact changelist of one team, newest first (with the id the admin orders
            # ties by: a far page reads its ids from the index alone, see admin/base.py).
            models.Index(fields=["team", "-created_at", "-id"], name="contact_team_created_idx"),
            # The contact list's source filter: its choices, and the rows of one source.
            models.Index(fields=["team", "source"], name="contact_team_source_idx"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} <{self.email}>" if name else self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Enrollment(models.Model):
    """A contact in a sequence."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        FINISHED = "finished", "Finished"
        REPLIED = "replied", "Replied"
        BOUNCED = "bounced", "Bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        # Stopped from outside the outreach engine (an integration: a recruiter moved the
        # candidate on in the ATS). Terminal: nothing moves it back to active.
        STOPPED = "stopped", "Stopped"

    class Sentiment(models.TextChoices):
        NONE = "", "—"
        INTERESTED = "interested", "Interested"
        NOT_INTERESTED = "not_interested", "Not Interested"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    added_by = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    first_messaged_at = models.DateTimeField(null=True, blank=True)
    last_messaged_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    # Kept apart from `state`, which shows only the latest: an unsubscribe followed by a
    # bounce is both unsubscribed and bounced.
    bounced_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    sentiment = models.CharField(
        "reply sentiment", max_length=16, choices=Sentiment.choices, default="", blank=True
    )
    # When `state` last changed (the outreach engine polls changes since a time); None: never
    # since it was added.
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # Why and when the enrollment was stopped (state "stopped"), in words the engine and a
    # recruiter read; set by whoever stopped it through `enrollment_stop`.
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-added_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "sequence"], name="enrollment_contact_sequence_unique"
            ),
        ]
        indexes = [
            # Enrollment inline and changelist of a sequence, newest first.
            models.Index(fields=["sequence", "-added_at"], name="enrollment_seq_added_idx"),
            # GET /api/v1/enrollments?state=...&changed_since=...
            models.Index(fields=["state", "state_changed_at"], name="enrollment_state_changed_idx"),
            # The enrollment changelist of a team, newest first: its scope joins the sequence,
            # so no index led by the team can serve the order; this one walks newest first.
            models.Index(fields=["-added_at", "-id"], name="enrollment_added_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact.email} in {self.sequence.title}"


class EmailEvent(models.Model):
    class Kind(models.TextChoices):
        MESSAGE_SENT = "message_sent", "Message sent"
        REPLY_RECEIVED = "reply_received", "Reply received"
        BOUNCED = "bounced", "Bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="email_events")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="events")
    # The outreach engine's id: replaying the same id must change nothing.
    external_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    subject = models.CharField(max_length=500, blank=True)
    snippet = models.TextField(blank=True)
    sentiment = models.CharField(
        max_length=16, choices=Enrollment.Sentiment.choices, default="", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "external_id"], name="emailevent_team_external_id_unique"
            ),
        ]
        indexes = [
            # An enrollment's events in time order (timeline, activity backfill).
            models.Index(fields=["enrollment", "occurred_at"], name="emailevent_enr_time_idx"),
            # The events changelist of a team with date hierarchy.
            models.Index(fields=["team", "-occurred_at", "-id"], name="emailevent_team_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {datetime_text(self.occurred_at)}"


class ApiToken(models.Model):
    """A team's bearer token for the events API. Only a SHA-256 digest is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ImportJob(models.Model):
    """A confirmed contact import too big to run inside the request, run by workers in
    chunks (interseller/imports/jobs.py), resumable after a worker's death.

    The uploaded file is kept in the database, in ImportJobPart rows, so any worker on any
    machine can read it, a part at a time; the parts are deleted once the job has run.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Owns the contacts the file creates, and adds them to the sequence; a member's own job.
    owner = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="import_jobs"
    )
    sequence = models.ForeignKey(
        Sequence, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept so a sequence deleted while the job waits fails the job instead of being skipped.
    sequence_title = models.CharField(max_length=255, blank=True)
    file_name = models.CharField(max_length=255)
    # What the file was read as ("CSV, semicolon-separated, Windows-1252"); the kind of file
    # and its encoding are detected again from the bytes when the job runs.
    file_description = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField("new", default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    added_to_sequence = models.PositiveIntegerField(default=0)
    already_in_sequence = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Resuming: the file was checked whole; the rows up to this row number of the file are
    # written (each chunk commits with it and the counts above).
    checked = models.BooleanField(default=False)
    next_row = models.PositiveIntegerField(default=0)
    # The run working on it: refreshed at every chunk; a stale one lost its worker.
    claim_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Times the sweeper resumed it after its worker stopped (it gives up after a few).
    recoveries = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "contact import"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(processed_rows__lte=models.F("total_rows")),
                name="importjob_processed_le_total",
            ),
        ]
        indexes = [
            # The import changelist of one team, newest first.
            models.Index(fields=["team", "-created_at"], name="importjob_team_created_idx"),
            # The sweeper's "running or queued, heard of when?".
            models.Index(fields=["state", "heartbeat_at"], name="importjob_state_beat_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_state_display().lower()})"


class ImportJobPart(models.Model):
    """One piece of an import job's file, in order (interseller/imports/storage.py).

    A worker reads the file a part at a time, so its memory holds a part, not the file,
    however many rows the file has; a file of tens of MB is never one value to fetch.
    """

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            # Also the index of the worker's "part N of this job".
            models.UniqueConstraint(fields=["job", "index"], name="importjobpart_job_index_uniq"),
        ]

    def __str__(self) -> str:
        return f"part {self.index} of import {self.job_id}"


class TeamWebhookDelivery(models.Model):
    """One signed POST to a team's webhook URL, kept until it is answered with a 2xx (or given
    up on, with the reason shown on the team's page). Its body and request id never change
    across retries, so the receiver can tell a retry from a new event."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Delivered"
        FAILED = "failed", "Given up"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_deliveries")
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40)
    request_id = models.CharField(max_length=32)
    body = models.TextField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "event"], name="teamwebhookdelivery_enrollment_event_unique"
            ),
        ]
        indexes = [
            # The sweeper's "pending and due".
            models.Index(fields=["state", "not_before"], name="teamwebhookdelivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} · enrollment {self.enrollment_id} · {self.state}"
