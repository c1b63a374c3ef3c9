"""Linking contacts to candidates CATS already holds: requests per contact against the floor
"1 + the mapped fields whose value actually differs" (plus the batched search's share).

    .venv/bin/python bench/bench_link.py [--strict]

50 contacts (BENCH_LINK_CONTACTS; small: 20) are added to a sequence before its owner
connects; every one of them is already a candidate in CATS (email in mixed case), with the
custom fields the sync maps already filled in:

- even ones hold exactly what the sync would write (Sequence Title = the sequence's title,
  Bounced = false, Unsubscribed = false): 0 fields differ;
- odd ones hold another Sequence Title ("Old sequence"): 1 field differs.

The three date values are empty for a contact without events, so the sync sends nothing for
them. The owner connects (six values mapped, default job order) and runs "Resync to CATS";
a real cluster does the work. Floor per contact = 1 (the pipeline) + differing fields, plus
ceil(N/25)/N for the batched email search (the same share the issue's 2.04 counts).
"""

from __future__ import annotations

import math
import time

import harness

h = harness.Harness("link")
N = harness.scaled(50, 20, env="BENCH_LINK_CONTACTS")
SEQUENCE_TITLE = "Link bench sequence"


def main() -> None:
    import scenario as sc

    domain = "link.bench.example"
    candidates = [
        {
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "emails": {"primary": f"Person{i}@Link.Bench.Example"},
            "custom_fields": {
                "Sequence Title": SEQUENCE_TITLE if i % 2 == 0 else "Old sequence",
                "Bounced": False,
                "Unsubscribed": False,
            },
        }
        for i in range(N)
    ]
    differing = sum(0 if i % 2 == 0 else 1 for i in range(N))
    site = sc.cats_site(h.sandbox, candidates=candidates)
    team, owner = sc.team_with_owner("Link")
    seq = sc.sequence_for(owner, SEQUENCE_TITLE)
    sc.add_contacts(owner, seq, [f"person{i}@{domain}" for i in range(N)])
    sc.connect(owner, site)
    h.start_cluster()

    mark = h.sandbox.mark()
    started = time.monotonic()
    sc.resync(seq, description="link bench")
    complete = harness.finishes(
        lambda: sc.synced(seq) == N and sc.open_tasks(enrollment__sequence=seq) == 0,
        timeout=120 + N,
        interval=0.5,
        what="the link resync",
    )
    seconds = time.monotonic() - started
    h.sandbox.quiet(site_id=site["id"])
    entries = h.sandbox.log(mark, site_id=site["id"])
    snap = h.sandbox.snapshot(site["id"])
    titles_ok = sum(
        1
        for c in snap["candidates"]
        if c["custom_fields_by_name"].get("Sequence Title") == SEQUENCE_TITLE
    )
    correct = len(snap["candidates"]) == N and len(snap["pipelines"]) == N and titles_ok == N
    searches = math.ceil(N / 25)
    floor = (N + differing + searches) / N
    h.row(
        "link existing candidate (1 + fields different)",
        len(entries) / N,
        "req/contact",
        target=floor,
        target_text="= floor",
        floor=floor,
        note=(
            f"{len(entries)} requests / {N} contacts ({differing} fields differ in all); "
            f"{len(snap['candidates'])} candidates, {len(snap['pipelines'])} pipelines, "
            f"titles right {titles_ok}/{N}; {seconds:.0f} s"
            + ("" if correct else "; CATS STATE WRONG")
        ),
        complete=complete and correct,
        details={
            "requests": len(entries),
            "contacts": N,
            "fields_differing": differing,
            "tasks": sc.task_states(enrollment__sequence=seq),
            "errors": sc.task_errors(enrollment__sequence=seq),
            "breakdown": harness.breakdown(entries),
            "breakdown_lines": harness.breakdown_text(entries, per=N),
        },
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
