"""Staff sign-in through Google, run through social-auth for real.

Only the HTTP calls to Google are faked (`BaseAuth.request`, the backend's network boundary):
state handling, the pipeline, the login and the error middleware all run as in production.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import override_settings
from social_core.backends.google import GoogleOAuth2
from social_django.models import UserSocialAuth

from interseller import auth_pipeline
from tests.factories import UserFactory

GOOGLE = "social_core.backends.google.GoogleOAuth2"
MODEL = "django.contrib.auth.backends.ModelBackend"

google_configured = override_settings(
    SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="google-client-id",
    SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET="google-client-secret",
    AUTHENTICATION_BACKENDS=[GOOGLE, MODEL],
    SOCIAL_AUTH_ALLOWED_DOMAINS=["acme.example"],
)


class FakeGoogle:
    """Answers the token and userinfo calls the backend makes to Google."""

    def __init__(self) -> None:
        self.profile: dict = {}
        self.calls: list[str] = []

    def set_person(self, email: str, *, verified: bool | None = True, sub: str = "1001") -> None:
        self.profile = {"sub": sub, "email": email, "given_name": "Grace", "family_name": "Hopper"}
        if verified is not None:
            self.profile["email_verified"] = verified

    def request(self, backend, url: str, **kwargs) -> requests.Response:
        self.calls.append(url)
        if url == GoogleOAuth2.ACCESS_TOKEN_URL:
            payload = {"access_token": "ya29.fake", "token_type": "Bearer", "expires_in": 3599}
        elif url.startswith("https://www.googleapis.com/oauth2/v3/userinfo"):
            payload = self.profile
        else:  # pragma: no cover - a new call would need a new fake answer
            raise AssertionError(f"unexpected call to {url}")
        response = requests.Response()
        response.status_code = 200
        response.url = url
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        return response


@pytest.fixture
def google(monkeypatch, db):
    fake = FakeGoogle()
    monkeypatch.setattr(
        GoogleOAuth2, "request", lambda backend, url, **kwargs: fake.request(backend, url, **kwargs)
    )
    with google_configured:
        yield fake


def sign_in_with_google(client, google: FakeGoogle):
    """The browser's part: press the button, come back from Google with a code."""
    started = client.post("/auth/login/google-oauth2/", {"next": "/admin/"})
    assert started.status_code == 302
    location = urlsplit(started["Location"])
    assert location.netloc == "accounts.google.com"
    state = parse_qs(location.query)["state"][0]
    return client.get("/auth/complete/google-oauth2/", {"state": state, "code": "4/fake-code"})


def test_known_staff_user_with_verified_email_in_allowed_domain_is_signed_in(client, google):
    user = UserFactory(username="grace@acme.example")
    google.set_person("Grace@Acme.example")

    response = sign_in_with_google(client, google)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session[SESSION_KEY] == str(user.pk)
    assert GoogleOAuth2.ACCESS_TOKEN_URL in google.calls
    assert UserSocialAuth.objects.get(provider="google-oauth2").user == user
    assert client.get("/admin/").status_code == 200


def test_second_sign_in_reuses_the_association(client, google):
    user = UserFactory(username="grace@acme.example")
    google.set_person("grace@acme.example")
    sign_in_with_google(client, google)
    client.logout()

    sign_in_with_google(client, google)

    assert client.session[SESSION_KEY] == str(user.pk)
    assert UserSocialAuth.objects.count() == 1


def test_signing_in_never_changes_the_account(client, google):
    user = UserFactory(username="grace@acme.example", first_name="G.", last_name="H.")
    before = (user.password, user.first_name, user.last_name, user.is_staff, user.is_superuser)
    google.set_person("grace@acme.example")  # Google says "Grace Hopper"

    sign_in_with_google(client, google)

    user.refresh_from_db()
    assert client.session[SESSION_KEY] == str(user.pk)
    assert (user.password, user.first_name, user.last_name, user.is_staff, user.is_superuser) == (
        before
    )


def refused_on_login_page(client, response, message: str) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert SESSION_KEY not in client.session
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert message in page.content.decode()


def test_unknown_email_is_refused_with_a_message_and_no_user_is_created(client, google):
    UserFactory(username="someone@acme.example")
    users_before = get_user_model().objects.count()
    google.set_person("stranger@acme.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_UNKNOWN.format(email="stranger@acme.example")
    )
    assert get_user_model().objects.count() == users_before
    assert not UserSocialAuth.objects.exists()


@pytest.mark.parametrize("verified", [False, None])
def test_unverified_email_is_refused(client, google, verified):
    UserFactory(username="grace@acme.example")
    google.set_person("grace@acme.example", verified=verified)

    response = sign_in_with_google(client, google)

    refused_on_login_page(client, response, auth_pipeline.MSG_SSO_UNVERIFIED)
    assert not UserSocialAuth.objects.exists()


def test_email_outside_the_allowed_domains_is_refused(client, google):
    UserFactory(username="grace@elsewhere.example")
    google.set_person("grace@elsewhere.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_DOMAIN.format(domain="elsewhere.example")
    )


def test_inactive_user_is_refused(client, google):
    UserFactory(username="grace@acme.example", is_active=False)
    google.set_person("grace@acme.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_INACTIVE.format(email="grace@acme.example")
    )


def test_user_who_is_not_staff_is_refused(client, google):
    UserFactory(username="grace@acme.example", is_staff=False)
    google.set_person("grace@acme.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_UNKNOWN.format(email="grace@acme.example")
    )


def test_refusal_is_shown_even_with_debug_on(client, google, settings):
    settings.DEBUG = True
    google.set_person("stranger@acme.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_UNKNOWN.format(email="stranger@acme.example")
    )


def test_two_staff_accounts_with_the_same_email_are_refused(client, google):
    UserFactory(username="grace", email="grace@acme.example")
    UserFactory(username="grace-admin", email="GRACE@acme.example", is_superuser=True)
    google.set_person("grace@acme.example")

    response = sign_in_with_google(client, google)

    refused_on_login_page(
        client, response, auth_pipeline.MSG_SSO_AMBIGUOUS.format(email="grace@acme.example")
    )


@pytest.mark.parametrize("claim", [{"email_verified": "false"}, {"verified_email": False}, {}])
def test_pipeline_treats_a_missing_or_false_verified_claim_as_unverified(db, claim):
    # OIDC providers send the claim in different shapes; Google's backend checks its own.
    UserFactory(username="grace@acme.example")
    with pytest.raises(auth_pipeline.SignInRefused) as refused:
        auth_pipeline.require_existing_staff_user(None, {"email": "grace@acme.example"}, claim)
    assert str(refused.value) == auth_pipeline.MSG_SSO_UNVERIFIED


def test_pipeline_accepts_a_verified_claim_sent_as_a_string(db):
    user = UserFactory(username="grace@acme.example")
    result = auth_pipeline.require_existing_staff_user(
        None, {"email": "grace@acme.example"}, {"email_verified": "true"}
    )
    assert result == {"user": user, "is_new": False}


# --- the login page -------------------------------------------------------------------------


def test_login_page_has_no_sign_in_buttons_when_nothing_is_configured(client, db):
    with override_settings(SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="", SOCIAL_AUTH_OIDC_OIDC_ENDPOINT=""):
        page = client.get("/admin/login/").content.decode()
    assert 'id="login-form"' in page
    assert 'id="sign-in-providers"' not in page
    assert "/auth/login/" not in page


def test_login_page_shows_the_google_button_when_google_is_configured(client, db):
    with override_settings(
        SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="google-client-id", SOCIAL_AUTH_OIDC_OIDC_ENDPOINT=""
    ):
        page = client.get("/admin/login/").content.decode()
    assert 'id="login-form"' in page
    assert 'action="/auth/login/google-oauth2/"' in page
    assert "Sign in with Google" in page
    assert "/auth/login/oidc/" not in page


def test_login_page_shows_the_oidc_button_only_when_fully_configured(client, db):
    with override_settings(
        SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="",
        SOCIAL_AUTH_OIDC_OIDC_ENDPOINT="https://sso.acme.example",
        SOCIAL_AUTH_OIDC_KEY="",
    ):
        assert "/auth/login/oidc/" not in client.get("/admin/login/").content.decode()
    with override_settings(
        SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="",
        SOCIAL_AUTH_OIDC_OIDC_ENDPOINT="https://sso.acme.example",
        SOCIAL_AUTH_OIDC_KEY="oidc-client",
        SOCIAL_AUTH_OIDC_NAME="Acme SSO",
    ):
        page = client.get("/admin/login/").content.decode()
    assert 'action="/auth/login/oidc/"' in page
    assert "Sign in with Acme SSO" in page
    assert "google-oauth2" not in page


def test_sign_in_button_posts_with_csrf_token_and_next(client, db):
    with override_settings(SOCIAL_AUTH_GOOGLE_OAUTH2_KEY="google-client-id"):
        page = client.get("/admin/login/").content.decode()
    form = page[page.index('action="/auth/login/google-oauth2/"') :]
    form = form[: form.index("</form>")]
    assert 'method="post"' in page
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'name="next" value="/admin/"' in form
