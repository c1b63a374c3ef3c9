"""django-q2 tasks: thin. They carry ids; the state lives in the rows they name."""

from __future__ import annotations

from . import imports, services


def import_job_run(job_id: int) -> str:
    job = imports.import_job_run(job_id=job_id)
    return "nothing to do" if job is None else job.state


def team_webhook_deliver(delivery_id: int) -> str:
    return services.team_webhook_deliver(delivery_id=delivery_id)


def team_webhooks_sweep() -> int:
    return services.team_webhooks_sweep()


def import_jobs_sweep() -> dict[str, int]:
    """Scheduled every minute (migration 0008): no import job is left running or queued
    when its worker or its message was lost."""
    return imports.import_jobs_sweep()
