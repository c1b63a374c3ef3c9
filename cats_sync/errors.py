"""One exception hierarchy for everything the sync raises about CATS.

Callers catch a class, never a hand-kept tuple:

- `CatsSyncError`: the base. Catch it where any CATS trouble must become a message
  (the settings check, admin actions).
- `CatsError` (in client.py) and its subclasses: what CATS answered, with `permanent` and, for
  failed writes, `write_may_have_happened`.
- `Wait`: nothing is wrong with the work; try again at `until`. Nothing was sent to CATS
  (our budget, an outage back-off, another worker's claim), except for `RateLimited`, which is
  CATS' own 429.
- `NeedsPerson`: configuration a person must fix (the key, a job order, a status, a custom
  field, data CATS refuses). `step` says which part of the sync failed, so that the error
  clears exactly when that step succeeds, and Retry re-runs it.
"""

from __future__ import annotations

from datetime import datetime


class CatsSyncError(Exception):
    """Base of every error the CATS sync raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Wait(CatsSyncError):
    """Not a failure: the work is due again at `until`. `sent` says whether a request left."""

    sent = False
    code = "waiting"

    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class BudgetSpent(Wait):
    """Our own request budget for the site is used up (or kept for live work)."""

    code = "budget"


class RateLimited(Wait):
    """CATS answered 429; `until` is what its Retry-After asked for."""

    code = "rate_limited"
    sent = True


class SiteOutage(Wait):
    """CATS failed recently on this site; one probe at a time finds out when it is back."""

    code = "outage"


class ClaimHeld(Wait):
    """Another worker is creating this email's candidate right now."""

    code = "claimed"


class NeedsPerson(CatsSyncError):
    """A person must change something (in CATS or in our settings) before this step works.

    `code` is one of EnrollmentSync.Error, `step` one of SyncIssue.Step, `key` tells apart
    several issues of one step (the status title, the mapped value).
    """

    def __init__(self, message: str, *, code: str, step: str, key: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.step = step
        self.key = key


class KeyUnreadable(CatsSyncError):
    """The stored API key cannot be decrypted with CATS_ENCRYPTION_KEYS (server settings)."""
