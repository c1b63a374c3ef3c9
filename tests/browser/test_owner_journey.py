"""An owner's whole day with CATS, in a real browser: sign in, connect CATS, choose the sync
settings, add contacts from the list, watch a contact reach CATS and follow its link, see a
reply move its pipeline, lose the key and get it back, and resync older contacts in bulk.

Queued sync work runs where the test says so, with `drain()` (what a worker would do), so the
page is read before and after the work."""

from __future__ import annotations

import re

import pytest
import requests

from cats_sync.models import CatsAccount, EnrollmentSync, FieldMapping
from cats_sync.services.status import State
from cats_sync.tasks import drain, metadata_refresh
from interseller import services
from tests.factories import PASSWORD, ContactFactory, SequenceFactory
from tests.support.browser import fits_the_width, messages, run_action, shot, sign_in, submit

pytestmark = pytest.mark.django_db(transaction=True)

CONTACTS = "/admin/interseller/contact/"
SEQUENCES = "/admin/interseller/sequence/"
CONNECTIONS = "/admin/cats_sync/catsaccount/"
HEALTH = "/admin/cats_sync/catsaccount/health/"
KEY_REFUSED_ON_HEALTH = "Key refused by CATS: reconnect"


def panel_state(page, contact) -> str:
    """The contact's page, and the state its CATS panel shows."""
    page.goto(f"{CONTACTS}{contact.pk}/change/")
    return page.locator("#cats-panel [data-cats-state]").first.inner_text()


def test_an_owner_connects_syncs_loses_the_key_reconnects_and_resyncs(
    page, browser, live_server, sandbox, team_a
):
    site = sandbox.create_site()
    owner = team_a.owner
    berlin = SequenceFactory(team=team_a.team, owner=owner, title="Backend engineers – Berlin")
    ada = ContactFactory(team=team_a.team, owner=owner, email="ada@prospect.example")
    grace = ContactFactory(team=team_a.team, owner=owner, email="grace@prospect.example")
    linus = ContactFactory(team=team_a.team, owner=owner, email="linus@prospect.example")
    # Added to a sequence before CATS was connected: the bulk resync's work at the end.
    older = SequenceFactory(team=team_a.team, owner=owner, title="Frontend – Lisbon")
    for i in range(3):
        early = ContactFactory(team=team_a.team, owner=owner, email=f"early{i}@prospect.example")
        services.contact_add_to_sequence(contact=early, sequence=older)

    # --- sign in (the field says Email) ----------------------------------------------------
    sign_in(page, owner.user.email, PASSWORD, screenshot="sign-in")
    shot(page, "admin-index")

    # --- connect CATS on the connection's Add page -----------------------------------------
    page.goto(f"{CONNECTIONS}add/")
    assert (
        page.locator("#id_membership option:checked")
        .inner_text()
        .startswith(owner.user.get_full_name())
    )
    page.fill("#id_subdomain", site.subdomain)
    page.fill("#id_api_key", site.api_key)
    shot(page, "connection-add")
    submit(page, "input[name=_save]")
    assert f"Connected to CATS site {site.subdomain}" in messages(page)
    # An owner may clone these settings to teammates (a member may not: test_team_pages).
    assert (
        "Clone settings to teammates…"
        in page.locator("select[name=action] option").all_inner_texts()
    )
    account = CatsAccount.objects.get(membership=owner)
    # The worker reads the job orders and custom fields the settings page offers.
    assert metadata_refresh(account.pk).startswith("4 job orders")

    # --- sync mode, default job order, a custom field mapping -------------------------------
    page.goto(f"{CONNECTIONS}{account.pk}/change/")
    page.select_option("#id_sync_mode", label="Sync contacts when added to a sequence")
    job = site.jobs["Senior Backend Engineer"]
    page.select_option("#id_default_job_id", label=f"#{job} Senior Backend Engineer")
    # The six values come suggested with the CATS fields of the same name; the owner keeps
    # them and checks the first one by hand.
    page.select_option("#id_mappings-0-value", "sequence_title")
    page.select_option("#id_mappings-0-field_id", label="Sequence Title (text)")
    shot(page, "connection-settings")
    submit(page, "input[name=_continue]")
    assert "was changed successfully" in messages(page)
    account.refresh_from_db()
    assert account.sync_mode == CatsAccount.SyncMode.ON_ADD and account.default_job_id == job
    mapped = dict(FieldMapping.objects.filter(account=account).values_list("value", "field_name"))
    assert mapped["sequence_title"] == "Sequence Title" and len(mapped) == 6

    # --- add contacts from the list ---------------------------------------------------------
    run_action(page, CONTACTS, "Add to sequence…", [ada.email, grace.email])
    shot(page, "add-to-sequence")
    choice = page.locator("#id_sequence option", has_text=berlin.title).get_attribute("value")
    page.select_option("#id_sequence", choice)
    submit(page, "input[name=apply]")
    assert f"Added 2 contact(s) to “{berlin.title}”" in messages(page)

    # --- the contact's panel: queued, then synced with a working candidate link -------------
    assert panel_state(page, ada) == State.QUEUED
    assert f"#{job} Senior Backend Engineer" in page.locator("#cats-panel").inner_text()
    shot(page, "contact-queued")
    drain()
    assert panel_state(page, ada) == State.SYNCED
    es = EnrollmentSync.objects.get(enrollment__contact=ada, enrollment__sequence=berlin)
    link = page.locator("#cats-panel a.cats-candidate-link")
    expected = f"{sandbox.root}/_sandbox/ui/{site.subdomain}/candidates/{es.candidate_id}"
    assert link.get_attribute("href") == expected
    assert "Senior Backend Engineer" in page.locator("#cats-panel").inner_text()
    shot(page, "contact-synced")
    # The list says it too, and fits a laptop's screen.
    page.goto(CONTACTS)
    assert State.SYNCED in page.locator("#result_list tr", has_text=ada.email).inner_text()
    assert fits_the_width(page)
    shot(page, "contacts-list")
    page.goto(f"{CONTACTS}{ada.pk}/change/")
    with browser.expect_page() as opened:
        link.click()
    candidate_page = opened.value
    candidate_page.wait_for_load_state()
    assert candidate_page.locator("#candidate-emails").inner_text() == ada.email
    shot(candidate_page, "cats-candidate")
    candidate_page.close()
    # The mapping reached CATS.
    snapshot = sandbox.snapshot(site.id)
    candidate = next(c for c in snapshot["candidates"] if c["id"] == es.candidate_id)
    assert candidate["custom_fields_by_name"]["Sequence Title"] == berlin.title

    # --- a reply through the events API moves the pipeline ---------------------------------
    status_before = page.locator("#cats-panel .form-row", has_text="Pipeline status").inner_text()
    page.goto("/admin/interseller/apitoken/add/")
    page.select_option("#id_team", label=team_a.team.name)
    page.fill("#id_name", "Outreach engine")
    submit(page, "input[name=_save]")
    token = re.search(r"will not be shown again: (\S+)", messages(page)).group(1)
    reply = requests.post(
        f"{live_server.url}/api/v1/events",
        json={
            "id": "evt-reply-ada",
            "type": "reply_received",
            "sequence_id": berlin.pk,
            "contact_email": ada.email,
            "occurred_at": "2026-11-27T10:00:00Z",
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    drain()
    page.goto(f"{CONTACTS}{ada.pk}/change/")
    status_after = page.locator("#cats-panel .form-row", has_text="Pipeline status").inner_text()
    assert "Replied" in status_after and "Replied" not in status_before
    timeline = page.locator("#cats-panel details.cats-timeline")
    timeline.locator("summary").click()
    assert "Reply received" in timeline.inner_text()
    shot(page, "contact-replied")

    # --- CATS refuses the key: the health page and the panel say so ------------------------
    sandbox.revoke_key(site.id, site.api_key)
    run_action(page, CONTACTS, "Add to sequence…", [linus.email])
    page.select_option("#id_sequence", choice)
    submit(page, "input[name=apply]")
    drain()
    # The admin index says something needs a look, and leads to the health page.
    page.goto("/admin/")
    summary = page.locator("#cats-health-summary")
    assert "to look at" in summary.inner_text()
    shot(page, "admin-index-key-refused")
    with page.expect_navigation():
        summary.get_by_text("Open the CATS sync health page").click()
    assert page.url.endswith(HEALTH)
    assert KEY_REFUSED_ON_HEALTH in page.locator("#cats-connections").inner_text()
    berlin_row = page.locator("#cats-sequences tbody tr", has_text=berlin.title)
    assert "Senior Backend Engineer" in berlin_row.inner_text()
    # Synced, pending, paused, failed: Linus waits for a new key.
    assert berlin_row.locator("td.num").all_inner_texts() == ["2", "0", "1", "0"]
    shot(page, "health-key-refused")
    assert panel_state(page, linus) == State.KEY_REFUSED
    shot(page, "contact-key-refused")

    # --- reconnect with a new key: the paused work resumes ----------------------------------
    new_key = sandbox.rotate_key(site.id)
    page.goto(f"{CONNECTIONS}{account.pk}/change/")
    page.fill("#id_api_key", new_key)
    submit(page, "input[name=_continue]")
    assert f"Connected to CATS site {site.subdomain}" in messages(page)
    drain()
    assert panel_state(page, linus) == State.SYNCED
    page.goto(HEALTH)
    connections = page.locator("#cats-connections tr", has_text=str(owner)).inner_text()
    assert "Connected" in connections and KEY_REFUSED_ON_HEALTH not in connections
    shot(page, "health-connected")

    # --- bulk resync of the contacts added before connecting, with progress ----------------
    run_action(page, SEQUENCES, "Resync to CATS…", [older.title])
    assert page.locator("#resync-to-sync").inner_text() == "3"
    shot(page, "resync-confirm")
    submit(page, "input[type=submit][value^='Resync 3']")
    assert page.locator("#p-total").inner_text() == "3"
    assert page.locator("#p-done").inner_text() == "0"
    shot(page, "resync-progress-started")
    # The page reloads itself every 5 s while the run goes on: leave it while the work runs,
    # so no request reaches the live server in the middle of drain().
    progress = page.url
    page.goto("about:blank")
    drain()
    page.goto(progress)
    assert page.locator("#p-done").inner_text() == "3"
    assert page.locator("#p-created").inner_text() == "3"
    shot(page, "resync-progress-done")
