"""The dry run: every row checked and the outcome predicted without a write, and without a
query per row."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from ..models import Contact, Enrollment, Membership, Sequence, Team
from ..services import CONTACT_FIELDS, normalize_email
from ..text import text_clean
from .headers import FIELD_LABELS, NAME, Columns, columns_match
from .limits import (
    EMAIL_QUERY_CHUNK,
    FORMULA_PREFIXES,
    import_max_cell_chars,
)
from .messages import (
    MSG_CELL_CHARS,
    MSG_ROW_CELL,
    MSG_ROW_DUPLICATE,
    MSG_ROW_EMAIL_INVALID,
    MSG_ROW_EMAIL_MISSING,
    MSG_ROW_FIELD_INVALID,
    MSG_ROW_TEAMMATES_CONTACT,
)
from .sheet import CellProblem, Sheet


@dataclass(frozen=True)
class RowError:
    row: int
    column: str  # header as in the file
    message: str  # "row 14: email 'bob@' is not a valid address"

    def __str__(self) -> str:
        return self.message


@dataclass
class PlannedRow:
    row: int
    email: str
    fields: dict[str, str]
    status: str  # new / updated / unchanged, as contact_upsert will report it
    changed: tuple[str, ...] = ()


@dataclass
class ImportPlan:
    sheet: Sheet
    columns: Columns
    rows: list[PlannedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Rows already in the chosen sequence (only counted when a sequence is chosen).
    already_in_sequence: int = 0

    @property
    def is_valid(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.rows)
        return {
            "new": c["new"],
            "updated": c["updated"],
            "unchanged": c["unchanged"],
            "invalid": len({e.row for e in self.errors}),
        }


def _split_name(full: str) -> tuple[str, str]:
    full = " ".join(full.split())
    if "," in full:  # "Smith, Jane"
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.partition(" ")
    return first, last


def _fix_linkedin(value: str) -> str:
    # Exports often drop the scheme ("linkedin.com/in/jane"); the model needs a full URL.
    if value and "://" not in value and re.match(r"^(www\.)?[a-z0-9-]+\.[a-z]", value, re.I):
        return "https://" + value
    return value


def _unescape(value: str) -> str:
    # Undo our own export's formula escaping, so an exported sheet imports unchanged.
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


_MODEL_FIELDS = {name: Contact._meta.get_field(name) for name in CONTACT_FIELDS}


def row_fields(cells: list[str], columns: Columns) -> dict[str, str]:
    values = {
        name: _unescape(cells[i]) for name, i in columns.index.items() if name in _MODEL_FIELDS
    }
    if NAME in columns.index and not values.get("first_name") and not values.get("last_name"):
        first, last = _split_name(cells[columns.index[NAME]])
        values["first_name"], values["last_name"] = first, last
    if "linkedin_url" in values:
        values["linkedin_url"] = _fix_linkedin(values["linkedin_url"])
    return values


def _cells_clean(
    number: int,
    cells: list[str],
    headers: list[str],
    used: list[int],
    problems: list[CellProblem],
    max_chars: int,
) -> tuple[list[str], set[int], list[RowError]]:
    """The row with its imported cells as they will be stored (`text_clean`), the columns
    whose cell can't be, and a row error for each of those. Other columns don't matter."""
    cells = list(cells)
    bad: set[int] = set()
    errors: list[RowError] = []
    for problem in problems:
        if problem.column in used:
            bad.add(problem.column)
            errors.append(RowError(number, headers[problem.column], problem.message))
    for i in used:
        if i in bad:
            continue
        if len(cells[i]) > max_chars:
            problem_text = MSG_CELL_CHARS.format(length=len(cells[i]), limit=max_chars)
        else:
            try:
                cells[i] = text_clean(cells[i])
                continue
            except ValidationError as e:
                problem_text = " ".join(e.messages)
        bad.add(i)
        errors.append(
            RowError(
                number,
                headers[i],
                MSG_ROW_CELL.format(row=number, column=headers[i], problem=problem_text),
            )
        )
    return cells, bad, errors


def import_plan(
    *,
    sheet: Sheet,
    team: Team,
    sequence: Sequence | None = None,
    only_own: Membership | None = None,
) -> ImportPlan:
    """Check every row and predict what the import will do, without writing anything.

    Catches everything `contact_upsert` would refuse (its `full_clean`), so a file that passes
    here imports whole. With `only_own` (a member's import, see `import_only_own`), a row
    matching a teammate's contact is invalid: members may change only their own contacts.
    """
    columns = columns_match(sheet.headers)
    plan = ImportPlan(sheet=sheet, columns=columns)
    email_col = columns.index["email"]
    email_header = sheet.headers[email_col]
    first_row_of: dict[str, int] = {}
    used = sorted(set(columns.index.values()))
    max_chars = import_max_cell_chars()
    problems: dict[int, list[CellProblem]] = {}
    for problem in sheet.problems:
        problems.setdefault(problem.row, []).append(problem)
    for number, cells in sheet.rows:
        cells, bad, row_errors = _cells_clean(
            number, cells, sheet.headers, used, problems.get(number, []), max_chars
        )
        if not row_errors and not any(cells):
            continue  # only a formula without a saved value, in a column not imported
        raw_email = _unescape(cells[email_col])
        email = normalize_email(raw_email)
        if email_col in bad:
            pass  # its cell is an error already
        elif not email:
            row_errors.append(
                RowError(number, email_header, MSG_ROW_EMAIL_MISSING.format(row=number))
            )
        else:
            try:
                Contact._meta.get_field("email").run_validators(email)
            except ValidationError:
                row_errors.append(
                    RowError(
                        number,
                        email_header,
                        MSG_ROW_EMAIL_INVALID.format(row=number, email=raw_email.strip()),
                    )
                )
            else:
                first = first_row_of.setdefault(email, number)
                if first != number:
                    row_errors.append(
                        RowError(
                            number,
                            email_header,
                            MSG_ROW_DUPLICATE.format(row=number, email=email, first=first),
                        )
                    )
        values = row_fields(cells, columns)
        for name, value in values.items():
            source = (
                NAME
                if name in ("first_name", "last_name") and (name not in columns.index)
                else name
            )
            if not value or columns.index.get(source) in bad:
                continue
            try:
                _MODEL_FIELDS[name].clean(value, None)
            except ValidationError as e:
                shown = value if len(value) <= 60 else value[:57] + "..."
                row_errors.append(
                    RowError(
                        number,
                        columns.header_of(sheet.headers, source),
                        MSG_ROW_FIELD_INVALID.format(
                            row=number,
                            label=FIELD_LABELS[name],
                            value=shown,
                            problem=" ".join(e.messages),
                        ),
                    )
                )
        if row_errors:
            plan.errors.extend(row_errors)
        else:
            plan.rows.append(PlannedRow(row=number, email=email, fields=values, status="new"))

    _plan_against_existing(plan, team, sequence, only_own)
    return plan


def _plan_against_existing(
    plan: ImportPlan, team: Team, sequence: Sequence | None, only_own: Membership | None
) -> None:
    by_email = {r.email: r for r in plan.rows}
    emails = list(by_email)
    existing_ids: list[int] = []
    refused: list[PlannedRow] = []
    for start in range(0, len(emails), EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + EMAIL_QUERY_CHUNK]
        # The team's own contacts only: another team's contact with the same email is no match.
        for found in Contact.objects.filter(team=team, email__in=chunk).values(
            "id", "email", "owner_id", *CONTACT_FIELDS
        ):
            row = by_email[found["email"]]
            if only_own is not None and found["owner_id"] != only_own.pk:
                refused.append(row)
                continue
            existing_ids.append(found["id"])
            # Same rule as contact_upsert: blank cells never erase.
            row.changed = tuple(
                k for k, v in row.fields.items() if v and (found[k] or "") != v.strip()
            )
            row.status = "updated" if row.changed else "unchanged"
    if refused:
        header = plan.sheet.headers[plan.columns.index["email"]]
        gone = {r.row for r in refused}
        plan.rows = [r for r in plan.rows if r.row not in gone]
        plan.errors.extend(
            RowError(r.row, header, MSG_ROW_TEAMMATES_CONTACT.format(row=r.row, email=r.email))
            for r in refused
        )
        plan.errors.sort(key=lambda e: e.row)
    if sequence is not None:
        for start in range(0, len(existing_ids), EMAIL_QUERY_CHUNK):
            plan.already_in_sequence += Enrollment.objects.filter(
                sequence=sequence, contact_id__in=existing_ids[start : start + EMAIL_QUERY_CHUNK]
            ).count()
