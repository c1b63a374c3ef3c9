"""Spreadsheet import and export of contacts (django-import-export). Placeholder until built."""


class ContactImportExportMixin:
    pass
