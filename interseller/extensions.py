"""How another app adds to the core's admin pages, without replacing them.

The core never imports an integration. An integration describes what it adds to a core model's
admin in an `AdminExtension` and registers it with `extend()` from its `AppConfig.ready()`;
the core admins that inherit `admin.extensions.ExtensibleAdmin` read the registry on every
request, so neither `INSTALLED_APPS` order nor import order matters.

What an extension may add (all optional):

- `columns`: changelist columns: functions of one row, decorated with `@admin.display`;
- `annotate`: `function(request, queryset) -> queryset` adding what the columns and
  filters read, in the changelist's one query (annotations only: Django applies the list's
  select_related only to a queryset that has none);
- `list_select_related`: relations the columns read, joined in that same query;
- `page_loaders`: `function(request, rows)` run once for the rows of a changelist page, to
  attach what columns show (a few queries a page, never a subquery over the whole table);
- `list_filters`: `SimpleListFilter` classes;
- `actions`: admin actions, `function(modeladmin, request, queryset)`, with a description;
- `inlines`: inline classes for the change page;
- `panels`: `function(request, obj) -> str`, read-only HTML shown on the change page;
- `urls`: `function(modeladmin) -> list[URLPattern]`, pages of its own under the model's admin
  (buttons of a panel post there);
- `export_columns`: `(header, function(obj))` pairs for the spreadsheet export, with
  `export_prefetch` naming what they read.

Beside the model pages, `extend_index(function(request) -> str)` adds a box of read-only HTML
at the top of the admin's index page (a summary of the integration's health, say).

Outside the admin, `extend_urls(function() -> list[URLPattern])` adds pages of the
integration's own to the site's URLs (a receiver for its outside system's callbacks, say).

Where a person picks a sequence ("Add to sequence…"), each choice reads as its title and owner
and what integrations say of it: `extend_sequence_labels(function(sequence) -> str, prepare=...)`
registers a short text ("" says nothing), with an optional `prepare(queryset) -> queryset`
adding what it reads (annotations, select_related) to the choice list's one query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet


@dataclass(frozen=True)
class AdminExtension:
    columns: tuple[Callable, ...] = ()
    annotate: Callable[[Any, QuerySet], QuerySet] | None = None
    list_select_related: tuple[str, ...] = ()
    page_loaders: tuple[Callable[[Any, list], None], ...] = ()
    list_filters: tuple[type, ...] = ()
    actions: tuple[Callable, ...] = ()
    inlines: tuple[type, ...] = ()
    panels: tuple[Callable[[Any, Model], str], ...] = ()
    urls: Callable[[Any], list] | None = None
    export_columns: tuple[tuple[str, Callable[[Model], Any]], ...] = ()
    export_prefetch: tuple[str, ...] = ()


_registry: dict[type[Model], list[AdminExtension]] = defaultdict(list)


def extend(model: type[Model], extension: AdminExtension) -> None:
    """Add to `model`'s core admin (call from AppConfig.ready(); calling twice is harmless)."""
    if extension not in _registry[model]:
        _registry[model].append(extension)


def retract(model: type[Model], extension: AdminExtension) -> None:
    """Take an extension back (tests; an app switched off at run time)."""
    if extension in _registry.get(model, ()):
        _registry[model].remove(extension)


def extensions_for(model: type[Model]) -> list[AdminExtension]:
    return list(_registry.get(model, ()))


def export_columns_for(model: type[Model]) -> list[tuple[str, Callable[[Model], Any]]]:
    return [column for ext in extensions_for(model) for column in ext.export_columns]


def export_prefetch_for(model: type[Model]) -> list[str]:
    return [name for ext in extensions_for(model) for name in ext.export_prefetch]


_index_panels: list[Callable[[Any], str]] = []


def extend_index(panel: Callable[[Any], str]) -> None:
    """Add a box to the admin index (call from AppConfig.ready(); calling twice is harmless)."""
    if panel not in _index_panels:
        _index_panels.append(panel)


def index_panels_for(request) -> list[str]:
    return [html for panel in _index_panels if (html := panel(request))]


_sequence_labels: list[tuple[Callable[[Any], str], Callable[[QuerySet], QuerySet] | None]] = []


def extend_sequence_labels(
    label: Callable[[Any], str], *, prepare: Callable[[QuerySet], QuerySet] | None = None
) -> None:
    """Say something of each sequence where one is chosen (call from AppConfig.ready();
    calling twice is harmless)."""
    if (label, prepare) not in _sequence_labels:
        _sequence_labels.append((label, prepare))


def sequence_choices(queryset: QuerySet) -> QuerySet:
    """The sequences to choose from, with what the registered labels read."""
    for _, prepare in _sequence_labels:
        if prepare is not None:
            queryset = prepare(queryset)
    return queryset


def sequence_labels(sequence: Model) -> list[str]:
    return [text for label, _ in _sequence_labels if (text := label(sequence))]


_url_sources: list[Callable[[], list]] = []


def extend_urls(source: Callable[[], list]) -> None:
    """Add URL patterns outside the admin (call from AppConfig.ready(); calling twice is
    harmless). They are read when the URLconf is first loaded, after every app is ready."""
    if source not in _url_sources:
        _url_sources.append(source)


def extension_urls() -> list:
    return [pattern for source in _url_sources for pattern in source()]
