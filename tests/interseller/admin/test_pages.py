"""The core admin's pages for an owner: every changelist, search, add and change page; query
counts that do not grow with rows; odd query strings ignored, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from interseller import services
from interseller.models import Contact, EmailEvent, Enrollment, Group, Membership, Sequence
from tests.factories import ContactFactory, GroupFactory, SequenceFactory
from tests.support.admin import page_data, url

pytestmark = pytest.mark.django_db


ADMIN_MODELS = [
    "team",
    "membership",
    "group",
    "sequence",
    "contact",
    "enrollment",
    "emailevent",
    "apitoken",
]


# --- pages render for owners, with search ------------------------------------------------------


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_owner_sees_every_changelist_and_search_works(world, login, model):
    client = login(world["a"]["graph"].owner)
    assert client.get(url(model)).status_code == 200
    assert client.get(url(model), {"q": "a"}).status_code == 200


def test_contact_search_finds_by_email_and_company(world, login):
    client = login(world["a"]["graph"].owner)
    page = client.get(url("contact"), {"q": "mine-a"}).content.decode()
    assert "mine-a@x.example" in page
    assert "boss-a@x.example" not in page


@pytest.mark.parametrize(
    "model", ["sequence", "contact", "enrollment", "group", "membership", "apitoken"]
)
def test_owner_add_pages_render(world, login, model):
    client = login(world["a"]["graph"].owner)
    assert client.get(url(model, "add")).status_code == 200


def test_owner_change_pages_render(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    for model, obj in [
        ("team", a["graph"].team),
        ("membership", a["graph"].member),
        ("group", a["group"]),
        ("sequence", a["own_seq"]),
        ("contact", a["mine"]),
        ("enrollment", a["enrollment"]),
        ("emailevent", a["event"]),
        ("apitoken", a["token"]),
    ]:
        assert client.get(url(model, "change", obj.pk)).status_code == 200, model


def test_contact_add_normalises_email_and_refuses_duplicates(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    form = {
        "team": a["graph"].team.pk,
        "owner": a["graph"].owner.pk,
        "email": "  New.Person@Example.COM ",
        "first_name": "New",
        "last_name": "Person",
        "enrollments-TOTAL_FORMS": 0,
        "enrollments-INITIAL_FORMS": 0,
    }
    response = client.post(url("contact", "add"), form)
    assert response.status_code == 302
    assert Contact.objects.filter(team=a["graph"].team, email="new.person@example.com").exists()
    response = client.post(url("contact", "add"), {**form, "email": "new.person@example.com"})
    assert response.status_code == 200
    assert Contact.objects.filter(email="new.person@example.com").count() == 1


def test_sequence_add_refuses_owner_from_another_team(world, login):
    client = login(world["a"]["graph"].owner)
    response = client.post(
        url("sequence", "add"),
        {
            "team": world["a"]["graph"].team.pk,
            "owner": world["b"]["graph"].owner.pk,
            "title": "Smuggled",
            "enrollments-TOTAL_FORMS": 0,
            "enrollments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert not Sequence.objects.filter(title="Smuggled").exists()


def test_enrollment_add_goes_through_service_and_refuses_a_second_add(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    response = client.post(
        url("enrollment", "add"), {"contact": a["theirs"].pk, "sequence": a["own_seq"].pk}
    )
    assert response.status_code == 302
    assert Enrollment.objects.filter(contact=a["theirs"], sequence=a["own_seq"]).exists()
    response = client.post(
        url("enrollment", "add"), {"contact": a["theirs"].pk, "sequence": a["own_seq"].pk}
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Enrollment.objects.filter(contact=a["theirs"], sequence=a["own_seq"]).count() == 1


# --- performance: query count independent of rows ---------------------------------------------


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_changelist_query_count_does_not_grow_with_rows(world, login, model):
    a = world["a"]
    client = login(a["graph"].owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url(model)).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    graph = a["graph"]
    for i in range(6):
        seq = SequenceFactory(team=graph.team, owner=graph.member)
        c = ContactFactory(team=graph.team, owner=graph.member)
        enr = services.contact_add_to_sequence(contact=c, sequence=seq).enrollment
        services.email_event_record(
            enrollment=enr,
            external_id=f"more-{i}",
            kind="message_sent",
            occurred_at="2026-11-02T10:00:00Z",
        )
        GroupFactory(team=graph.team).members.add(graph.member)
        services.api_token_create(team=graph.team, name=f"t{i}")
        services.teammate_add(team=graph.team, email=f"extra{i}@acme.example")
    assert count() == before


def test_event_admin_is_read_only(world, login):
    client = login(world["a"]["graph"].owner)
    assert client.get(url("emailevent", "add")).status_code == 403
    assert client.get(url("emailevent"), {"occurred_at__year": 2026}).status_code == 200
    assert EmailEvent.objects.count() == 2
    assert Group.objects.count() == 2


# --- odd query strings: ignored, never a 500 (test_garbage.py walks them all) ---------------


@pytest.fixture
def two_team_owner(world):
    """The owner of team a, also a member of team b: the team filter shows for them."""
    owner = world["a"]["graph"].owner
    Membership.objects.create(user=owner.user, team=world["b"]["graph"].team)
    return owner


@pytest.mark.parametrize(
    "model, query",
    [
        ("contact", {"owner": "abc"}),
        ("contact", {"sequence": "abc"}),
        ("contact", {"team": "abc"}),
        ("enrollment", {"sequence": "abc"}),
        ("enrollment", {"team": "abc"}),
        ("enrollment", {"added_at__year": "abc"}),
        ("enrollment", {"added_at__year": "9999"}),
        ("sequence", {"owner": "x"}),
        ("sequence", {"team": "abc"}),
        ("sequence", {"archived__exact": "abc"}),
        ("emailevent", {"occurred_at__year": "2026", "occurred_at__month": "13"}),
        ("emailevent", {"occurred_at__year": "9999", "occurred_at__month": "12"}),
    ],
)
def test_bad_filter_values_are_ignored_or_redirected(world, two_team_owner, login, model, query):
    client = login(two_team_owner)
    response = client.get(url(model), query)
    if response.status_code == 302:  # Django's "invalid filter" redirect
        assert response["Location"].endswith("?e=1")
    else:
        assert response.status_code == 200
        assert response.context["cl"].result_count > 0  # ignored: every row listed


def test_a_valid_filter_value_still_filters(world, two_team_owner, login):
    a = world["a"]
    client = login(two_team_owner)
    listing = client.get(url("contact"), {"owner": a["graph"].member.pk})
    assert list(listing.context["cl"].result_list) == [a["mine"]]
    listing = client.get(url("contact"), {"team": a["graph"].team.pk})
    assert {c.team_id for c in listing.context["cl"].result_list} == {a["graph"].team.pk}


def test_add_page_ignores_initial_values_that_are_not_ids(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    assert client.get(url("enrollment", "add"), {"contact": "abc"}).status_code == 200
    page = client.get(url("enrollment", "add"), {"contact": a["mine"].pk, "sequence": "1'"})
    assert page.status_code == 200
    assert page.context["adminform"].form.initial == {"contact": str(a["mine"].pk)}


def filter_choices(client, model: str, parameter: str) -> set[str]:
    listing = client.get(url(model))
    specs = [
        s
        for s in listing.context["cl"].filter_specs
        if getattr(s, "parameter_name", "") == parameter
    ]
    return {label for spec in specs for _, label in spec.lookup_choices}


def test_member_filters_offer_only_their_own_sequences_and_themselves(world, login):
    a = world["a"]
    client = login(a["graph"].member)
    assert filter_choices(client, "contact", "sequence") == {"a member seq"}
    assert filter_choices(client, "enrollment", "sequence") == {"a member seq"}
    assert filter_choices(client, "contact", "owner") == {str(a["graph"].member)}
    assert filter_choices(client, "contact", "team") == set()  # one team: no team filter
    owner = login(a["graph"].owner)
    assert filter_choices(owner, "contact", "sequence") == {"a member seq", "a owner seq"}


@pytest.mark.parametrize("model", ["membership", "apitoken", "group"])
def test_an_add_page_preselects_the_team_only_when_there_is_one_to_choose(world, login, model):
    owner = world["a"]["graph"].owner
    client = login(owner)
    form = client.get(url(model, "add")).context["adminform"].form
    assert form.initial.get("team") == world["a"]["graph"].team.pk
    # Managing a second team, the person chooses: nothing is chosen for them.
    Membership.objects.create(
        user=owner.user, team=world["b"]["graph"].team, role=Membership.Role.MANAGER
    )
    form = client.get(url(model, "add")).context["adminform"].form
    assert "team" not in form.initial


def test_a_stopped_enrollment_shows_why_and_when(team_a, sequence_a, login):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="s@example.com")
    enrollment = services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment
    services.enrollment_stop(
        enrollment_id=enrollment.pk,
        reason="Moved to “Submitted” in CATS",
        at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )

    html = login(team_a.owner).get(url("enrollment", "change", enrollment.pk)).content.decode()

    assert "Moved to “Submitted” in CATS" in html
    assert '<div class="readonly">2026-11-20 09:00</div>' in html
    assert '<div class="readonly">Stopped</div>' in html


def _grow(graph, n: int, start: int = 0) -> None:
    seq = SequenceFactory(team=graph.team, owner=graph.member, title=f"grown {start}")
    for i in range(start, start + n):
        c = ContactFactory(
            team=graph.team, owner=graph.member, email=f"grown{i}@x.example", source="Fair"
        )
        enr = services.contact_add_to_sequence(contact=c, sequence=seq).enrollment
        services.email_event_record(
            enrollment=enr,
            external_id=f"grown-{i}",
            kind="message_sent",
            occurred_at=f"2026-{1 + i % 11:02d}-03T10:00:00Z",
        )


@pytest.mark.parametrize(
    ("model", "query"),
    [
        ("contact", {}),
        ("contact", {"p": "last"}),
        ("contact", {"sequence": "seq"}),
        ("contact", {"source": "Fair"}),
        ("enrollment", {"p": "last"}),
        ("enrollment", {"sequence": "seq"}),
        ("emailevent", {}),
        ("emailevent", {"p": "last"}),
        ("emailevent", {"occurred_at__year": "2026"}),
        ("emailevent", {"occurred_at__year": "2026", "occurred_at__month": "3"}),
    ],
)
def test_list_pages_with_many_rows_take_as_many_queries_as_with_few(
    world, login, model, query, monkeypatch, django_assert_max_num_queries
):
    """Last pages, filters and the date drill-down included: no query per row, and none that
    grows with the rows of the list (a page of 5 rows of 8 and of 40 take the same)."""
    from django.contrib import admin

    graph = world["a"]["graph"]
    models = {"contact": Contact, "enrollment": Enrollment, "emailevent": EmailEvent}
    monkeypatch.setattr(admin.site._registry[models[model]], "list_per_page", 5)
    client = login(graph.owner)

    def params() -> dict:
        values = dict(query)
        if values.get("sequence") == "seq":
            values["sequence"] = Sequence.objects.get(title="grown 0").pk
        if values.get("p") == "last":
            values["p"] = client.get(url(model)).context["cl"].paginator.num_pages
        return values

    _grow(graph, 8)
    first = params()
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url(model), first).status_code == 200
    few = len(ctx.captured_queries)
    _grow(graph, 32, start=8)
    bigger = params()
    assert bigger.get("p", 0) >= first.get("p", 0)
    with django_assert_max_num_queries(few):
        response = client.get(url(model), bigger)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) > 0


def test_event_dates_are_offered_from_the_first_to_the_last(world, login):
    graph = world["a"]["graph"]
    _grow(graph, 3)  # January to March 2026, and world's November 2026
    client = login(graph.owner)
    html = client.get(url("emailevent")).content.decode()
    assert "occurred_at__year=2026" in html
    html = client.get(url("emailevent"), {"occurred_at__year": "2026"}).content.decode()
    months = [f"occurred_at__month={m}&" for m in range(1, 12)]
    assert all(m in html for m in months)  # every month between, April's empty one included
    assert "occurred_at__month=12&" not in html


def test_source_filter_offers_the_team_sources_and_filters(world, login):
    graph = world["a"]["graph"]
    _grow(graph, 2)
    ContactFactory(team=world["b"]["graph"].team, owner=world["b"]["graph"].owner, source="Other")
    client = login(graph.owner)
    assert filter_choices(client, "contact", "source") >= {"Fair"}
    assert "Other" not in filter_choices(client, "contact", "source")
    listing = client.get(url("contact"), {"source": "Fair"})
    assert {c.email for c in listing.context["cl"].result_list} == {
        "grown0@x.example",
        "grown1@x.example",
    }


def test_a_far_page_shows_the_same_rows_as_a_plain_offset(world, login, monkeypatch):
    from django.contrib import admin

    from interseller.admin.base import FarPagePaginator

    graph = world["a"]["graph"]
    _grow(graph, 12)
    client = login(graph.owner)
    monkeypatch.setattr(admin.site._registry[Contact], "list_per_page", 5)
    pages = {}
    for far in (10_000, 5):  # never, then from the second page on
        monkeypatch.setattr(FarPagePaginator, "far", far)
        pages[far] = [
            [c.email for c in client.get(url("contact"), {"p": p}).context["cl"].result_list]
            for p in (1, 2, 3)
        ]
    assert pages[5] == pages[10_000]
    assert len({e for page in pages[5] for e in page}) == 14  # 12 grown + 2 of the world


def test_a_person_stopping_an_enrollment_goes_through_the_service_and_it_stays_stopped(
    team_a, sequence_a, login
):
    contact = ContactFactory(team=team_a.team, owner=team_a.member, email="by-hand@example.com")
    enrollment = services.contact_add_to_sequence(contact=contact, sequence=sequence_a).enrollment
    client = login(team_a.owner)
    page = client.get(url("enrollment", "change", enrollment.pk))
    data = page_data(page)
    data["state"] = Enrollment.State.STOPPED
    assert client.post(url("enrollment", "change", enrollment.pk), data).status_code == 302

    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.STOPPED
    # Dated and explained, so the enrollments API lists it for the outreach engine.
    assert enrollment.state_changed_at is not None and enrollment.stopped_at is not None
    assert enrollment.stopped_reason == f"Stopped by {team_a.owner.user.get_full_name()}"

    # Final: the state is no longer a field, and a hand-made post cannot restart it.
    page = client.get(url("enrollment", "change", enrollment.pk))
    assert "state" not in page.context["adminform"].form.fields
    data = page_data(page)
    client.post(url("enrollment", "change", enrollment.pk), {**data, "state": "active"})
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.STOPPED
