"""A sequence's "Syncing" section when its owner changes: job order ids belong to one CATS site
and never cross to another."""

from __future__ import annotations

from interseller.models import Sequence

from .. import messages
from ..models import CatsAccount, SequenceSync


def sequence_owner_changed(*, sequence: Sequence, previous_owner_id: int) -> str:
    """Clear a job order of the old owner's CATS site; returns the notice ("" if none)."""
    seq_sync = SequenceSync.objects.filter(sequence=sequence, job_id__isnull=False).first()
    if seq_sync is None:
        return ""
    sites = dict(
        CatsAccount.objects.filter(
            membership_id__in=[previous_owner_id, sequence.owner_id]
        ).values_list("membership_id", "site_id")
    )
    old_site, new_site = sites.get(previous_owner_id), sites.get(sequence.owner_id)
    if old_site is None or old_site == new_site:
        return ""
    notice = messages.NOTICE_JOB_CLEARED_OWNER.format(job_id=seq_sync.job_id, owner=sequence.owner)
    SequenceSync.objects.filter(pk=seq_sync.pk).update(job_id=None, notice=notice[:300])
    return notice
