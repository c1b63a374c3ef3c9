"""What every benchmark needs, outside Django: a database of its own, the CATS sandbox, a real
django-q2 cluster and web server when a flow needs them, the sandbox's request log, and one
way to print and save results.

Each bench module does, in this order:

    h = harness.Harness("resync", sandbox=True)   # before importing anything of Django
    with h:                                       # database, sandbox, django.setup(), migrate
        ...                                       # build data (bench/scenario.py)
        h.start_cluster()                         # `manage.py qcluster`, same environment
        mark = h.sandbox.mark()
        ...                                       # the flow
        entries = h.sandbox.log(mark, site_id=site["id"])
        h.row(...)                                # one line of the table
    h.finish()                                    # print, save JSON, exit code (--strict)

Nothing here touches the project database, the default Redis database or another person's
processes: PostgreSQL databases are named `bench_<name>_<pid>` and dropped at the end, Redis
keys live in their own database under a cluster name of their own, and only processes started
here are stopped (by their id).

One module on purpose: every bench imports it before Django, so it cannot lean on the app's
modules, and splitting its few classes would only spread the setup order over files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = sys.executable
BIN = Path(sys.executable).parent

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Redis database 12: the app's default is 0 and CI uses 9; keys are namespaced by cluster name.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SCALE = os.environ.get("BENCH_SCALE", "full").lower()
if SCALE not in ("full", "small"):
    raise SystemExit("BENCH_SCALE must be 'full' or 'small'")


def scaled(full: Any, small: Any, env: str | None = None) -> Any:
    """A size for this run: `env` (an integer variable) wins, then BENCH_SCALE."""
    if env and os.environ.get(env):
        return type(full)(os.environ[env])
    return full if SCALE == "full" else small


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = ""
) -> float:
    """Poll until `predicate()` is truthy; returns the seconds waited. Raises TimeoutError."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def finishes(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = ""
) -> bool:
    """`wait_until`, but a flow that did not finish in its time is reported, not raised: False
    (the figures measured by then are bounds: INCOMPLETE)."""
    try:
        wait_until(predicate, timeout=timeout, interval=interval, what=what)
    except TimeoutError as exc:
        log(str(exc))
        return False
    return True


def stalls(
    times: list[float],
    mark_index: int,
    allowed: int,
    window: float,
    *,
    ended_at: float | None = None,
) -> list[dict]:
    """Gaps between successive accepted requests (after `mark_index`) longer than 1 s, with
    when `allowed` requests per `window` seconds would have let the next one through.
    `ended_at`: work was left when counting stopped, so the gap after the last request is a
    stall too, still open (its delay a lower bound)."""
    found = []
    ends = times[mark_index + 1 :] + ([ended_at] if ended_at else [])
    for i, resumed in enumerate(ends, start=mark_index + 1):
        gap = resumed - times[i - 1]
        if gap <= 1.0:
            continue
        frees = times[i - allowed] + window if i - allowed >= 0 else times[i - 1]
        room_at = max(times[i - 1], frees)
        found.append(
            {
                "after": round(times[i - 1] - times[mark_index], 1),
                "gap_s": round(gap, 2),
                "budget_free_s": round(room_at - times[i - 1], 2),
                "resume_delay_s": round(resumed - room_at, 2),
                "open": i == len(times),
            }
        )
    return found


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest)."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(data)))
    return data[rank - 1]


# --- the CATS sandbox ------------------------------------------------------------------------


class Sandbox:
    """The CATS sandbox (`python -m cats_sandbox`) in a process of its own, and its control
    surface. Its request log is the only source of request counts in these benchmarks."""

    def __init__(self, root_url: str) -> None:
        self.root = root_url
        self.url = root_url + "/v3"
        self.http = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method, f"{self.root}/_sandbox{path}", json=body, params=params, timeout=60
        )
        if response.status_code >= 400:
            raise RuntimeError(f"sandbox {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def create_site(self, seed: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/sites", seed)

    def configure(self, site_id: int, **config: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/sites/{site_id}/config", config)

    def snapshot(self, site_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sites/{site_id}/snapshot")

    def mark(self) -> int:
        """The sequence number of the latest logged API request (0 when none)."""
        return int(self._call("GET", "/requests/log", since=0, limit=0)["next"])

    def log(
        self, since: int, until: int | None = None, *, site_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Logged API requests with since < seq <= until (until: now), oldest first."""
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 5000}
        if site_id is not None:
            params["site_id"] = site_id
        cursor = since
        while True:
            page = self._call("GET", "/requests/log", since=cursor, **params)
            rows = page["entries"]
            if page.get("oldest") and page["oldest"] > since + 1 and cursor == since:
                raise RuntimeError("the sandbox request log dropped entries of this run")
            for row in rows:
                if until is not None and row["seq"] > until:
                    return entries
                entries.append(row)
            if not rows or page["next"] <= cursor:
                return entries
            cursor = page["next"]

    def quiet(self, *, site_id: int | None = None, seconds: float = 1.5, timeout: float = 60):
        """Wait until the sandbox saw no request (of the site) for `seconds`."""
        deadline = time.monotonic() + timeout
        last = self.mark()
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.mark()
            if now != last:
                if site_id is None or self.log(last, now, site_id=site_id):
                    still_since = time.monotonic()
                last = now
            elif time.monotonic() - still_since >= seconds:
                return
        raise TimeoutError("the sandbox kept receiving requests")


def settled_log(sandbox: Sandbox, site_id: int, mark: int) -> tuple[list[dict], list[float], int]:
    """Once the site has been quiet: the requests logged after `mark` (429s too), the times of
    every accepted request of the site (before the mark too: they still fill the window), and
    the index in those times of the first one after the mark."""
    sandbox.quiet(site_id=site_id, seconds=2)
    site_log = sandbox.log(0, site_id=site_id)
    entries = [e for e in site_log if e["seq"] > mark]
    accepted = [e for e in site_log if e["status"] != 429]
    first_counted = next(i for i, e in enumerate(accepted) if e["seq"] > mark)
    return entries, [e["time"] for e in accepted], first_counted


def breakdown(entries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{"POST /candidates": {"201": 500, "409": 3}, ...} from request log entries."""
    routes: dict[str, Counter] = {}
    for e in entries:
        routes.setdefault(f"{e['method']} {e['route']}", Counter())[str(e["status"])] += 1
    return {
        route: dict(sorted(statuses.items()))
        for route, statuses in sorted(routes.items(), key=lambda kv: -sum(kv[1].values()))
    }


def breakdown_text(entries: list[dict[str, Any]], per: int | None = None) -> list[str]:
    lines = []
    for route, statuses in breakdown(entries).items():
        total = sum(statuses.values())
        codes = ", ".join(f"{code}×{n}" for code, n in statuses.items())
        share = f"  ({total / per:.3f} per unit)" if per else ""
        lines.append(f"{total:>7}  {route}  [{codes}]{share}")
    return lines


# --- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. `target` is compared with `cmp` ("<=" or "<"); rows without a
    target are information (INFO); a measurement that failed is ERROR."""

    flow: str
    measured: float | None
    unit: str
    target: float | None = None
    cmp: str = "<="
    target_text: str = ""
    floor: float | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    bench: str = ""
    # False when the flow did not finish (a timeout, work left undone): the figure stands,
    # but it cannot pass.
    complete: bool = True

    @property
    def status(self) -> str:
        if self.measured is None or math.isnan(self.measured):
            return "ERROR"
        if not self.complete:
            return "INCOMPLETE"
        if self.target is None:
            return "INFO"
        ok = self.measured <= self.target if self.cmp == "<=" else self.measured < self.target
        return "PASS" if ok else "MISS"

    @property
    def ratio(self) -> float | None:
        """Measured over the floor where there is one, else over the target."""
        base = self.floor if self.floor else self.target
        if not base or self.measured is None:
            return None
        return self.measured / base

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        data["ratio"] = self.ratio
        return data


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit in ("queries", "requests") and float(value).is_integer():
        return f"{int(value):,} {unit}"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    headers = ["flow", "measured", "target", "floor", "ratio", "result", "note"]
    lines = [
        [
            r.flow,
            _num(r.measured, r.unit),
            r.target_text or (f"{r.cmp} {_num(r.target, r.unit)}" if r.target is not None else "—"),
            _num(r.floor),
            f"{r.ratio:.2f}" if r.ratio is not None else "—",
            r.status,
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])  # the note runs on
    out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    for line in lines:
        out.append(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)


def print_breakdowns(rows: list[Row], *, only_failing: bool = False) -> None:
    """Each flow's CATS requests by route (what explains a miss)."""
    for r in rows:
        lines = r.details.get("breakdown_lines")
        if lines and (not only_failing or r.status in ("MISS", "INCOMPLETE")):
            print(f"\n{r.flow} [{r.status}]: CATS requests by route")
            print("\n".join("  " + line for line in lines))


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "scale": SCALE,
    }
    try:
        import django

        info["django"] = django.get_version()
    except ImportError:
        pass
    git = ["git", "-C", str(ROOT)]
    if os.environ.get("BENCH_CODE_COMMIT"):  # a copy of the code outside its repository
        info["commit"] = os.environ["BENCH_CODE_COMMIT"]
        return info | _postgres_version()
    try:
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
        info["uncommitted_changes"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return info | _postgres_version()


def _postgres_version() -> dict[str, Any]:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2) as conn:
            return {"postgresql": conn.execute("show server_version").fetchone()[0]}
    except Exception:
        return {"postgresql": None}


def save_results(rows: list[Row], name: str, extra: dict[str, Any] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{stamp}-{name}.json"
    data = {"machine": machine(), **(extra or {}), "rows": [r.as_json() for r in rows]}
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


# --- processes -------------------------------------------------------------------------------


class Harness:
    """A database, optionally the sandbox, then Django; processes started on demand; all of
    it removed on exit. `name` names the database, the cluster and the results file."""

    def __init__(
        self,
        name: str,
        *,
        sandbox: bool = True,
        sandbox_rate_limit: str = "1000000/3600",
        redis: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.want_sandbox = sandbox
        self.sandbox_rate_limit = sandbox_rate_limit
        self.want_redis = redis
        self.extra_env = env or {}
        self.strict = "--strict" in sys.argv
        self.rows: list[Row] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.db_name: str | None = None
        self.db_backend = "sqlite"
        self.redis_url: str | None = None
        self.cluster_name = f"bench-{name}-{os.getpid()}"
        self.sandbox: Sandbox | None = None
        self.web_url: str | None = None
        self.env: dict[str, str] = {}
        self.failed: BaseException | None = None

    # ---------------------------------------------------------------- set-up and tear-down

    def __enter__(self) -> Harness:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind, value, tb) -> bool:
        if value is not None and not isinstance(value, KeyboardInterrupt):
            self.failed = value
            import traceback

            traceback.print_exception(kind, value, tb)
            self._dump_logs()
        self.close()
        return not isinstance(value, KeyboardInterrupt) and value is not None

    def _setup(self) -> None:
        env = {
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "interseller.settings",
            "Q_CLUSTER_NAME": self.cluster_name,
            "Q_SYNC": "false",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "PYTHONUNBUFFERED": "1",
            # Reconciliation (re-reading pipelines to catch moves made in CATS) is not caused
            # by any flow and fills idle budget up to its share: off, so that a flow's count is
            # the flow's. bench_drain turns it on, to show the flows within a tight budget
            # with it running.
            "CATS_RECONCILE_SHARE": "0",
        }
        env["DATABASE_URL"] = self._create_database()
        if self.want_redis and _redis_ok(REDIS_URL):
            self.redis_url = REDIS_URL
            env["REDIS_URL"] = REDIS_URL
        else:
            env["REDIS_URL"] = ""  # the ORM broker and the per-process cache
        if self.want_sandbox:
            env["CATS_API_URL"] = self._start_sandbox()
        else:
            # Never the real CATS: a bench without the sandbox points the app at a closed port.
            env["CATS_API_URL"] = "http://127.0.0.1:9/v3"
        env.update(self.extra_env)
        self.env = {**os.environ, **env}
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        started = time.monotonic()
        call_command("migrate", verbosity=0)
        log(
            f"{self.name}: {self.db_backend} database {self.db_name} migrated in "
            f"{time.monotonic() - started:.1f} s; broker "
            f"{'Redis' if self.redis_url else 'ORM'}"
            + (f"; sandbox {self.sandbox.root}" if self.sandbox else "")
        )

    def _create_database(self) -> str:
        try:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                self.db_name = f"bench_{self.name}_{os.getpid()}".replace("-", "_")
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            self.db_backend = "postgresql"
            base = PG_ADMIN_URL.rsplit("/", 1)[0]
            return f"{base}/{self.db_name}"
        except Exception as exc:  # no PostgreSQL: SQLite, as the app's defaults
            log(f"PostgreSQL unavailable ({type(exc).__name__}); using SQLite")
            self.db_name = str(self.tmp / "bench.sqlite3")
            return f"sqlite:///{self.db_name}"

    def _drop_database(self) -> None:
        if self.db_backend != "postgresql" or not self.db_name:
            return
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        import psycopg

        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except Exception as exc:
            log(f"could not drop database {self.db_name}: {exc}")

    def close(self) -> None:
        for label, proc, _ in reversed(self.procs):
            _stop(proc, label)
        self.procs.clear()
        self._drop_database()
        if self.redis_url:
            try:
                import redis

                conn = redis.Redis.from_url(self.redis_url)
                keys = list(conn.scan_iter(match=f"django_q:{self.cluster_name}:*"))
                if keys:
                    conn.delete(*keys)
            except Exception as exc:
                log(f"could not clean Redis keys of {self.cluster_name}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, label: str, lines: int = 30) -> list[str]:
        """The last lines a process started here wrote (its stdout and stderr)."""
        for name, _, path in self.procs:
            if name == label:
                try:
                    return path.read_text(errors="replace").splitlines()[-lines:]
                except OSError:
                    return []
        return []

    def _dump_logs(self) -> None:
        for label, _, path in self.procs:
            try:
                tail = path.read_text(errors="replace").splitlines()[-40:]
            except OSError:
                continue
            print(f"--- last lines of {label} ({path.name}) ---", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)

    # ---------------------------------------------------------------- processes

    def _spawn(self, label: str, args: list[str], env: dict[str, str] | None = None):
        path = self.tmp / f"{label}.log"
        out = open(path, "wb")  # noqa: SIM115 (kept open for the child's lifetime)
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env or self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, by its id
        )
        self.procs.append((label, proc, path))
        return proc

    def _start_sandbox(self) -> str:
        port = free_port()
        self._spawn(
            "sandbox",
            [
                PYTHON,
                "-m",
                "cats_sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-demo",
                "--rate-limit",
                self.sandbox_rate_limit,
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.sandbox = Sandbox(f"http://127.0.0.1:{port}")
        wait_until(
            lambda: _answers(f"{self.sandbox.root}/_sandbox/sites"),
            timeout=30,
            interval=0.1,
            what="the CATS sandbox to start",
        )
        return self.sandbox.url

    def start_cluster(self, *, workers: int | None = None) -> subprocess.Popen:
        """`manage.py qcluster`, as production runs it (Q_WORKERS processes, default 2)."""
        env = dict(self.env)
        if workers:
            env["Q_WORKERS"] = str(workers)
        proc = self._spawn("qcluster", [PYTHON, "manage.py", "qcluster"], env=env)
        time.sleep(2)
        if proc.poll() is not None:
            self._dump_logs()
            raise RuntimeError("qcluster exited at start")
        return proc

    def stop_cluster(self) -> None:
        for entry in [p for p in self.procs if p[0] == "qcluster"]:
            _stop(entry[1], "qcluster")
            self.procs.remove(entry)

    def start_web(self, *, workers: int = 3, timeout: int = 60) -> str:
        """gunicorn as the Procfile runs it (3 workers, 60 s timeout), on a free port."""
        port = free_port()
        self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "interseller.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                str(timeout),
                "--graceful-timeout",
                "5",
            ],
        )
        self.web_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(f"{self.web_url}/admin/login/"),
            timeout=60,
            interval=0.2,
            what="gunicorn to start",
        )
        return self.web_url

    # ---------------------------------------------------------------- results

    def row(self, flow: str, measured: float | None, unit: str, **kwargs: Any) -> Row:
        row = Row(flow=flow, measured=measured, unit=unit, bench=self.name, **kwargs)
        self.rows.append(row)
        log(
            f"{row.status}: {flow}: {_num(measured, unit)}"
            + (f" (target {row.target_text or row.target})" if row.target is not None else "")
        )
        return row

    def finish(self) -> None:
        """Print the table, hand the rows to run_all or save them, and pick the exit code."""
        if self.failed is not None:
            self.rows.append(
                Row(
                    flow=f"{self.name}: bench failed",
                    measured=None,
                    unit="",
                    note=f"{type(self.failed).__name__}: {self.failed}"[:200],
                    bench=self.name,
                )
            )
        print()
        print(table(self.rows))
        print_breakdowns(self.rows)
        rows_file = os.environ.get("BENCH_ROWS_FILE")
        if rows_file:
            Path(rows_file).write_text(json.dumps([r.as_json() for r in self.rows], default=str))
        else:
            path = save_results(self.rows, self.name)
            print(f"\nresults: {path.relative_to(ROOT)}")
        if self.failed is not None:
            sys.exit(2)
        if self.strict and any(r.status in ("MISS", "INCOMPLETE") for r in self.rows):
            sys.exit(1)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _redis_ok(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def _stop(proc: subprocess.Popen, label: str) -> None:
    """SIGTERM to the process we started, then, if needed, SIGKILL to its own group."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        log(f"{label} did not stop in 15 s; killing its process group {proc.pid}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    # Children of a cluster that outlived their parent belong to the same group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan
