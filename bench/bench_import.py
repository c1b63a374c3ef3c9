"""Time the contact import on a generated 10,000-row sheet, through the admin's own views.

    .venv/bin/python bench/bench_import.py [rows]

Uses a throwaway SQLite file (WAL, as in production defaults), never the project database.
Prints seconds for the dry run and the confirmed import: new contacts added to a sequence, then
the same sheet again (all unchanged), then as XLSX.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
workdir = tempfile.mkdtemp(prefix="bench-import-")
os.environ.setdefault("DEBUG", "true")
os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interseller.settings")
# Files over IMPORT_BACKGROUND_ROWS are imported by a django-q2 job; run it inline so the
# confirm step's time includes the whole import.
os.environ.setdefault("Q_SYNC", "true")

import django  # noqa: E402

django.setup()

import openpyxl  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from interseller.models import (  # noqa: E402
    Contact,
    Enrollment,
    ImportJob,
    Membership,
    Sequence,
    Team,
)

HEADERS = [
    "First Name",
    "Last Name",
    "Email Address",
    "Current Company",
    "Job Title",
    "Phone",
    "LinkedIn",
    "Location",
    "Notes",
]


def sheet_rows(n: int) -> list[list[str]]:
    return [
        [
            f"First{i}",
            f"Last{i}",
            f"person{i}@prospect{i % 97}.example",
            f"Company {i % 500}",
            "Senior Engineer",
            f"+1 555 {i:07d}",
            f"https://www.linkedin.com/in/person{i}",
            "Berlin, Germany",
            "imported for the benchmark",
        ]
        for i in range(n)
    ]


def as_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADERS, *rows])
    return out.getvalue().encode("utf-8-sig")


def as_xlsx(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run(client: Client, label: str, data: bytes, name: str, team: Team, sequence=None) -> None:
    t0 = time.perf_counter()
    dry = client.post(
        reverse("admin:interseller_contact_import"),
        {
            "team": team.pk,
            "sequence": sequence.pk if sequence else "",
            "format": "0",
            "resource": "",
            "import_file": SimpleUploadedFile(name, data),
        },
    )
    t1 = time.perf_counter()
    form = dry.context["confirm_form"]
    assert form is not None, dry.context.get("shown_errors") or dry.context["form"].errors
    counts = dry.context["counts"]
    done = client.post(
        reverse("admin:interseller_contact_process_import"),
        {name: form.initial.get(name, "") for name in form.fields},
    )
    t2 = time.perf_counter()
    assert done.status_code == 302, done.status_code
    job = ImportJob.objects.order_by("-pk").first()
    background = job is not None and done.url.endswith(f"/{job.pk}/change/")
    if background:
        job.refresh_from_db()
        assert job.state == ImportJob.State.DONE, job.error
    print(
        f"{label:<40} dry run {t1 - t0:6.2f}s   import {t2 - t1:6.2f}s   "
        f"total {t2 - t0:6.2f}s   {'job' if background else 'request'}   {counts}"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        "bench@example.com", "bench@example.com", "x", is_staff=True
    )
    team = Team.objects.create(name="Bench")
    owner = Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    sequence = Sequence.objects.create(team=team, owner=owner, title="Bench sequence")
    client = Client()
    client.force_login(user)

    rows = sheet_rows(n)
    csv_data, xlsx_data = as_csv(rows), as_xlsx(rows)
    print(
        f"{n} rows: CSV {len(csv_data) / 1e6:.1f} MB, XLSX {len(xlsx_data) / 1e6:.1f} MB "
        f"(throwaway database in {workdir})"
    )
    run(client, "CSV, all new, added to a sequence", csv_data, "bench.csv", team, sequence)
    run(client, "CSV again, all unchanged", csv_data, "bench.csv", team, sequence)
    Contact.objects.all().delete()
    run(client, "XLSX, all new, no sequence", xlsx_data, "bench.xlsx", team)
    assert Contact.objects.count() == n
    print(f"contacts {Contact.objects.count()}, enrollments {Enrollment.objects.count()}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
