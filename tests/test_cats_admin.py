"""The CATS admin as staff use it: connecting through the form against the sandbox over HTTP,
settings, mapping, syncing per sequence, clone, resync with progress, retry, and scoping."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import (
    CatsAccount,
    CatsJob,
    EnrollmentSync,
    FieldMapping,
    ResyncRun,
    SequenceSync,
    SyncTask,
)
from cats_sync.tasks import drain
from interseller import services
from interseller.extensions import export_columns_for
from interseller.models import Contact, EmailEvent, Enrollment, Membership
from interseller.resources import ContactExportResource

from .factories import (
    ContactFactory,
    GroupFactory,
    MembershipFactory,
    SequenceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def url(model: str, view: str = "changelist", *args, app: str = "cats_sync") -> str:
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def core_url(model: str, view: str = "changelist", *args) -> str:
    return url(model, view, *args, app="interseller")


def page_data(response) -> dict:
    """What the browser would post back for a rendered change form, inlines included."""
    data: dict = {}

    def add(form) -> None:
        for bf in form:
            value = bf.value()
            if value is None or value is False:
                continue
            if value is True:
                data[bf.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bf.html_name] = [str(v) for v in value]
            else:
                data[bf.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def form_errors(response) -> list[str]:
    form = response.context["adminform"].form
    return [str(m) for errors in form.errors.values() for m in errors]


def inline_errors(response) -> list[str]:
    found = []
    for inline in response.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            found += [str(m) for errors in form.errors.values() for m in errors]
    return found


def act(client, changelist: str, action: str, ids, *, follow: bool = False, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], "index": "0"}
    data.update(extra)
    return client.post(changelist, data, follow=follow)


@pytest.fixture
def sandbox(settings, cats_sandbox):
    settings.CATS_API_URL = cats_sandbox.url
    return cats_sandbox


@pytest.fixture
def site(sandbox):
    return sandbox.create_site()


def admin_connect(client, membership, *, subdomain: str, api_key: str):
    page = client.get(url("catsaccount", "add"))
    assert page.status_code == 200
    data = page_data(page)
    data.update(membership=str(membership.pk), subdomain=subdomain, api_key=api_key)
    return client.post(url("catsaccount", "add"), data)


def connected(membership, site, **fields) -> CatsAccount:
    account = cats.cats_connect(
        membership=membership, subdomain=site.subdomain, api_key=site.api_key
    ).account
    for name, value in fields.items():
        setattr(account, name, value)
    account.save()
    return account


def change_post(client, account: CatsAccount, **changes):
    page = client.get(url("catsaccount", "change", account.pk))
    assert page.status_code == 200
    data = page_data(page)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(url("catsaccount", "change", account.pk), data)


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
    page = client.get(url("catsaccount", "add"))
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
    account = connected(team_a.member, site)
    stored = account.api_key_encrypted
    client = login(team_a.member)
    page = client.get(url("catsaccount", "change", account.pk)).content.decode()
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
    account = connected(team_a.member, site)
    CatsAccount.objects.filter(pk=account.pk).update(
        status=CatsAccount.Status.INVALID, status_message=msg.ERR_AUTH
    )
    client = login(team_a.member)
    page = client.get(url("catsaccount", "change", account.pk)).content.decode()
    assert "Reconnect" in page and msg.ERR_AUTH in page
    response = change_post(client, account, api_key=site.api_key)
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.CONNECTED


def test_undecryptable_key_shows_in_the_changelist(team_a, site, login):
    account = connected(team_a.member, site)
    CatsAccount.objects.filter(pk=account.pk).update(api_key_encrypted="gAAAA-garbage")
    page = login(team_a.owner).get(url("catsaccount")).content.decode()
    assert "cannot be decrypted" in page


# --- jobs, default job order, mapping ----------------------------------------------------------


def test_refresh_fills_job_choices_and_default_job_order_is_saved(team_a, site, login):
    account = connected(team_a.member, site)
    client = login(team_a.member)
    response = act(client, url("catsaccount"), "refresh_from_cats", [account.pk], follow=True)
    text = response.content.decode()
    assert "4 job order(s)" in text and "7 custom field(s)" in text
    page = client.get(url("catsaccount", "change", account.pk))
    labels = dict(page.context["adminform"].form.fields["default_job_id"].choices)
    office = site.jobs["Office Manager"]
    backend = site.jobs["Senior Backend Engineer"]
    assert labels[office] == f"#{office} Office Manager (closed)"
    assert labels[backend] == f"#{backend} Senior Backend Engineer"
    assert labels[""] == "— none —"
    CatsJob.objects.filter(cats_id=office).update(exists=False)
    page = client.get(url("catsaccount", "change", account.pk))
    labels = dict(page.context["adminform"].form.fields["default_job_id"].choices)
    assert labels[office] == f"#{office} Office Manager (deleted in CATS)"
    response = change_post(client, account, default_job_id=str(backend))
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.default_job_id == backend
    changelist = client.get(url("catsaccount")).content.decode()
    assert "Senior Backend Engineer" in changelist


def test_refresh_reports_a_disconnected_account(team_a, site, login):
    account = connected(team_a.member, site)
    cats.cats_disconnect(account=account)
    client = login(team_a.member)
    response = act(client, url("catsaccount"), "refresh_from_cats", [account.pk], follow=True)
    assert msg.MSG_NOT_CONNECTED in response.content.decode()


def test_mapping_refuses_an_incompatible_type_and_accepts_a_compatible_one(team_a, site, login):
    account = connected(team_a.member, site)
    cats.custom_fields_refresh(account=account)
    client = login(team_a.member)
    page = client.get(url("catsaccount", "change", account.pk))
    data = page_data(page)
    data.update(
        {
            "mappings-TOTAL_FORMS": "1",
            "mappings-0-value": FieldMapping.Value.BOUNCED,
            "mappings-0-field_id": str(site.custom_fields["First messaged at"]),
        }
    )
    response = client.post(url("catsaccount", "change", account.pk), data)
    assert response.status_code == 200
    assert any("cannot hold Bounced" in m for m in inline_errors(response)), inline_errors(response)
    assert not FieldMapping.objects.exists()
    data["mappings-0-field_id"] = str(site.custom_fields["Bounced"])
    response = client.post(url("catsaccount", "change", account.pk), data)
    assert response.status_code == 302, inline_errors(response)
    mapping = FieldMapping.objects.get(account=account)
    assert (mapping.field_name, mapping.field_type) == ("Bounced", "checkbox")


def test_mapping_choices_show_the_cats_type(team_a, site, login):
    account = connected(team_a.member, site)
    cats.custom_fields_refresh(account=account)
    page = login(team_a.member).get(url("catsaccount", "change", account.pk))
    formset = page.context["inline_admin_formsets"][0].formset
    labels = [label for _, label in formset.empty_form.fields["field_id"].choices]
    assert "Responded at (date)" in labels and "Lead Temperature (dropdown)" in labels


# --- "Syncing" on a sequence -------------------------------------------------------------------


def test_syncing_section_saves_toggle_and_job_order(team_a, site, sequence_a, login):
    account = connected(team_a.member, site)
    cats.jobs_refresh(account=account)
    client = login(team_a.member)
    change = core_url("sequence", "change", sequence_a.pk)
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
    account = connected(team_a.member, site)
    cats.jobs_refresh(account=account)
    page = login(team_a.owner).get(core_url("sequence", "change", sequence_a.pk))
    formsets = [f.formset for f in page.context["inline_admin_formsets"]]
    syncing = next(f for f in formsets if f.prefix == "cats_sync")
    labels = dict(syncing.forms[0].fields["job_id"].choices)
    assert site.jobs["VP of Engineering"] in labels


# --- clone -------------------------------------------------------------------------------------


@pytest.fixture
def clone_world(team_a, sandbox):
    site = sandbox.create_site()
    other = sandbox.create_site()
    source = connected(team_a.owner, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
    cats.jobs_refresh(account=source)
    cats.custom_fields_refresh(account=source)
    source.default_job_id = site.jobs["Product Designer"]
    source.deduplication = False
    source.save()
    FieldMapping.objects.create(
        account=source,
        value=FieldMapping.Value.SEQUENCE_TITLE,
        field_id=site.custom_fields["Sequence Title"],
        field_name="Sequence Title",
        field_type="text",
    )
    same_site = connected(team_a.manager, site)
    team = team_a.team
    other_site_member = MembershipFactory(team=team)
    other_site = connected(other_site_member, other)
    greenhouse = team_a.member
    Membership.objects.filter(pk=greenhouse.pk).update(
        integration=Membership.Integration.GREENHOUSE
    )
    invalid_member = MembershipFactory(team=team)
    invalid = connected(invalid_member, site)
    CatsAccount.objects.filter(pk=invalid.pk).update(status=CatsAccount.Status.INVALID)
    GroupFactory(team=team, name="Tech recruiters").members.add(team_a.manager)
    return {
        "source": source,
        "same_site": same_site,
        "other_site": other_site,
        "invalid": invalid,
        "none": team_a.member2,
        "greenhouse": greenhouse,
    }


def test_clone_preview_lists_updates_and_skip_reasons(team_a, clone_world, login):
    client = login(team_a.owner)
    source = clone_world["source"]
    page = act(client, url("catsaccount"), "clone_settings", [source.pk])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Tech recruiters" in text
    targets = [str(pk) for pk in page.context["form"].fields["targets"].initial]
    assert len(targets) == 5
    preview = act(
        client,
        url("catsaccount"),
        "clone_settings",
        [source.pk],
        clone_step="preview",
        targets=targets,
    )
    text = preview.content.decode()
    assert text.count("will be updated") == 2
    assert "skipped: " + msg.CLONE_SKIP_NONE in text
    assert "skipped: " + msg.CLONE_SKIP_OTHER.format(name="Greenhouse") in text
    assert "skipped: " + msg.CLONE_SKIP_INVALID in text
    assert msg.CLONE_NOTE_OTHER_SITE in text
    # Nothing changes before the confirmation.
    assert CatsAccount.objects.get(pk=clone_world["same_site"].pk).sync_mode == "on_add"


def test_clone_confirm_copies_settings_and_job_only_on_the_same_site(team_a, clone_world, login):
    client = login(team_a.owner)
    source = clone_world["source"]
    targets = [str(m.pk) for m in Membership.objects.filter(team=team_a.team)]
    response = client.post(
        url("catsaccount"),
        {
            "action": "clone_settings",
            ACTION_CHECKBOX_NAME: [str(source.pk)],
            "clone_step": "confirm",
            "targets": [t for t in targets if t != str(team_a.owner.pk)],
        },
        follow=True,
    )
    assert "to 2 teammate(s); 3 skipped" in response.content.decode()
    same = CatsAccount.objects.get(pk=clone_world["same_site"].pk)
    other = CatsAccount.objects.get(pk=clone_world["other_site"].pk)
    assert same.sync_mode == other.sync_mode == CatsAccount.SyncMode.ON_REPLY
    assert same.deduplication is False and other.deduplication is False
    assert same.default_job_id == source.default_job_id
    assert same.mappings.count() == 1
    assert other.default_job_id is None and other.mappings.count() == 0
    invalid = CatsAccount.objects.get(pk=clone_world["invalid"].pk)
    assert invalid.sync_mode == CatsAccount.SyncMode.ON_ADD


def test_member_has_no_clone_action_and_a_hand_posted_one_is_refused(team_a, clone_world, login):
    client = login(team_a.manager)
    own = clone_world["same_site"]
    assert "clone_settings" in client.get(url("catsaccount")).content.decode()
    member = MembershipFactory(team=team_a.team)
    mine = connected(member, cats_site_of(own))
    client = login(member)
    page = client.get(url("catsaccount")).content.decode()
    assert "clone_settings" not in page
    response = act(
        client,
        url("catsaccount"),
        "clone_settings",
        [mine.pk],
        clone_step="confirm",
        targets=[str(team_a.manager.pk)],
    )
    assert response.status_code == 403
    assert CatsAccount.objects.get(pk=own.pk).sync_mode == CatsAccount.SyncMode.ON_ADD
    # Someone else's account, even by a member: 404 (it is not in their scope).
    response = act(client, url("catsaccount"), "clone_settings", [clone_world["source"].pk])
    assert response.status_code == 403, response.status_code


def cats_site_of(account: CatsAccount):
    class Handle:
        subdomain = account.subdomain
        api_key = crypto.decrypt(account.api_key_encrypted)

    return Handle


def test_manager_cannot_clone_another_teams_account(team_a, team_b, site, login):
    theirs = connected(team_b.owner, site)
    client = login(team_a.manager)
    response = act(client, url("catsaccount"), "clone_settings", [theirs.pk])
    assert response.status_code == 404


# --- resync ------------------------------------------------------------------------------------


@pytest.fixture
def resync_world(team_a, site):
    """Contacts added before CATS was connected, one already synced, one sequence off."""
    owner = team_a.owner
    live = SequenceFactory(team=team_a.team, owner=owner, title="Live")
    off = SequenceFactory(team=team_a.team, owner=owner, title="Off")
    SequenceSync.objects.create(sequence=off, enabled=False)
    unconnected = SequenceFactory(team=team_a.team, owner=team_a.member2, title="Unconnected")
    contacts = []
    for i in range(3):
        c = ContactFactory(team=team_a.team, owner=owner, email=f"new{i}@resync.example")
        services.contact_add_to_sequence(contact=c, sequence=live)
        contacts.append(c)
    done = ContactFactory(team=team_a.team, owner=owner, email="done@resync.example")
    enr = services.contact_add_to_sequence(contact=done, sequence=live).enrollment
    EnrollmentSync.objects.filter(enrollment=enr).update(synced_at=timezone.now())
    services.contact_add_to_sequence(contact=contacts[0], sequence=off)
    services.contact_add_to_sequence(contact=contacts[1], sequence=unconnected)
    account = connected(owner, site)
    return {"live": live, "contacts": [*contacts, done], "account": account}


def test_resync_confirmation_counts_without_calling_cats(team_a, resync_world, sandbox, login):
    client = login(team_a.owner)
    before = sandbox.requests()
    ids = [c.pk for c in resync_world["contacts"]]
    page = act(client, core_url("contact"), "resync_to_cats", ids)
    assert page.status_code == 200
    plan = page.context["plan"]
    assert plan.sync_count == 3
    assert plan.skipped == 1
    assert plan.blocked == {msg.BLOCK_SEQUENCE_OFF: 1, msg.BLOCK_NO_CONNECTION: 1}
    text = page.content.decode()
    assert msg.BLOCK_SEQUENCE_OFF in text and msg.BLOCK_NO_CONNECTION in text
    assert sandbox.requests() == before
    assert not SyncTask.objects.exists()


def test_resync_starts_a_run_whose_tasks_reach_cats(team_a, resync_world, site, sandbox, login):
    client = login(team_a.owner)
    ids = [str(c.pk) for c in resync_world["contacts"]]
    page = act(client, core_url("contact"), "resync_to_cats", ids)
    assert page.context["selected"] == ids
    # What the confirmation page posts back: no "index", like any action with a second step.
    response = client.post(
        core_url("contact"),
        {
            "action": "resync_to_cats",
            ACTION_CHECKBOX_NAME: ids,
            "select_across": "0",
            "confirm": "yes",
        },
    )
    run = ResyncRun.objects.get()
    assert response.status_code == 302
    assert response.url == url("resyncrun", "change", run.pk)
    assert (run.total, run.skipped, run.blocked) == (3, 1, 2)
    assert SyncTask.objects.filter(run=run, state=SyncTask.State.PENDING).count() == 3
    page = client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' in page
    assert '<td id="p-waiting">3</td>' in page
    drain()
    emails = {
        (c.get("emails") or {}).get("primary") for c in sandbox.snapshot(site.id)["candidates"]
    }
    assert {f"new{i}@resync.example" for i in range(3)} <= emails
    page = client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert '<td id="p-created">3</td>' in page and '<td id="p-done">3</td>' in page
    run.refresh_from_db()
    assert run.state == ResyncRun.State.DONE


def test_resync_from_sequence_enrollment_and_account_actions(team_a, resync_world, login):
    client = login(team_a.owner)
    live = resync_world["live"]
    page = act(client, core_url("sequence"), "resync_to_cats", [live.pk])
    assert page.context["plan"].sync_count == 3 and page.context["plan"].skipped == 1
    enrollment = Enrollment.objects.get(sequence=live, contact=resync_world["contacts"][2])
    page = act(client, core_url("enrollment"), "resync_to_cats", [enrollment.pk])
    assert page.context["plan"].sync_count == 1
    account = resync_world["account"]
    page = act(client, url("catsaccount"), "resync_to_cats", [account.pk])
    plan = page.context["plan"]
    assert plan.sync_count == 3 and plan.blocked == {msg.BLOCK_SEQUENCE_OFF: 1}


def test_failed_enrollments_are_linked_and_retried(team_a, resync_world, sandbox, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, core_url("contact"), "resync_to_cats", ids, confirm="yes")
    run = ResyncRun.objects.get()
    task = SyncTask.objects.filter(run=run).first()
    SyncTask.objects.filter(pk=task.pk).update(state=SyncTask.State.FAILED, last_error="boom")
    EnrollmentSync.objects.filter(enrollment_id=task.enrollment_id).update(
        error_code=EnrollmentSync.Error.REJECTED, error_message="CATS rejected the contact: boom"
    )
    page = client.get(url("resyncrun", "change", run.pk)).content.decode()
    failed_url = core_url("enrollment") + f"?cats_run={run.pk}&amp;cats_state=error"
    assert failed_url in page
    listing = client.get(core_url("enrollment"), {"cats_run": run.pk, "cats_state": "error"})
    assert list(listing.context["cl"].result_list) == [task.enrollment]
    assert "CATS rejected the contact: boom" in listing.content.decode()
    response = act(
        client, core_url("enrollment"), "retry_cats_sync", [task.enrollment_id], follow=True
    )
    assert "1 failed CATS task(s) queued again" in response.content.decode()
    task.refresh_from_db()
    assert task.state == SyncTask.State.PENDING and task.attempts == 0


def test_sync_queue_retry_action(team_a, resync_world, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, core_url("contact"), "resync_to_cats", ids, confirm="yes")
    SyncTask.objects.update(state=SyncTask.State.FAILED)
    task_ids = list(SyncTask.objects.values_list("pk", flat=True))
    response = act(client, url("synctask"), "retry", task_ids, follow=True)
    assert "3 failed task(s) queued again" in response.content.decode()
    assert SyncTask.objects.filter(state=SyncTask.State.PENDING).count() == 3


# --- contacts and enrollments: CATS columns and filters ----------------------------------------


def test_exists_in_cats_column_filter_and_export(team_a, resync_world, login):
    client = login(team_a.owner)
    known, unknown = resync_world["contacts"][0], resync_world["contacts"][1]
    for es in EnrollmentSync.objects.filter(enrollment__contact=known):
        cats.exists_in_cats_mark(enrollment_sync_id=es.pk)
    for es in EnrollmentSync.objects.filter(enrollment__contact=unknown):
        cats.issue_raise(
            enrollment_sync_id=es.pk,
            step="job",
            code=EnrollmentSync.Error.JOB_MISSING,
            message="Job order #9 no longer exists",
        )
    page = client.get(core_url("contact"), {"in_cats": "yes"})
    assert list(page.context["cl"].result_list) == [known]
    page = client.get(core_url("contact"), {"in_cats": "no"})
    assert known not in page.context["cl"].result_list
    page = client.get(core_url("contact"), {"cats_error": "job_missing"})
    assert list(page.context["cl"].result_list) == [unknown]
    assert "Job order #9 no longer exists" in page.content.decode()
    # The spec's integration error "Exists in CATS" is one of the errors the filter lists.
    page = client.get(core_url("contact"), {"cats_error": "exists_in_cats"})
    assert list(page.context["cl"].result_list) == [known]
    headers = [h for h, _ in export_columns_for(Contact)]
    assert headers == ["Exists in CATS", "CATS error"]
    fields = {f"contactexportresource_{name}": "on" for name in ContactExportResource().fields}
    response = client.post(
        core_url("contact", "export"), {"format": "0", "resource": "0", **fields}
    )
    assert response.status_code == 200
    rows = {
        row["Email"]: row
        for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    }
    assert rows[known.email]["Exists in CATS"] == "yes"
    assert rows[unknown.email]["Exists in CATS"] == "no"
    assert rows[unknown.email]["CATS error"] == "Job order #9 no longer exists"


def test_enrollment_sync_state_filters(team_a, resync_world, login):
    client = login(team_a.owner)
    synced = client.get(core_url("enrollment"), {"cats_state": "synced"})
    assert [e.contact.email for e in synced.context["cl"].result_list] == ["done@resync.example"]
    not_synced = client.get(core_url("enrollment"), {"cats_state": "not_synced"})
    assert len(not_synced.context["cl"].result_list) == 5


# --- pages and scoping -------------------------------------------------------------------------


@pytest.fixture
def run_world(team_a, team_b, resync_world, site, login):
    client = login(team_a.owner)
    act(
        client,
        core_url("contact"),
        "resync_to_cats",
        [resync_world["contacts"][0].pk],
        confirm="yes",
    )
    theirs = connected(team_b.owner, site)
    seq_b = SequenceFactory(team=team_b.team, owner=team_b.owner)
    contact_b = ContactFactory(team=team_b.team, owner=team_b.owner)
    enr_b = services.contact_add_to_sequence(contact=contact_b, sequence=seq_b).enrollment
    run_b = cats.resync_start(
        enrollments=Enrollment.objects.filter(pk=enr_b.pk),
        started_by=team_b.owner.user,
        team=team_b.team,
        description="b run",
    )
    return {
        "a": {
            "catsaccount": resync_world["account"],
            "resyncrun": ResyncRun.objects.filter(team=team_a.team).get(),
            "synctask": SyncTask.objects.filter(account=resync_world["account"]).first(),
        },
        "b": {
            "catsaccount": theirs,
            "resyncrun": run_b,
            "synctask": SyncTask.objects.filter(account=theirs).first(),
        },
    }


@pytest.mark.parametrize("model", ["catsaccount", "resyncrun", "synctask"])
def test_new_admins_render_for_an_owner_and_hide_other_teams(team_a, run_world, login, model):
    client = login(team_a.owner)
    assert client.get(url(model)).status_code == 200
    assert client.get(url(model), {"q": "a"}).status_code == 200
    mine, theirs = run_world["a"][model], run_world["b"][model]
    assert mine is not None and theirs is not None
    assert client.get(url(model, "change", mine.pk)).status_code == 200
    assert client.get(url(model, "change", theirs.pk)).status_code == 404
    listing = client.get(url(model))
    assert theirs not in listing.context["cl"].result_list


def test_catsaccount_add_page_renders(team_a, login):
    assert login(team_a.owner).get(url("catsaccount", "add")).status_code == 200


def test_member_sees_only_their_own_connection(team_a, site, login):
    mine = connected(team_a.member, site)
    other = connected(team_a.member2, site)
    client = login(team_a.member)
    listing = client.get(url("catsaccount"))
    assert list(listing.context["cl"].result_list) == [mine]
    assert client.get(url("catsaccount", "change", other.pk)).status_code == 404
    response = act(client, url("catsaccount"), "disconnect", [other.pk])
    assert response.status_code == 404
    assert CatsAccount.objects.get(pk=other.pk).is_connected


def test_disconnect_action_says_how_many_tasks_wait(team_a, resync_world, login):
    client = login(team_a.owner)
    ids = [c.pk for c in resync_world["contacts"]]
    act(client, core_url("contact"), "resync_to_cats", ids, confirm="yes")
    account = resync_world["account"]
    response = act(client, url("catsaccount"), "disconnect", [account.pk], follow=True)
    assert "3 queued task(s) wait" in response.content.decode()
    account.refresh_from_db()
    assert account.status == CatsAccount.Status.DISCONNECTED


def test_extended_core_pages_still_render(team_a, resync_world, login):
    client = login(team_a.owner)
    contact = resync_world["contacts"][0]
    enrollment = Enrollment.objects.filter(contact=contact).first()
    for page in [
        core_url("contact", "change", contact.pk),
        core_url("enrollment", "change", enrollment.pk),
        core_url("sequence", "change", resync_world["live"].pk),
        core_url("sequence", "add"),
        core_url("contact"),
        core_url("enrollment"),
        core_url("sequence"),
    ]:
        assert client.get(page).status_code == 200, page


def test_cats_metadata_admin_is_for_superusers_only(team_a, site, login):
    connected(team_a.owner, site)
    assert login(team_a.owner).get(url("catsjob")).status_code == 403


# --- performance: query counts independent of rows ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        url("catsaccount"),
        url("resyncrun"),
        url("synctask"),
        core_url("contact"),
        core_url("enrollment"),
        core_url("sequence"),
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(team_a, site, login, path):
    client = login(team_a.owner)
    connected(team_a.owner, site)

    def grow(n: int) -> None:
        for _ in range(n):
            member = MembershipFactory(team=team_a.team)
            account = connected(member, site)
            seq = SequenceFactory(team=team_a.team, owner=member)
            contact = ContactFactory(team=team_a.team, owner=member)
            enr = services.contact_add_to_sequence(contact=contact, sequence=seq).enrollment
            EnrollmentSync.objects.filter(enrollment=enr).update(
                exists_in_cats=True, error_code="rejected", error_message="x", candidate_id=1
            )
            CatsJob.objects.get_or_create(site=account.site, cats_id=7, defaults={"title": "J"})
            account.default_job_id = 7
            account.save()
            cats.resync_start(
                enrollments=Enrollment.objects.filter(pk=enr.pk),
                started_by=member.user,
                team=team_a.team,
                description="grow",
            )

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    grow(1)
    before = count()
    grow(5)
    assert count() == before
    assert Contact.objects.count() >= 6


# --- settings check ----------------------------------------------------------------------------


def test_check_settings_button_reports_problems_with_fixes(team_a, site, sandbox, login):
    account = connected(team_a.member, site, default_job_id=site.jobs["Office Manager"])
    client = login(team_a.member)
    change = client.get(url("catsaccount", "change", account.pk)).content.decode()
    check_url = reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    assert check_url in change
    body = client.get(check_url).content.decode()
    assert "The API key works" in body
    assert "“Office Manager” is Closed in CATS" in body
    assert "Reopen it in CATS or choose an open job order." in body


def test_check_settings_action_and_scoping(team_a, team_b, site, sandbox, login):
    account = connected(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    client = login(team_a.owner)
    body = act(client, url("catsaccount"), "check_settings", [account.pk]).content.decode()
    assert "Everything checked is ready." in body
    outsider = login(team_b.owner)
    check_url = reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    assert outsider.get(check_url).status_code == 404


def test_saving_settings_warns_about_problems_without_blocking(team_a, site, sandbox, login):
    account = connected(team_a.member, site)
    cats.jobs_refresh(account=account)
    client = login(team_a.member)
    response = change_post(client, account, default_job_id=str(site.jobs["Office Manager"]))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.default_job_id == site.jobs["Office Manager"]
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is Closed in CATS" in m for m in shown)


def test_members_see_only_resync_runs_they_started(team_a, site, sandbox, login):
    from cats_sync.models import ResyncRun

    mine = ResyncRun.objects.create(
        team=team_a.team, description="mine", started_by=team_a.member.user
    )
    theirs = ResyncRun.objects.create(
        team=team_a.team, description="theirs", started_by=team_a.owner.user
    )
    client = login(team_a.member)
    assert client.get(url("resyncrun", "change", mine.pk)).status_code == 200
    assert client.get(url("resyncrun", "change", theirs.pk)).status_code == 404
    assert login(team_a.owner).get(url("resyncrun", "change", mine.pk)).status_code == 200


# --- resync-run filter: the same runs as the resync-run list --------------------------------


def run_choices(client) -> set[int]:
    listing = client.get(core_url("enrollment"))
    specs = listing.context["cl"].filter_specs
    spec = next(s for s in specs if getattr(s, "parameter_name", "") == "cats_run")
    return {int(pk) for pk, _ in spec.lookup_choices}


def listed_runs(client) -> set[int]:
    return {run.pk for run in client.get(url("resyncrun")).context["cl"].result_list}


def test_resync_run_filter_offers_the_runs_the_user_may_see(team_a, team_b, login):
    runs = {
        who: ResyncRun.objects.create(
            team=graph.team, description=f"{who} run", started_by=getattr(graph, role).user
        )
        for who, graph, role in [
            ("member", team_a, "member"),
            ("member2", team_a, "member2"),
            ("owner", team_a, "owner"),
            ("other team", team_b, "owner"),
        ]
    }
    expected = {
        team_a.member: {runs["member"].pk},
        team_a.manager: {runs[w].pk for w in ("member", "member2", "owner")},
        team_a.owner: {runs[w].pk for w in ("member", "member2", "owner")},
        UserFactory(is_superuser=True): {run.pk for run in runs.values()},
    }
    for who, pks in expected.items():
        client = login(who)
        assert run_choices(client) == pks == listed_runs(client), who


def test_a_teammates_run_typed_into_the_url_filters_nothing(team_a, login):
    theirs = ResyncRun.objects.create(
        team=team_a.team, description="theirs", started_by=team_a.member2.user
    )
    seq = SequenceFactory(team=team_a.team, owner=team_a.member)
    mine = services.contact_add_to_sequence(
        contact=ContactFactory(team=team_a.team, owner=team_a.member), sequence=seq
    ).enrollment
    client = login(team_a.member)
    listing = client.get(core_url("enrollment"), {"cats_run": theirs.pk})
    assert listing.status_code == 200
    assert "theirs" not in listing.content.decode()
    assert list(listing.context["cl"].result_list) == [mine]


# --- deleting a contact: its sync records go with it, CATS is not touched ---------------------


@pytest.fixture
def synced(team_a, site, sandbox):
    """Contacts of two members, synced to CATS, each with an enrollment, an email event and
    the sync records (tasks, sync state) that hang off them."""
    connected(team_a.member, site)
    connected(team_a.member2, site)
    contacts = {}
    for owner in (team_a.member, team_a.member2):
        seq = SequenceFactory(team=team_a.team, owner=owner)
        for i in range(2):
            contact = ContactFactory(
                team=team_a.team, owner=owner, email=f"gone{i}-{owner.pk}@delete.example"
            )
            enrollment = services.contact_add_to_sequence(contact=contact, sequence=seq).enrollment
            services.email_event_record(
                enrollment=enrollment,
                external_id=f"delete-{contact.pk}",
                kind="message_sent",
                occurred_at="2026-11-01T10:00:00Z",
                subject="Hello",
            )
            contacts.setdefault(owner, []).append(contact)
    drain()
    for contact in [*contacts[team_a.member], *contacts[team_a.member2]]:
        assert EnrollmentSync.objects.get(enrollment__contact=contact).synced_at is not None
        assert SyncTask.objects.filter(enrollment__contact=contact, event__isnull=False).exists()
    return contacts


def gone(contact: Contact) -> bool:
    return not (
        Contact.objects.filter(pk=contact.pk).exists()
        or Enrollment.objects.filter(contact_id=contact.pk).exists()
        or SyncTask.objects.filter(enrollment__contact_id=contact.pk).exists()
        or EnrollmentSync.objects.filter(enrollment__contact_id=contact.pk).exists()
        or EmailEvent.objects.filter(enrollment__contact_id=contact.pk).exists()
    )


def cats_candidate_ids(sandbox, site) -> set[int]:
    return {c["id"] for c in sandbox.snapshot(site.id)["candidates"]}


@pytest.mark.parametrize("who", ["manager", "member"])
def test_deleting_a_synced_contact_takes_its_records_and_leaves_cats_alone(
    team_a, synced, site, sandbox, login, who
):
    one, other = synced[team_a.member]
    in_cats = cats_candidate_ids(sandbox, site)
    requests_before = sandbox.requests()
    client = login(getattr(team_a, who))

    page = client.get(core_url("contact", "delete", one.pk))
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert client.post(core_url("contact", "delete", one.pk), {"post": "yes"}).status_code == 302
    assert gone(one)

    response = act(client, core_url("contact"), "delete_selected", [other.pk], post="yes")
    assert response.status_code == 302
    assert gone(other)

    assert sandbox.requests() == requests_before
    assert cats_candidate_ids(sandbox, site) == in_cats


def test_member_still_cannot_delete_a_teammates_contact(team_a, synced, login):
    theirs = synced[team_a.member2][0]
    client = login(team_a.member)
    assert client.get(core_url("contact", "delete", theirs.pk)).status_code == 404
    assert client.post(core_url("contact", "delete", theirs.pk), {"post": "yes"}).status_code == 404
    response = act(client, core_url("contact"), "delete_selected", [theirs.pk], post="yes")
    assert response.status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_system_records_alone_stay_superuser_only(team_a, synced, login):
    task = SyncTask.objects.filter(enrollment__contact__owner=team_a.member).first()
    client = login(team_a.manager)
    assert client.get(url("synctask", "delete", task.pk)).status_code == 403
