"""Spreadsheets to import and the admin pages that import and export them: files from
tests/interseller/imports/fixtures, CSV and XLSX made on the fly, and workbooks written by hand
(as programs other than openpyxl write them)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from interseller.models import Contact
from interseller.resources import ContactExportResource

FIXTURES = Path(__file__).resolve().parent.parent / "interseller" / "imports" / "fixtures"
IMPORT_URL = reverse("admin:interseller_contact_import")
PROCESS_URL = reverse("admin:interseller_contact_process_import")
CHANGELIST_URL = reverse("admin:interseller_contact_changelist")
EXPORT_URL = reverse("admin:interseller_contact_export")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def csv_bytes(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data: bytes, *, team, sequence=None, name: str = "contacts.csv"):
    """The first step: upload and dry run."""
    return client.post(
        IMPORT_URL,
        {
            "team": team.pk,
            "sequence": sequence.pk if sequence else "",
            "format": "0",
            "resource": "",
            "import_file": SimpleUploadedFile(name, data),
        },
    )


def confirm(client, response):
    """The second step: post the confirm form the dry run rendered."""
    form = response.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return client.post(PROCESS_URL, data)


def import_file(client, data: bytes, **kwargs):
    before = Contact.objects.count()
    dry = upload(client, data, **kwargs)
    assert dry.status_code == 200
    assert Contact.objects.count() == before  # the dry run writes nothing
    assert dry.context.get("confirm_form") is not None, dry.context.get("shown_errors") or (
        dry.context["form"].errors
    )
    return dry, confirm(client, dry)


def file_errors(response) -> list[str]:
    return response.context["form"].errors.get("import_file", [])


def team_emails(team) -> set[str]:
    return set(Contact.objects.filter(team=team).values_list("email", flat=True))


def teammate_file(email: str) -> bytes:
    """Row 7 holds `email`; the rows before it are new contacts or the importer's own."""
    return csv_bytes(
        [
            ["Email", "Company"],
            ["mine@x.example", "Mine now"],
            *[[f"new{i}@x.example", "New"] for i in range(4)],
            [email.upper(), "Changed by a teammate"],
        ]
    )


# --- export ----------------------------------------------------------------------------------
def export(client, query: str = "", fmt: str = "0") -> bytes:
    response = client.post(
        EXPORT_URL + query,
        {
            "format": fmt,
            "resource": "0",
            **{f"contactexportresource_{name}": "on" for name in ContactExportResource().fields},
        },
    )
    assert response.status_code == 200, response.content[:2000]
    return response.content


def exported_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


# --- workbooks written by hand ---------------------------------------------------------------
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def xlsx_parts(shared_strings: bool = False) -> dict[str, str]:
    """Every part of a one-sheet workbook but the sheet (and the shared strings) themselves."""
    strings_type = (
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_TYPE}.sharedStrings+xml"/>'
    )
    strings_rel = (
        f'<Relationship Id="rId2" Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
    )
    return {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{_TYPE}.worksheet+xml"/>{strings_type if shared_strings else ""}'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{_REL_NS}"><sheets>'
            '<sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{strings_rel if shared_strings else ''}</Relationships>"
        ),
    }


def sheet_xml(rows: str, before: str = "") -> str:
    return f'<worksheet xmlns="{MAIN_NS}">{before}<sheetData>{rows}</sheetData></worksheet>'


def text_cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def xlsx_package(sheet: str, shared_strings: str | None = None) -> bytes:
    """An .xlsx with this worksheet XML, as a program other than openpyxl may write it."""
    parts = {**xlsx_parts(shared_strings is not None), "xl/worksheets/sheet1.xml": sheet}
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            # A fixed date: the same sheet gives the same bytes.
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED)
    return out.getvalue()
