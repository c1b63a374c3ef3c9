"""The events API: the outreach engine pushes contacts and email events, one team per token.

Plain Django views. Each endpoint declares its fields in a small spec; anything outside the
spec, a wrong type or a bad value is a 400 with per-field messages, and nothing is stored unless
the whole request succeeds. Every string goes through `interseller.text.text_clean` (the one rule
for stored text) before it reaches a query, so NUL, other control characters and lone
surrogates are a 400 on the field, never a database error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Model
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import services
from .models import ApiToken, Contact, EmailEvent, Enrollment, Membership, Sequence
from .text import text_clean

MSG_AUTH_MISSING = "Send the team's API token as 'Authorization: Bearer <token>'."
MSG_AUTH_INVALID = "The API token is not valid or has been revoked."
MSG_METHOD = "Only POST is allowed."
MSG_CONTENT_TYPE = "The body must be JSON, sent with 'Content-Type: application/json'."
MSG_TOO_LARGE = "The body is larger than {limit} bytes."
MSG_BAD_JSON = "The body is not valid JSON."
MSG_TOO_DEEP = "The body nests arrays or objects too deeply."
MSG_NOT_OBJECT = "The body must be a JSON object."
MSG_REQUIRED = "This field is required."
MSG_UNKNOWN_FIELD = "Unknown field."
MSG_TYPE = "Must be {kind}."
MSG_ID_RANGE = "Must be a positive integer of at most 19 digits (an id)."
# The largest id a database column holds (64-bit): a bigger number can name nothing.
MAX_ID = 2**63 - 1
MSG_BLANK = "Must not be blank."
MSG_TOO_LONG = "Must be at most {max} characters."
MSG_CHOICE = "Must be one of: {choices}."
MSG_DATETIME = "Must be an RFC 3339 date-time with a timezone, e.g. 2024-05-01T09:30:00Z."
MSG_NO_SEQUENCE = "No sequence with this id in your team."
MSG_OWNER_NOT_MEMBER = "{email} is not a member of this team."
MSG_NO_OWNER = "The team has no member to own the contact; add a teammate first."

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    multiline: bool = False


def _max_length(model: type[Model], name: str) -> int:
    return model._meta.get_field(name).max_length


CONTACT_SPEC = {
    # Lengths and formats of the contact's own fields are checked by contact_upsert (the model's).
    "email": Field(str, required=True, max_length=_max_length(Contact, "email")),
    "first_name": Field(str),
    "last_name": Field(str),
    "company": Field(str),
    "title": Field(str),
    "phone": Field(str),
    "linkedin_url": Field(str),
    "location": Field(str),
    "source": Field(str),
    "sequence_id": Field(int),
    "owner_email": Field(str, max_length=254),
}

EVENT_SPEC = {
    "id": Field(str, required=True, max_length=_max_length(EmailEvent, "external_id")),
    "type": Field(str, required=True, choices=tuple(EmailEvent.Kind.values)),
    "sequence_id": Field(int, required=True),
    "contact_email": Field(str, required=True, max_length=_max_length(Contact, "email")),
    "occurred_at": Field(str, required=True),
    "subject": Field(str, max_length=_max_length(EmailEvent, "subject")),
    "snippet": Field(str, multiline=True),
    "sentiment": Field(
        str, choices=(Enrollment.Sentiment.INTERESTED, Enrollment.Sentiment.NOT_INTERESTED)
    ),
}

Errors = dict[str, list[str]]


class ApiError(Exception):
    def __init__(self, status: int, errors: Errors, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def _error(field: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, {field: [message]})


def _validate(data: dict[str, Any], spec: dict[str, Field]) -> dict[str, Any]:
    """Check the body against a spec; returns only the given (non-null) fields."""
    errors: Errors = {}
    clean: dict[str, Any] = {}
    for name in data.keys() - spec.keys():
        errors[name] = [MSG_UNKNOWN_FIELD]
    for name, field in spec.items():
        value = data.get(name)
        if value is None:
            if field.required:
                errors[name] = [MSG_REQUIRED]
            continue
        # bool is an int in Python, never in JSON.
        if not isinstance(value, field.kind) or isinstance(value, bool):
            kind = "an integer" if field.kind is int else "a string"
            errors[name] = [MSG_TYPE.format(kind=kind)]
            continue
        if field.kind is int and not 1 <= value <= MAX_ID:
            errors[name] = [MSG_ID_RANGE]
            continue
        if field.kind is str:
            try:
                value = text_clean(value, multiline=field.multiline)
            except ValidationError as exc:
                errors[name] = list(exc.messages)
                continue
            if field.required and not value.strip():
                errors[name] = [MSG_BLANK]
                continue
            if field.max_length and len(value) > field.max_length:
                errors[name] = [MSG_TOO_LONG.format(max=field.max_length)]
                continue
        if field.choices and value not in field.choices:
            errors[name] = [MSG_CHOICE.format(choices=", ".join(field.choices))]
            continue
        clean[name] = value
    if errors:
        raise ApiError(400, errors)
    return clean


def _parse_datetime(value: str) -> datetime | None:
    if not RFC3339.match(value):
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


def _authenticate(request: HttpRequest) -> ApiToken:
    header = request.headers.get("Authorization", "")
    if not header:
        raise ApiError(401, {"authorization": [MSG_AUTH_MISSING]}, {"WWW-Authenticate": "Bearer"})
    match = BEARER.match(header)
    token = services.api_token_authenticate(match.group(1)) if match else None
    if token is None:
        raise ApiError(
            401,
            {"authorization": [MSG_AUTH_INVALID]},
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return token


def _read_json(request: HttpRequest) -> dict[str, Any]:
    limit = settings.API_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise _error("body", "Invalid Content-Length header.") from None
    if declared > limit:
        raise _error("body", MSG_TOO_LARGE.format(limit=limit), 413)
    if request.content_type != "application/json":
        raise _error("body", MSG_CONTENT_TYPE, 415)
    charset = request.content_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise _error("body", MSG_CONTENT_TYPE, 415)
    # The header may understate the body; never read more than the limit allows.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise _error("body", MSG_TOO_LARGE.format(limit=limit), 413)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _error("body", MSG_BAD_JSON) from None
    except RecursionError:
        # A few kilobytes of "[[[[..." exhaust the parser's stack; no field of ours nests.
        raise _error("body", MSG_TOO_DEEP) from None
    if not isinstance(data, dict):
        raise _error("body", MSG_NOT_OBJECT)
    return data


def _errors_from_validation(exc: ValidationError, default_field: str) -> Errors:
    if hasattr(exc, "error_dict"):
        return {
            (default_field if k == "__all__" else k): list(v) for k, v in exc.message_dict.items()
        }
    return {default_field: list(exc.messages)}


def api_endpoint(
    view: Callable[[HttpRequest, ApiToken, dict[str, Any]], JsonResponse],
) -> Callable[[HttpRequest], JsonResponse]:
    """Method, auth, size, content type and JSON checks shared by every endpoint."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> JsonResponse:
        try:
            if request.method != "POST":
                raise ApiError(405, {"method": [MSG_METHOD]}, {"Allow": "POST"})
            token = _authenticate(request)
            data = _read_json(request)
            return view(request, token, data)
        except ApiError as exc:
            response = _answer({"errors": exc.errors}, status=exc.status)
            for name, value in exc.headers.items():
                response[name] = value
            return response

    return wrapper


def _team_sequence(token: ApiToken, sequence_id: int) -> Sequence:
    sequence = Sequence.objects.filter(pk=sequence_id, team=token.team).first()
    if sequence is None:
        raise _error("sequence_id", MSG_NO_SEQUENCE, 404)
    return sequence


def _contact_owner(token: ApiToken, owner_email: str | None, sequence: Sequence | None):
    members = Membership.objects.filter(team=token.team).select_related("user")
    if owner_email:
        owner = members.filter(user__email__iexact=owner_email.strip()).first()
        if owner is None:
            raise _error("owner_email", MSG_OWNER_NOT_MEMBER.format(email=owner_email.strip()))
        return owner
    if sequence is not None:
        return sequence.owner
    owner = (
        members.filter(role=Membership.Role.OWNER).order_by("created_at", "pk").first()
        or members.order_by("created_at", "pk").first()
    )
    if owner is None:
        raise _error("owner_email", MSG_NO_OWNER, 422)
    return owner


def _contact_json(contact: Contact, status: str) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "email": contact.email,
        **{name: getattr(contact, name) for name in services.CONTACT_FIELDS},
        "owner_email": contact.owner.user.email,
        "status": status,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


class ApiJSONEncoder(DjangoJSONEncoder):
    """Every time in an answer is in UTC ("Z"), whatever offset it came with: a replay reads
    the same as the first answer."""

    def default(self, o):
        if isinstance(o, datetime) and o.tzinfo is not None:
            o = o.astimezone(UTC)
        return super().default(o)


def _answer(body: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, encoder=ApiJSONEncoder)


def _enrollment_json(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "id": enrollment.pk,
        "sequence_id": enrollment.sequence_id,
        "state": enrollment.state,
        "first_messaged_at": enrollment.first_messaged_at,
        "last_messaged_at": enrollment.last_messaged_at,
        "responded_at": enrollment.responded_at,
        "sentiment": enrollment.sentiment or None,
    }


@api_endpoint
def contacts_endpoint(request: HttpRequest, token: ApiToken, data: dict[str, Any]) -> JsonResponse:
    clean = _validate(data, CONTACT_SPEC)
    try:
        services.email_validate(clean["email"])
    except ValidationError as exc:
        raise ApiError(400, {"email": list(exc.messages)}) from None
    sequence = _team_sequence(token, clean["sequence_id"]) if "sequence_id" in clean else None
    owner = _contact_owner(token, clean.get("owner_email"), sequence)
    fields = {k: v for k, v in clean.items() if k in services.CONTACT_FIELDS}
    try:
        with transaction.atomic():
            result = services.contact_upsert(
                team=token.team, owner=owner, email=clean["email"], fields=fields
            )
            added = None
            if sequence is not None:
                added = services.contact_add_to_sequence(
                    contact=result.contact, sequence=sequence, added_by=owner
                )
    except ValidationError as exc:
        raise ApiError(400, _errors_from_validation(exc, "email")) from None
    body = _contact_json(result.contact, result.status)
    if added is not None:
        body["enrollment"] = {
            "id": added.enrollment.pk,
            "sequence_id": sequence.pk,
            "state": added.enrollment.state,
            "created": added.created,
        }
    return _answer(body, status=201 if result.created else 200)


@api_endpoint
def events_endpoint(request: HttpRequest, token: ApiToken, data: dict[str, Any]) -> JsonResponse:
    clean = _validate(data, EVENT_SPEC)
    errors: Errors = {}
    occurred_at = _parse_datetime(clean["occurred_at"])
    if occurred_at is None:
        errors["occurred_at"] = [MSG_DATETIME]
    elif not services.EVENT_DATE_WINDOW.contains(occurred_at):
        errors["occurred_at"] = [services.MSG_EVENT_DATE_WINDOW]
    try:
        email = services.email_validate(clean["contact_email"])
    except ValidationError as exc:
        errors["contact_email"] = list(exc.messages)
    if clean.get("sentiment") and clean["type"] != EmailEvent.Kind.REPLY_RECEIVED:
        errors["sentiment"] = [services.MSG_SENTIMENT_NOT_REPLY]
    if errors:
        raise ApiError(400, errors)
    # One query for the usual case; the sequence is read on its own only to say why not.
    enrollment = (
        Enrollment.objects.filter(
            sequence_id=clean["sequence_id"],
            sequence__team=token.team,
            contact__team=token.team,
            contact__email=email,
        )
        .select_related("sequence", "contact")
        .first()
    )
    if enrollment is None:
        sequence = _team_sequence(token, clean["sequence_id"])
        message = services.MSG_NOT_IN_SEQUENCE.format(email=email, sequence=sequence.title)
        raise _error("contact_email", message, 422)
    try:
        result = services.email_event_record(
            enrollment=enrollment,
            external_id=clean["id"],
            kind=clean["type"],
            occurred_at=occurred_at,
            subject=clean.get("subject", ""),
            snippet=clean.get("snippet", ""),
            sentiment=clean.get("sentiment", ""),
        )
    except ValidationError as exc:
        errors = _errors_from_validation(exc, "body")
        if "external_id" in errors:
            errors["id"] = errors.pop("external_id")
        raise ApiError(400, errors) from None
    event = result.event
    if result.enrollment is not None:
        contact = enrollment.contact
        enrollment = result.enrollment
    else:
        # A replayed id: the event as first recorded, and its enrollment as it is now.
        enrollment = Enrollment.objects.select_related("contact").get(pk=event.enrollment_id)
        contact = enrollment.contact
    body = {
        "id": event.external_id,
        "type": event.kind,
        "sequence_id": enrollment.sequence_id,
        "contact_email": contact.email,
        "occurred_at": event.occurred_at,
        "subject": event.subject,
        "snippet": event.snippet,
        "sentiment": event.sentiment or None,
        "recorded_at": event.created_at,
        "created": result.created,
        "enrollment": _enrollment_json(enrollment),
    }
    return _answer(body, status=201 if result.created else 200)


# --- GET /api/v1/enrollments ------------------------------------------------------------------

MSG_GET_ONLY = "Only GET is allowed."
MSG_PAGE = "Must be a positive integer."
MSG_PAGE_SIZE = "Must be an integer from 1 to {max}."
ENROLLMENTS_PAGE_SIZE = 50
ENROLLMENTS_MAX_PAGE_SIZE = 200
# Far past any team's last page, and an offset every database can take.
ENROLLMENTS_MAX_PAGE = 10_000_000


def _stopped_json(enrollment: Enrollment) -> dict[str, Any]:
    return {
        **_enrollment_json(enrollment),
        "contact_email": enrollment.contact.email,
        "state_changed_at": enrollment.state_changed_at,
        "stopped_at": enrollment.stopped_at,
        "stopped_reason": enrollment.stopped_reason or None,
    }


def _positive_int(request: HttpRequest, name: str, default: int, maximum: int | None) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        message = MSG_PAGE_SIZE.format(max=maximum) if maximum else MSG_PAGE
        raise _error(name, message)
    return value


@csrf_exempt
def enrollments_endpoint(request: HttpRequest) -> JsonResponse:
    """The team's enrollments, filtered by `state` and `changed_since` (state changes at or
    after an RFC 3339 time), oldest change first, paged (`page`, `page_size`). The outreach
    engine polls `?state=stopped&changed_since=<last poll>` to learn of sequences stopped by
    an integration (e.g. CATS)."""
    try:
        if request.method != "GET":
            raise ApiError(405, {"method": [MSG_GET_ONLY]}, {"Allow": "GET"})
        token = _authenticate(request)
        errors: Errors = {}
        unknown = set(request.GET) - {"state", "changed_since", "page", "page_size"}
        for name in sorted(unknown):
            errors[name] = [MSG_UNKNOWN_FIELD]
        rows = Enrollment.objects.filter(sequence__team=token.team)
        state = request.GET.get("state")
        if state is not None:
            if state not in Enrollment.State.values:
                errors["state"] = [MSG_CHOICE.format(choices=", ".join(Enrollment.State.values))]
            rows = rows.filter(state=state)
        since_raw = request.GET.get("changed_since")
        if since_raw is not None:
            # A "+" left unescaped in a query string arrives as a space.
            since = _parse_datetime(since_raw.replace(" ", "+"))
            if since is None:
                errors["changed_since"] = [MSG_DATETIME]
            else:
                rows = rows.filter(state_changed_at__gte=since)
        if errors:
            raise ApiError(400, errors)
        page = _positive_int(request, "page", 1, ENROLLMENTS_MAX_PAGE)
        size = _positive_int(request, "page_size", ENROLLMENTS_PAGE_SIZE, ENROLLMENTS_MAX_PAGE_SIZE)
        rows = rows.select_related("contact").order_by(
            F("state_changed_at").asc(nulls_first=True), "pk"
        )
        chunk = list(rows[(page - 1) * size : page * size + 1])
        more = len(chunk) > size
        query = request.GET.copy()
        query["page"] = str(page + 1)
        body = {
            "results": [_stopped_json(e) for e in chunk[:size]],
            "page": page,
            "page_size": size,
            "next": request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
            if more
            else None,
        }
        return _answer(body)
    except ApiError as exc:
        response = _answer({"errors": exc.errors}, status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response
