"""The admin's "Resync to CATS" of 100,000 contacts: the confirm page, and the POST that starts
the run, timed over real HTTP.

    .venv/bin/python bench/bench_resync_admin.py [--strict]

Data (scenario.people: INSERT ... SELECT on PostgreSQL, bulk_create elsewhere): a team whose
owner has a password, four sequences, 100,000 contacts (BENCH_RESYNC_ADMIN_CONTACTS; small:
10,000) each enrolled in one, every one never synced (EnrollmentSync rows without an account:
added before the owner connected). The owner's CATS connection is a row only; nothing here
reaches CATS.

gunicorn as in the Procfile (3 workers, `--timeout 60`), signed in through the login form. On
the contact list, "select all 100,000" and the action "Resync to CATS…":

- the confirm page (the action POST without `confirm`), 5 times, median; target < 2 s;
- the POST that confirms (`confirm=yes`) once; target < 2 s. gunicorn kills a worker after
  60 s, as in production; then the row says so, with whether a run was created (it is not:
  the transaction dies with the worker);
- when the POST left the queuing to a worker (fewer tasks than contacts right after it), a
  real cluster is started and the time until every contact is queued is a row of its own
  (INFO; INCOMPLETE if not done in BENCH_RESYNC_PLAN_TIMEOUT, 600 s). Its sync work goes
  nowhere: this bench points CATS_API_URL at a closed port.

BENCH_RESYNC_INPROCESS=1 also times `resync_start` for the same enrollments in-process,
without the 60 s limit (minutes today, so it is off by default).
"""

from __future__ import annotations

import os
import time

import harness

h = harness.Harness("resync_admin", sandbox=False)
N = harness.scaled(100_000, 10_000, env="BENCH_RESYNC_ADMIN_CONTACTS")
REPEAT = harness.scaled(5, 3)


def main() -> None:
    import requests
    import scenario as sc

    from cats_sync.models import ResyncRun, SyncTask
    from interseller.models import Contact, Enrollment

    team, owner = sc.team_with_owner("Resync admin", password=sc.PASSWORD)
    sequences = [sc.sequence_for(owner, f"Resync admin sequence {i}") for i in range(4)]
    sc.people(
        team=team,
        owners=[owner],
        sequences=sequences,
        n=N,
        domain="resync-admin.example",
        synced=False,
    )
    sc.fake_connection(owner)

    web = h.start_web()
    session = requests.Session()
    session.get(f"{web}/admin/login/", timeout=30)
    session.post(
        f"{web}/admin/login/?next=/admin/",
        data={
            "username": owner.user.username,
            "password": sc.PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{web}/admin/login/"},
        timeout=30,
    )
    if "sessionid" not in session.cookies:
        raise RuntimeError("could not sign in")
    changelist = f"{web}/admin/interseller/contact/"
    session.get(changelist, timeout=120)
    first_page = list(Contact.objects.filter(team=team).values_list("pk", flat=True)[:100])
    form = {
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "action": "resync_to_cats",
        "select_across": "1",
        "index": "0",
        "_selected_action": [str(pk) for pk in first_page],
    }
    headers = {"Referer": changelist}

    confirm_times = []
    for _ in range(REPEAT):
        t = time.monotonic()
        response = session.post(changelist, data=form, headers=headers, timeout=120)
        confirm_times.append(time.monotonic() - t)
        if response.status_code != 200 or "confirm" not in response.text:
            raise RuntimeError(f"the confirm page answered {response.status_code}")
    h.row(
        f"admin 'Resync to CATS' of {N:,} contacts: confirm page",
        harness.median(confirm_times),
        "s",
        target=2,
        cmp="<",
        target_text="< 2 s",
        note=f"{REPEAT} requests: " + ", ".join(f"{x:.2f}" for x in confirm_times) + " s",
        details={"times_s": confirm_times},
    )

    t = time.monotonic()
    outcome = ""
    try:
        response = session.post(
            changelist,
            data={**form, "confirm": "yes"},
            headers=headers,
            timeout=150,
            allow_redirects=False,
        )
        took = time.monotonic() - t
        outcome = f"answered {response.status_code}"
        if response.status_code == 302:
            outcome += f" to {response.headers.get('Location')}"
    except requests.RequestException as exc:
        took = time.monotonic() - t
        outcome = f"no answer ({type(exc).__name__}): gunicorn's 60 s timeout killed the worker"
    web_log = [] if outcome.startswith("answered 302") else h.log_tail("web", 15)
    if any("WORKER TIMEOUT" in line for line in web_log):
        outcome += " (gunicorn: WORKER TIMEOUT, the worker was killed at 60 s)"
    runs = ResyncRun.objects.filter(team=team).count()
    tasks = SyncTask.objects.filter(enrollment__sequence__team=team).count()
    started = outcome.startswith("answered 302") and runs > 0
    h.row(
        f"admin 'Resync to CATS' of {N:,} contacts: POST that starts it",
        took,
        "s",
        target=2,
        cmp="<",
        target_text="< 2 s (one short request)",
        note=f"{outcome}; runs created: {runs}, tasks queued by then: {tasks:,}",
        complete=started,
        details={"outcome": outcome, "runs": runs, "tasks": tasks, "web_log": web_log},
    )
    if not started:
        return

    # A run that queues its work in the background must get it all queued: a real cluster
    # does it (its sync work goes nowhere: CATS_API_URL is a closed port here).
    if tasks < N:
        h.start_cluster()
        t = time.monotonic()
        complete = True
        try:
            harness.wait_until(
                lambda: SyncTask.objects.filter(enrollment__sequence__team=team).count() >= N,
                timeout=harness.scaled(600, 300, env="BENCH_RESYNC_PLAN_TIMEOUT"),
                interval=1,
                what="every contact of the run to be queued",
            )
        except TimeoutError as exc:
            harness.log(str(exc))
            complete = False
        planned = time.monotonic() - t
        h.stop_cluster()
        queued = SyncTask.objects.filter(enrollment__sequence__team=team).count()
        h.row(
            f"admin 'Resync to CATS' of {N:,} contacts: queued by the worker",
            planned,
            "s",
            note=f"{queued:,} of {N:,} contacts queued (after the POST); Q_TIMEOUT is 240 s",
            complete=complete,
            details={"queued": queued},
        )

    if os.environ.get("BENCH_RESYNC_INPROCESS"):
        t = time.monotonic()
        sc.resync(sequences[0], description="in-process")
        # One sequence of four: scaled to all, as a note.
        quarter = time.monotonic() - t
        done = Enrollment.objects.filter(sequence=sequences[0]).count()
        h.row(
            "resync_start in-process (one sequence of four, no HTTP limit)",
            quarter,
            "s",
            note=f"{done:,} enrollments; x4 for all {N:,}: ~{quarter * 4:.0f} s",
        )


if __name__ == "__main__":
    with h:
        main()
    h.finish()
