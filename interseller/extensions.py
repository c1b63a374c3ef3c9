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
- `list_filters`: `SimpleListFilter` classes;
- `actions`: admin actions, `function(modeladmin, request, queryset)`, with a description;
- `inlines`: inline classes for the change page;
- `panels`: `function(request, obj) -> str`, read-only HTML shown on the change page;
- `urls`: `function(modeladmin) -> list[URLPattern]`, pages of its own under the model's admin
  (buttons of a panel post there);
- `export_columns`: `(header, function(obj))` pairs for the spreadsheet export, with
  `export_prefetch` naming what they read.
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
