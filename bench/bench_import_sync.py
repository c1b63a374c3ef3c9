"""A spreadsheet imported into a synced sequence: CATS requests per imported contact.

    .venv/bin/python bench/bench_import_sync.py [--strict]

3,000 rows (BENCH_IMPORT_SYNC_ROWS; small: 600) of new contacts go through the admin's own
import views (upload, dry run, confirm) into a sequence whose owner is connected in mode
"sync when added" (default job order, six values mapped). Above IMPORT_BACKGROUND_ROWS the
confirmed import is a background job: the real cluster (`manage.py qcluster`, 2 workers)
runs it, then syncs every contact. (Small scale lowers IMPORT_BACKGROUND_ROWS to 200 so the
same path runs.) Counted from the confirm until every contact is synced and the site has been
quiet 1.5 s. Floor 2.04 (create + pipeline, one search per 25 emails); target <= 2.1.
"""

from __future__ import annotations

import time

import harness

ROWS = harness.scaled(3000, 600, env="BENCH_IMPORT_SYNC_ROWS")
h = harness.Harness(
    "import_sync",
    env={} if harness.SCALE == "full" else {"IMPORT_BACKGROUND_ROWS": "200"},
)


def main() -> None:
    import scenario as sc

    from interseller.models import ImportJob

    site = sc.cats_site(h.sandbox)
    team, owner = sc.team_with_owner("Import sync")
    seq = sc.sequence_for(owner, "Import bench sequence")
    sc.connect(owner, site)
    h.start_cluster()
    client = sc.admin_client(owner.user)
    data = sc.sheet_csv(ROWS, domain="import.bench.example")

    mark = h.sandbox.mark()
    started = time.monotonic()
    sc.admin_import(client, team=team, sequence=seq, data=data)
    job = ImportJob.objects.order_by("-pk").first()
    complete = True
    try:
        if job is not None:
            harness.wait_until(
                lambda: ImportJob.objects.get(pk=job.pk).state in ("done", "failed"),
                timeout=600,
                interval=0.5,
                what="the import job",
            )
            job.refresh_from_db()
            if job.state != "done":
                raise RuntimeError(f"the import job failed: {job.error}")
        imported = time.monotonic() - started
        harness.wait_until(
            lambda: sc.synced(seq) == ROWS and sc.open_tasks(enrollment__sequence=seq) == 0,
            timeout=300 + ROWS * 0.3,
            interval=1,
            what="every imported contact to sync",
        )
    except TimeoutError as exc:
        harness.log(str(exc))
        complete = False
        imported = time.monotonic() - started
    seconds = time.monotonic() - started
    h.sandbox.quiet(site_id=site["id"])
    entries = h.sandbox.log(mark, site_id=site["id"])
    snap = h.sandbox.snapshot(site["id"])
    correct = len(snap["candidates"]) == ROWS and len(snap["pipelines"]) == ROWS
    h.row(
        f"import {ROWS:,} rows into a synced sequence",
        len(entries) / ROWS,
        "req/contact",
        target=2.1,
        target_text="<= 2.1",
        floor=2.04,
        note=(
            f"{len(entries)} requests; {len(snap['candidates'])} candidates, "
            f"{len(snap['pipelines'])} pipelines; import {imported:.0f} s, all synced "
            f"{seconds:.0f} s" + ("" if correct else "; CATS STATE WRONG")
        ),
        complete=complete and correct,
        details={
            "requests": len(entries),
            "rows": ROWS,
            "import_seconds": round(imported, 1),
            "seconds": round(seconds, 1),
            "background_job": job is not None,
            "tasks": sc.task_states(enrollment__sequence=seq),
            "errors": sc.task_errors(enrollment__sequence=seq),
            "breakdown": harness.breakdown(entries),
            "breakdown_lines": harness.breakdown_text(entries, per=ROWS),
        },
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
