"""How dates read, everywhere: the admin's columns and pages (Django's DATE_FORMAT and
DATETIME_FORMAT, set in settings.py and made to win over the locale's by the format module in
en/), and the few places that write a date into text themselves (export cells, labels).
"""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone


def datetime_text(value: datetime | None) -> str:
    """A moment in the site's time zone, as the admin shows it."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")


def date_text(value: date | datetime | None) -> str:
    """A day (of a moment, in the site's time zone), as the admin shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATE_FORMAT")
