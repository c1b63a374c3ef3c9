"""social-auth pipeline step: single sign-on only lets in staff we already know."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from social_core.exceptions import AuthPolicyError, AuthResponseError
from social_django.middleware import SocialAuthExceptionMiddleware

MSG_SSO_UNVERIFIED = "Your identity provider has not verified this email address."
MSG_SSO_DOMAIN = "Sign-in with {domain} addresses is not allowed here."
MSG_SSO_UNKNOWN = "No staff account uses {email}. Ask a team owner to add you first."
MSG_SSO_NO_EMAIL = "Your identity provider did not share an email address."
MSG_SSO_INACTIVE = "The staff account for {email} is deactivated. Ask a team owner."
MSG_SSO_AMBIGUOUS = "More than one staff account uses {email}. Ask an administrator to fix it."


class SignInRefused(AuthPolicyError):
    """Carries a message meant for the person on the login page."""

    def __init__(self, backend, message: str):
        super().__init__(backend, code="authentication_disallowed", stage="pipeline")
        self.message = message

    def __str__(self) -> str:
        return self.message


def _email_verified(backend, response: dict) -> bool:
    value = response.get("email_verified", response.get("verified_email"))
    if value is None:
        # Providers that only release verified addresses (e.g. Google Workspace hd accounts)
        # still say so; absence is treated as unverified.
        return False
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def require_existing_staff_user(backend, details, response, user=None, *args, **kwargs):
    """Match the verified email to an active staff user; never create one."""
    email = (details.get("email") or "").strip().lower()
    if not email:
        raise SignInRefused(backend, MSG_SSO_NO_EMAIL)
    if not _email_verified(backend, response or {}):
        raise SignInRefused(backend, MSG_SSO_UNVERIFIED)
    domain = email.rsplit("@", 1)[-1]
    allowed = settings.SOCIAL_AUTH_ALLOWED_DOMAINS
    if allowed and domain not in allowed:
        raise SignInRefused(backend, MSG_SSO_DOMAIN.format(domain=domain))
    User = get_user_model()
    matches = list(User.objects.filter(email__iexact=email, is_staff=True)[:2])
    if not matches:
        raise SignInRefused(backend, MSG_SSO_UNKNOWN.format(email=email))
    if len(matches) > 1:
        # Picking one would let the address decide between, say, a superuser and a member.
        raise SignInRefused(backend, MSG_SSO_AMBIGUOUS.format(email=email))
    match = matches[0]
    if not match.is_active:
        raise SignInRefused(backend, MSG_SSO_INACTIVE.format(email=email))
    if user is not None and user.pk != match.pk:
        raise SignInRefused(backend, MSG_SSO_UNKNOWN.format(email=email))
    return {"user": match, "is_new": False}


class SignInErrorMiddleware(SocialAuthExceptionMiddleware):
    """Puts the refusal on the login page in words the person can act on.

    Our own refusals already carry such a message. Google's backend refuses an unverified
    address itself, with a generic text; say what it means instead.
    """

    def get_message(self, request, exception: Exception) -> str:
        if isinstance(exception, AuthResponseError) and exception.claim == "email_verified":
            return MSG_SSO_UNVERIFIED
        return super().get_message(request, exception)
