"""Run one import the way a worker does, in a process of its own, and report its wall time
and peak memory (VmHWM) (for bench_import.py; not a benchmark by itself).

    python bench/_import_worker.py job JOB_ID
    python bench/_import_worker.py bulk CSV_PATH TEAM_ID OWNER_ID

`job` runs `interseller.tasks.import_job_run` (the django-q task a worker runs for a
background import), and again while a run hands the rest over ("queued": in production the
next run is a new task, on any worker), with each run's seconds; `bulk` reads the same CSV
with the csv module and writes its rows with a
plain `Contact.objects.bulk_create` (the baseline). Prints one JSON line: seconds, the RSS
after Django started, and the peak RSS of the process (VmHWM), in MB. The environment
(DATABASE_URL, REDIS_URL, ...) is the caller's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interseller.settings")


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    import django

    django.setup()
    from django.db import transaction

    from interseller import tasks
    from interseller.models import Contact, Membership, Team

    mode = sys.argv[1]
    base = rss_mb()
    started = time.monotonic()
    result: dict = {}
    if mode == "job":
        runs: list[float] = []
        state = "queued"
        while state == "queued":
            began = time.monotonic()
            state = tasks.import_job_run(int(sys.argv[2]))
            runs.append(round(time.monotonic() - began, 1))
        result["state"] = state
        result["runs"] = runs
    elif mode == "bulk":
        team = Team.objects.get(pk=int(sys.argv[3]))
        owner = Membership.objects.get(pk=int(sys.argv[4]))
        text = Path(sys.argv[2]).read_bytes().decode("utf-8")
        rows = csv.reader(io.StringIO(text))
        next(rows)
        contacts = [
            Contact(
                team=team,
                owner=owner,
                first_name=r[0],
                last_name=r[1],
                email=r[2].strip().lower(),
                company=r[3],
                title=r[4],
                phone=r[5],
                linkedin_url=r[6],
                location=r[7],
            )
            for r in rows
        ]
        with transaction.atomic():
            Contact.objects.bulk_create(contacts, batch_size=1000)
        result["rows"] = len(contacts)
    else:
        raise SystemExit(f"unknown mode {mode}")
    from django.conf import settings

    result.update(
        debug=settings.DEBUG,
        seconds=time.monotonic() - started,
        base_rss_mb=base,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a worker started by
        # a big bench process would report the bench's own peak.
        peak_rss_mb=rss_mb("VmHWM"),
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
