"""What a person is told about an import: every message (tests assert on these) and the two
refusals, of a whole file and of a confirmed import."""

from __future__ import annotations

MSG_TOO_LARGE = "The file is {size}, over the {limit} limit. Split it into smaller files."
MSG_TOO_MANY_ROWS = (
    "The file has more than {limit:,} rows of contacts, the most one import can take. "
    "Split it into smaller files."
)
MSG_NOT_SPREADSHEET = (
    "This file is not a spreadsheet we can read. Upload a CSV file or an Excel workbook (.xlsx)."
)
MSG_OLD_EXCEL = (
    "Old Excel files (.xls) can't be read. In Excel, choose File › Save As › "
    "Excel Workbook (.xlsx) or CSV, and upload that."
)
MSG_EMPTY = "The file is empty: it needs a header row and at least one row of contacts."
MSG_NO_ROWS = "The file has a header row but no contacts below it."
MSG_NO_EMAIL_COLUMN = (
    "No email column found. The columns are: {columns}. "
    "Name the column that holds email addresses “Email”."
)
MSG_TOO_MANY_COLUMNS = (
    "Cell {cell} has something in it, past column {last}: one import reads at most {limit:,} "
    "columns (IMPORT_MAX_COLUMNS). Delete the columns you don't need and upload the file again."
)
MSG_TOO_MANY_BLANK_ROWS = (
    "The file has more than {limit:,} empty rows above or between its contacts "
    "(IMPORT_MAX_BLANK_ROWS). Delete the empty rows and upload the file again."
)
MSG_CELL_TOO_LONG = (
    "{where} holds more than {limit:,} characters, the most one cell may hold "
    "(IMPORT_MAX_CELL_CHARS). Shorten it and upload the file again."
)
MSG_TOO_MANY_CELLS = (
    "The workbook holds more than {limit:,} cells, the most one import reads "
    "(IMPORT_MAX_CELLS). Keep only the sheet of contacts and the columns you need, or split "
    "it into smaller files."
)
MSG_UNZIPPED_TOO_LARGE = (
    "The workbook unzips to {size}, over the {limit} limit (IMPORT_MAX_UNZIPPED_BYTES). "
    "Split it into smaller files, or save it as CSV and upload that."
)
MSG_COMPRESSION_RATIO = (
    "Part of the workbook unzips to {ratio:,} times its size, more than the {limit:,} times "
    "a real workbook may (IMPORT_MAX_COMPRESSION_RATIO). Open it in your spreadsheet program, "
    "save it as CSV and upload that."
)
MSG_ROW_FORMULA = (
    "row {row}: cell {cell} holds a formula with no saved value; "
    "copy the column and paste it back as values only"
)
MSG_ROW_CELL = "row {row}, column “{column}”: {problem}"
MSG_CELL_CHARS = (
    "holds {length:,} characters, more than the {limit:,} one cell may hold (IMPORT_MAX_CELL_CHARS)"
)
MSG_ROW_EMAIL_MISSING = "row {row}: email is missing"
MSG_ROW_EMAIL_INVALID = "row {row}: email '{email}' is not a valid address"
MSG_ROW_DUPLICATE = "row {row}: email '{email}' already appears in row {first}"
MSG_ROW_FIELD_INVALID = "row {row}: {label} '{value}': {problem}"
MSG_ROW_TEAMMATES_CONTACT = (
    "row {row}: {email} belongs to a contact of another teammate; "
    "ask them or a manager to update it"
)
MSG_SEQUENCE_OTHER_TEAM = "Choose a sequence of the team “{team}”."
MSG_NO_OWNER = "The team “{team}” has no members to own the imported contacts."
MSG_FILE_EXPIRED = "The uploaded file is no longer available. Upload it again."
MSG_IMPORT_FAILED = "Nothing was imported: {error}"
MSG_IMPORT_DONE = (
    "Import finished: {created} new, {updated} updated and {unchanged} unchanged contacts."
)
MSG_SEQUENCE_DONE = " {added} added to the sequence “{sequence}” ({already} already in it)."
MSG_JOB_QUEUED = (
    "The file has {rows:,} rows, so it is imported in the background. "
    "This page shows how far it has got."
)
MSG_JOB_SEQUENCE_GONE = "the sequence “{sequence}” was deleted before the import started."
MSG_JOB_NO_OWNER = "the person who uploaded the file is no longer a member of “{team}”."
# A background import writes in chunks; one that stops part-way says what is in and what is not.
MSG_JOB_STOPPED = (
    "The import stopped: {error} Rows 1 to {row} of the file were imported ({processed:,} of "
    "{total:,} rows); the rest were not. Import the file again once it is fixed: rows already "
    "imported are updated, never added twice."
)
MSG_JOB_STALLED = (
    "its worker stopped {times} times without finishing (it may have run out of memory or time)."
)
MSG_JOB_CRASHED = (
    "the import stopped unexpectedly. Try again, or ask an administrator to look at the server log."
)


class ImportRefused(Exception):
    """The file as a whole can't be imported; the message is for the person who uploaded it."""
