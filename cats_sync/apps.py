from django.apps import AppConfig


class CatsSyncConfig(AppConfig):
    name = "cats_sync"
    verbose_name = "CATS sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers
        from .admin import core_pages

        receivers.connect()
        # Columns, filters, actions and the "Syncing" section on the core's pages.
        core_pages.register()
