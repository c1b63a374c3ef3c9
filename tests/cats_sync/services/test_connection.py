"""Connecting a member to CATS: the key checked and stored encrypted, nothing saved before the
whole page is valid, and stored keys that cannot be read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, EnrollmentSync, SyncTask
from cats_sync.tasks import drain, sweep
from interseller.models import Membership
from tests.factories import SequenceFactory
from tests.support import ROOT
from tests.support.cats import add, candidates, connect, es_of

pytestmark = pytest.mark.django_db


# --- Connecting ------------------------------------------------------------------------------


def test_connect_checks_key_with_cats_and_stores_it_encrypted(team_a, site):
    account = connect(team_a.member, site)
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.CONNECTED
    assert account.site.cats_id == site.id and account.site.subdomain == site.subdomain
    assert site.api_key not in account.api_key_encrypted
    assert crypto.decrypt(account.api_key_encrypted) == site.api_key
    team_a.member.refresh_from_db()
    assert team_a.member.integration == Membership.Integration.CATS


def test_connect_refuses_rejected_key(team_a, site):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain=site.subdomain, api_key="nope")
    assert msg.MSG_KEY_REJECTED in str(exc.value)
    assert not CatsAccount.objects.filter(status="connected").exists()


def test_connect_refuses_key_of_another_subdomain(team_a, site):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain="someoneelse", api_key=site.api_key)
    assert msg.MSG_SUBDOMAIN_MISMATCH.format(actual=site.subdomain, entered="someoneelse") in str(
        exc.value
    )


@pytest.mark.parametrize("bad", ["acme.evil.com/", "ac me", "http://x", "-acme", ""])
def test_connect_refuses_malformed_subdomain(team_a, site, bad):
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain=bad, api_key=site.api_key)
    assert msg.MSG_SUBDOMAIN_INVALID in str(exc.value)


def test_connect_says_when_cats_cannot_be_reached(team_a, settings):
    settings.CATS_API_URL = "http://127.0.0.1:9/v3"
    with pytest.raises(ValidationError) as exc:
        cats.cats_connect(membership=team_a.member, subdomain="acme", api_key="k")
    assert "could not be reached" in str(exc.value)


def test_undecryptable_key_is_an_error_not_a_passthrough(team_a, site, settings):
    account = connect(team_a.member, site)
    settings.CATS_ENCRYPTION_KEYS = ["0" * 43 + "="]
    with pytest.raises(crypto.KeyDecryptionError):
        crypto.decrypt(account.api_key_encrypted)


def test_key_rotation_keeps_old_tokens_readable(team_a, site, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CATS_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("secret-key")
    settings.CATS_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "secret-key"
    rotated = crypto.rotate(token)
    settings.CATS_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "secret-key"


# --- nothing is saved before the whole page is valid ----------------------------------------------


def test_connecting_with_an_invalid_mapping_saves_nothing(team_a, site, cats_sandbox, login):
    client = login(team_a.member)
    page = client.get(reverse("admin:cats_sync_catsaccount_add"))
    assert page.status_code == 200
    data = {
        "membership": team_a.member.pk,
        "subdomain": site.subdomain,
        "api_key": site.api_key,
        "sync_mode": "off",
        "mappings-TOTAL_FORMS": 1,
        "mappings-INITIAL_FORMS": 0,
        "mappings-0-value": "bounced",
        "mappings-0-field_id": "999999",
    }
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    response = client.post(reverse("admin:cats_sync_catsaccount_add"), data)
    assert response.status_code == 200  # the page shows the mapping error
    assert not CatsAccount.objects.exists()
    team_a.member.refresh_from_db()
    assert team_a.member.integration == Membership.Integration.NONE
    add(seq, "not-yet@example.com")
    assert not SyncTask.objects.exists()
    # The member is still offered, and the corrected page connects with mode Off as chosen.
    del data["mappings-0-value"], data["mappings-0-field_id"]
    data["mappings-TOTAL_FORMS"] = 0
    response = client.post(reverse("admin:cats_sync_catsaccount_add"), data)
    assert response.status_code == 302
    account = CatsAccount.objects.get()
    assert account.is_connected and account.sync_mode == CatsAccount.SyncMode.OFF


# --- keys that cannot be read ---------------------------------------------------------------------


def test_work_paused_by_an_unreadable_key_resumes_when_the_key_is_restored(
    team_a, site, seq, cats_sandbox, settings
):
    from cryptography.fernet import Fernet

    right = settings.CATS_ENCRYPTION_KEYS
    connect(team_a.member, site)
    settings.CATS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    contact = add(seq, "locked@example.com")
    drain()
    task = SyncTask.objects.get()
    assert task.state == SyncTask.State.PAUSED and task.last_error == msg.ERR_KEY_UNREADABLE
    assert es_of(contact, seq).error_code == EnrollmentSync.Error.KEY_UNREADABLE
    sweep()
    assert SyncTask.objects.get().state == SyncTask.State.PAUSED  # still unreadable
    settings.CATS_ENCRYPTION_KEYS = right
    sweep()
    drain()
    es = es_of(contact, seq)
    assert es.synced_at and es.error_code == ""
    assert len(candidates(cats_sandbox.snapshot(site.id), "locked@example.com")) == 1


def test_a_malformed_encryption_key_stops_startup_naming_the_variable():
    env = {**os.environ, "DEBUG": "true", "CATS_ENCRYPTION_KEYS": "not-a-key,also-bad"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CATS_ENCRYPTION_KEYS: value 1 of 2 is not a Fernet key" in result.stderr


def test_every_sync_error_shares_one_base_class():
    from cats_sync.client import CatsError
    from cats_sync.errors import BudgetSpent, CatsSyncError, KeyUnreadable, NeedsPerson, Wait

    for error in (crypto.KeyDecryptionError, CatsError, BudgetSpent, NeedsPerson):
        assert issubclass(error, CatsSyncError)
    assert issubclass(crypto.KeyDecryptionError, KeyUnreadable)
    assert issubclass(BudgetSpent, Wait)
