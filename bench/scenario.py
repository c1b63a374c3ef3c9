"""The data a benchmark starts from, built through the app's own services (or, for the very
large sets, with bulk_create and every related row a real one would have).

Import after `Harness.__enter__` (it needs Django set up).

Its length is one builder per flow of the performance issue; each is independent of the others,
so a bench reads only the one it uses.
"""

from __future__ import annotations

import csv
import io
import random
import re
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.test import Client
from django.utils import timezone
from harness import Sandbox, log

from cats_sync import services as cats
from cats_sync.models import (
    CatsAccount,
    CatsCustomField,
    CatsSite,
    EnrollmentSync,
    FieldMapping,
    SequenceSync,
    SyncTask,
)
from interseller import services
from interseller.models import Contact, EmailEvent, Enrollment, Membership, Sequence, Team

JOB = "Senior Backend Engineer"  # General workflow: Messaged, Replied, Interested exist
PASSWORD = "bench-password-2024"
# The sandbox's demo custom fields are named as the six values' labels.
MAPPED_VALUES = [v for v in FieldMapping.Value]


def team_with_owner(name: str, *, password: str | None = None) -> tuple[Team, Membership]:
    team = Team.objects.create(name=name)
    email = f"owner@{re.sub('[^a-z0-9]+', '-', name.lower()).strip('-')}.bench.example"
    owner = services.teammate_add(
        team=team,
        email=email,
        first_name="Bench",
        last_name="Owner",
        role=Membership.Role.OWNER,
        password=password,
    )
    return team, Membership.objects.select_related("user", "team").get(pk=owner.pk)


def sequence_for(owner: Membership, title: str) -> Sequence:
    return Sequence.objects.create(team=owner.team, owner=owner, title=title)


def cats_site(
    sandbox: Sandbox,
    *,
    rate_limit: int | None = None,
    rate_window: int | None = None,
    candidates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A sandbox site built from the demo seed (jobs, General workflow, the six fields)."""
    from cats_sandbox import make_seed

    config: dict[str, Any] = {}
    if rate_limit:
        config["rate_limit"] = rate_limit
    if rate_window:
        config["rate_window"] = rate_window
    return sandbox.create_site(make_seed(candidates=candidates or [], **config))


def connect(
    owner: Membership,
    site: dict[str, Any],
    *,
    mode: str = CatsAccount.SyncMode.ON_ADD,
    map_fields: bool = True,
    job: str | None = JOB,
) -> CatsAccount:
    """Connect the member as the admin page does, refresh the cached metadata, choose a
    default job order and map the six values (the settings the issue's flows assume)."""
    account = cats.cats_connect(
        membership=owner, subdomain=site["subdomain"], api_key=site["api_key"]
    ).account
    cats.metadata_refresh(account=account)
    if map_fields:
        by_name = {f.name: f for f in CatsCustomField.objects.filter(site=account.site)}
        for value in MAPPED_VALUES:
            field = by_name[value.label]
            FieldMapping.objects.create(
                account=account,
                value=value,
                field_id=field.cats_id,
                field_name=field.name,
                field_type=field.field_type,
            )
    account.sync_mode = mode
    account.default_job_id = site["jobs"][job] if job else None
    account.save()
    return account


def drained_sequence(
    sandbox: Sandbox, name: str, *, n: int, rate_limit: int, rate_window: int
) -> tuple[dict[str, Any], Membership, Sequence]:
    """A site allowing `rate_limit` requests per `rate_window` s, and a sequence of `n`
    contacts added before its owner connected (default job order, no mapped fields)."""
    site = cats_site(sandbox, rate_limit=rate_limit, rate_window=rate_window)
    team, owner = team_with_owner(name)
    seq = sequence_for(owner, f"{name} bench sequence")
    slug = name.lower().replace(" ", "-")
    add_contacts(owner, seq, [f"person{i}@{slug}.bench.example" for i in range(n)])
    connect(owner, site, map_fields=False)
    return site, owner, seq


def contact_fields(i: int) -> dict[str, str]:
    return {
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "company": f"Company {i % 500}",
        "title": "Senior Engineer",
    }


def add_contacts(
    owner: Membership, sequence: Sequence, emails: Iterable[str], *, start: int = 0
) -> list[Enrollment]:
    """Contacts added to the sequence through the services, one at a time, as by hand."""
    enrollments = []
    for i, email in enumerate(emails, start=start):
        contact = services.contact_upsert(
            team=owner.team, owner=owner, email=email, fields=contact_fields(i)
        ).contact
        added = services.contact_add_to_sequence(contact=contact, sequence=sequence, added_by=owner)
        enrollments.append(added.enrollment)
    return enrollments


def record_event(enrollment: Enrollment, kind: str, external_id: str, **extra: Any) -> None:
    services.email_event_record(
        enrollment=enrollment,
        external_id=external_id,
        kind=kind,
        occurred_at=extra.pop("occurred_at", timezone.now() - timedelta(hours=1)),
        subject=extra.pop("subject", "Hello from the benchmark"),
        **extra,
    )


def resync(sequence: Sequence, *, description: str = "bench"):
    return cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=sequence),
        started_by=None,
        team=sequence.team,
        description=description,
    )


def open_tasks(**filters: Any) -> int:
    return SyncTask.objects.filter(state__in=SyncTask.OPEN_STATES, **filters).count()


def synced(sequence: Sequence) -> int:
    return EnrollmentSync.objects.filter(
        enrollment__sequence=sequence, synced_at__isnull=False
    ).count()


def task_states(**filters: Any) -> dict[str, int]:
    from django.db.models import Count

    rows = SyncTask.objects.filter(**filters).values("kind", "state", "outcome")
    return {
        f"{r['kind']}/{r['state']}/{r['outcome'] or '-'}": r["n"]
        for r in rows.annotate(n=Count("id")).order_by("kind", "state")
    }


def task_errors(limit: int = 5, **filters: Any) -> list[str]:
    return list(
        SyncTask.objects.filter(**filters)
        .exclude(last_error="")
        .values_list("last_error", flat=True)
        .distinct()[:limit]
    )


# --- spreadsheets ----------------------------------------------------------------------------

SHEET_HEADERS = [
    "First Name",
    "Last Name",
    "Email Address",
    "Current Company",
    "Job Title",
    "Phone",
    "LinkedIn",
    "Location",
    "Notes",
]


def sheet_csv(n: int, *, domain: str, start: int = 0) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SHEET_HEADERS)
    for i in range(start, start + n):
        writer.writerow(
            [
                f"First{i}",
                f"Last{i}",
                f"person{i}@{domain}",
                f"Company {i % 500}",
                "Senior Engineer",
                f"+1 555 {i:07d}",
                f"https://www.linkedin.com/in/person{i}",
                "Berlin, Germany",
                "imported for the benchmark",
            ]
        )
    return out.getvalue().encode("utf-8")


_test_env = False


def admin_client(user) -> Client:
    """An in-process client signed in as `user`. The test environment lets the client's
    host through and records templates' contexts (the import reads its confirm form)."""
    global _test_env
    if not _test_env:
        from django.test.utils import setup_test_environment

        setup_test_environment()
        _test_env = True
    client = Client()
    client.force_login(user)
    return client


def admin_import(client: Client, *, team: Team, sequence: Sequence | None, data: bytes) -> Any:
    """Upload, dry run and confirm through the admin's import views; answers the confirm
    response (a redirect: to the contact list, or to the background job's page), with the
    seconds of each step as `dry_run_seconds` and `confirm_seconds`."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    started = time.monotonic()
    dry = client.post(
        reverse("admin:interseller_contact_import"),
        {
            "team": team.pk,
            "sequence": sequence.pk if sequence else "",
            "format": "0",
            "resource": "",
            "import_file": SimpleUploadedFile("bench.csv", data, content_type="text/csv"),
        },
    )
    form = dry.context["confirm_form"] if dry.context else None
    if form is None:
        errors = dry.context.get("shown_errors") if dry.context else dry.status_code
        raise RuntimeError(f"the import's dry run refused the file: {errors}")
    dry_seconds = time.monotonic() - started
    started = time.monotonic()
    done = client.post(
        reverse("admin:interseller_contact_process_import"),
        {name: form.initial.get(name, "") for name in form.fields},
    )
    if done.status_code != 302:
        raise RuntimeError(f"confirming the import answered {done.status_code}")
    done.dry_run_seconds = dry_seconds
    done.confirm_seconds = time.monotonic() - started
    return done


# --- large data sets with bulk_create --------------------------------------------------------


def bulk_people(
    *,
    team: Team,
    owners: list[Membership],
    sequences: list[Sequence],
    n: int,
    domain: str,
    events_per_contact: int = 0,
    synced: bool,
    site: CatsSite | None = None,
    account: CatsAccount | None = None,
    job_id: int | None = None,
    batch: int = 5000,
) -> dict[str, int]:
    """`n` contacts, each in one of `sequences`, with what the services would have written
    next to them: an EnrollmentSync row (synced with CATS ids, or never synced), and for
    synced ones the finished sync task, and `events_per_contact` events each with their
    finished event tasks. Counts are returned."""
    rng = random.Random(n)
    now = timezone.now()
    made = {"contacts": 0, "enrollments": 0, "events": 0, "tasks": 0}
    error_codes = [c for c, _ in EnrollmentSync.Error.choices if c]
    started = time.monotonic()
    for offset in range(0, n, batch):
        size = min(batch, n - offset)
        with transaction.atomic():
            contacts = Contact.objects.bulk_create(
                [
                    Contact(
                        team=team,
                        owner=owners[(offset + j) % len(owners)],
                        email=f"person{offset + j}@{domain}",
                        first_name=f"First{offset + j}",
                        last_name=f"Last{offset + j}",
                        company=f"Company {(offset + j) % 500}",
                        title="Senior Engineer",
                        phone=f"+1 555 {offset + j:07d}",
                        location="Berlin, Germany",
                        source="Benchmark",
                    )
                    for j in range(size)
                ],
                batch_size=1000,
            )
            enrollments = Enrollment.objects.bulk_create(
                [
                    Enrollment(
                        contact=c,
                        sequence=sequences[(offset + j) % len(sequences)],
                        added_by=c.owner,
                        state=Enrollment.State.ACTIVE,
                        first_messaged_at=now - timedelta(days=3) if events_per_contact else None,
                        last_messaged_at=now - timedelta(days=1) if events_per_contact else None,
                    )
                    for j, c in enumerate(contacts)
                ],
                batch_size=1000,
            )
            syncs = []
            for j, e in enumerate(enrollments):
                code = rng.choice(error_codes) if synced and rng.random() < 0.02 else ""
                syncs.append(
                    EnrollmentSync(
                        enrollment=e,
                        account=account,
                        sync_enabled=True,
                        job_id=job_id,
                        field_mapping={} if synced else None,
                        site=site if synced else None,
                        candidate_id=10_000_000 + offset + j if synced else None,
                        pipeline_id=20_000_000 + offset + j if synced else None,
                        created_candidate=synced,
                        synced_at=now if synced else None,
                        error_code=code,
                        error_message=dict(EnrollmentSync.Error.choices)[code] if code else "",
                        error_at=now if code else None,
                    )
                )
            EnrollmentSync.objects.bulk_create(syncs, batch_size=1000)
            tasks = []
            if synced:
                tasks = [
                    SyncTask(
                        kind=SyncTask.Kind.SYNC,
                        enrollment=e,
                        account=account,
                        state=SyncTask.State.DONE,
                        priority=SyncTask.Priority.LIVE,
                        attempts=1,
                        not_before=now,
                        outcome=SyncTask.Outcome.CREATED,
                    )
                    for e in enrollments
                ]
            events = []
            for e in enrollments:
                for k in range(events_per_contact):
                    kind = EmailEvent.Kind.MESSAGE_SENT if k < 2 else EmailEvent.Kind.REPLY_RECEIVED
                    events.append(
                        EmailEvent(
                            team=team,
                            enrollment=e,
                            external_id=f"bench-{e.pk}-{k}",
                            kind=kind,
                            occurred_at=now - timedelta(days=3 - k, minutes=rng.randrange(600)),
                            subject="Hello from the benchmark",
                        )
                    )
            EmailEvent.objects.bulk_create(events, batch_size=2000)
            if synced:
                tasks += [
                    SyncTask(
                        kind=SyncTask.Kind.EVENT,
                        enrollment_id=ev.enrollment_id,
                        event=ev,
                        account=account,
                        state=SyncTask.State.DONE,
                        priority=SyncTask.Priority.LIVE,
                        attempts=1,
                        not_before=now,
                        outcome=SyncTask.Outcome.DONE,
                    )
                    for ev in events
                ]
            SyncTask.objects.bulk_create(tasks, batch_size=2000)
        made["contacts"] += size
        made["enrollments"] += size
        made["events"] += len(events)
        made["tasks"] += len(tasks)
    log(f"bulk data: {made} in {time.monotonic() - started:.0f} s")
    return made


def people(**kwargs: Any) -> dict[str, int]:
    """`bulk_people`, in a few INSERT ... SELECT statements on PostgreSQL (a 100,000-contact
    set in seconds, not minutes), with dates spread over a year. Falls back to the ORM when
    the database is not PostgreSQL or a model gained a column these statements cannot fill."""
    from django.db import connection

    if connection.vendor == "postgresql":
        started = time.monotonic()
        try:
            with transaction.atomic():
                made = _people_sql(**kwargs)
        except _NeedsOrm as exc:
            log(f"bulk data through the ORM instead of SQL: {exc}")
        else:
            with connection.cursor() as cur:
                cur.execute("ANALYZE")
            log(f"bulk data (SQL): {made} in {time.monotonic() - started:.0f} s")
            return made
    made = bulk_people(**kwargs)
    spread_created_at(Contact, "created_at")
    spread_created_at(SyncTask, "created_at")
    return made


class _NeedsOrm(Exception):
    pass


def _insert_select(model, exprs: dict[str, Any], from_sql: str, params: list | None = None):
    """INSERT INTO model's table SELECT ... FROM from_sql. `exprs` maps attnames to SQL, or to
    (SQL, params). Columns not in `exprs` get now() for auto_now(_add), else what a new
    instance holds (the default, NULL or ""); a required column without any of these raises."""
    from django.db import connection
    from django.db.models import AutoField, BigAutoField

    columns, values, args = [], [], []
    for field in model._meta.concrete_fields:
        if isinstance(field, AutoField | BigAutoField):
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in exprs:
            expr = exprs[field.attname]
            sql_part, sql_args = expr if isinstance(expr, tuple) else (expr, [])
            values.append(sql_part)
            args.extend(sql_args)
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.has_default() or field.null or field.empty_strings_allowed:
            # What Model() would hold: the default, else NULL, else "" (CharField and kin).
            values.append("%s")
            args.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            raise _NeedsOrm(f"{model.__name__}.{field.name} has no value")
    unknown = set(exprs) - {f.attname for f in model._meta.concrete_fields}
    if unknown:
        raise _NeedsOrm(f"{model.__name__} has no {', '.join(sorted(unknown))}")
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {from_sql}"
    )
    sql = re.sub(r"%(?!s)", "%%", sql)  # modulo in the expressions, not a placeholder
    with connection.cursor() as cur:
        cur.execute(sql, [*args, *(params or [])])
        return cur.rowcount


def _people_sql(
    *,
    team: Team,
    owners: list[Membership],
    sequences: list[Sequence],
    n: int,
    domain: str,
    events_per_contact: int = 0,
    synced: bool,
    site: CatsSite | None = None,
    account: CatsAccount | None = None,
    job_id: int | None = None,
    batch: int = 0,
) -> dict[str, int]:
    from django.db import connection

    q = connection.ops.quote_name
    contact_t, enrollment_t = q(Contact._meta.db_table), q(Enrollment._meta.db_table)
    event_t = q(EmailEvent._meta.db_table)
    owner_ids = ",".join(str(o.pk) for o in owners)
    seq_ids = ",".join(str(s.pk) for s in sequences)
    year = 365 * 86400 / max(n, 1)  # seconds between two contacts' created_at
    made = {}
    made["contacts"] = _insert_select(
        Contact,
        {
            "team_id": str(team.pk),
            "owner_id": f"(ARRAY[{owner_ids}])[(g % {len(owners)}) + 1]",
            "email": ("'person' || g || %s", [f"@{domain}"]),
            "first_name": "'First' || g",
            "last_name": "'Last' || g",
            "company": "'Company ' || (g % 500)",
            "title": "'Senior Engineer'",
            "phone": "'+1 555 ' || lpad(g::text, 7, '0')",
            "location": "'Berlin, Germany'",
            "source": "'Benchmark'",
            "created_at": f"now() - make_interval(secs => ({n} - g) * {year})",
            "updated_at": "now()",
        },
        f"generate_series(0, {n - 1}) AS g",
    )
    messaged = "now() - interval '3 days'" if events_per_contact else "NULL"
    last = "now() - interval '1 day'" if events_per_contact else "NULL"
    made["enrollments"] = _insert_select(
        Enrollment,
        {
            "contact_id": "c.id",
            "sequence_id": f"(ARRAY[{seq_ids}])[(c.id % {len(sequences)}) + 1]",
            "added_by_id": "c.owner_id",
            "added_at": "c.created_at",
            "state": "'active'",
            "first_messaged_at": messaged,
            "last_messaged_at": last,
        },
        f"{contact_t} c WHERE c.team_id = {team.pk}",
    )
    of_team = (
        f"{enrollment_t} e JOIN {contact_t} c ON c.id = e.contact_id WHERE c.team_id = {team.pk}"
    )
    # 2 % carry an integration error, as a real list would.
    error = "CASE WHEN e.id % 50 = 0 THEN 'rejected' ELSE '' END" if synced else "''"
    _insert_select(
        EnrollmentSync,
        {
            "enrollment_id": "e.id",
            "account_id": str(account.pk) if account else "NULL",
            "sync_enabled": "true",
            "job_id": str(job_id) if job_id else "NULL",
            "field_mapping": "'{}'::jsonb" if synced else "NULL",
            "site_id": str(site.pk) if synced and site else "NULL",
            "candidate_id": "10000000 + e.id" if synced else "NULL",
            "pipeline_id": "20000000 + e.id" if synced else "NULL",
            "created_candidate": "true" if synced else "false",
            "synced_at": "e.added_at + interval '1 minute'" if synced else "NULL",
            "error_code": error,
            "error_message": (
                "CASE WHEN e.id % 50 = 0 THEN 'Refused by CATS: benchmark' ELSE '' END"
                if synced
                else "''"
            ),
            "error_at": "CASE WHEN e.id % 50 = 0 THEN now() END" if synced else "NULL",
        },
        of_team,
    )
    made["events"] = 0
    if events_per_contact:
        made["events"] = _insert_select(
            EmailEvent,
            {
                "team_id": str(team.pk),
                "enrollment_id": "e.id",
                "external_id": "'bench-' || e.id || '-' || k",
                "kind": "CASE WHEN k < 2 THEN 'message_sent' ELSE 'reply_received' END",
                "occurred_at": "now() - make_interval(days => 3 - k, mins => (e.id % 600)::int)",
                "subject": "'Hello from the benchmark'",
            },
            f"{enrollment_t} e JOIN {contact_t} c ON c.id = e.contact_id "
            f"CROSS JOIN generate_series(0, {events_per_contact - 1}) AS k "
            f"WHERE c.team_id = {team.pk}",
        )
    made["tasks"] = 0
    if synced:
        task = {
            "account_id": str(account.pk) if account else "NULL",
            "state": "'done'",
            "priority": "0",
            "attempts": "1",
            "not_before": "now()",
        }
        made["tasks"] = _insert_select(
            SyncTask,
            {
                **task,
                "kind": "'sync'",
                "enrollment_id": "e.id",
                "outcome": "'created'",
                "created_at": "e.added_at",
            },
            of_team,
        )
        if events_per_contact:
            made["tasks"] += _insert_select(
                SyncTask,
                {
                    **task,
                    "kind": "'event'",
                    "enrollment_id": "ev.enrollment_id",
                    "event_id": "ev.id",
                    "outcome": "'done'",
                    "created_at": "ev.occurred_at",
                },
                f"{event_t} ev WHERE ev.team_id = {team.pk}",
            )
    return made


def spread_created_at(model, field: str, days: int = 365) -> None:
    """Spread a column of timestamps over `days`, newest last, in one statement (PostgreSQL)
    or per row (SQLite)."""
    from django.db import connection

    table = model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {table} SET {field} = now() - make_interval(secs => "
                f"(SELECT max(id) FROM {table}) - id) * %s",
                [days * 86400 / max(model.objects.count(), 1)],
            )
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {table}")


def fake_connection(owner: Membership, *, cats_id: int = 1) -> tuple[CatsSite, CatsAccount]:
    """A connected account without asking CATS (for benches that never send a request)."""
    from cats_sync import crypto

    site = CatsSite.objects.create(cats_id=cats_id, subdomain=f"bench{cats_id}")
    account = CatsAccount.objects.create(
        membership=owner,
        subdomain=site.subdomain,
        api_key_encrypted=crypto.encrypt("bench-key"),
        site=site,
        status=CatsAccount.Status.CONNECTED,
        connected_at=timezone.now(),
        sync_mode=CatsAccount.SyncMode.ON_ADD,
        default_job_id=1,
    )
    return site, account


__all__ = [
    "JOB",
    "people",
    "PASSWORD",
    "SequenceSync",
    "add_contacts",
    "admin_import",
    "bulk_people",
    "cats_site",
    "connect",
    "fake_connection",
    "open_tasks",
    "record_event",
    "resync",
    "sequence_for",
    "sheet_csv",
    "spread_created_at",
    "synced",
    "task_errors",
    "task_states",
    "team_with_owner",
]
