"""Bulk "Resync to CATS": CATS requests per contact, from the sandbox's request log.

    .venv/bin/python bench/bench_resync.py [--strict]

Three flows, each on a CATS sandbox site of its own (so the log separates them), with a real
django-q2 cluster (`manage.py qcluster`, 2 workers) doing the work:

1. 500 contacts added to a sequence before its owner connected CATS (so nothing synced),
   no email events; the owner connects (default job order, no mapped fields) and resyncs.
   Floor 2.04: a create and a pipeline per contact, one search per 25 emails.
2. The same with one `message_sent` each, recorded before connecting (the resync backfills
   it), the six values mapped to custom fields, the job's workflow holding the statuses.
   Floor 4.04: create (mapped values inline), pipeline, activity, status "Messaged".
3. As 2, but 250 of the 500 (every other one) are already in CATS, their emails written in
   mixed case. Floor 4.04 as the issue states it.

Requests are counted from just before `resync_start` until every task of the flow is done and
the site has been quiet for 1.5 s; the connection's own requests (GET /site, metadata) come
before and are not counted. BENCH_RESYNC_CONTACTS changes the 500 (BENCH_SCALE=small: 100).
"""

from __future__ import annotations

import time

import harness

h = harness.Harness("resync")
N = harness.scaled(500, 100, env="BENCH_RESYNC_CONTACTS")


def flow(
    *,
    key: str,
    label: str,
    events: bool,
    existing_every: int | None,
    map_fields: bool,
    floor: float,
    target: float,
    target_text: str,
) -> None:
    import scenario as sc

    from cats_sync.models import SyncTask
    from interseller.models import EmailEvent

    domain = f"{key}.bench.example"
    emails = [f"person{i}@{domain}" for i in range(N)]
    existing = [i for i in range(N) if existing_every and i % existing_every == 0]
    site = sc.cats_site(
        h.sandbox,
        candidates=[
            {
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                # How a recruiter typed it: CATS keeps the case, the app compares without it.
                "emails": {"primary": f"Person{i}@{key.upper()}.Bench.Example"},
            }
            for i in existing
        ],
    )
    team, owner = sc.team_with_owner(f"Resync {key}")
    seq = sc.sequence_for(owner, f"Resync bench {key}")
    enrollments = sc.add_contacts(owner, seq, emails)
    if events:
        for e in enrollments:
            sc.record_event(e, EmailEvent.Kind.MESSAGE_SENT, f"{key}-{e.pk}-m1")
    sc.connect(owner, site, map_fields=map_fields)

    mark = h.sandbox.mark()
    started = time.monotonic()
    run = sc.resync(seq, description=label)
    expected_events = N if events else 0
    complete = harness.finishes(
        lambda: (
            sc.synced(seq) == N
            and SyncTask.objects.filter(enrollment__sequence=seq, kind="event").count()
            >= expected_events
            and sc.open_tasks(enrollment__sequence=seq) == 0
        ),
        timeout=120 + N * 0.5,
        interval=0.5,
        what=f"{label} to finish",
    )
    seconds = time.monotonic() - started
    h.sandbox.quiet(site_id=site["id"])
    entries = h.sandbox.log(mark, site_id=site["id"])
    snap = h.sandbox.snapshot(site["id"])
    messaged = sum(1 for p in snap["pipelines"] if p["status_title"] == "Messaged")
    run.refresh_from_db()
    checks = {
        "candidates_in_cats": len(snap["candidates"]),
        "pipelines": len(snap["pipelines"]),
        "activities": len(snap["activities"]),
        "pipelines_messaged": messaged,
        "run_state": run.state,
        "tasks": sc.task_states(enrollment__sequence=seq),
        "errors": sc.task_errors(enrollment__sequence=seq),
        "seconds": round(seconds, 1),
    }
    correct = len(snap["pipelines"]) == N and len(snap["candidates"]) == N
    if events:
        correct = correct and len(snap["activities"]) == N
    note = (
        f"{len(entries)} requests / {N}; {len(snap['candidates'])} candidates, "
        f"{len(snap['pipelines'])} pipelines, {len(snap['activities'])} activities; "
        f"{seconds:.0f} s"
    )
    if not correct:
        note += "; CATS STATE WRONG"
    h.row(
        f"bulk resync, {label}",
        len(entries) / N,
        "req/contact",
        target=target,
        target_text=target_text,
        floor=floor,
        note=note,
        complete=complete and correct,
        details={
            **checks,
            "requests": len(entries),
            "contacts": N,
            "breakdown": harness.breakdown(entries),
            "breakdown_lines": harness.breakdown_text(entries, per=N),
        },
    )


def main() -> None:
    h.start_cluster()
    flow(
        key="new",
        label=f"{N} new, no events",
        events=False,
        existing_every=None,
        map_fields=False,
        floor=2.04,
        target=2.1,
        target_text="<= 2.1",
    )
    flow(
        key="events",
        label=f"{N} new, 1 backfilled message_sent each, 6 fields mapped",
        events=True,
        existing_every=None,
        map_fields=True,
        floor=4.04,
        target=4.04 * 1.05,
        target_text="<= 1.05x floor",
    )
    flow(
        key="half",
        label=f"{N}, every other one already in CATS (mixed case), 1 event each",
        events=True,
        existing_every=2,
        map_fields=True,
        floor=4.04,
        target=4.04 * 1.05,
        target_text="<= 1.05x floor",
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
