"""Check CATS settings: say, before anything syncs, what would fail and how to fix it.

`cats_settings_check` reads CATS once (refreshing our cache) and then judges the settings;
`cats_settings_lint` judges them against the cache alone, with no request, so saving the
settings page can warn without calling CATS inside the save.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone

from interseller.models import EmailEvent

from .. import crypto, messages
from ..client import CatsAuthError
from ..errors import CatsSyncError, Wait
from ..models import CatsAccount, CatsCustomField, CatsJob, CatsWorkflowStatus, SequenceSync
from .clients import cats_client_for
from .connection import cats_account_mark_invalid
from .metadata import REQUIRED_STATUSES, mapping_check, metadata_refresh


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str
    fix: str = ""


def cats_settings_check(*, account: CatsAccount) -> list[Finding]:
    """Read CATS once and judge the settings. Never raises for CATS trouble: it is a finding."""
    if not account.is_connected:
        return [Finding(False, "CATS is not connected.", "Connect CATS with a subdomain and key.")]
    try:
        client = cats_client_for(account)
        client.get_site()
    except crypto.KeyDecryptionError as exc:
        return [Finding(False, str(exc), "Restore the key in CATS_ENCRYPTION_KEYS or reconnect.")]
    except CatsAuthError:
        cats_account_mark_invalid(account=account)
        return [
            Finding(
                False,
                "CATS rejected the API key.",
                "Make a new key in CATS (Administration → API Keys) and reconnect.",
            )
        ]
    except Wait as exc:
        return [_wait_finding(exc)]
    except CatsSyncError as exc:
        return [Finding(False, f"CATS could not be reached: {exc}", "Try again in a minute.")]
    findings = [Finding(True, f"The API key works for {account.site}.")]
    try:
        metadata_refresh(account=account, client=client)
    except Wait as exc:
        return [*findings, _wait_finding(exc)]
    except CatsSyncError as exc:
        return [*findings, Finding(False, f"CATS could not be read: {exc}", "Try again.")]
    return [*findings, *cats_settings_lint(account=account)]


def _wait_finding(exc: Wait) -> Finding:
    at = timezone.localtime(exc.until)
    return Finding(
        False,
        f"CATS could not be checked now: {exc}",
        f"Check again after {at:%H:%M:%S}; nothing is lost meanwhile.",
    )


# How far back the check looks at replies to judge whether they carry a sentiment.
SENTIMENT_LOOKBACK_DAYS = 30


def _mode_findings(account: CatsAccount) -> list[Finding]:
    """Mode "with interest" depends on the outreach engine marking replies: say whether the
    member's recent replies were marked at all (from our own events, no request)."""
    if account.sync_mode != CatsAccount.SyncMode.ON_INTEREST:
        return []
    days = SENTIMENT_LOOKBACK_DAYS
    counts = EmailEvent.objects.filter(
        enrollment__sequence__owner_id=account.membership_id,
        kind=EmailEvent.Kind.REPLY_RECEIVED,
        occurred_at__gte=timezone.now() - timedelta(days=days),
    ).aggregate(n=Count("pk"), marked=Count("pk", filter=~Q(sentiment="")))
    n, marked = counts["n"], counts["marked"]
    if not n:
        return [Finding(True, messages.CHECK_INTEREST_NO_REPLIES.format(days=days))]
    if not marked:
        return [
            Finding(
                False,
                messages.CHECK_INTEREST_NO_SENTIMENT.format(n=n, days=days),
                messages.CHECK_INTEREST_NO_SENTIMENT_FIX,
            )
        ]
    return [Finding(True, messages.CHECK_INTEREST_OK.format(marked=marked, n=n, days=days))]


def cats_settings_lint(*, account: CatsAccount) -> list[Finding]:
    """Judge the settings against our cached copy of CATS. No request is sent."""
    findings: list[Finding] = _mode_findings(account)
    site = account.site
    if site is None:
        return findings
    jobs = {j.cats_id: j for j in CatsJob.objects.filter(site=site)}
    wanted: list[tuple[str, int]] = []
    if account.default_job_id:
        wanted.append(("The default job order", account.default_job_id))
    for seq_sync in SequenceSync.objects.filter(
        sequence__owner=account.membership, sequence__archived=False, job_id__isnull=False
    ).select_related("sequence"):
        wanted.append((f"The job order of sequence “{seq_sync.sequence.title}”", seq_sync.job_id))
    workflow_ids: set[int] = set()
    for label, job_id in wanted:
        job = jobs.get(job_id)
        if job is None or not job.exists:
            findings.append(
                Finding(
                    False,
                    f"{label} (#{job_id}) does not exist in CATS.",
                    "Choose another job order, or leave it blank.",
                )
            )
            continue
        if not job.is_open:
            findings.append(
                Finding(
                    False,
                    f"{label} “{job.title}” is {job.status_title or 'closed'} in CATS.",
                    "Reopen it in CATS or choose an open job order.",
                )
            )
        else:
            findings.append(Finding(True, f"{label} “{job.title}” is open."))
        if job.workflow_id:
            workflow_ids.add(job.workflow_id)
    if account.status_sync:
        statuses = CatsWorkflowStatus.objects.filter(site=site, workflow_id__in=workflow_ids)
        by_workflow: dict[int, tuple[str, set[str]]] = {}
        for s in statuses:
            by_workflow.setdefault(s.workflow_id, (s.workflow_title, set()))[1].add(s.title)
        for title_, names in by_workflow.values():
            missing = [t for t in REQUIRED_STATUSES if t not in names]
            if missing:
                findings.append(
                    Finding(
                        False,
                        f"Workflow “{title_}” has no status "
                        + ", ".join(f"“{m}”" for m in missing)
                        + ".",
                        "Add the statuses in CATS with exactly these names (Settings → Workflows), "
                        "or turn off “advance statuses”.",
                    )
                )
            else:
                findings.append(Finding(True, f"Workflow “{title_}” has all four statuses."))
    fields = {f.cats_id: f for f in CatsCustomField.objects.filter(site=site)}
    for mapping in account.mappings.all():
        label = mapping.get_value_display()
        cf = fields.get(mapping.field_id)
        if cf is None or not cf.exists:
            findings.append(
                Finding(
                    False,
                    f"{label} is mapped to a custom field that no longer exists in CATS "
                    f"(“{mapping.field_name}”).",
                    "Map it to an existing field or remove the mapping.",
                )
            )
            continue
        try:
            mapping_check(value=mapping.value, field=cf)
        except ValidationError as exc:
            findings.append(Finding(False, exc.messages[0], "Map it to a field of a fitting type."))
        else:
            findings.append(Finding(True, f"{label} → “{cf.name}” ({cf.field_type}) fits."))
    return findings
