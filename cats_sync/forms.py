"""Forms of the CATS admin. Checks that need CATS call services; the errors land on the form."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from interseller.forms import TeamConsistentForm
from interseller.models import Membership

from . import crypto, messages, services
from .models import (
    CatsAccount,
    CatsCustomField,
    CatsJob,
    CatsWorkflowStatus,
    FieldMapping,
    SequenceSync,
)

NO_JOB = ("", "— none —")
SYNCING_HELP = (
    "Set these before adding contacts: contacts already added keep the setting they were "
    "added with."
)
MSG_JOB_OTHER_SITE = (
    "Job order #{job} is not one of the CATS site of {owner}, who owns this sequence: choose "
    "one of theirs, or none."
)
MSG_JOB_OWNER_NOT_CONNECTED = (
    "{owner}, who owns this sequence, has no CATS connection: leave the job order empty, or "
    "connect their CATS first."
)


# A connection's sync settings, in the order its page shows them.
SYNC_SETTINGS = (
    "sync_mode",
    "deduplication",
    "default_job_id",
    "activity_tracking",
    "status_sync",
    "fire_triggers",
)


def job_choices(site_id: int | None, current: int | None = None) -> list[tuple]:
    """`#id title` for each cached job order of the site, closed and deleted ones marked."""
    choices: list[tuple] = [NO_JOB]
    if site_id:
        choices += [(job.cats_id, str(job)) for job in CatsJob.objects.filter(site_id=site_id)]
    if current and all(value != current for value, _ in choices):
        # Keep a value the cache no longer lists instead of silently dropping it.
        choices.append((current, f"#{current} (not in the cached job orders: refresh them)"))
    return choices


def job_field(*, label: str, help_text: str = "") -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label, coerce=int, empty_value=None, required=False, help_text=help_text
    )


MSG_STOP_DEFAULT = "— the first status after “Interested” (default) —"


def stop_status_choices(site_id: int | None, current: str) -> list[tuple[str, str]]:
    """The statuses of the site's workflows, by title (a title names the same step in each
    workflow that has it), in workflow order."""
    titles: list[str] = []
    if site_id:
        for title in CatsWorkflowStatus.objects.filter(site_id=site_id).values_list(
            "title", flat=True
        ):
            if title not in titles:
                titles.append(title)
    if current and current not in titles:
        titles.append(current)
    return [("", MSG_STOP_DEFAULT), *((t, t) for t in titles)]


class CatsAccountForm(TeamConsistentForm):
    """Connection and settings. A new key or subdomain is checked with CATS in `clean` (a
    read); the connection is saved by the admin's save_model, once the whole page is valid."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Made in CATS under Administration → API Keys. Never shown again once saved; "
        "leave blank to keep the stored key.",
    )
    default_job_id = job_field(
        label="Default job order",
        help_text="Every contact is put on this job order unless the sequence names its own. "
        "Leave blank when each sequence has its own job order.",
    )

    stop_status = forms.ChoiceField(
        label="Stop the sequence when CATS moves the candidate to",
        required=False,
        help_text=CatsAccount._meta.get_field("stop_status").help_text,
    )

    class Meta:
        model = CatsAccount
        fields = ["membership", "subdomain", *SYNC_SETTINGS, "stop_status"]
        help_texts = {
            "subdomain": "The part before .catsone.com, e.g. “acme”.",
            "sync_mode": "“Only when they reply with interest”: a contact syncs when the outreach "
            "engine reports a reply marked interested; its earlier emails, custom fields and "
            "statuses are then backfilled.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_job_id"].choices = job_choices(
            self.instance.site_id, self.instance.default_job_id
        )
        self.fields["stop_status"].choices = stop_status_choices(
            self.instance.site_id, self.instance.stop_status
        )
        # What CATS said about a new key or subdomain; save_model connects with it.
        self.checked: services.CheckedKey | None = None

    def _membership(self) -> Membership | None:
        if self.instance.pk:
            return self.instance.membership
        return self.cleaned_data.get("membership")

    def clean(self):
        cleaned = super().clean()
        membership = self._membership()
        if membership is None or self.errors:
            return cleaned
        subdomain = (cleaned.get("subdomain") or "").strip()
        api_key = cleaned.get("api_key") or ""
        subdomain_changed = subdomain.lower() != (self.instance.subdomain or "").lower()
        if not api_key and not (subdomain_changed and self.instance.pk and subdomain):
            if not self.instance.pk:
                self.add_error("api_key", messages.MSG_KEY_REQUIRED)
            return cleaned
        if not api_key:
            # A new subdomain with the stored key: CATS still has to confirm they match.
            try:
                api_key = crypto.decrypt(self.instance.api_key_encrypted or "")
            except crypto.KeyDecryptionError:
                api_key = ""
            if not api_key:
                self.add_error("api_key", messages.MSG_KEY_REQUIRED)
                return cleaned
        try:
            self.checked = services.cats_connect_check(subdomain=subdomain, api_key=api_key)
        except ValidationError as exc:
            self.add_error(None, exc)
            return cleaned
        cleaned["subdomain"] = self.checked.subdomain
        return cleaned


class FieldMappingForm(forms.ModelForm):
    """One mapped value; the CATS field is picked from the site's cached custom fields."""

    site_id: int | None = None

    field_id = forms.TypedChoiceField(label="CATS custom field", coerce=int)

    class Meta:
        model = FieldMapping
        fields = ["value", "field_id"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cached = {f.cats_id: f for f in CatsCustomField.objects.filter(site_id=self.site_id)}
        choices: list[tuple] = [("", "———")]
        for f in self.cached.values():
            label = str(f) if f.exists else f"{f} (deleted in CATS)"
            choices.append((f.cats_id, label))
        current = self.instance.field_id
        if current and current not in self.cached:
            choices.append((current, f"#{current} {self.instance.field_name} (not cached)"))
        self.fields["field_id"].choices = choices

    def has_changed(self) -> bool:
        # A row the page filled in as a suggestion is saved as shown, unless the person empties
        # its field (Django would skip it: it equals its initial values).
        if self.instance.pk is None and self.initial.get("field_id") is not None:
            return self["field_id"].value() not in (None, "")
        return super().has_changed()

    def clean(self):
        cleaned = super().clean()
        value, field_id = cleaned.get("value"), cleaned.get("field_id")
        if not value or field_id is None:
            return cleaned
        field = self.cached.get(field_id)
        if field is None:
            if field_id != self.instance.field_id:
                self.add_error("field_id", "Refresh the custom fields from CATS first.")
            return cleaned
        try:
            services.mapping_check(value=value, field=field)
        except ValidationError as exc:
            self.add_error("field_id", exc)
            return cleaned
        self.instance.field_name = field.name
        self.instance.field_type = field.field_type
        return cleaned


class SequenceSyncForm(forms.ModelForm):
    site_id: int | None = None

    job_id = job_field(label="Job order", help_text="Overrides the owner's default job order.")

    class Meta:
        model = SequenceSync
        fields = ["enabled", "job_id"]
        help_texts = {"enabled": SYNCING_HELP}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_id"].choices = job_choices(self.site_id, self.instance.job_id)

    def clean(self):
        cleaned = super().clean()
        job_id = cleaned.get("job_id")
        if job_id is None or (self.instance.pk and "job_id" not in self.changed_data):
            return cleaned
        # The sequence's form has set the owner the page chose; only our cache is read.
        sequence = getattr(self.instance, "sequence", None)
        owner = getattr(sequence, "owner", None)
        if owner is None:
            return cleaned
        site_id = (
            CatsAccount.objects.filter(membership_id=owner.pk)
            .values_list("site_id", flat=True)
            .first()
        )
        if site_id is None:
            self.add_error("job_id", MSG_JOB_OWNER_NOT_CONNECTED.format(owner=owner))
        elif not CatsJob.objects.filter(site_id=site_id, cats_id=job_id).exists():
            self.add_error("job_id", MSG_JOB_OTHER_SITE.format(job=job_id, owner=owner))
        return cleaned

    def save(self, commit=True):
        if self.has_changed():
            # Someone looked at the section and chose: the notice has been read.
            self.instance.notice = ""
        return super().save(commit)


class TeammateChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, m: Membership) -> str:
        groups = ", ".join(g.name for g in m.groups.all())
        who = m.user.get_full_name() or m.user.email
        label = f"{who} <{m.user.email}> · {m.get_integration_display()}"
        return f"{label} · groups: {groups}" if groups else label


class CloneTargetsForm(forms.Form):
    targets = TeammateChoiceField(
        queryset=Membership.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Teammates",
    )

    def __init__(self, *args, teammates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["targets"].queryset = teammates
        self.fields["targets"].initial = [m.pk for m in teammates]
