from django.conf import settings


def sign_in_providers(request) -> dict:
    """Single sign-on buttons for the admin login page: only providers that are configured."""
    providers = []
    if settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY:
        providers.append({"backend": "google-oauth2", "label": "Sign in with Google"})
    if settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT and settings.SOCIAL_AUTH_OIDC_KEY:
        providers.append(
            {"backend": "oidc", "label": f"Sign in with {settings.SOCIAL_AUTH_OIDC_NAME}"}
        )
    return {"sign_in_providers": providers}


class _IndexPanels:
    """Rendered only where a template shows them (the admin index), not on every page."""

    def __init__(self, request) -> None:
        self.request = request

    def __html__(self) -> str:
        from django.utils.html import format_html_join

        from .extensions import index_panels_for

        return format_html_join("", "{}", ((html,) for html in index_panels_for(self.request)))

    def __str__(self) -> str:
        return self.__html__()


def admin_index_panels(request) -> dict:
    """What integrations show at the top of the admin index (interseller/extensions.py)."""
    return {"index_panels": _IndexPanels(request)}
