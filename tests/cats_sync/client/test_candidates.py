"""CatsClient's candidates against the sandbox: create (custom fields inline), validation,
duplicates, update, and the email lookup with its paging."""

from __future__ import annotations

import pytest

from cats_sandbox import job
from cats_sync.client import CatsRejected
from tests.support.cats import make_client, new_candidate, route_count

# ---------------------------------------------------------------- candidates


def test_create_candidate_with_custom_fields_inline(cats_sandbox, cats, site):
    fields = site.custom_fields
    candidate_id = cats.create_candidate(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+4930123",
        title="Engineer",
        current_employer="Analytical Engines",
        source="Interseller",
        custom_fields=[
            {"id": fields["Sequence Title"], "value": "Backend engineers"},
            {"id": fields["Bounced"], "value": False},
            {"id": fields["First messaged at"], "value": "2024-03-01"},
            {"id": fields["Lead Temperature"], "value": "Warm"},
        ],
    )

    assert cats.requests_made == 1
    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert stored["id"] == candidate_id
    assert stored["emails"] == {"primary": "ada@example.com", "secondary": None}
    assert stored["phones"][0]["number"] == "+4930123"
    assert stored["current_employer"] == "Analytical Engines"
    assert stored["custom_fields_by_name"] == {
        "Sequence Title": "Backend engineers",
        "Bounced": False,
        "First messaged at": "2024-03-01",
        "Lead Temperature": "Warm",
    }
    read = cats.get_candidate(candidate_id)
    assert read["emails"]["primary"] == "ada@example.com"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"first_name": ""}, "first_name is required"),
        ({"email": "not-an-email"}, "Invalid email"),
    ],
)
def test_create_candidate_validation_errors_carry_cats_message(cats, kwargs, fragment):
    args = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", **kwargs}

    with pytest.raises(CatsRejected) as caught:
        cats.create_candidate(**args)

    assert caught.value.status == 422
    assert fragment in caught.value.message
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Lead Temperature", "Lukewarm"),
        ("First messaged at", "2024-03-01T10:00:00Z"),
        ("Bounced", "yes"),
    ],
)
def test_custom_field_values_that_do_not_fit_are_rejected(cats_sandbox, cats, site, field, value):
    with pytest.raises(CatsRejected) as caught:
        new_candidate(cats, custom_fields=[{"id": site.custom_fields[field], "value": value}])

    assert caught.value.status == 422
    assert field in caught.value.message
    assert cats_sandbox.snapshot(site.id)["candidates"] == []


def test_check_duplicate_refuses_a_second_candidate_with_the_same_email(cats):
    new_candidate(cats, email="ada@example.com")

    with pytest.raises(CatsRejected):
        new_candidate(cats, email="ADA@example.com", check_duplicate=True)


def test_update_candidate_fills_in_the_names_cats_requires(cats_sandbox, cats, site):
    candidate_id = new_candidate(cats)

    cats.update_candidate(candidate_id, title="CTO", email="ada@new.example.com")

    (stored,) = cats_sandbox.snapshot(site.id)["candidates"]
    assert (stored["first_name"], stored["last_name"]) == ("Ada", "Lovelace")
    assert stored["title"] == "CTO"
    assert stored["emails"]["primary"] == "ada@new.example.com"
    assert route_count(cats_sandbox, "GET /candidates/{id}") == 1


# ---------------------------------------------------------------- email lookup


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_find_by_emails_matches_primary_and_secondary_ignoring_case(cats_sandbox, case_sensitive):
    site = cats_sandbox.create_site(
        search_case_sensitive=case_sensitive,
        candidates=[
            {"first_name": "A", "last_name": "One", "emails": {"primary": "ada@example.com"}},
            {
                "first_name": "A",
                "last_name": "Two",
                "emails": {"primary": "other@example.com", "secondary": "ada@example.com"},
            },
            {"first_name": "B", "last_name": "Three", "emails": {"primary": "bob@example.com"}},
            {"first_name": "C", "last_name": "Near", "emails": {"primary": "ada@example.co"}},
        ],
    )
    cats = make_client(cats_sandbox, site.api_key)

    found = cats.find_candidates_by_emails(
        [" ADA@Example.com ", "bob@example.com", "nobody@example.com"]
    )

    assert sorted(c["last_name"] for c in found["ada@example.com"]) == ["One", "Two"]
    assert [c["last_name"] for c in found["bob@example.com"]] == ["Three"]
    assert found["nobody@example.com"] == []
    assert cats.requests_made == 1


def test_find_by_emails_compares_rows_itself(cats):
    # Were CATS' search looser than asked, a near miss must still not count as a match.
    rows = {"_embedded": {"candidates": [{"id": 1, "emails": {"primary": "x@example.com"}}]}}
    cats._json = lambda *a, **k: rows  # type: ignore[method-assign]

    assert cats.find_candidates_by_emails(["ada@example.com"]) == {"ada@example.com": []}


def test_find_by_emails_chunks_many_emails_into_few_searches(cats_sandbox, cats):
    emails = [f"person{i}@example.com" for i in range(60)]

    found = cats.find_candidates_by_emails(emails)

    assert set(found) == set(emails)
    assert route_count(cats_sandbox, "POST /candidates/search") == 3


def test_search_pages_past_100_rows(cats_sandbox):
    shared = [
        {"first_name": "P", "last_name": str(i), "emails": {"primary": "shared@example.com"}}
        for i in range(130)
    ]
    site = cats_sandbox.create_site(candidates=shared)
    cats = make_client(cats_sandbox, site.api_key)

    found = cats.find_candidates_by_email("Shared@example.com")

    assert len(found) == 130
    assert route_count(cats_sandbox, "POST /candidates/search") == 2


@pytest.mark.parametrize("link_style", ["absolute", "relative"])
@pytest.mark.parametrize("total_style", ["int", "string", "null"])
def test_lists_page_on_next_links_whatever_the_total(cats_sandbox, link_style, total_style):
    site = cats_sandbox.create_site(
        jobs=[job(f"Job {i}") for i in range(205)],
        link_style=link_style,
        total_style=total_style,
    )
    cats = make_client(cats_sandbox, site.api_key)

    jobs = cats.list_jobs()

    assert [j["title"] for j in jobs] == [f"Job {i}" for i in range(205)]
    assert cats.requests_made == 3
