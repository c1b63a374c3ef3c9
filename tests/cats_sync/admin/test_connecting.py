"""Connecting through the admin form against the sandbox over HTTP; job orders, the default job
order and field mapping; "Syncing" on a sequence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, CatsJob, FieldMapping, SequenceSync
from interseller.models import Membership
from tests.support.admin import (
    act,
    cats_url,
    change_post,
    form_errors,
    inline_errors,
    page_data,
    url,
)
from tests.support.cats import connect

pytestmark = pytest.mark.django_db


def admin_connect(client, membership, *, subdomain: str, api_key: str):
    page = client.get(cats_url("catsaccount", "add"))
    assert page.status_code == 200
    data = page_data(page)
    data.update(membership=str(membership.pk), subdomain=subdomain, api_key=api_key)
    return client.post(cats_url("catsaccount", "add"), data)


# --- connecting --------------------------------------------------------------------------------


def test_member_connects_and_key_is_stored_encrypted(team_a, site, login):
    client = login(team_a.member)
    response = admin_connect(
        client, team_a.member, subdomain=site.subdomain.upper(), api_key=site.api_key
    )
    assert response.status_code == 302, form_errors(response)
    account = CatsAccount.objects.get(membership=team_a.member)
    assert account.status == CatsAccount.Status.CONNECTED
    assert account.subdomain == site.subdomain
    assert account.api_key_encrypted != site.api_key
    assert site.api_key not in account.api_key_encrypted
    assert crypto.decrypt(account.api_key_encrypted) == site.api_key
    team_a.member.refresh_from_db()
    assert team_a.member.integration == Membership.Integration.CATS


def test_member_may_only_pick_their_own_membership(team_a, site, login):
    client = login(team_a.member)
    page = client.get(cats_url("catsaccount", "add"))
    choices = {str(pk) for pk, _ in page.context["adminform"].form.fields["membership"].choices}
    assert str(team_a.member.pk) in choices
    assert str(team_a.member2.pk) not in choices
    response = admin_connect(client, team_a.member2, subdomain=site.subdomain, api_key=site.api_key)
    assert response.status_code == 200
    assert not CatsAccount.objects.filter(membership=team_a.member2).exists()


def test_manager_connects_a_teammate(team_a, site, login):
    client = login(team_a.manager)
    response = admin_connect(client, team_a.member2, subdomain=site.subdomain, api_key=site.api_key)
    assert response.status_code == 302
    assert CatsAccount.objects.get(membership=team_a.member2).is_connected


def test_connect_refuses_a_wrong_key(team_a, site, login):
    client = login(team_a.member)
    response = admin_connect(client, team_a.member, subdomain=site.subdomain, api_key="nope-123")
    assert response.status_code == 200
    assert msg.MSG_KEY_REJECTED in form_errors(response)
    assert not CatsAccount.objects.filter(membership=team_a.member, status="connected").exists()


def test_connect_refuses_a_key_of_another_subdomain(team_a, site, login):
    client = login(team_a.member)
    response = admin_connect(client, team_a.member, subdomain="elsewhere", api_key=site.api_key)
    assert response.status_code == 200
    expected = msg.MSG_SUBDOMAIN_MISMATCH.format(actual=site.subdomain, entered="elsewhere")
    assert expected in form_errors(response)


def test_connect_refuses_a_subdomain_with_invalid_characters(team_a, site, login):
    client = login(team_a.member)
    response = admin_connect(client, team_a.member, subdomain="acme corp!", api_key=site.api_key)
    assert response.status_code == 200
    assert msg.MSG_SUBDOMAIN_INVALID in form_errors(response)


def test_connect_says_when_cats_cannot_be_reached(team_a, site, login, settings):
    settings.CATS_API_URL = "http://127.0.0.1:9/v3"
    client = login(team_a.member)
    response = admin_connect(client, team_a.member, subdomain=site.subdomain, api_key=site.api_key)
    assert response.status_code == 200
    prefix = msg.MSG_UNREACHABLE.split("(")[0]
    assert any(m.startswith(prefix) for m in form_errors(response)), form_errors(response)


def test_key_is_never_rendered_and_blank_key_keeps_the_stored_one(team_a, site, login):
    account = connect(team_a.member, site)
    stored = account.api_key_encrypted
    client = login(team_a.member)
    page = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    assert site.api_key not in page
    assert stored not in page
    assert crypto.mask(site.api_key) in page
    response = change_post(client, account, api_key="", deduplication=None)
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.api_key_encrypted == stored
    assert account.deduplication is False
    assert account.status == CatsAccount.Status.CONNECTED


def test_new_key_on_change_page_reconnects_an_invalid_account(team_a, site, login):
    account = connect(team_a.member, site)
    CatsAccount.objects.filter(pk=account.pk).update(
        status=CatsAccount.Status.INVALID, status_message=msg.ERR_AUTH
    )
    client = login(team_a.member)
    page = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    assert "Reconnect" in page and msg.ERR_AUTH in page
    response = change_post(client, account, api_key=site.api_key)
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.CONNECTED


def test_undecryptable_key_shows_in_the_changelist(team_a, site, login):
    account = connect(team_a.member, site)
    CatsAccount.objects.filter(pk=account.pk).update(api_key_encrypted="gAAAA-garbage")
    page = login(team_a.owner).get(cats_url("catsaccount")).content.decode()
    assert "cannot be decrypted" in page


# --- jobs, default job order, mapping ----------------------------------------------------------


def test_refresh_fills_job_choices_and_default_job_order_is_saved(team_a, site, login):
    account = connect(team_a.member, site)
    client = login(team_a.member)
    response = act(client, cats_url("catsaccount"), "refresh_from_cats", [account.pk], follow=True)
    text = response.content.decode()
    assert "4 job order(s)" in text and "7 custom field(s)" in text
    page = client.get(cats_url("catsaccount", "change", account.pk))
    labels = dict(page.context["adminform"].form.fields["default_job_id"].choices)
    office = site.jobs["Office Manager"]
    backend = site.jobs["Senior Backend Engineer"]
    assert labels[office] == f"#{office} Office Manager (closed)"
    assert labels[backend] == f"#{backend} Senior Backend Engineer"
    assert labels[""] == "— none —"
    CatsJob.objects.filter(cats_id=office).update(exists=False)
    page = client.get(cats_url("catsaccount", "change", account.pk))
    labels = dict(page.context["adminform"].form.fields["default_job_id"].choices)
    assert labels[office] == f"#{office} Office Manager (deleted in CATS)"
    response = change_post(client, account, default_job_id=str(backend))
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.default_job_id == backend
    changelist = client.get(cats_url("catsaccount")).content.decode()
    assert "Senior Backend Engineer" in changelist


def test_refresh_reports_a_disconnected_account(team_a, site, login):
    account = connect(team_a.member, site)
    cats.cats_disconnect(account=account)
    client = login(team_a.member)
    response = act(client, cats_url("catsaccount"), "refresh_from_cats", [account.pk], follow=True)
    assert msg.MSG_NOT_CONNECTED in response.content.decode()


def test_mapping_refuses_an_incompatible_type_and_accepts_a_compatible_one(team_a, site, login):
    account = connect(team_a.member, site)
    cats.custom_fields_refresh(account=account)
    client = login(team_a.member)
    page = client.get(cats_url("catsaccount", "change", account.pk))
    data = page_data(page)
    data.update(
        {
            "mappings-TOTAL_FORMS": "1",
            "mappings-0-value": FieldMapping.Value.BOUNCED,
            "mappings-0-field_id": str(site.custom_fields["First messaged at"]),
        }
    )
    response = client.post(cats_url("catsaccount", "change", account.pk), data)
    assert response.status_code == 200
    assert any("cannot hold Bounced" in m for m in inline_errors(response)), inline_errors(response)
    assert not FieldMapping.objects.exists()
    data["mappings-0-field_id"] = str(site.custom_fields["Bounced"])
    response = client.post(cats_url("catsaccount", "change", account.pk), data)
    assert response.status_code == 302, inline_errors(response)
    mapping = FieldMapping.objects.get(account=account)
    assert (mapping.field_name, mapping.field_type) == ("Bounced", "checkbox")


def test_mapping_choices_show_the_cats_type(team_a, site, login):
    account = connect(team_a.member, site)
    cats.custom_fields_refresh(account=account)
    page = login(team_a.member).get(cats_url("catsaccount", "change", account.pk))
    formset = page.context["inline_admin_formsets"][0].formset
    labels = [label for _, label in formset.empty_form.fields["field_id"].choices]
    assert "Responded at (date)" in labels and "Lead Temperature (dropdown)" in labels


# --- "Syncing" on a sequence -------------------------------------------------------------------


def test_syncing_section_saves_toggle_and_job_order(team_a, site, sequence_a, login):
    account = connect(team_a.member, site)
    cats.jobs_refresh(account=account)
    client = login(team_a.member)
    change = url("sequence", "change", sequence_a.pk)
    page = client.get(change)
    assert "Set these before adding contacts" in page.content.decode()
    data = page_data(page)
    job = site.jobs["Product Designer"]
    data.pop("cats_sync-0-enabled", None)
    data["cats_sync-0-job_id"] = str(job)
    response = client.post(change, data)
    assert response.status_code == 302
    row = SequenceSync.objects.get(sequence=sequence_a)
    assert row.enabled is False and row.job_id == job


def test_syncing_job_choices_come_from_the_owners_site(team_a, site, sequence_a, login):
    account = connect(team_a.member, site)
    cats.jobs_refresh(account=account)
    page = login(team_a.owner).get(url("sequence", "change", sequence_a.pk))
    formsets = [f.formset for f in page.context["inline_admin_formsets"]]
    syncing = next(f for f in formsets if f.prefix == "cats_sync")
    labels = dict(syncing.forms[0].fields["job_id"].choices)
    assert site.jobs["VP of Engineering"] in labels


def test_connecting_queues_reading_job_orders_and_the_page_says_so(
    team_a, site, login, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("cats_sync.queue.enqueue_call", lambda *args: queued.append(args))
    client = login(team_a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_connect(
            client, team_a.owner, subdomain=site.subdomain, api_key=site.api_key
        )
    assert response.status_code == 302, form_errors(response)
    account = CatsAccount.objects.get(membership=team_a.owner)
    # Queued once the connection is committed, read by a worker (never in the request).
    assert ("cats_sync.tasks.metadata_refresh", account.pk) in queued
    assert not CatsJob.objects.filter(site_id=account.site_id).exists()
    page = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    assert "Reading job orders and custom fields from CATS" in page

    from cats_sync.tasks import metadata_refresh

    assert "job orders" in metadata_refresh(account.pk)
    assert CatsJob.objects.filter(site_id=account.site_id).exists()
    page = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    assert "Reading job orders" not in page


def test_job_orders_never_read_long_after_connecting_say_what_to_do(team_a, site, login):
    account = connect(team_a.owner, site)
    CatsAccount.objects.filter(pk=account.pk).update(
        connected_at=account.connected_at - timedelta(minutes=10)
    )
    page = login(team_a.owner).get(cats_url("catsaccount", "change", account.pk))
    text = page.content.decode()
    assert "could not be read from CATS yet" in text
    assert "Refresh job orders and custom fields from CATS" in text
