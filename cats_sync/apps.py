from django.apps import AppConfig


class CatsSyncConfig(AppConfig):
    name = "cats_sync"
    verbose_name = "CATS sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
