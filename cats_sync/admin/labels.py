"""What a sequence says about CATS where a person chooses one ("Add to sequence…"): whether it
syncs, and to which job order. Registered through the core's hook
(interseller.extensions.extend_sequence_labels) by CatsSyncConfig.ready()."""

from __future__ import annotations

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from interseller.extensions import extend_sequence_labels
from interseller.models import Sequence

from ..models import CatsAccount, CatsJob

NOT_CONNECTED = "CATS: owner not connected"
SYNC_OFF = "CATS sync off"
SYNC_OFF_BY_OWNER = "CATS sync off (owner's setting)"
SYNC_ON = {
    CatsAccount.SyncMode.ON_ADD: "CATS sync on",
    CatsAccount.SyncMode.ON_REPLY: "CATS sync on reply",
    CatsAccount.SyncMode.ON_INTEREST: "CATS sync on an interested reply",
}


def prepare(queryset: QuerySet) -> QuerySet:
    """The sequence's Syncing section and its owner's connection, in the list's one query."""
    account = "owner__cats_account__"
    jobs = CatsJob.objects.filter(site_id=OuterRef("_cats_site"), cats_id=OuterRef("_cats_job"))
    return queryset.annotate(
        _cats_status=F(f"{account}status"),
        _cats_mode=F(f"{account}sync_mode"),
        _cats_site=F(f"{account}site_id"),
        _cats_enabled=F("cats_sync__enabled"),
        _cats_own_job=F("cats_sync__job_id"),
        _cats_job=Coalesce(F("cats_sync__job_id"), F(f"{account}default_job_id")),
    ).annotate(_cats_job_title=Subquery(jobs.values("title")[:1]))


def sequence_label(sequence: Sequence) -> str:
    if getattr(sequence, "_cats_status", None) != CatsAccount.Status.CONNECTED:
        return NOT_CONNECTED
    if sequence._cats_mode == CatsAccount.SyncMode.OFF:
        return SYNC_OFF_BY_OWNER
    # No Syncing section saved yet: the default, on.
    if sequence._cats_enabled is False:
        return SYNC_OFF
    on = SYNC_ON.get(sequence._cats_mode, SYNC_ON[CatsAccount.SyncMode.ON_ADD])
    job_id = sequence._cats_job
    if job_id is None:
        return f"{on} · no job order"
    job = f"#{job_id} {sequence._cats_job_title}" if sequence._cats_job_title else f"#{job_id}"
    if sequence._cats_own_job is None:
        return f"{on} · owner's default job order {job}"
    return f"{on} · job order {job}"


def register() -> None:
    extend_sequence_labels(sequence_label, prepare=prepare)
