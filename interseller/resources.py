"""Contacts exported as a spreadsheet (django-import-export), formula-escaped."""

from __future__ import annotations

from typing import Any

from django.utils.text import slugify
from import_export import fields as ie_fields
from import_export import resources

from .extensions import export_columns_for, export_prefetch_for
from .formats import datetime_text
from .imports import FORMULA_PREFIXES
from .models import Contact
from .services import CONTACT_FIELDS
from .text import text_for_export


def export_field_name(header: str, *, taken) -> str:
    """The field name of an integration's column: its header as a slug ("Exists in CATS" is
    `exists_in_cats`), numbered if another column has it. The export page labels its checkbox
    with the header itself."""
    base = slugify(header).replace("-", "_") or "column"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def escape_formula(value: Any) -> Any:
    """Keep a spreadsheet program from running a cell as a formula (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class ContactExportResource(resources.ModelResource):
    """Contacts as a spreadsheet, one row each.

    Integrations add columns through `interseller.extensions` (`export_columns`, and
    `export_prefetch` for the related rows they read). Every cell is formula-escaped, and
    loses any character a spreadsheet cannot hold (rows stored before `interseller.text` may
    have one).
    """

    email = ie_fields.Field(attribute="email", column_name="Email")
    first_name = ie_fields.Field(attribute="first_name", column_name="First name")
    last_name = ie_fields.Field(attribute="last_name", column_name="Last name")
    company = ie_fields.Field(attribute="company", column_name="Company")
    title = ie_fields.Field(attribute="title", column_name="Job title")
    phone = ie_fields.Field(attribute="phone", column_name="Phone")
    linkedin_url = ie_fields.Field(attribute="linkedin_url", column_name="LinkedIn URL")
    location = ie_fields.Field(attribute="location", column_name="Location")
    source = ie_fields.Field(attribute="source", column_name="Source")
    owner = ie_fields.Field(column_name="Owner")
    sequences = ie_fields.Field(column_name="Sequences")
    created_at = ie_fields.Field(column_name="Created at")

    class Meta:
        model = Contact
        fields = ("email", *CONTACT_FIELDS, "owner", "sequences", "created_at")
        export_order = fields

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for header, func in export_columns_for(Contact):
            name = export_field_name(header, taken=self.fields)
            self.fields[name] = ie_fields.Field(column_name=header, dehydrate_method=func)

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("owner__user").prefetch_related(
            "enrollments__sequence", *export_prefetch_for(Contact)
        )

    def dehydrate_owner(self, contact: Contact) -> str:
        return contact.owner.user.email

    def dehydrate_sequences(self, contact: Contact) -> str:
        return "; ".join(sorted(e.sequence.title for e in contact.enrollments.all()))

    def dehydrate_created_at(self, contact: Contact) -> str:
        return datetime_text(contact.created_at)

    def export_field(self, field, instance, **kwargs):
        value = super().export_field(field, instance, **kwargs)
        if isinstance(value, str):
            value = text_for_export(value)
        return escape_formula("" if value is None else value)
