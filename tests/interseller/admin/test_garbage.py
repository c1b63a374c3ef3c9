"""Garbage in an admin URL never answers 500.

Every list filter, date drill-down, search box, ordering and add-page initial value of every
registered ModelAdmin is walked, found from the admin registry: a filter or admin added later is
walked too, without touching this file.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.filters import FieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import CharField, TextField
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cats_sync.models import CatsJob, EnrollmentSync, ResyncRun, SyncTask
from interseller import services
from interseller.models import ImportJob, Membership
from tests.factories import ContactFactory, MembershipFactory, SequenceFactory, UserFactory
from tests.support.cats import connect

pytestmark = pytest.mark.django_db

BIG_INT = "99999999999999999999"  # past 64 bits
GARBAGE = ["abc", "-1", "1'", "%00", "\x00", "\u202e", BIG_INT, "x" * 5000]
# What a form field's initial value can trip on: not a number, past 64 bits, NUL, too long.
INITIAL_GARBAGE = ["abc", "1'", "\x00", BIG_INT, "x" * 5000]
# What Django's date drill-down turns into dates: not numbers, out of range, overflowing.
DATE_GARBAGE = [
    {"year": "abc"},
    {"year": "0"},
    {"year": "-1"},
    {"year": "9999"},
    {"year": "99999"},
    {"year": "2026", "month": "13"},
    {"year": "2026", "month": "0"},
    {"year": "2026", "month": "abc"},
    {"year": "9999", "month": "12"},
    {"year": "2026", "month": "2", "day": "30"},
    {"year": "2026", "month": "2", "day": "abc"},
    {"year": "9999", "month": "12", "day": "31"},
    {"month": "13"},
    {"month": "abc"},
    {"day": "abc"},
    {"day": "32"},
]
ROLES = ["owner", "member", "superuser"]


def registered() -> list[admin.ModelAdmin]:
    return sorted(admin.site._registry.values(), key=lambda a: a.opts.label)


ADMINS = [a.opts.label for a in registered()]


def admin_of(label: str) -> admin.ModelAdmin:
    return next(a for a in registered() if a.opts.label == label)


def admin_url(model_admin: admin.ModelAdmin, view: str) -> str:
    opts = model_admin.opts
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}")


def filter_parameters(model_admin: admin.ModelAdmin, request) -> list[str]:
    """The query-string names each list filter reads, as Django builds the filters."""
    names: list[str] = []
    model = model_admin.model
    for entry in model_admin.get_list_filter(request):
        if isinstance(entry, type):
            names += entry(request, {}, model, model_admin).expected_parameters()
            continue
        path, filter_class = entry if isinstance(entry, tuple | list) else (entry, None)
        field = get_fields_from_path(model, path)[-1]
        filter_class = filter_class or FieldListFilter.create
        spec = filter_class(field, request, {}, model, model_admin, field_path=path)
        names += [*spec.expected_parameters(), f"{path}__in"]
    return list(dict.fromkeys(names))


@pytest.fixture
def people(team_a, team_b):
    """An owner who is also a member of a second team (so team filters show), a member and a
    superuser."""
    MembershipFactory(team=team_b.team, user=team_a.owner.user, role=Membership.Role.MEMBER)
    return {
        "owner": team_a.owner.user,
        "member": team_a.member.user,
        "superuser": UserFactory(is_superuser=True),
    }


@pytest.fixture
def rows(people, team_a, team_b, cats_sandbox, settings):
    """Every kind of row the admins list, in both teams, so each page renders rows."""
    settings.CATS_API_URL = cats_sandbox.url
    site = cats_sandbox.create_site()
    account = connect(team_a.member, site)
    for graph in (team_a, team_b):
        sequence = SequenceFactory(team=graph.team, owner=graph.member, title="Garbage walk")
        contact = ContactFactory(team=graph.team, owner=graph.member)
        enrollment = services.contact_add_to_sequence(contact=contact, sequence=sequence).enrollment
        services.email_event_record(
            enrollment=enrollment,
            external_id=f"garbage-{graph.team.pk}",
            kind="message_sent",
            occurred_at="2026-11-01T10:00:00Z",
            subject="Hello",
        )
        run = ResyncRun.objects.create(
            team=graph.team, description="garbage run", started_by=graph.member.user
        )
        SyncTask.objects.create(
            kind=SyncTask.Kind.SYNC,
            enrollment=enrollment,
            run=run,
            state=SyncTask.State.FAILED,
            not_before=timezone.now(),
        )
        EnrollmentSync.objects.update_or_create(
            enrollment=enrollment, defaults={"error_code": EnrollmentSync.Error.REJECTED}
        )
        ImportJob.objects.create(team=graph.team, owner=graph.member, file_name="c.csv")
        services.api_token_create(team=graph.team, name="engine")
    CatsJob.objects.create(site=account.site, cats_id=1, title="Job")


# Upstream admins (not ours to change) that still answer 500 to a superuser, by admin and
# parameter, with the values that do it (None: every value). Reported upstream-worthy bugs.
UPSTREAM_500S: dict[tuple[str, str], set[str] | None] = {
    # Django's UserAdmin: SQLite refuses an integer past 64 bits when the query runs
    # (PostgreSQL compares it).
    ("auth.User", "groups__exact"): {BIG_INT},
    ("auth.User", "groups__in"): {BIG_INT},
    # django-q2's Schedule add page: Django's date-and-time widget fails on any text given as
    # the initial value of a date-time field.
    ("django_q.Schedule", "next_run"): None,
}


def upstream_500(label: str, query: dict[str, str]) -> bool:
    for name, value in query.items():
        values = UPSTREAM_500S.get((label, name), set())
        if values is None or value in values:
            return True
    return False


def walk(client, label: str, path: str, queries: list[dict[str, str]]) -> str:
    """The queries that answered 5xx, one a line, with the error; empty when none did."""
    if client.get(path).status_code == 403:  # checked before any parameter is read
        return ""
    failures = []
    for query in queries:
        if upstream_500(label, query):
            continue
        try:
            status = client.get(path, query).status_code
        except Exception as exc:  # the test client re-raises what the view raised
            status = f"{type(exc).__name__}: {str(exc)[:80]}"
        else:
            if status < 500:
                continue
        shown = {k: v if len(v) < 20 else f"{v[:5]}…({len(v)})" for k, v in query.items()}
        failures.append(f"{path} {shown!r} → {status}")
    return "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", ADMINS)
def test_changelist_survives_garbage_in_every_filter_search_and_ordering(
    rows, people, client, role, label
):
    model_admin = admin_of(label)
    request = RequestFactory().get("/")
    request.user = people["superuser"]
    names = [*filter_parameters(model_admin, request), "q", "o"]
    queries = [{name: value} for name in names for value in GARBAGE]
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        queries += [{f"{field}__{k}": v for k, v in bad.items()} for bad in DATE_GARBAGE]
    queries += [{"p": "abc"}, {"p": "-1"}, {"p": BIG_INT}, {"o": "1.-2.abc"}]
    client.force_login(people[role])
    failures = walk(client, label, admin_url(model_admin, "changelist"), queries)
    assert not failures, failures


# Initial data is read the same way for every role: the owner has scoped choices, the
# superuser every admin.
@pytest.mark.parametrize("role", ["owner", "superuser"])
@pytest.mark.parametrize("label", ADMINS)
def test_add_page_survives_garbage_initial_data(rows, people, client, role, label):
    model_admin = admin_of(label)
    try:
        path = admin_url(model_admin, "add")
    except NoReverseMatch:
        pytest.skip("no add page")
    # Every field but free text, which takes any text as its initial value.
    names = [
        f.name
        for f in model_admin.opts.get_fields()
        if f.concrete and (f.is_relation or f.choices or not isinstance(f, CharField | TextField))
    ]
    queries = [{name: value} for name in names for value in INITIAL_GARBAGE]
    client.force_login(people[role])
    failures = walk(client, label, path, queries)
    assert not failures, failures


def test_a_nul_in_any_query_string_is_a_400_before_any_view_runs(team_a, login):
    from interseller.middleware import MSG_NUL_IN_QUERY

    client = login(team_a.owner)
    for path in ("/admin/interseller/contact/", "/admin/django_q/success/", "/api/v1/events"):
        response = client.get(path, {"q": "a\x00b"})
        assert response.status_code == 400
        assert response.content.decode() == MSG_NUL_IN_QUERY
