"""The contact import and export pages of the admin.

They keep django-import-export's steps (import → dry-run confirm → process) but replace its
row-by-row Resource import, which could express neither our rules nor the speed needed.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats

from .. import imports
from ..imports import (
    FIELD_LABELS,
    MSG_FILE_EXPIRED,
    MSG_IMPORT_FAILED,
    MSG_JOB_QUEUED,
    MSG_NO_OWNER,
    ImportFailed,
    ImportPlan,
    ImportRefused,
    import_background_rows,
    import_execute,
    import_job_create,
    import_max_bytes,
    import_max_rows,
    import_only_own,
    import_owner,
    import_plan,
    import_result_message,
    sheet_read,
)
from ..models import ImportJob, Membership, Sequence
from ..resources import ContactExportResource
from ..services import CONTACT_FIELDS
from .base import ReadOnlyAdmin, TeamScopedAdmin
from .filters import ScopedTeamFilter


class SpreadsheetFormat(base_formats.Format):
    """The one import 'format': which kind of file it is, is read from the file itself."""

    def get_title(self):
        return "CSV or Excel workbook (.xlsx)"

    def can_import(self):
        return True


def _signed(user_pk: int, name: str) -> str:
    return signing.Signer(salt="interseller.contact-import").sign(f"{user_pk}:{name}")


def _signature_ok(user_pk: int, name: str, signature: str) -> bool:
    try:
        signer = signing.Signer(salt="interseller.contact-import")
        return signer.unsign(signature) == f"{user_pk}:{name}"
    except signing.BadSignature:
        return False


class ContactImportExportMixin(ImportExportMixin):
    """Import (team, optional sequence, file → dry run → confirm) and export for contacts."""

    resource_classes = [ContactExportResource]
    import_template_name = "admin/interseller/contact/import.html"
    # How many invalid rows and preview rows the confirm page lists.
    import_errors_shown = 200
    import_preview_rows = 50

    def get_export_formats(self):
        return [base_formats.CSV, base_formats.XLSX]

    def get_export_form_class(self):
        from ..forms_import import ContactExportForm

        return ContactExportForm

    def get_import_formats(self):
        return [SpreadsheetFormat]

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_import_form_class(self, request):
        from ..forms_import import ContactImportForm

        return ContactImportForm

    def get_confirm_form_class(self, request):
        from ..forms_import import ContactConfirmImportForm

        return ContactConfirmImportForm

    def get_import_form_kwargs(self, request):
        return {**super().get_import_form_kwargs(request), "request": request}

    def get_confirm_form_kwargs(self, request, import_form=None):
        return {**super().get_confirm_form_kwargs(request, import_form), "request": request}

    def get_confirm_form_initial(self, request, import_form):
        if import_form is None:
            return {}
        # The storage gives a full path; the confirm form keeps only the file name.
        name = os.path.basename(import_form.cleaned_data["import_file"].tmp_storage_name)
        sequence = import_form.cleaned_data.get("sequence")
        return {
            "import_file_name": name,
            "original_file_name": import_form.cleaned_data["import_file"].name,
            "format": "0",
            "resource": "",
            "team": import_form.cleaned_data["team"].pk,
            "sequence": sequence.pk if sequence else "",
            "signature": _signed(request.user.pk, name),
        }

    def _tmp_storage(self, name: str | None = None):
        return self.get_tmp_storage_class()(
            name=name, encoding=None, read_mode="rb", **self.get_tmp_storage_class_kwargs()
        )

    def _render_import(self, request, context):
        context.update(self.admin_site.each_context(request))
        context.setdefault("title", "Import contacts")
        context["opts"] = self.model._meta
        context["max_bytes"] = import_max_bytes()
        context["max_rows"] = import_max_rows()
        context["errors_shown"] = self.import_errors_shown
        form = context.get("form")
        if form is not None:
            context["media"] = self.media + form.media
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _plan_context(self, plan: ImportPlan, sequence: Sequence | None) -> dict:
        counts = plan.counts
        to_add = (len(plan.rows) - plan.already_in_sequence) if sequence else 0
        return {
            "plan": plan,
            "counts": counts,
            "sequence": sequence,
            "sequence_to_add": to_add,
            "shown_errors": plan.errors[: self.import_errors_shown],
            "more_errors": max(0, len(plan.errors) - self.import_errors_shown),
            "preview_rows": [
                (r, [r.fields.get(name, "") for name in CONTACT_FIELDS])
                for r in plan.rows[: self.import_preview_rows]
            ],
            "preview_headers": ["email", *(FIELD_LABELS[n] for n in CONTACT_FIELDS)],
        }

    def import_action(self, request, **kwargs):
        """The upload page and its dry run; a valid file goes to the confirm step."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_import_form(request)
        context: dict[str, Any] = {"form": form}
        if request.method == "POST" and form.is_valid():
            team = form.cleaned_data["team"]
            sequence = form.cleaned_data.get("sequence")
            owner = import_owner(team=team, user=request.user)
            try:
                plan = import_plan(
                    sheet=form.cleaned_data["sheet"],
                    team=team,
                    sequence=sequence,
                    only_own=owner and import_only_own(owner=owner, user=request.user),
                )
            except ImportRefused as e:
                form.add_error("import_file", str(e))
            else:
                context.update(self._plan_context(plan, sequence))
                context["team"] = team
                context["in_background"] = len(plan.sheet.rows) > import_background_rows()
                if plan.is_valid:
                    tmp = self._tmp_storage()
                    tmp.save(form.cleaned_data["data"])
                    form.cleaned_data["import_file"].tmp_storage_name = tmp.name
                    context["confirm_form"] = self.create_confirm_form(request, import_form=form)
        return self._render_import(request, context)

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """The confirmed import: the file is checked again, then written all or nothing."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        import_url = reverse(
            "admin:{}_{}_import".format(*self.get_model_info()), current_app=self.admin_site.name
        )
        confirm_form = self.create_confirm_form(request)
        if not confirm_form.is_valid():
            for errors in confirm_form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return HttpResponseRedirect(import_url)
        cleaned = confirm_form.cleaned_data
        name = cleaned["import_file_name"]
        if not _signature_ok(request.user.pk, name, cleaned["signature"]):
            raise PermissionDenied
        tmp = self._tmp_storage(name)
        try:
            data = tmp.read()
        except OSError:
            messages.error(request, MSG_FILE_EXPIRED)
            return HttpResponseRedirect(import_url)
        # Confirmed once: a second post of the same form (a double click) finds no file.
        with contextlib.suppress(OSError):
            tmp.remove()
        team, sequence = cleaned["team"], cleaned.get("sequence")
        owner = import_owner(team=team, user=request.user)
        if owner is None:
            messages.error(request, MSG_NO_OWNER.format(team=team))
            return HttpResponseRedirect(import_url)
        added_by = Membership.objects.filter(team=team, user=request.user).first() or owner
        try:
            sheet = sheet_read(data)
            if len(sheet.rows) > import_background_rows():
                # Too long for a request: a worker checks the file again and imports it.
                job = import_job_create(
                    team=team,
                    owner=owner,
                    created_by=request.user,
                    sequence=sequence,
                    sheet=sheet,
                    data=data,
                    file_name=cleaned["original_file_name"],
                )
                messages.info(request, MSG_JOB_QUEUED.format(rows=job.total_rows))
                return HttpResponseRedirect(
                    reverse(
                        "admin:interseller_importjob_change",
                        args=[job.pk],
                        current_app=self.admin_site.name,
                    )
                )
            only_own = import_only_own(owner=owner, user=request.user)
            # Checked again: the team's contacts may have changed since the dry run.
            plan = import_plan(sheet=sheet, team=team, sequence=sequence, only_own=only_own)
            outcome = import_execute(
                plan=plan,
                team=team,
                owner=owner,
                sequence=sequence,
                added_by=added_by,
                only_own=only_own,
            )
        except (ImportRefused, ImportFailed) as e:
            messages.error(request, MSG_IMPORT_FAILED.format(error=e))
            return HttpResponseRedirect(import_url)
        messages.success(
            request, import_result_message(outcome, sequence.title if sequence else "")
        )
        return HttpResponseRedirect(
            reverse(
                "admin:{}_{}_changelist".format(*self.get_model_info()),
                current_app=self.admin_site.name,
            )
        )


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin, TeamScopedAdmin):
    """Contact imports run by a worker: read-only, with live progress on the object page."""

    scope_owner_paths = ("owner",)
    ordering = ["-created_at"]
    list_display = ["file_name", "team", "state", "progress", "created_by", "created_at"]
    list_filter = [ScopedTeamFilter, "state"]
    list_select_related = ["team", "created_by"]
    search_fields = ["file_name"]
    fields = [
        "file_name",
        "team",
        "sequence_title",
        "created_by",
        "state",
        "total_rows",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    change_form_template = "admin/interseller/importjob/change_form.html"
    refresh_seconds = 3

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{imports.import_job_progress(obj)} of {obj.total_rows} rows"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        processed = imports.import_job_progress(job)
        extra = {
            "processed": processed,
            "percent": int(100 * processed / job.total_rows) if job.total_rows else 100,
            "running": job.state in (ImportJob.State.QUEUED, ImportJob.State.RUNNING),
            "refresh_seconds": self.refresh_seconds,
            "result_message": imports.import_result_message(job, job.sequence_title),
            "contacts_url": reverse("admin:interseller_contact_changelist"),
            "import_url": reverse("admin:interseller_contact_import"),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)
