"""Our cached copy of a CATS site's job orders, workflows and custom fields.

Read on demand (connecting, the Refresh action, the settings check), never per contact. Each
refresh costs one request per page plus one per workflow.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from interseller.models import EmailEvent, Enrollment

from .. import messages
from ..client import CatsClient
from ..models import (
    CatsAccount,
    CatsCustomField,
    CatsJob,
    CatsSite,
    CatsWorkflowStatus,
    FieldMapping,
)
from .clients import cats_client_for, require_connected

CLOSED_JOB_STATUSES = ("closed", "filled", "canceled", "cancelled", "lost", "onhold", "on hold")

STATUS_MESSAGED = "Messaged"
STATUS_REPLIED = "Replied"
STATUS_FOR_SENTIMENT = {
    Enrollment.Sentiment.INTERESTED: "Interested",
    Enrollment.Sentiment.NOT_INTERESTED: "Not Interested",
}
REQUIRED_STATUSES = (STATUS_MESSAGED, STATUS_REPLIED, *STATUS_FOR_SENTIMENT.values())


def statuses_for(kind: str, sentiment: str = "") -> list[str]:
    """The statuses an email event of this kind (and reply sentiment) moves a pipeline to."""
    if kind == EmailEvent.Kind.MESSAGE_SENT:
        return [STATUS_MESSAGED]
    if kind == EmailEvent.Kind.REPLY_RECEIVED:
        titles = [STATUS_REPLIED]
        if sentiment in STATUS_FOR_SENTIMENT:
            titles.append(STATUS_FOR_SENTIMENT[sentiment])
        return titles
    return []


def mapping_snapshot(account: CatsAccount) -> dict:
    """The member's field mapping as it is now, as an enrollment keeps it (the spec freezes
    it at the first sync)."""
    return {
        m.value: {"field_id": m.field_id, "field_name": m.field_name, "field_type": m.field_type}
        for m in account.mappings.all()
    }


# A status missing from the cache is looked up in CATS again at most this often per site.
WORKFLOW_RECHECK = timedelta(minutes=5)


def jobs_refresh(*, account: CatsAccount, client: CatsClient | None = None) -> int:
    """Re-read the site's job orders (and which statuses are closed) into the cache."""
    require_connected(account)
    client = client or cats_client_for(account)
    closed_status_ids: set[int] = set()
    status_titles: dict[int, str] = {}
    for row in client.list_job_statuses():
        sid = row.get("id")
        status_titles[sid] = row.get("title") or ""
        mapping = str(row.get("mapping") or row.get("category") or "").lower()
        if mapping in CLOSED_JOB_STATUSES:
            closed_status_ids.add(sid)
    seen: set[int] = set()
    site = account.site
    for row in client.list_jobs():
        job_id = int(row["id"])
        seen.add(job_id)
        status_id = row.get("status_id")
        # Where a job carries its status is not documented: a top-level object, or embedded.
        status = row.get("status") or (row.get("_embedded") or {}).get("status")
        status_title = (
            status.get("title") if isinstance(status, dict) else ""
        ) or status_titles.get(status_id, "")
        is_open = (
            status_id not in closed_status_ids and status_title.lower() not in CLOSED_JOB_STATUSES
        )
        CatsJob.objects.update_or_create(
            site=site,
            cats_id=job_id,
            defaults={
                "title": row.get("title") or f"Job {job_id}",
                "status_title": status_title,
                "is_open": is_open,
                "workflow_id": row.get("workflow_id"),
                "location": _location(row.get("location")),
                "exists": True,
            },
        )
    CatsJob.objects.filter(site=site).exclude(cats_id__in=seen).update(exists=False)
    CatsSite.objects.filter(pk=site.pk).update(jobs_refreshed_at=timezone.now())
    return len(seen)


def _location(value) -> str:
    if isinstance(value, dict):
        return ", ".join(str(v) for v in (value.get("city"), value.get("state")) if v)
    return str(value or "")


def workflows_refresh(*, account: CatsAccount, client: CatsClient | None = None) -> int:
    """Re-read every workflow's statuses (titles, order, triggers) into the cache."""
    require_connected(account)
    client = client or cats_client_for(account)
    site = account.site
    rows = []
    for wf in client.list_workflows():
        for position, status in enumerate(client.list_workflow_statuses(int(wf["id"]))):
            triggers = status.get("triggers") or []
            rows.append(
                CatsWorkflowStatus(
                    site=site,
                    workflow_id=int(wf["id"]),
                    workflow_title=wf.get("title") or "",
                    cats_id=int(status["id"]),
                    title=status.get("title") or "",
                    position=position,
                    trigger_ids=[int(t["id"]) for t in triggers if isinstance(t, dict)],
                )
            )
    # Read first, replace in one transaction: a failed read leaves the old cache whole.
    with transaction.atomic():
        CatsWorkflowStatus.objects.filter(site=site).delete()
        CatsWorkflowStatus.objects.bulk_create(rows)
        CatsSite.objects.filter(pk=site.pk).update(workflows_refreshed_at=timezone.now())
    return len(rows)


def workflows_recheck_due(site: CatsSite) -> bool:
    refreshed = CatsSite.objects.filter(pk=site.pk).values_list(
        "workflows_refreshed_at", flat=True
    )[0]
    return refreshed is None or refreshed < timezone.now() - WORKFLOW_RECHECK


def custom_fields_refresh(*, account: CatsAccount, client: CatsClient | None = None) -> int:
    require_connected(account)
    client = client or cats_client_for(account)
    site = account.site
    seen = set()
    for row in client.list_candidate_custom_fields():
        fid = int(row["id"])
        seen.add(fid)
        spec = row.get("field") or {}
        CatsCustomField.objects.update_or_create(
            site=site,
            cats_id=fid,
            defaults={
                "name": row.get("name") or f"Field {fid}",
                "field_type": str(spec.get("type") or row.get("type") or "text"),
                "options": spec.get("selections") or spec.get("options") or [],
                "exists": True,
            },
        )
    CatsCustomField.objects.filter(site=site).exclude(cats_id__in=seen).update(exists=False)
    CatsSite.objects.filter(pk=site.pk).update(fields_refreshed_at=timezone.now())
    return len(seen)


def metadata_refresh(*, account: CatsAccount, client: CatsClient | None = None) -> dict[str, int]:
    """Jobs, workflows and custom fields at once (after connecting, the Refresh action), and
    how the site's search treats case when not known yet, so that no sync pays for that."""
    client = client or cats_client_for(account)
    counts = {
        "jobs": jobs_refresh(account=account, client=client),
        "statuses": workflows_refresh(account=account, client=client),
        "fields": custom_fields_refresh(account=account, client=client),
    }
    if account.site_id:
        search_mode(account.site, client)
    return counts


# A site whose first page of candidates had no email to probe with is asked again after this.
PROBE_AGAIN = timedelta(minutes=10)


def search_mode(site: CatsSite, client: CatsClient) -> str:
    """ "filter" or "text" for this site; probes (two requests) when not known yet."""
    site.refresh_from_db(fields=["email_search", "email_search_probed_at"])
    if site.email_search:
        return site.email_search
    now = timezone.now()
    if site.email_search_probed_at and site.email_search_probed_at > now - PROBE_AGAIN:
        return CatsSite.EmailSearch.FILTER
    found = client.probe_email_search()
    CatsSite.objects.filter(pk=site.pk).update(email_search=found or "", email_search_probed_at=now)
    site.email_search = found or ""
    return found or CatsSite.EmailSearch.FILTER


# --- custom field mapping -----------------------------------------------------------------------

TEXT_TYPES = ("text", "textarea")
# Which CATS field types can hold each value.
COMPATIBLE_TYPES = {
    FieldMapping.Value.SEQUENCE_TITLE: TEXT_TYPES,
    FieldMapping.Value.BOUNCED: ("checkbox", *TEXT_TYPES),
    FieldMapping.Value.UNSUBSCRIBED: ("checkbox", *TEXT_TYPES),
    FieldMapping.Value.FIRST_MESSAGED_AT: ("date", *TEXT_TYPES),
    FieldMapping.Value.LAST_MESSAGED_AT: ("date", *TEXT_TYPES),
    FieldMapping.Value.RESPONDED_AT: ("date", *TEXT_TYPES),
}


def mapping_check(*, value: str, field: CatsCustomField) -> None:
    allowed = COMPATIBLE_TYPES[value]
    if field.field_type not in allowed:
        raise ValidationError(
            messages.MSG_MAPPING_INCOMPATIBLE.format(
                name=field.name,
                type=field.field_type,
                value=FieldMapping.Value(value).label,
                types=", ".join(allowed),
            )
        )
