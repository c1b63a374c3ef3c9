"""The upload and confirm forms of the contact import (django-import-export's two steps), and
the export's choice of columns."""

from __future__ import annotations

from django import forms
from django.template.defaultfilters import filesizeformat
from import_export.forms import ConfirmImportForm, ImportForm, SelectableFieldsExportForm

from .imports import (
    MSG_SEQUENCE_OTHER_TEAM,
    MSG_TOO_LARGE,
    ImportRefused,
    columns_match,
    import_max_bytes,
    sheet_read,
)
from .models import Sequence, Team
from .scoping import scoped_queryset


def _team_choices(request):
    return scoped_queryset(request, Team).order_by("name")


def _sequence_choices(request, teams):
    # Members only see (and may fill) their own sequences; scoped_queryset applies that.
    return (
        scoped_queryset(request, Sequence)
        .filter(archived=False, team__in=teams)
        .select_related("team")
        .order_by("team__name", "title")
    )


class _SequenceChoiceField(forms.ModelChoiceField):
    show_team = False

    def label_from_instance(self, obj: Sequence) -> str:
        return f"{obj.team.name} — {obj.title}" if self.show_team else obj.title


def _check_sequence(form: forms.Form, cleaned: dict) -> None:
    team, sequence = cleaned.get("team"), cleaned.get("sequence")
    if team is not None and sequence is not None and sequence.team_id != team.pk:
        form.add_error("sequence", MSG_SEQUENCE_OTHER_TEAM.format(team=team))


class ContactImportForm(ImportForm):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    sequence = _SequenceChoiceField(
        queryset=Sequence.objects.none(),
        required=False,
        empty_label="— none —",
        help_text="Every contact in the file is added to this sequence, as if added by hand.",
    )
    field_order = ["team", "sequence", "import_file", "format", "resource"]

    def __init__(self, formats, resources, request=None, **kwargs):
        super().__init__(formats, resources, **kwargs)
        teams = _team_choices(request)
        self.fields["team"].queryset = teams
        team_list = list(teams[:2])
        if len(team_list) == 1:
            self.fields["team"].initial = team_list[0].pk
            self.fields["team"].widget = forms.HiddenInput()
        sequence = self.fields["sequence"]
        sequence.queryset = _sequence_choices(request, teams)
        sequence.show_team = len(team_list) > 1
        # The kind of file is read from the file; nothing to choose.
        self.fields["format"].widget = forms.HiddenInput()
        self.fields["format"].initial = "0"
        # An empty file gets our message, not Django's "The submitted file is empty."
        self.fields["import_file"].allow_empty_file = True
        self.fields["import_file"].widget.attrs.pop("class", None)
        self.fields["import_file"].widget.attrs["accept"] = ".csv,.txt,.tsv,.xlsx"
        self.fields["import_file"].help_text = (
            f"CSV (comma, semicolon or tab separated) or Excel .xlsx, up to "
            f"{filesizeformat(import_max_bytes())}. One row per contact; "
            "a column of email addresses is required."
        )

    @property
    def media(self):
        return forms.Media()  # no format guessing script: there is no format to guess

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        limit = import_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                MSG_TOO_LARGE.format(size=filesizeformat(upload.size), limit=filesizeformat(limit))
            )
        data = b"".join(upload.chunks())
        try:
            sheet = sheet_read(data)
            columns_match(sheet.headers)
        except ImportRefused as e:
            raise forms.ValidationError(str(e)) from None
        self.cleaned_data["data"] = data
        self.cleaned_data["sheet"] = sheet
        return upload

    def clean(self):
        cleaned = super().clean()
        _check_sequence(self, cleaned)
        return cleaned


class ContactConfirmImportForm(ConfirmImportForm):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), widget=forms.HiddenInput())
    sequence = forms.ModelChoiceField(
        queryset=Sequence.objects.none(), required=False, widget=forms.HiddenInput()
    )
    # Ties the temporary file to the user who uploaded it.
    signature = forms.CharField(widget=forms.HiddenInput())

    def __init__(self, request=None, **kwargs):
        super().__init__(**kwargs)
        teams = _team_choices(request)
        self.fields["team"].queryset = teams
        self.fields["sequence"].queryset = _sequence_choices(request, teams)

    def clean(self):
        cleaned = super().clean()
        _check_sequence(self, cleaned)
        return cleaned


class ContactExportForm(SelectableFieldsExportForm):
    """The export page: each column's checkbox reads as the column's header in the file."""

    def __init__(self, formats, resources, **kwargs):
        super().__init__(formats, resources, **kwargs)
        for resource in resources:
            for name, field in resource().fields.items():
                checkbox = self.fields.get(self.create_boolean_field_name(resource, name))
                if checkbox is not None and field.column_name:
                    checkbox.label = field.column_name
