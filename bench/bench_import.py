"""Big spreadsheet imports into a synced sequence: time against the worker's timeout, memory
of the worker as rows go in, and the ratio to a plain bulk_create of the same rows.

    .venv/bin/python bench/bench_import.py [--strict]

For each size (10,000, 50,000 and 100,000 rows; BENCH_SCALE=small: 3,000, 6,000, 10,000;
BENCH_IMPORT_SIZES=comma-separated to choose), a new team whose owner is connected to CATS in
mode "sync when added" (the connection row only: no request is sent, no worker runs) uploads a
CSV of new contacts for its sequence through the admin's import views (in-process Client; the
dry run's time is a note: it runs inside a web request). The confirmed import is a background
job; it is then run as a worker runs it, `interseller.tasks.import_job_run`, in a process of
its own (bench/_import_worker.py, DEBUG off as in production). Its time includes writing
every contact, enrollment, sync row and task, and handing the sync work to the broker
(Redis) once the import commits.

A job writes in committed chunks and hands the rest to a new task after half of Q_TIMEOUT, so
the worker process runs the job's tasks one after another (in production each is a new task,
on any worker) and the longest of them is compared with Q_TIMEOUT (240 s; BENCH_IMPORT_TIMEOUT).
The process is killed if the whole job takes over four times Q_TIMEOUT. Every 0.5 s the bench
reads the process's RSS (/proc) and the rows written so far (the job's progress, in the
cache), so a killed import still tells its pace and how memory grows with rows. Once a size
is killed, larger sizes are not run (they would be killed too; BENCH_IMPORT_ALL=1 runs them).

The baseline is the largest CSV written with one `Contact.objects.bulk_create` (batch 1,000)
in a process of its own. IMPORT_MAX_ROWS and IMPORT_MAX_BYTES are raised for this bench
(100,000 rows are over the default 50,000 rows and 10 MB).

Rows: the 50,000-row worker time, target <= 120 s (well inside Q_TIMEOUT 240); the 100,000-row
time over bulk_create, target <= 5 (estimated from the pace when the import was killed:
INCOMPLETE); RSS growth per 10,000 rows written, target <= 5 MB (flat in rows), with the peak
of every size in the note.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import harness

SIZES = [
    int(x)
    for x in os.environ.get(
        "BENCH_IMPORT_SIZES", "10000,50000,100000" if harness.SCALE == "full" else "3000,6000,10000"
    ).split(",")
]
h = harness.Harness(
    "import",
    sandbox=False,
    env={"IMPORT_MAX_ROWS": str(max(SIZES)), "IMPORT_MAX_BYTES": str(64 * 1024 * 1024)},
)


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def worker(args: list[str], *, timeout: float, progress=None) -> dict:
    """Run bench/_import_worker.py; sample its RSS (and `progress()`) until it ends or is
    killed at `timeout` seconds."""
    from django.conf import settings

    env = {
        **h.env,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "CATS_ENCRYPTION_KEYS": settings.CATS_ENCRYPTION_KEYS[0],
    }
    out = h.tmp / f"worker-{args[0]}-{time.monotonic_ns()}.log"
    with open(out, "w") as fh:
        proc = subprocess.Popen(
            [harness.PYTHON, str(harness.ROOT / "bench" / "_import_worker.py"), *args],
            cwd=harness.ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        samples = []
        killed = False
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                proc.kill()  # as django-q2 does at Q_TIMEOUT
                proc.wait()
                killed = True
                break
            rss = rss_mb(proc.pid)
            rows = progress() if progress else None
            if rss is not None:
                samples.append({"t": round(elapsed, 1), "rss_mb": round(rss, 1), "rows": rows})
            time.sleep(0.5)
        seconds = time.monotonic() - started
    text = out.read_text()
    if killed:
        return {"killed": True, "seconds": seconds, "samples": samples}
    if proc.returncode:
        raise RuntimeError(f"_import_worker {args[0]} failed:\n{text[-3000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    result.update(killed=False, samples=samples)
    return result


def growth_per_10k(samples: list[dict]) -> float | None:
    """RSS growth per 10,000 rows written, between the first and the last sample taken while
    rows were being written."""
    writing = [s for s in samples if s.get("rows")]
    if len(writing) < 2 or writing[-1]["rows"] <= writing[0]["rows"]:
        return None
    first, last = writing[0], writing[-1]
    return (last["rss_mb"] - first["rss_mb"]) / (last["rows"] - first["rows"]) * 10_000


def main() -> None:
    import scenario as sc
    from django.conf import settings

    from interseller import imports
    from interseller.models import Enrollment, ImportJob

    timeout = float(
        os.environ.get("BENCH_IMPORT_TIMEOUT") or settings.Q_CLUSTER.get("timeout", 240)
    )
    results: dict[int, dict] = {}
    skipped: list[int] = []
    for size in SIZES:
        if any(r["killed"] for r in results.values()) and not os.environ.get("BENCH_IMPORT_ALL"):
            skipped.append(size)
            continue
        team, owner = sc.team_with_owner(f"Import {size}")
        seq = sc.sequence_for(owner, f"Import {size} sequence")
        sc.fake_connection(owner, cats_id=size)
        data = sc.sheet_csv(size, domain=f"import{size}.bench.example")
        client = sc.admin_client(owner.user)
        harness.log(f"{size:,} rows: {len(data) / 1e6:.1f} MB; dry run through the admin")
        done = sc.admin_import(client, team=team, sequence=seq, data=data)
        job = ImportJob.objects.filter(team=team).order_by("-pk").first()
        if job is None:
            raise RuntimeError(f"{size} rows were imported in the request, not as a job")

        def progress(job_id=job.pk) -> int | None:
            try:
                return imports.import_job_progress(ImportJob.objects.get(pk=job_id))
            except Exception:
                return None

        harness.log(f"{size:,} rows: running import job {job.pk} as a worker would")
        run = worker(["job", str(job.pk)], timeout=4 * timeout, progress=progress)
        run["dry_run_seconds"] = done.dry_run_seconds
        run["rows_written"] = max((s["rows"] or 0 for s in run["samples"]), default=0)
        run["peak_rss_sampled_mb"] = max((s["rss_mb"] for s in run["samples"]), default=None)
        if not run["killed"]:
            job.refresh_from_db()
            enrolled = Enrollment.objects.filter(sequence=seq).count()
            if job.state != ImportJob.State.DONE or enrolled != size:
                raise RuntimeError(f"import job {job.pk}: {job.state} {job.error[:300]}")
            run["rows_written"] = size
        results[size] = run
        if run["killed"]:
            harness.log(
                f"{size:,} rows: KILLED at {timeout:.0f} s after {run['rows_written']:,} rows; "
                f"peak RSS {run['peak_rss_sampled_mb']} MB"
            )
        else:
            harness.log(
                f"{size:,} rows: {run['seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB "
                f"(after start {run['base_rss_mb']:.0f} MB); dry run {done.dry_run_seconds:.1f} s"
            )

    def pace(run: dict) -> float | None:
        """Rows per second from the job's start to its last progress report (the dry run
        again, then the writes; not the queueing after the commit): a lower bound's pace."""
        writing = [s for s in run["samples"] if s.get("rows")]
        if not writing:
            return None
        return writing[-1]["rows"] / max(writing[-1]["t"], 1e-6)

    def time_of(size: int) -> tuple[float | None, bool, str]:
        """Seconds for `size` rows, whether measured, and how it was known."""
        if size in results and not results[size]["killed"]:
            return results[size]["seconds"], True, "measured"
        ran = results.get(size) or next(
            (r for s, r in sorted(results.items(), reverse=True) if pace(r)), None
        )
        rate = pace(ran) if ran else None
        if not rate:
            return None, False, "no pace measured"
        return (
            size / rate,
            False,
            f"at least: estimated at {rate:.0f} rows/s, the pace of a run killed at "
            f"{timeout:.0f} s",
        )

    largest = max(SIZES)
    team, owner = sc.team_with_owner("Import bulk_create")
    path = h.tmp / "baseline.csv"
    path.write_bytes(sc.sheet_csv(largest, domain="bulk.bench.example"))
    baseline = worker(["bulk", str(path), str(team.pk), str(owner.pk)], timeout=1200)
    harness.log(f"bulk_create of {largest:,} rows: {baseline['seconds']:.1f} s")

    def size_note(s: int) -> str:
        r = results.get(s)
        if r is None:
            return f"{s:,}: not run"
        if r["killed"]:
            return (
                f"{s:,}: KILLED at {timeout:.0f} s after {r['rows_written']:,} rows, "
                f"RSS {r['peak_rss_sampled_mb']:.0f} MB"
            )
        return (
            f"{s:,}: {r['seconds']:.0f} s in {len(r.get('runs', []))} task(s) "
            f"(longest {max(r.get('runs') or [0]):.0f} s), peak {r['peak_rss_mb']:.0f} MB"
        )

    per_size = "; ".join(size_note(s) for s in SIZES)
    mid = 50_000 if 50_000 in SIZES else SIZES[len(SIZES) // 2]
    mid_time, measured, how = time_of(mid)
    mid_run = results.get(mid, {})
    h.row(
        f"import {mid:,} rows into a synced sequence: worker time",
        mid_time,
        "s",
        target=120,
        target_text="<= 120 s (well inside Q_TIMEOUT 240)",
        note=(
            how
            + (
                f"; admin dry run (a web request) {mid_run['dry_run_seconds']:.0f} s"
                if mid_run
                else ""
            )
        ),
        complete=measured,
        details={"runs": results, "skipped": skipped},
    )
    big_time, measured, how = time_of(largest)
    h.row(
        f"import {largest:,} rows: time over plain bulk_create",
        big_time / baseline["seconds"] if big_time else None,
        "x",
        target=5,
        target_text="<= 5x",
        note=f"{how}: {big_time or 0:.0f} s vs bulk_create {baseline['seconds']:.1f} s",
        complete=measured,
        details={"baseline": {k: v for k, v in baseline.items() if k != "samples"}},
    )
    # Memory against rows: across the sizes that finished (their peaks), else within the
    # largest run while it wrote.
    done = sorted((s, r["peak_rss_mb"]) for s, r in results.items() if not r["killed"])
    within = {s: growth_per_10k(r["samples"]) for s, r in results.items()}
    if len(done) >= 2:
        (a, peak_a), (b, peak_b) = done[-2], done[-1]
        slope = (peak_b - peak_a) / (b - a) * 10_000
        how = f"peak RSS from {a:,} to {b:,} rows"
    else:
        ran = [(s, g) for s, g in within.items() if g is not None]
        slope = max(ran)[1] if ran else None
        how = "RSS while the largest run wrote its rows"
    h.row(
        "import: worker RSS growth per 10,000 rows",
        slope,
        "MB",
        target=5,
        target_text="<= 5 MB (flat in rows)",
        note=f"{how}; {per_size}",
        details={"growth_mb_per_10k_rows_while_writing": within, "peaks": done},
    )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
