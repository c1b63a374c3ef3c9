from django.apps import AppConfig


class IntersellerConfig(AppConfig):
    name = "interseller"
    verbose_name = "Outreach"
    default_auto_field = "django.db.models.BigAutoField"
