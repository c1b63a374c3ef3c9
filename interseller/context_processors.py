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
