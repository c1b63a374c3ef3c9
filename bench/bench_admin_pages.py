"""Admin list pages at 100,000 contacts and 300,000 email events, as a team owner: response
time over real HTTP, and SQL queries per page.

    .venv/bin/python bench/bench_admin_pages.py [--strict]

Data (scenario.people: INSERT ... SELECT on PostgreSQL, bulk_create elsewhere, with every row
the services would have written): one team with an owner and three teammates, five sequences,
100,000 contacts (BENCH_ADMIN_CONTACTS; small: 10,000) each enrolled in one sequence, three
email events each (300,000), an EnrollmentSync row each (synced, with CATS ids; 2 % carry an
integration error), and the finished sync task of each contact and of each event (400,000
SyncTask rows). Contacts' `created_at` is spread over a year. Tables are ANALYZEd. PostgreSQL
when it is running (SQLite otherwise).

Timing: gunicorn as in the Procfile (3 workers, DEBUG on as `make bench` runs everything),
signed in through the login form; per page 2 warm-up requests, then 20 (BENCH_ADMIN_REQUESTS)
one after another; p50 and p95. Target p50 < 300 ms.
Queries: the same pages rendered in-process (django.test.Client) under CaptureQueriesContext,
once with the admin's list_per_page (100) and once with 10 rows a page: "constant" means the
two counts are equal (no query per row). The slowest statements go to the JSON.
"""

from __future__ import annotations

import math
import time

import harness

h = harness.Harness("admin_pages", sandbox=False)
N = harness.scaled(100_000, 10_000, env="BENCH_ADMIN_CONTACTS")
REQUESTS = harness.scaled(20, 8, env="BENCH_ADMIN_REQUESTS")


def build():
    import scenario as sc

    from interseller import services
    from interseller.models import Membership

    team, owner = sc.team_with_owner("Admin pages", password=sc.PASSWORD)
    members = [owner] + [
        services.teammate_add(team=team, email=f"{role}{i}@admin-pages.example", role=role)
        for i, role in enumerate(
            [Membership.Role.MANAGER, Membership.Role.MEMBER, Membership.Role.MEMBER]
        )
    ]
    sequences = [sc.sequence_for(members[i % 4], f"Admin pages sequence {i}") for i in range(5)]
    site, account = sc.fake_connection(owner)
    sc.people(
        team=team,
        owners=members,
        sequences=sequences,
        n=N,
        domain="admin-pages.example",
        events_per_contact=3,
        synced=True,
        site=site,
        account=account,
        job_id=1,
    )
    return team, owner, sequences


def main() -> None:
    import requests
    import scenario as sc
    from django.contrib import admin
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cats_sync.models import SyncTask
    from interseller.models import Contact, EmailEvent, Enrollment

    team, owner, sequences = build()
    last = math.ceil(N / 100)
    pages = [
        ("contacts", "/admin/interseller/contact/", Contact),
        ("contacts, last page", f"/admin/interseller/contact/?p={last}", Contact),
        (
            "contacts, filtered by sequence",
            f"/admin/interseller/contact/?sequence={sequences[0].pk}",
            Contact,
        ),
        ("enrollments", "/admin/interseller/enrollment/", Enrollment),
        ("email events", "/admin/interseller/emailevent/", EmailEvent),
        ("sync tasks", "/admin/cats_sync/synctask/", SyncTask),
    ]

    # Queries, in process.
    client = sc.admin_client(owner.user)
    queries: dict[str, dict] = {}
    for label, url, model in pages:
        model_admin = admin.site._registry[model]
        default = model_admin.list_per_page
        counts = {}
        slowest = []
        for per_page in (default, 10):
            model_admin.list_per_page = per_page
            page_url = url
            if "?p=" in url:
                page_url = url.replace(f"p={last}", f"p={math.ceil(N / per_page)}")
            try:
                client.get(page_url)  # warm caches (content types, sessions)
                with CaptureQueriesContext(connection) as ctx:
                    response = client.get(page_url)
            finally:
                model_admin.list_per_page = default
            if response.status_code != 200:
                raise RuntimeError(f"{page_url} answered {response.status_code}")
            counts[per_page] = len(ctx.captured_queries)
            if per_page == default:
                slowest = sorted(ctx.captured_queries, key=lambda q: -float(q.get("time") or 0))[:3]
        queries[label] = {
            "per_page": counts,
            "slowest": [{"ms": float(q["time"]) * 1000, "sql": q["sql"][:600]} for q in slowest],
        }

    # Time, over HTTP.
    web = h.start_web()
    session = requests.Session()
    session.get(f"{web}/admin/login/", timeout=30)
    login = session.post(
        f"{web}/admin/login/?next=/admin/",
        data={
            "username": owner.user.username,
            "password": sc.PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{web}/admin/login/"},
        timeout=30,
    )
    if "sessionid" not in session.cookies:
        raise RuntimeError(f"could not sign in: {login.status_code}")
    for label, url, _ in pages:
        times = []
        for i in range(REQUESTS + 2):
            t = time.monotonic()
            response = session.get(web + url, timeout=120, allow_redirects=False)
            took = time.monotonic() - t
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            if i >= 2:
                times.append(took * 1000)
        p50, p95 = harness.median(times), harness.percentile(times, 95)
        counts = queries[label]["per_page"]
        default_count, small_count = list(counts.values())
        h.row(
            f"admin {label}: p50",
            p50,
            "ms",
            target=300,
            cmp="<",
            target_text="< 300 ms",
            note=f"p95 {p95:.0f} ms; {url}",
            details={"times_ms": times, "p95_ms": p95, "url": url},
        )
        h.row(
            f"admin {label}: SQL queries",
            default_count,
            "queries",
            target=small_count,
            target_text=f"= {small_count} (count at 10 rows/page)",
            note=(
                "constant in rows per page"
                if default_count == small_count
                else f"{default_count - small_count} more at 100 rows than at 10"
            ),
            details=queries[label],
        )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
