"""`ExtensibleAdmin`: what a core ModelAdmin mixes in to show what integrations registered
for its model (see interseller/extensions.py, the hook itself)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from ..extensions import AdminExtension, extensions_for


class ExtensibleAdmin:
    """Mixed into a core ModelAdmin: adds what extensions registered for its model."""

    # The change form with the extensions' panels under the fields.
    change_form_template = "admin/extensible_change_form.html"

    def _extensions(self) -> list[AdminExtension]:
        return extensions_for(self.model)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        for ext in self._extensions():
            if ext.annotate is not None:
                qs = ext.annotate(request, qs)
        return qs

    # Methods of the admin itself that load what its columns show, for a page's rows.
    page_loader_methods: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)
        loaders = [getattr(self, name) for name in self.page_loader_methods]
        loaders += [loader for ext in self._extensions() for loader in ext.page_loaders]
        if not loaders:
            return base

        class PageLoadingChangeList(base):
            def get_results(inner, request):
                super().get_results(request)
                rows = list(inner.result_list)
                for loader in loaders:
                    loader(request, rows)

        return PageLoadingChangeList

    def get_list_select_related(self, request):
        related = super().get_list_select_related(request)
        extra = [name for ext in self._extensions() for name in ext.list_select_related]
        if not extra or related is True:
            return related
        return [*(related or ()), *extra]

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        for ext in self._extensions():
            columns.extend(ext.columns)
        return columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        for ext in self._extensions():
            filters.extend(ext.list_filters)
        return filters

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None:  # actions turned off on this page
            return actions
        for ext in self._extensions():
            for func in ext.actions:
                name = func.__name__
                description = getattr(func, "short_description", name.replace("_", " "))
                actions[name] = (func, name, description)
        return actions

    def get_inlines(self, request, obj):
        inlines = list(super().get_inlines(request, obj))
        for ext in self._extensions():
            inlines.extend(ext.inlines)
        return inlines

    def get_urls(self):
        extra = []
        for ext in self._extensions():
            if ext.urls is not None:
                extra.extend(ext.urls(self))
        return [*extra, *super().get_urls()]

    def extension_panels(self, request, obj) -> SafeString:
        panels: Iterable[str] = (
            panel(request, obj) for ext in self._extensions() for panel in ext.panels
        )
        return format_html_join("", "{}", ((p,) for p in panels if p))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id) if object_id else None
        if obj is not None:
            extra_context.setdefault("extension_panels", self.extension_panels(request, obj))
        return super().change_view(request, object_id, form_url, extra_context=extra_context)
