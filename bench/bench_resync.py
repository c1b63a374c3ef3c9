"""CATS requests spent per contact by a bulk resync of new contacts with a job order.

    .venv/bin/python bench/bench_resync.py [contacts]

Target (issue 4): at most 2.1 requests per contact. Uses a throwaway SQLite file and the CATS
sandbox on a free loopback port, with its rate limit raised so the run is not held by the
budget; the budget itself is exercised by the tests. Also prints the sync throughput.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
workdir = tempfile.mkdtemp(prefix="bench-resync-")
os.environ.setdefault("DEBUG", "true")
os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interseller.settings")
# Tasks run inline as the queue hands them out, in the batches a worker would get.
os.environ["Q_SYNC"] = "true"

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from cats_sandbox import make_seed, serve  # noqa: E402
from cats_sync import services as cats  # noqa: E402
from cats_sync.tasks import drain  # noqa: E402
from interseller import services  # noqa: E402
from interseller.models import Enrollment, Membership, Sequence, Team  # noqa: E402


def main(n: int) -> None:
    call_command("migrate", verbosity=0)
    server = serve("127.0.0.1", 0, rate_limit=(100_000, 3600)).start_in_thread()
    settings.CATS_API_URL = server.url
    site = requests.post(f"{server.root_url}/_sandbox/sites", json=make_seed(), timeout=10).json()
    team = Team.objects.create(name="Bench")
    owner = services.teammate_add(team=team, email="owner@bench.example", role="owner")
    member = Membership.objects.get(pk=owner.pk)
    sequence = Sequence.objects.create(team=team, owner=member, title="Bench sequence")
    # Contacts added before anyone connected CATS: exactly what Resync backfills.
    for i in range(n):
        contact = services.contact_upsert(
            team=team,
            owner=member,
            email=f"person{i}@bench.example",
            fields={"first_name": f"First{i}", "last_name": f"Last{i}", "company": "Initech"},
        ).contact
        services.contact_add_to_sequence(contact=contact, sequence=sequence)
    account = cats.cats_connect(
        membership=member, subdomain=site["subdomain"], api_key=site["api_key"]
    ).account
    account.default_job_id = site["jobs"]["Senior Backend Engineer"]
    account.save()
    before = requests.get(f"{server.root_url}/_sandbox/requests", timeout=10).json()
    spent_before = before["sites"][str(site["id"])]["total"]
    started = time.perf_counter()
    cats.resync_start(
        enrollments=Enrollment.objects.filter(sequence=sequence),
        started_by=None,
        team=team,
        description="bench",
    )
    drain(max_rounds=100_000)  # anything the inline queue left for a retry
    seconds = time.perf_counter() - started
    after = requests.get(f"{server.root_url}/_sandbox/requests", timeout=10).json()
    site_after = after["sites"][str(site["id"])]
    spent = site_after["total"] - spent_before
    snapshot = requests.get(
        f"{server.root_url}/_sandbox/sites/{site['id']}/snapshot", timeout=30
    ).json()
    server.stop()
    print(f"contacts: {n}")
    print(
        f"candidates in CATS: {len(snapshot['candidates'])}, "
        f"pipelines: {len(snapshot['pipelines'])}"
    )
    print(f"CATS requests: {spent} ({spent / n:.3f} per contact; target <= 2.1)")
    for route, count in sorted(site_after["by_route"].items()):
        print(f"  {route}: {count}")
    print(f"seconds: {seconds:.1f} ({n / seconds:.0f} contacts/s without the rate limit)")
    ok = spent / n <= 2.1 and len(snapshot["pipelines"]) == n
    print("PASS" if ok else "FAIL")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
