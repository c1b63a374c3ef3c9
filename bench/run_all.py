"""Run every benchmark, one after another, and print one table: each figure of the issue
beside its target and floor.

    .venv/bin/python bench/run_all.py [--strict] [--only resync,live,...]

Each bench_*.py runs in a process of its own (its own database, sandbox, cluster and web
server) and hands its rows back through BENCH_ROWS_FILE. The whole run is saved as JSON in
bench/results/ with the date and the machine. BENCH_SCALE=small runs every bench at a
fraction of its size (a quick check of the harness, not figures to quote).

Exit status: 0 whatever the figures (the table reports); with --strict, 1 when a figure
misses its target or a flow did not finish. 2 when a bench itself failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

# The order; any other bench_*.py runs after these.
ORDER = [
    "resync",
    "link",
    "live",
    "import_sync",
    "drain",
    "long_window",
    "backlog",
    "resync_admin",
    "import",
    "admin_pages",
    "api",
]


def benches() -> list[Path]:
    here = Path(__file__).resolve().parent
    found = {p.stem.removeprefix("bench_"): p for p in here.glob("bench_*.py")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    if "--only" in sys.argv:
        wanted = sys.argv[sys.argv.index("--only") + 1].split(",")
        unknown = set(wanted) - set(found)
        if unknown:
            raise SystemExit(f"no such bench: {', '.join(sorted(unknown))}")
        names = [n for n in names if n in wanted]
    return [found[n] for n in names]


def main() -> int:
    rows: list[harness.Row] = []
    timings: dict[str, float] = {}
    started = time.monotonic()
    for script in benches():
        name = script.stem.removeprefix("bench_")
        print(f"\n=== {script.name} ===", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            rows_file = Path(fh.name)
        t = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=harness.ROOT,
            env={**os.environ, "BENCH_ROWS_FILE": str(rows_file)},
        )
        timings[name] = round(time.monotonic() - t, 1)
        try:
            got = json.loads(rows_file.read_text() or "[]")
        except (OSError, ValueError):
            got = []
        finally:
            rows_file.unlink(missing_ok=True)
        fields = set(harness.Row.__dataclass_fields__)
        rows += [harness.Row(**{k: v for k, v in r.items() if k in fields}) for r in got]
        if result.returncode not in (0, 1) and not any(r["status"] == "ERROR" for r in got):
            rows.append(
                harness.Row(
                    flow=f"{name}: bench failed (exit {result.returncode})",
                    measured=None,
                    unit="",
                    bench=name,
                )
            )
    total = time.monotonic() - started
    print(f"\n=== all benchmarks ({total / 60:.1f} min, BENCH_SCALE={harness.SCALE}) ===\n")
    print(harness.table(rows))
    harness.print_breakdowns(rows, only_failing=True)
    path = harness.save_results(
        rows, "all", {"seconds_per_bench": timings, "seconds_total": round(total, 1)}
    )
    print(f"\nresults: {path.relative_to(harness.ROOT)}")
    if any(r.status == "ERROR" for r in rows):
        return 2
    if "--strict" in sys.argv and any(r.status in ("MISS", "INCOMPLETE") for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
