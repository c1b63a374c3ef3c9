"""Settings of the test suite: production's settings (DEBUG off), with what tests need.

Tests need no DEBUG and no environment: a fixed secret and encryption key, fast password
hashing, mail kept in memory, plain HTTP (the test client speaks no TLS), and static files
served from the apps (no collectstatic). Everything else is as production has it.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-of-fifty-or-more-characters-xx")
os.environ.setdefault("CATS_ENCRYPTION_KEYS", "PxLy3sLo3NGCBXPeUncO345THpkT1hI11ZxdlG5Y97s=")
# Plain HTTP: the HTTPS switches production turns on are tested in test_deploy_settings.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_PROXY_SSL_HEADER", "")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("SECURE_COOKIES", "false")

from .settings import *  # noqa: E402, F403
from .settings import STORAGES  # noqa: E402

# Production's hasher costs ~0.5 s a password on a small machine; tests make hundreds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# The tests' webhook receiver listens on loopback (one test turns this off to see it refused).
TEAM_WEBHOOK_ALLOW_PRIVATE = True
