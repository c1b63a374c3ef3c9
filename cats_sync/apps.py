from django.apps import AppConfig


class CatsSyncConfig(AppConfig):
    name = "cats_sync"
    verbose_name = "CATS sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers
        from .admin import core_pages, labels

        receivers.connect()
        # Columns, filters, actions and the "Syncing" section on the core's pages, and the
        # health summary on the admin index.
        core_pages.register()
        # Whether a sequence syncs, and to which job order, where people choose a sequence.
        labels.register()
        # The receiver CATS delivers webhooks to.
        from interseller.extensions import extend_urls

        from .views import urlpatterns

        extend_urls(urlpatterns)
