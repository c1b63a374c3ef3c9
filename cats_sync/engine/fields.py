"""The six mapped outreach values on the candidate's custom fields.

The mapping in force at a contact's first sync stays with it (spec). Every value is computed
from everything the enrollment received, in any order; a value already sent is not sent again,
and one refused field never stops the others.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from interseller.models import Enrollment

from .. import messages
from ..client import CatsNotFound, CatsRejected
from ..errors import NeedsPerson
from ..models import CandidateLink, CatsAccount, EnrollmentSync, FieldMapping, SyncIssue
from ..services.issues import issue_clear
from .context import StepContext


def raw_value(value_key: str, enrollment: Enrollment):
    if value_key == FieldMapping.Value.SEQUENCE_TITLE:
        return enrollment.sequence.title
    if value_key == FieldMapping.Value.BOUNCED:
        return enrollment.bounced_at is not None
    if value_key == FieldMapping.Value.UNSUBSCRIBED:
        return enrollment.unsubscribed_at is not None
    return getattr(enrollment, value_key)


def convert_value(raw, field_type: str):
    """Our value in the shape the CATS field type wants; None means "nothing to send"."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw if field_type == "checkbox" else ("Yes" if raw else "No")
    if isinstance(raw, datetime):
        local = timezone.localtime(raw)
        return local.date().isoformat() if field_type == "date" else local.isoformat()
    return str(raw)


def field_values(es: EnrollmentSync, enrollment: Enrollment) -> dict:
    """{value key: (mapping spec, value to send)} for every mapped value that has one."""
    values = {}
    for value_key, spec in (es.field_mapping or {}).items():
        converted = convert_value(raw_value(value_key, enrollment), spec.get("field_type", ""))
        if converted is not None:
            values[value_key] = (spec, converted)
    return values


def fields_update(ctx: StepContext) -> None:
    """Send the mapped values CATS does not hold yet; problems are collected on ctx.

    What CATS holds of the candidate is kept on its CandidateLink (written by us, or read with
    the candidate), so a value already there costs nothing. One changed value is one PUT of
    that field; several go in one PUT of the candidate (which repeats its names).
    """
    es = ctx.es
    if not es.field_mapping or not es.candidate_id:
        return
    enrollment = Enrollment.objects.select_related("sequence", "contact").get(pk=es.enrollment_id)
    link = CandidateLink.objects.filter(
        site_id=es.site_id, email=enrollment.contact.email, candidate_id=es.candidate_id
    ).first()
    holds = dict(link.custom_values) if link is not None else {}
    wanted = field_values(es, enrollment)
    changed = {
        key: (spec, value)
        for key, (spec, value) in wanted.items()
        if holds.get(str(spec["field_id"]), _MISSING) != value
    }
    if len(changed) > 1 and _send_all(ctx, link, changed):
        sent = {key: value for key, (spec, value) in changed.items()}
    else:
        sent = {}
        for value_key, (spec, value) in changed.items():
            problem = _send(ctx, value_key, spec, value)
            if problem is not None and problem.code == "missing":
                # The field is gone from CATS. The mapping stays frozen (spec), unless a
                # person mapped the value to another field since: that is what Retry is for.
                current = _current_spec(ctx.account, value_key)
                if current is not None and current["field_id"] != spec["field_id"]:
                    es.field_mapping = {**es.field_mapping, value_key: current}
                    EnrollmentSync.objects.filter(pk=es.pk).update(field_mapping=es.field_mapping)
                    spec = current
                    value = convert_value(raw_value(value_key, enrollment), current["field_type"])
                    problem = _send(ctx, value_key, spec, value) if value is not None else None
            if problem is not None:
                ctx.problems.append(problem.error)
                continue
            sent[value_key] = value
            changed[value_key] = (spec, value)
    if not sent and not wanted:
        return
    for value_key in sent:
        spec = changed[value_key][0]
        holds[str(spec["field_id"])] = sent[value_key]
        issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.FIELD, key=value_key)
    if link is not None and sent:
        CandidateLink.objects.filter(pk=link.pk).update(custom_values=holds)
        link.custom_values = holds
    # What this enrollment's values are in CATS now (shown on its CATS panel).
    es.field_values_sent = {
        key: value
        for key, (spec, value) in wanted.items()
        if holds.get(str(spec["field_id"]), _MISSING) == value
    }
    EnrollmentSync.objects.filter(pk=es.pk).update(field_values_sent=es.field_values_sent)


_MISSING = object()


def _send_all(ctx: StepContext, link: CandidateLink | None, changed: dict) -> bool:
    """Several values in one PUT of the candidate; False to fall back to one PUT each (to
    name the field CATS refuses, or when the candidate's names are not known)."""
    first, last = (link.first_name, link.last_name) if link is not None else ("", "")
    if not (first and last):
        return False
    fields = [{"id": int(spec["field_id"]), "value": value} for spec, value in changed.values()]
    try:
        ctx.client.update_candidate(
            ctx.es.candidate_id, first_name=first, last_name=last, custom_fields=fields
        )
    except (CatsRejected, CatsNotFound):
        return False
    return True


class _Problem:
    def __init__(self, code: str, error: NeedsPerson) -> None:
        self.code = code
        self.error = error


def _send(ctx: StepContext, value_key: str, spec: dict, value) -> _Problem | None:
    name = spec.get("field_name") or f"#{spec['field_id']}"
    label = FieldMapping.Value(value_key).label
    try:
        ctx.client.set_candidate_custom_field(ctx.es.candidate_id, int(spec["field_id"]), value)
    except CatsNotFound:
        return _Problem(
            "missing",
            NeedsPerson(
                messages.ERR_FIELD_MISSING.format(name=name, value=label),
                code=EnrollmentSync.Error.FIELD,
                step=SyncIssue.Step.FIELD,
                key=value_key,
            ),
        )
    except CatsRejected as exc:
        return _Problem(
            "rejected",
            NeedsPerson(
                messages.ERR_FIELD_REJECTED.format(name=name, message=exc.message),
                code=EnrollmentSync.Error.FIELD,
                step=SyncIssue.Step.FIELD,
                key=value_key,
            ),
        )
    return None


def _current_spec(account: CatsAccount, value_key: str) -> dict | None:
    mapping = account.mappings.filter(value=value_key).first()
    if mapping is None:
        return None
    return {
        "field_id": mapping.field_id,
        "field_name": mapping.field_name,
        "field_type": mapping.field_type,
    }
