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
from ..models import CatsAccount, EnrollmentSync, FieldMapping, SyncIssue
from ..services.issues import issue_clear
from .context import StepContext


def mapping_snapshot(account: CatsAccount) -> dict:
    return {
        m.value: {"field_id": m.field_id, "field_name": m.field_name, "field_type": m.field_type}
        for m in account.mappings.all()
    }


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
    """Send mapped values that changed since last sent; problems are collected on ctx."""
    es = ctx.es
    if not es.field_mapping or not es.candidate_id:
        return
    enrollment = Enrollment.objects.select_related("sequence").get(pk=es.enrollment_id)
    sent = dict(es.field_values_sent or {})
    for value_key, (spec, value) in field_values(es, enrollment).items():
        if sent.get(value_key) == value:
            continue
        problem = _send(ctx, value_key, spec, value)
        if problem is not None and problem.code == "missing":
            # The field is gone from CATS. The mapping stays frozen (spec), unless a person
            # mapped the value to another field since: that repair is what Retry is for.
            current = _current_spec(ctx.account, value_key)
            if current is not None and current["field_id"] != spec["field_id"]:
                es.field_mapping = {**es.field_mapping, value_key: current}
                EnrollmentSync.objects.filter(pk=es.pk).update(field_mapping=es.field_mapping)
                value = convert_value(raw_value(value_key, enrollment), current["field_type"])
                problem = _send(ctx, value_key, current, value) if value is not None else None
        if problem is not None:
            ctx.problems.append(problem.error)
            continue
        sent[value_key] = value
        EnrollmentSync.objects.filter(pk=es.pk).update(field_values_sent=sent)
        issue_clear(enrollment_sync_id=es.pk, step=SyncIssue.Step.FIELD, key=value_key)
    es.field_values_sent = sent


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
