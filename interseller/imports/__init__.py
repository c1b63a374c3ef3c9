"""Spreadsheet import of contacts, a module per step:

- reading (with sheet, csvfile, xlsx): a file's rows, at the cost of what it holds, within
  the limits (limits.py);
- headers: which column fills which contact field;
- plan: the dry run, every row checked without a write;
- execute: the confirmed import, through the same services as a contact added by hand;
- jobs: imports too big for a request, run by a worker in resumable chunks with progress;
- storage: a job's file, kept in the database in parts and read back as a stream;
- messages: what the person is told.

The admin pages are in `admin/spreadsheets.py`, the export in `resources.py`.
"""

from __future__ import annotations

from .execute import (  # noqa: F401
    PROGRESS_EVERY,
    ImportFailed,
    ImportOutcome,
    import_execute,
    import_only_own,
    import_owner,
    import_result_message,
)
from .headers import (  # noqa: F401
    FIELD_LABELS,
    NAME,
    Columns,
    columns_match,
    header_key,
)
from .jobs import (  # noqa: F401
    JOB_CHUNK_ROWS,
    JOB_ERRORS_KEPT,
    JOB_MAX_RECOVERIES,
    import_job_create,
    import_job_lease,
    import_job_progress,
    import_job_run,
    import_job_slice,
    import_jobs_sweep,
)
from .limits import (  # noqa: F401
    EMAIL_QUERY_CHUNK,
    FORMULA_PREFIXES,
    import_background_rows,
    import_max_blank_rows,
    import_max_bytes,
    import_max_cell_chars,
    import_max_cells,
    import_max_columns,
    import_max_compression_ratio,
    import_max_rows,
    import_max_unzipped_bytes,
)
from .messages import (  # noqa: F401
    MSG_CELL_CHARS,
    MSG_CELL_TOO_LONG,
    MSG_COMPRESSION_RATIO,
    MSG_EMPTY,
    MSG_FILE_EXPIRED,
    MSG_IMPORT_DONE,
    MSG_IMPORT_FAILED,
    MSG_JOB_CRASHED,
    MSG_JOB_NO_OWNER,
    MSG_JOB_QUEUED,
    MSG_JOB_SEQUENCE_GONE,
    MSG_JOB_STALLED,
    MSG_JOB_STOPPED,
    MSG_NO_EMAIL_COLUMN,
    MSG_NO_OWNER,
    MSG_NO_ROWS,
    MSG_NOT_SPREADSHEET,
    MSG_OLD_EXCEL,
    MSG_ROW_CELL,
    MSG_ROW_DUPLICATE,
    MSG_ROW_EMAIL_INVALID,
    MSG_ROW_EMAIL_MISSING,
    MSG_ROW_FIELD_INVALID,
    MSG_ROW_FORMULA,
    MSG_ROW_TEAMMATES_CONTACT,
    MSG_SEQUENCE_DONE,
    MSG_SEQUENCE_OTHER_TEAM,
    MSG_TOO_LARGE,
    MSG_TOO_MANY_BLANK_ROWS,
    MSG_TOO_MANY_CELLS,
    MSG_TOO_MANY_COLUMNS,
    MSG_TOO_MANY_ROWS,
    MSG_UNZIPPED_TOO_LARGE,
    ImportRefused,
)
from .plan import (  # noqa: F401
    ImportPlan,
    PlannedRow,
    RowError,
    import_plan,
    row_fields,
)
from .reading import (  # noqa: F401
    sheet_read,
    sheet_read_chunks,
)
from .sheet import (  # noqa: F401
    CellProblem,
    Sheet,
    build_sheet,
    cell_text,
    column_letters,
)
