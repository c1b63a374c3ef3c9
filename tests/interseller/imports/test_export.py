"""Exporting contacts to CSV and XLSX: the changelist's filters, scoping, formula escaping,
and an exported sheet imports back unchanged."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from interseller.models import Contact, Enrollment
from interseller.resources import escape_formula
from tests.factories import ContactFactory, SequenceFactory
from tests.support.spreadsheets import (
    CHANGELIST_URL,
    EXPORT_URL,
    IMPORT_URL,
    export,
    exported_rows,
    upload,
)

pytestmark = pytest.mark.django_db


# --- export -----------------------------------------------------------------------------------


def test_export_csv_has_the_contacts_with_owner_and_sequences(team_a, login, sequence_a):
    contact = ContactFactory(
        team=team_a.team,
        owner=team_a.member,
        email="ada@x.example",
        first_name="Ada",
        company="Engines",
        source="LinkedIn",
    )
    other = SequenceFactory(team=team_a.team, owner=team_a.owner, title="Alpha")
    Enrollment.objects.create(contact=contact, sequence=sequence_a)
    Enrollment.objects.create(contact=contact, sequence=other)
    [row] = exported_rows(export(login(team_a.owner)))
    assert row["Email"] == "ada@x.example"
    assert row["First name"] == "Ada" and row["Company"] == "Engines"
    assert row["Owner"] == team_a.member.user.email
    assert row["Sequences"] == "Alpha; Backend engineers"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["Created at"])


@pytest.mark.parametrize("value", ["=1+1", "+1 555 0100", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_export_escapes_formula_cells_in_csv_and_xlsx(team_a, login, value):
    ContactFactory(
        team=team_a.team, owner=team_a.owner, email="f@x.example", company=value, phone=value
    )
    client = login(team_a.owner)
    [row] = exported_rows(export(client, fmt="0"))
    assert row["Company"] == "'" + value
    book = openpyxl.load_workbook(io.BytesIO(export(client, fmt="1")))
    sheet = book.active
    headers = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=headers.index("Company") + 1)
    # XML turns a lone carriage return into a newline; the escape is what matters.
    assert cell.data_type == "s" and cell.value == "'" + value.replace("\r", "\n")


def test_escape_formula_leaves_ordinary_values_alone():
    assert escape_formula("Acme") == "Acme"
    assert escape_formula("a=b") == "a=b"
    assert escape_formula(3) == 3


def test_an_exported_sheet_imports_back_unchanged(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="p@x.example", phone="+1 555 0100")
    client = login(team_a.owner)
    dry = upload(client, export(client), team=team_a.team)
    assert dry.context["counts"] == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0}


def test_export_respects_the_changelist_filters_and_search(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="a@x.example", source="Fair")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="b@x.example", source="Web")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="needle@x.example", source="Web")
    client = login(team_a.owner)
    assert [r["Email"] for r in exported_rows(export(client, "?source=Fair"))] == ["a@x.example"]
    assert [r["Email"] for r in exported_rows(export(client, "?q=needle"))] == ["needle@x.example"]


def test_export_never_includes_another_teams_contacts(team_a, team_b, login):
    ContactFactory(team=team_a.team, owner=team_a.owner, email="ours@x.example")
    ContactFactory(team=team_b.team, owner=team_b.owner, email="theirs@x.example")
    client = login(team_a.owner)
    assert [r["Email"] for r in exported_rows(export(client))] == ["ours@x.example"]
    rows = exported_rows(export(client, f"?team__id__exact={team_b.team.pk}"))
    assert "theirs@x.example" not in [r["Email"] for r in rows]


def test_member_exports_only_their_own_contacts(team_a, login):
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example")
    ContactFactory(team=team_a.team, owner=team_a.owner, email="boss@x.example")
    assert [r["Email"] for r in exported_rows(export(login(team_a.member)))] == ["mine@x.example"]


def test_an_integration_adds_export_columns_through_the_core_hook(team_a, login):
    from interseller.extensions import AdminExtension, extend, retract

    shout = AdminExtension(export_columns=(("Shout", lambda c: "=" + c.email.upper()),))
    extend(Contact, shout)
    try:
        ContactFactory(team=team_a.team, owner=team_a.owner, email="x@x.example")
        [row] = exported_rows(export(login(team_a.owner)))
    finally:
        retract(Contact, shout)
    assert row["Shout"] == "'=X@X.EXAMPLE"


def test_import_and_export_links_are_on_the_changelist(team_a, login):
    page = login(team_a.owner).get(CHANGELIST_URL).content.decode()
    assert IMPORT_URL in page and EXPORT_URL in page
