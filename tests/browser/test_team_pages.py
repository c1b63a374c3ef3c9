"""What a member sees, and a spreadsheet import with a bad row, in a real browser."""

from __future__ import annotations

import pytest

from interseller.models import Contact
from tests.factories import PASSWORD, ContactFactory
from tests.support.browser import shot, sign_in, submit
from tests.support.cats import connect
from tests.support.spreadsheets import csv_bytes

pytestmark = pytest.mark.django_db(transaction=True)

CONTACTS = "/admin/interseller/contact/"
CONNECTIONS = "/admin/cats_sync/catsaccount/"
HEALTH = "/admin/cats_sync/catsaccount/health/"


def test_a_member_sees_only_their_own_and_cannot_clone_settings(page, sandbox, team_a):
    site = sandbox.create_site()
    connect(team_a.member, site)
    connect(team_a.member2, site)
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@prospect.example")
    theirs = ContactFactory(team=team_a.team, owner=team_a.member2, email="theirs@prospect.example")
    sign_in(page, team_a.member.user.email, PASSWORD)

    page.goto(CONTACTS)
    rows = page.locator("#result_list tbody").inner_text()
    assert "mine@prospect.example" in rows and "theirs@prospect.example" not in rows
    shot(page, "member-contacts")
    # Not even by its address.
    answer = page.goto(f"{CONTACTS}{theirs.pk}/change/")
    assert answer.status == 404 and "theirs@prospect.example" not in page.content()

    page.goto(CONNECTIONS)
    rows = page.locator("#result_list tbody").inner_text()
    assert str(team_a.member) in rows and str(team_a.member2) not in rows
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert "Check CATS settings" in actions
    assert not [a for a in actions if a.startswith("Clone")]
    shot(page, "member-connections")

    page.goto(HEALTH)
    connections = page.locator("#cats-connections").inner_text()
    assert str(team_a.member) in connections and str(team_a.member2) not in connections
    shot(page, "member-health")


def test_an_import_with_a_bad_row_shows_the_row_and_imports_nothing(
    page, sandbox, team_a, tmp_path
):
    upload = tmp_path / "prospects.csv"
    upload.write_bytes(
        csv_bytes(
            [
                ["Email", "First name", "Company"],
                ["ok@prospect.example", "Ada", "Acme"],
                ["not-an-email", "Grace", "Navy"],
            ]
        )
    )
    sign_in(page, team_a.owner.user.email, PASSWORD)
    page.goto(f"{CONTACTS}import/")
    page.set_input_files("#id_import_file", str(upload))
    submit(page, "#import-form input[type=submit]")
    errors = page.locator("#import-errors")
    assert "Nothing was imported" in errors.inner_text()
    bad = errors.locator("tr.import-error")
    assert bad.count() == 1
    row, column, problem = bad.locator("td").all_inner_texts()
    assert row == "3" and column == "Email" and "not-an-email" in problem
    assert page.locator("#confirm-import").count() == 0
    shot(page, "import-bad-row")
    assert not Contact.objects.exists()
