"""What every step of a task works with."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..client import CatsClient
from ..errors import NeedsPerson
from ..models import CatsAccount, CatsSite, EnrollmentSync, SyncTask
from .lookups import Lookups


@dataclass
class StepContext:
    task: SyncTask
    es: EnrollmentSync
    account: CatsAccount
    client: CatsClient
    lookups: Lookups
    # Problems of steps that went on anyway (one bad field never stops the others); the task
    # fails with the first once every step has had its turn.
    problems: list[NeedsPerson] = field(default_factory=list)

    @property
    def site(self) -> CatsSite:
        return self.account.site

    @property
    def bulk(self) -> bool:
        return self.task.priority == SyncTask.Priority.BULK
