"""The CATS integration in the admin, a module per page; what it adds to the core's own pages
is in core_pages.py, registered through the core's hook by CatsSyncConfig.ready().

Thin on purpose: every write goes through `services`, and everything is team-scoped through
`TeamScopedAdmin` like the core admin.
"""

from . import accounts, metadata, queue, runs  # noqa: F401  (registers the ModelAdmins)
