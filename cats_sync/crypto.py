"""API keys at rest: Fernet tokens under keys from CATS_ENCRYPTION_KEYS.

Rotation: put a new key first in CATS_ENCRYPTION_KEYS (comma-separated), keep the old ones
after it, run `manage.py cats_rotate_keys` to re-encrypt every stored key under the first,
then drop the old keys. A token no key can open is an error, never passed through.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .errors import KeyUnreadable

MSG_UNDECRYPTABLE = (
    "The stored CATS API key cannot be decrypted with CATS_ENCRYPTION_KEYS. "
    "Restore the key it was encrypted with, or reconnect CATS."
)


class KeyDecryptionError(KeyUnreadable):
    """No key of CATS_ENCRYPTION_KEYS opens the stored token."""


def _fernet() -> MultiFernet:
    keys = list(settings.CATS_ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured(
            "CATS_ENCRYPTION_KEYS is not set. Generate one with "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`."
        )
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CATS_ENCRYPTION_KEYS holds a value that is not a Fernet key."
        ) from exc


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError(MSG_UNDECRYPTABLE) from None


def rotate(token: str) -> str:
    """Re-encrypt under the first key (raises like decrypt when no key opens it)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError(MSG_UNDECRYPTABLE) from None


def mask(plain_or_none: str | None) -> str:
    if not plain_or_none:
        return "—"
    return "•" * 8 + plain_or_none[-4:]
