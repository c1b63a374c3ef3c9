"""The events API under 4 concurrent clients: p95 response time over real HTTP, and SQL
queries per event.

    .venv/bin/python bench/bench_api.py [--strict]

A team with a token and a sequence whose owner is connected to CATS (the connection row only:
no CATS request is made, and no worker runs, so queued sync work just waits in the broker).
440 contacts are enrolled and already synced (EnrollmentSync with CATS ids), so every event
queues its CATS work, as in production.

Timing: gunicorn as in the Procfile (3 workers); 20 warm-up events, then 4 threads each post
100 `message_sent` events (400, BENCH_API_EVENTS; small: 100) for distinct contacts as fast
as answers come. p50 and p95 of all 400; target p95 < 100 ms.
Queries: 20 more events posted in-process (django.test.Client) under CaptureQueriesContext;
the median count; target < 18. One event's statements are listed in the JSON.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import harness

h = harness.Harness("api", sandbox=False)
EVENTS = harness.scaled(400, 100, env="BENCH_API_EVENTS")
CLIENTS = 4
WARMUP = 20
COUNTED = 20


def main() -> None:
    import json

    import requests
    import scenario as sc
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from interseller import services
    from interseller.models import EmailEvent

    team, owner = sc.team_with_owner("Api")
    seq = sc.sequence_for(owner, "API bench sequence")
    site, account = sc.fake_connection(owner)
    total = EVENTS + WARMUP + COUNTED
    sc.people(
        team=team,
        owners=[owner],
        sequences=[seq],
        n=total,
        domain="api.bench.example",
        synced=True,
        site=site,
        account=account,
        job_id=1,
    )
    _, token = services.api_token_create(team=team, name="bench")
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    def body(i: int) -> dict:
        return {
            "id": f"api-bench-{i}",
            "type": "message_sent",
            "sequence_id": seq.pk,
            "contact_email": f"person{i}@api.bench.example",
            "occurred_at": now,
            "subject": "Senior backend role in Berlin",
        }

    # Queries per event, in process.
    client = sc.admin_client(owner.user)
    counts = []
    sample: list[str] = []
    for i in range(EVENTS + WARMUP, total):
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                "/api/v1/events",
                data=json.dumps(body(i)),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        if response.status_code != 201:
            raise RuntimeError(f"events API answered {response.status_code}: {response.content}")
        counts.append(len(ctx.captured_queries))
        if not sample:
            sample = [q["sql"][:200] for q in ctx.captured_queries]

    # Time, over HTTP, 4 clients at once.
    web = h.start_web()
    warm = requests.Session()
    warm.headers["Authorization"] = f"Bearer {token}"
    for i in range(EVENTS, EVENTS + WARMUP):
        warm.post(f"{web}/api/v1/events", json=body(i), timeout=30)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine = []
        for i in range(k, EVENTS, CLIENTS):
            t = time.monotonic()
            response = session.post(f"{web}/api/v1/events", json=body(i), timeout=30)
            mine.append((time.monotonic() - t) * 1000)
            if response.status_code != 201:
                failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    stored = EmailEvent.objects.filter(team=team).count()
    p50, p95 = harness.median(latencies), harness.percentile(latencies, 95)
    h.row(
        f"events API, {CLIENTS} concurrent clients: p95",
        p95,
        "ms",
        target=100,
        cmp="<",
        target_text="< 100 ms",
        note=(
            f"p50 {p50:.0f} ms, max {max(latencies):.0f} ms; {EVENTS} events in {seconds:.1f} s "
            f"({EVENTS / seconds:.0f}/s); {len(failures)} failed"
        ),
        complete=not failures and stored == total,
        details={"latencies_ms": sorted(latencies), "failures": failures[:5]},
    )
    h.row(
        "events API: SQL queries per event",
        harness.median(counts),
        "queries",
        target=18,
        cmp="<",
        target_text="< 18",
        note=f"min {min(counts)}, max {max(counts)} over {len(counts)} events",
        details={"counts": counts, "statements_of_one_event": sample},
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
