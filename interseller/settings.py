"""Settings for the whole project, driven by environment variables (see .env.example).

Defaults run on one machine with no services: SQLite and the django-q2 ORM broker.
Production differs only by environment variables.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "The SECRET_KEY environment variable is not set. Set it (see .env.example), "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "import_export",
    "social_django",
    "interseller",
    "cats_sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "interseller.middleware.RefuseNulInQueryMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "interseller.auth_pipeline.SignInErrorMiddleware",
]

ROOT_URLCONF = "interseller.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "interseller.context_processors.sign_in_providers",
                "interseller.context_processors.admin_index_panels",
            ],
        },
    },
]

WSGI_APPLICATION = "interseller.wsgi.application"

# --- Database -------------------------------------------------------------------------------
# SQLite by default: WAL so readers never block the writer, IMMEDIATE transactions so two
# writers queue on the lock instead of failing mid-transaction, and a busy timeout to queue.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
        ),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and django-q2 --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# `timeout` must stay below `retry`: a task still running when `retry` passes would be handed
# to a second worker. Attempts are bounded: sync state lives in our own tables, and the
# sweeper schedule re-enqueues due rows, so a task need not be retried forever by the broker.
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="interseller"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=240),
    "retry": env.int("Q_RETRY", default=300),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "save_limit": 500,
    "queue_limit": 50,
    "catch_up": False,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
Q_CLUSTER["sync"] = env.bool("Q_SYNC", default=False)

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = env.str("SOCIAL_AUTH_GOOGLE_OAUTH2_KEY", default="")
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = env.str("SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET", default="")
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = env.str("SOCIAL_AUTH_OIDC_ENDPOINT", default="")
SOCIAL_AUTH_OIDC_KEY = env.str("SOCIAL_AUTH_OIDC_KEY", default="")
SOCIAL_AUTH_OIDC_SECRET = env.str("SOCIAL_AUTH_OIDC_SECRET", default="")
SOCIAL_AUTH_OIDC_NAME = env.str("SOCIAL_AUTH_OIDC_NAME", default="Single sign-on")
SOCIAL_AUTH_ALLOWED_DOMAINS = [
    d.lower() for d in env.list("SOCIAL_AUTH_ALLOWED_DOMAINS", default=[])
]

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if SOCIAL_AUTH_GOOGLE_OAUTH2_KEY:
    AUTHENTICATION_BACKENDS.insert(0, "social_core.backends.google.GoogleOAuth2")
if SOCIAL_AUTH_OIDC_OIDC_ENDPOINT and SOCIAL_AUTH_OIDC_KEY:
    AUTHENTICATION_BACKENDS.insert(0, "social_core.backends.open_id_connect.OpenIdConnectAuth")

SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/admin/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/admin/login/"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "interseller.auth_pipeline.require_existing_staff_user",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
)
# Signing in never changes the account: no `user_details` step (it would copy names from the
# identity provider), and should one be added, none of these fields may be touched.
SOCIAL_AUTH_PROTECTED_USER_FIELDS = [
    "email",
    "username",
    "first_name",
    "last_name",
    "password",
    "is_staff",
    "is_superuser",
    "is_active",
]

LOGIN_URL = "/admin/login/"
FORMS_URLFIELD_ASSUME_HTTPS = True

# --- I18N, static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One way to write dates on every page, column and export: 2026-11-27 14:05 (24-hour, the site's
# time zone). The format module hands these to Django, whose locale formats would otherwise win.
DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = DATE_FORMAT
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
TIME_FORMAT = "H:i"
FORMAT_MODULE_PATH = ["interseller.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve from the finders when collectstatic has not run (development and tests).
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------
# HTTPS only, on by default with DEBUG off and off with DEBUG on (the dev server and the test
# client speak plain HTTP). `manage.py check --deploy` has no warnings with these defaults.
# The header a TLS-terminating proxy sets to say the client used HTTPS, as "META name,value".
# Trust it only behind a proxy that overwrites it: a client could send it itself. Empty when
# the app is reached without a proxy.
_proxy_ssl_header = env.list(
    "SECURE_PROXY_SSL_HEADER", default=[] if DEBUG else ["HTTP_X_FORWARDED_PROTO", "https"]
)
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be a header and a value, e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# HSTS: browsers refuse plain HTTP to this host (and, with the flags, its subdomains) for this
# long. Preload asks browsers to ship the rule; it also needs the domain submitted to
# hstspreload.org, and is hard to undo: set SECURE_HSTS_PRELOAD=false until the domain is ready.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

# --- Mail and the public address ------------------------------------------------------------
# Where people reach this app (links in emails; the target of CATS webhooks). Empty: links in
# emails are relative and CATS webhooks are not registered (the health page says so).
SITE_URL = env.str("SITE_URL", default="")
# Mail: EMAIL_URL is smtp://user:password@host:587 (or smtp+tls://, consolemail:// to print);
# it defaults to printing mails on the console.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Interseller <noreply@localhost>")

# --- Application ----------------------------------------------------------------------------
# A team's webhook URL may point to a private or local address (your own network; the tests'
# receiver on loopback). Off: a worker never POSTs to the machines around it.
TEAM_WEBHOOK_ALLOW_PRIVATE = env.bool("TEAM_WEBHOOK_ALLOW_PRIVATE", default=False)
# Largest JSON body the events API accepts.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=12 * 1024 * 1024)
# Never taken from user input: the sandbox differs from CATS only by this URL.
CATS_API_URL = env.str("CATS_API_URL", default="https://api.catsone.com/v3")
# Fernet keys for CATS API keys at rest, newest first (rotation: see cats_sync/crypto.py).
CATS_ENCRYPTION_KEYS = env.list("CATS_ENCRYPTION_KEYS", default=[])
if not CATS_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "The CATS_ENCRYPTION_KEYS environment variable is not set (see .env.example)."
        )
    # Development only: a key derived from SECRET_KEY, so `make run` needs no setup.
    import base64
    import hashlib

    CATS_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(f"cats:{SECRET_KEY}".encode()).digest()).decode()
    ]
for _position, _key in enumerate(CATS_ENCRYPTION_KEYS, start=1):
    # A typo must stop every process at startup, not fail each request that reads a key.
    from cryptography.fernet import Fernet

    try:
        Fernet(_key.encode())
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"CATS_ENCRYPTION_KEYS: value {_position} of {len(CATS_ENCRYPTION_KEYS)} is not a "
            "Fernet key (32 url-safe base64-encoded bytes). Generate one with `python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        ) from None
# A candidate's page in CATS, for links from a contact's CATS panel.
CATS_CANDIDATE_URL = env.str(
    "CATS_CANDIDATE_URL",
    default="https://{subdomain}.catsone.com/index.php"
    "?m=candidates&a=show&candidateID={candidate_id}",
)
# Failed contacts of one connection within 15 minutes that email its owner (once).
CATS_FAILURE_ALERT = env.int("CATS_FAILURE_ALERT", default=10)
# Connect and read timeouts of every CATS call, in seconds.
CATS_CONNECT_TIMEOUT = env.float("CATS_CONNECT_TIMEOUT", default=3.05)
CATS_READ_TIMEOUT = env.float("CATS_READ_TIMEOUT", default=15.0)
# While CATS fails on a site, one probe at a time, after a back-off that doubles from the
# base up to the cap (seconds); see cats_sync/budget.py.
CATS_OUTAGE_BACKOFF_BASE = env.float("CATS_OUTAGE_BACKOFF_BASE", default=5.0)
CATS_OUTAGE_BACKOFF_CAP = env.float("CATS_OUTAGE_BACKOFF_CAP", default=60.0)
# Share of a CATS site's request budget the reconciliation (re-reading pipelines of active
# contacts, in case a webhook was lost) may use; it never touches the live reserve.
CATS_RECONCILE_SHARE = env.float("CATS_RECONCILE_SHARE", default=0.1)
# A CATS webhook delivery dated longer ago than this (seconds) is refused as stale.
CATS_WEBHOOK_MAX_AGE = env.int("CATS_WEBHOOK_MAX_AGE", default=900)

# Spreadsheet import limits, and the size above which an import runs as a background job.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=32 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=100_000)
IMPORT_BACKGROUND_ROWS = env.int("IMPORT_BACKGROUND_ROWS", default=2_000)
# What one file may hold, so that reading it costs what is in it, never what it claims (a sheet
# "of a million rows", a zip part "of 100 bytes"); each refusal names its limit. Columns; empty
# rows above or between the contacts (not after them); characters in one cell (Excel's own
# limit); and for .xlsx, a zip of XML parts: cells plus distinct texts in the whole workbook,
# bytes once unzipped, and how many times its zipped size a part over 1 MiB may unzip to.
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=200)
IMPORT_MAX_BLANK_ROWS = env.int("IMPORT_MAX_BLANK_ROWS", default=10_000)
IMPORT_MAX_CELL_CHARS = env.int("IMPORT_MAX_CELL_CHARS", default=32_767)
IMPORT_MAX_CELLS = env.int("IMPORT_MAX_CELLS", default=2_000_000)
IMPORT_MAX_UNZIPPED_BYTES = env.int("IMPORT_MAX_UNZIPPED_BYTES", default=100 * 1024 * 1024)
IMPORT_MAX_COMPRESSION_RATIO = env.int("IMPORT_MAX_COMPRESSION_RATIO", default=100)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
