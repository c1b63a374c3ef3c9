"""The import limits, read from settings (IMPORT_*; see .env.example), in one place."""

from __future__ import annotations

from django.conf import settings

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Rows read from the file are checked in chunks of this many emails: one query per chunk,
# under SQLite's limit on query parameters.
EMAIL_QUERY_CHUNK = 900


def import_max_bytes() -> int:
    return getattr(settings, "IMPORT_MAX_BYTES", 32 * 1024 * 1024)


def import_max_rows() -> int:
    return getattr(settings, "IMPORT_MAX_ROWS", 100_000)


def import_max_columns() -> int:
    return getattr(settings, "IMPORT_MAX_COLUMNS", 200)


def import_max_blank_rows() -> int:
    """Empty rows allowed above and between the rows of contacts, not after them."""
    return getattr(settings, "IMPORT_MAX_BLANK_ROWS", 10_000)


def import_max_cell_chars() -> int:
    return getattr(settings, "IMPORT_MAX_CELL_CHARS", 32_767)


def import_max_cells() -> int:
    """Cells, and texts of the shared string table, in the whole of an .xlsx."""
    return getattr(settings, "IMPORT_MAX_CELLS", 2_000_000)


def import_max_unzipped_bytes() -> int:
    return getattr(settings, "IMPORT_MAX_UNZIPPED_BYTES", 100 * 1024 * 1024)


def import_max_compression_ratio() -> int:
    return getattr(settings, "IMPORT_MAX_COMPRESSION_RATIO", 100)


def import_background_rows() -> int:
    """Files with more rows than this are imported by a worker, not inside the request."""
    return getattr(settings, "IMPORT_BACKGROUND_ROWS", 2_000)
