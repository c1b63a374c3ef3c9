"""Live work through the events API, with a real web server and a real worker: CATS requests
per new contact, per first `message_sent`, per `reply_received` (interested).

    .venv/bin/python bench/bench_live.py [--strict]

gunicorn (as the Procfile runs it) and `manage.py qcluster` (2 workers) run against a
PostgreSQL database of their own and the CATS sandbox. The sequence's owner is connected in
mode "sync when added", with a default job order and the six values mapped.

1. 100 contacts (BENCH_LIVE_CONTACTS; small: 30) are posted to `POST /api/v1/contacts` with
   the sequence id, one every 0.2 s. Counted until every one is synced. Floor ~2.05 (create
   and pipeline, plus a share of a search batched across the adds); target <= 2.1.
2. Each of them then gets its first `message_sent` (`POST /api/v1/events`), one every 0.2 s.
   Floor 3 (activity, status "Messaged", the two message dates); target <= 3.
3. Each then gets `reply_received` with sentiment "interested". Floor 4; target <= 4.

Each phase is counted from the request log between its first post and the moment every task
it caused is done and the site has been quiet for 1.5 s. Add-to-synced latency is a note.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import harness

h = harness.Harness("live")
N = harness.scaled(100, 30, env="BENCH_LIVE_CONTACTS")
PACE = 0.2


def paced_posts(session, url: str, bodies: list[dict]) -> list[float]:
    """POST each body at PACE second intervals; returns each request's seconds."""
    took = []
    start = time.monotonic()
    for i, body in enumerate(bodies):
        delay = start + i * PACE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = time.monotonic()
        response = session.post(url, json=body, timeout=30)
        took.append(time.monotonic() - t)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return took


def main() -> None:
    import requests
    import scenario as sc

    from cats_sync.models import EnrollmentSync, SyncTask
    from interseller import services

    site = sc.cats_site(h.sandbox)
    team, owner = sc.team_with_owner("Live")
    seq = sc.sequence_for(owner, "Live bench sequence")
    sc.connect(owner, site)
    _, raw_token = services.api_token_create(team=team, name="bench")
    h.start_cluster()
    web = h.start_web()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {raw_token}"
    emails = [f"person{i}@live.bench.example" for i in range(N)]

    def phase(label, bodies, url, done, per_label, floor, target, target_text, check):
        mark = h.sandbox.mark()
        started = time.monotonic()
        took = paced_posts(api, url, bodies)
        complete = True
        try:
            harness.wait_until(
                lambda: done() and sc.open_tasks(enrollment__sequence=seq) == 0,
                timeout=120 + N,
                interval=0.25,
                what=label,
            )
        except TimeoutError as exc:
            harness.log(str(exc))
            complete = False
        seconds = time.monotonic() - started
        h.sandbox.quiet(site_id=site["id"])
        entries = h.sandbox.log(mark, site_id=site["id"])
        ok, state = check(h.sandbox.snapshot(site["id"]))
        return entries, seconds, took, complete and ok, state

    # 1. live adds
    entries, seconds, took, complete, state = phase(
        "live adds",
        [{"email": e, "sequence_id": seq.pk, **sc.contact_fields(i)} for i, e in enumerate(emails)],
        f"{web}/api/v1/contacts",
        lambda: sc.synced(seq) == N,
        "contact",
        2.05,
        2.1,
        "<= 2.1",
        lambda s: (
            len(s["candidates"]) == N and len(s["pipelines"]) == N,
            f"{len(s['candidates'])} candidates, {len(s['pipelines'])} pipelines",
        ),
    )
    lat = [
        (es.synced_at - es.enrollment.added_at).total_seconds()
        for es in EnrollmentSync.objects.filter(enrollment__sequence=seq).select_related(
            "enrollment"
        )
        if es.synced_at
    ]
    h.row(
        f"live adds via events API ({N}, one per {PACE} s)",
        len(entries) / N,
        "req/contact",
        target=2.1,
        target_text="<= 2.1",
        floor=2.05,
        note=(
            f"{len(entries)} requests; {state}; add->synced p50 {harness.median(lat):.1f} s, "
            f"p95 {harness.percentile(lat, 95):.1f} s; API p50 "
            f"{harness.median(took) * 1000:.0f} ms"
        ),
        complete=complete,
        details={
            "requests": len(entries),
            "contacts": N,
            "seconds": round(seconds, 1),
            "latency_p50_s": harness.median(lat),
            "latency_p95_s": harness.percentile(lat, 95),
            "tasks": sc.task_states(enrollment__sequence=seq),
            "errors": sc.task_errors(enrollment__sequence=seq),
            "breakdown": harness.breakdown(entries),
            "breakdown_lines": harness.breakdown_text(entries, per=N),
        },
    )

    def events_done(kind_count: int):
        return lambda: (
            SyncTask.objects.filter(
                enrollment__sequence=seq, kind="event", state__in=["done", "failed"]
            ).count()
            >= kind_count
        )

    def event_bodies(kind: str, suffix: str, **extra) -> list[dict]:
        now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        return [
            {
                "id": f"live-{suffix}-{i}",
                "type": kind,
                "sequence_id": seq.pk,
                "contact_email": e,
                "occurred_at": now,
                "subject": "Senior backend role in Berlin",
                **extra,
            }
            for i, e in enumerate(emails)
        ]

    def status_check(title: str):
        def check(s):
            at = sum(1 for p in s["pipelines"] if p["status_title"] == title)
            return at == N, f"{len(s['activities'])} activities, {at} pipelines at {title}"

        return check

    # 2. first message_sent, 3. reply_received interested
    for n_events, kind, suffix, extra, floor, title, label in (
        (N, "message_sent", "m1", {}, 3, "Messaged", "live message_sent (first message)"),
        (
            2 * N,
            "reply_received",
            "r1",
            {"sentiment": "interested", "snippet": "Happy to talk next week."},
            4,
            "Interested",
            "live reply_received, interested",
        ),
    ):
        entries, seconds, took, complete, state = phase(
            label,
            event_bodies(kind, suffix, **extra),
            f"{web}/api/v1/events",
            events_done(n_events),
            "event",
            floor,
            floor,
            f"<= {floor}",
            status_check(title),
        )
        h.row(
            label,
            len(entries) / N,
            "req/event",
            target=floor,
            target_text=f"<= {floor}",
            floor=floor,
            note=f"{len(entries)} requests / {N} events; {state}; API p50 "
            f"{harness.median(took) * 1000:.0f} ms",
            complete=complete,
            details={
                "requests": len(entries),
                "events": N,
                "seconds": round(seconds, 1),
                "tasks": sc.task_states(enrollment__sequence=seq, kind="event"),
                "errors": sc.task_errors(enrollment__sequence=seq),
                "breakdown": harness.breakdown(entries),
                "breakdown_lines": harness.breakdown_text(entries, per=N),
            },
        )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
