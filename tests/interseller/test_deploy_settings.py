"""Production settings come from the environment alone: with a production-like environment
`check --deploy` is clean, and with DEBUG on the HTTPS-only switches stay off."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.support import ROOT

SHOW_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) "
    "for n in ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SECURE_HSTS_PRELOAD', 'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE']}))"
)


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="interseller.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        CATS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="interseller.example.com",
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_under(env: dict[str, str]) -> dict:
    done = manage("shell", "-c", SHOW_SETTINGS, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_deploy_check_has_no_warnings_in_a_production_environment():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stdout + done.stderr


def test_https_only_is_on_by_default_without_debug():
    assert settings_under(production_env()) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
    }


def test_https_only_switches_follow_their_environment_variables():
    env = production_env(
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_HSTS_PRELOAD="false",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_SSL,on",
    )
    assert settings_under(env) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SSL", "on"],
        "SESSION_COOKIE_SECURE": True,
    }
    no_proxy = settings_under(production_env(SECURE_PROXY_SSL_HEADER=""))
    assert no_proxy["SECURE_PROXY_SSL_HEADER"] is None


def test_https_only_is_off_with_debug():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_")}
    env.update(DJANGO_SETTINGS_MODULE="interseller.settings", DEBUG="true")
    assert settings_under(env) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False,
    }


@pytest.mark.django_db
def test_plain_http_is_served_as_is_under_the_test_settings(client):
    # The test settings speak plain HTTP: no redirect, no HSTS header, whatever the proxy says.
    response = client.get("/admin/login/", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    assert not response.wsgi_request.is_secure()
