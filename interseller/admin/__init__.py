"""The core's admin, a module per area; `extensions` is the documented hook through which an
integration (cats_sync) adds columns, filters, actions, inlines, panels and export columns."""

from django.contrib import admin

from ..forms import EmailSignInForm
from . import outreach, spreadsheets, teams, tokens  # noqa: F401  (registers the ModelAdmins)

admin.site.site_header = "Interseller · CATS"
admin.site.site_title = "Interseller"
admin.site.index_title = "Outreach and CATS sync"
admin.site.login_form = EmailSignInForm
