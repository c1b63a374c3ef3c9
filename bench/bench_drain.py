"""A bulk resync drained through an exhausted request budget, with live adds made mid-way:
total CATS requests against the floor, and how long work waits once the budget frees.

    .venv/bin/python bench/bench_drain.py [--strict]

The sandbox site allows 60 requests per rolling 20 s window (site config `rate_limit`,
`rate_window`); the app is told nothing: it learns both from CATS' answers. 200 contacts
(BENCH_DRAIN_CONTACTS; small: 50) were added before the owner connected (default job order, no
mapped fields); the owner connects and resyncs; a real cluster (2 workers) drains it. Mid-way
(half of them synced, or 60 s after the start, whichever comes first), 5 contacts are added
live (the services, as the API or a person would; mode "sync when added"), one a second. The
drain is given BENCH_DRAIN_TIMEOUT seconds (default 300: about twice what the budget needs
with bulk work held to 80 % of it); past that the figures are reported as INCOMPLETE, with
what was synced by then (the cluster is stopped before counting).

- Total requests, floor 2 x (200 + 5) + ceil(200/25) + 1 = 419: every request of the site
  from just before the resync until all 205 are synced and the site is quiet.
- Resume delay: for every stall (two successive requests more than 1 s apart), the time from
  the moment the budget had room again to the next request. "Room" follows the app's own
  rule: bulk work stops at 80 % of the window (a reserve of 20 % for live work), so a slot for
  it frees when the request 48 places back leaves the 20 s window. Reported: the worst stall
  (target: seconds, not a minute: < 10 s) and the median; also against CATS' own 60.
- The live adds' time from add to synced, in seconds and in windows (a note).
"""

from __future__ import annotations

import math
import threading
import time

import harness

# With reconciliation running at its default share, as in production: it must fit too.
h = harness.Harness("drain", env={"CATS_RECONCILE_SHARE": "0.1"})
N = harness.scaled(200, 50, env="BENCH_DRAIN_CONTACTS")
LIVE = 5
LIMIT, WINDOW = 60, 20
BULK_SHARE = LIMIT - int(LIMIT * 0.2)  # cats_sync.budget.BULK_RESERVE_FRACTION


def live_note(latency: list[float], added: dict) -> str:
    if not added:
        return "live adds not made (the drain never got mid-way)"
    if not latency:
        return f"none of the {len(added)} live adds synced"
    return (
        f"{len(latency)}/{len(added)} live adds synced, worst after {max(latency):.0f} s "
        f"({max(latency) / WINDOW:.1f} windows)"
    )


def main() -> None:
    import scenario as sc

    from cats_sync.models import CatsSite, EnrollmentSync

    site, owner, seq = sc.drained_sequence(
        h.sandbox, "Drain", n=N, rate_limit=LIMIT, rate_window=WINDOW
    )
    h.start_cluster()

    mark = h.sandbox.mark()
    started = time.monotonic()
    sc.resync(seq, description="drain bench")
    live_emails = [f"live{i}@drain.bench.example" for i in range(LIVE)]
    live_added: dict[str, float] = {}

    def add_live() -> None:
        from django.db import connection

        try:
            mid_way = time.monotonic() + 60
            harness.wait_until(
                lambda: sc.synced(seq) >= N // 2 or time.monotonic() > mid_way,
                timeout=1800,
                interval=1,
                what="mid-way",
            )
            for i, email in enumerate(live_emails):
                live_added[email] = time.time()
                sc.add_contacts(owner, seq, [email], start=N + i)
                time.sleep(1)
        finally:
            connection.close()

    adder = threading.Thread(target=add_live, daemon=True)
    adder.start()
    complete = harness.finishes(
        lambda: (
            len(live_added) == LIVE
            and sc.synced(seq) == N + LIVE
            and sc.open_tasks(enrollment__sequence=seq) == 0
        ),
        timeout=harness.scaled(300, 180, env="BENCH_DRAIN_TIMEOUT"),
        interval=1,
        what="the drain",
    )
    seconds = time.monotonic() - started
    ended_at = None if complete else time.time()
    synced_count = sc.synced(seq)
    if not complete:
        h.stop_cluster()  # what is left would only add requests while we count
    entries, times, first_counted = harness.settled_log(h.sandbox, site["id"], mark)
    app_stalls = harness.stalls(times, first_counted, BULK_SHARE, WINDOW, ended_at=ended_at)
    cats_stalls = harness.stalls(times, first_counted, LIMIT, WINDOW, ended_at=ended_at)
    # What the app believed about the site's budget at the end (it learns both from CATS).
    app_site = (
        CatsSite.objects.filter(cats_id=site["id"])
        .values("rate_limit", "rate_window_seconds", "header_remaining", "blocked_until")
        .first()
    )
    live_latency = []
    for es in EnrollmentSync.objects.filter(enrollment__contact__email__in=live_emails):
        if es.synced_at:
            added = live_added[es.enrollment.contact.email]
            live_latency.append(es.synced_at.timestamp() - added)
    snap = h.sandbox.snapshot(site["id"])
    correct = len(snap["pipelines"]) == N + LIVE and len(snap["candidates"]) == N + LIVE
    floor = 2 * (N + LIVE) + math.ceil(N / 25) + 1
    rate_limited = sum(1 for e in entries if e["status"] == 429)
    # What the budget alone allows: a full window at once, then bulk work at 80 % of it.
    ideal = max(floor - BULK_SHARE, 0) * WINDOW / BULK_SHARE
    h.row(
        f"drain at {LIMIT} req/{WINDOW} s: {N} new + {LIVE} live mid-way, total requests",
        len(entries),
        "requests",
        target=floor * 1.05,
        target_text="<= 1.05x floor",
        floor=floor,
        note=(
            (
                f"drained in {seconds:.0f} s (the budget alone allows ~{ideal:.0f} s)"
                if complete
                else f"NOT DRAINED after {seconds:.0f} s: {synced_count}/{N + LIVE} synced"
            )
            + f"; {rate_limited} answered 429; {len(snap['pipelines'])} pipelines"
            + ("" if correct or not complete else "; CATS STATE WRONG")
        ),
        complete=complete and correct,
        details={
            "requests": len(entries),
            "answered_429": rate_limited,
            "seconds": round(seconds, 1),
            "tasks": sc.task_states(enrollment__sequence=seq),
            "errors": sc.task_errors(enrollment__sequence=seq),
            "app_site_budget": app_site,
            "breakdown": harness.breakdown(entries),
            "breakdown_lines": harness.breakdown_text(entries),
        },
    )
    delays = [s["resume_delay_s"] for s in app_stalls]
    worst = max(delays) if delays else 0.0
    h.row(
        "drain: budget free -> work resumes (worst stall)",
        worst,
        "s",
        target=10,
        cmp="<",
        target_text="< 10 s (seconds, not a minute)",
        note=(
            ("the last one still open when counting stopped; " if ended_at and app_stalls else "")
            + f"{len(app_stalls)} stalls; median {harness.median(delays):.1f} s; vs CATS' own "
            f"{LIMIT}: worst {max([s['resume_delay_s'] for s in cats_stalls] or [0]):.1f} s; "
            + live_note(live_latency, live_added)
        ),
        # Stalls seen before the time ran out are real stalls: the figure stands.
        details={
            "stalls_app_rule": app_stalls,
            "stalls_cats_rule": cats_stalls,
            "app_site_budget": app_site,
            "live_add_to_synced_s": live_latency,
        },
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
