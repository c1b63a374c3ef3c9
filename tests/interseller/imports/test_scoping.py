"""Who an import may touch: the uploader's team, their own contacts as a member, their own
file at the confirm step."""

from __future__ import annotations

from pathlib import Path

import pytest

from interseller import imports
from interseller.imports import import_execute, import_plan, sheet_read
from interseller.models import Contact
from tests.factories import ContactFactory, MembershipFactory, SequenceFactory, UserFactory
from tests.support.admin import message_texts
from tests.support.spreadsheets import (
    IMPORT_URL,
    PROCESS_URL,
    confirm,
    fixture_bytes,
    import_file,
    teammate_file,
    upload,
)

pytestmark = pytest.mark.django_db


# --- scoping ----------------------------------------------------------------------------------
def test_importing_never_touches_another_teams_contact_with_the_same_email(team_a, team_b, login):
    theirs = ContactFactory(
        team=team_b.team,
        owner=team_b.owner,
        email="ada@analytical.example",
        company="Bravo's secret",
    )
    dry, _ = import_file(
        login(team_a.owner), fixture_bytes("linkedin_recruiter.csv"), team=team_a.team
    )
    assert dry.context["counts"]["new"] == 3  # no match in team B
    theirs.refresh_from_db()
    assert theirs.company == "Bravo's secret" and theirs.team == team_b.team
    assert Contact.objects.filter(email="ada@analytical.example").count() == 2
    assert Contact.objects.get(team=team_a.team, email="ada@analytical.example").company == (
        "Analytical Engines"
    )


def test_a_member_cannot_change_a_teammates_contact_by_import(team_a, login):
    theirs = ContactFactory(
        team=team_a.team, owner=team_a.member2, email="grace@x.example", company="Theirs"
    )
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example", company="Old")
    client = login(team_a.member)
    dry = upload(client, teammate_file("grace@x.example"), team=team_a.team)
    assert dry.context.get("confirm_form") is None
    assert [str(e) for e in dry.context["plan"].errors] == [
        "row 7: grace@x.example belongs to a contact of another teammate; "
        "ask them or a manager to update it"
    ]
    assert dry.context["plan"].errors[0].column == "Email"
    assert dry.context["counts"] == {"new": 4, "updated": 1, "unchanged": 0, "invalid": 1}
    assert "belongs to a contact of another teammate" in dry.content.decode()
    theirs.refresh_from_db()
    assert theirs.company == "Theirs" and theirs.owner == team_a.member2
    assert Contact.objects.count() == 2


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_update_any_contact_of_the_team(team_a, login, role):
    theirs = ContactFactory(
        team=team_a.team, owner=team_a.member2, email="grace@x.example", company="Theirs"
    )
    ContactFactory(team=team_a.team, owner=team_a.member, email="mine@x.example", company="Old")
    dry, done = import_file(
        login(getattr(team_a, role)), teammate_file("grace@x.example"), team=team_a.team
    )
    assert dry.context["counts"] == {"new": 4, "updated": 2, "unchanged": 0, "invalid": 0}
    theirs.refresh_from_db()
    assert theirs.company == "Changed by a teammate"
    assert theirs.owner == team_a.member2  # updating never changes who owns a contact


def test_a_superuser_who_is_a_plain_member_updates_any_contact(team_a, login):
    boss = MembershipFactory(team=team_a.team, user=UserFactory(is_superuser=True))
    ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    dry, _ = import_file(login(boss), teammate_file("grace@x.example"), team=team_a.team)
    assert dry.context["counts"]["invalid"] == 0
    assert dry.context["counts"]["updated"] == 1


def test_a_teammates_contact_created_after_the_dry_run_stops_a_members_import(team_a):
    plan = import_plan(
        sheet=sheet_read(teammate_file("grace@x.example")),
        team=team_a.team,
        only_own=team_a.member,
    )
    assert plan.is_valid
    theirs = ContactFactory(team=team_a.team, owner=team_a.member2, email="grace@x.example")
    with pytest.raises(imports.ImportFailed, match="row 7: grace@x.example belongs to a contact"):
        import_execute(plan=plan, team=team_a.team, owner=team_a.member, only_own=team_a.member)
    assert list(Contact.objects.all()) == [theirs]


def test_a_user_cannot_import_into_a_team_they_do_not_belong_to(team_a, team_b, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_b.team)
    assert "team" in dry.context["form"].errors
    other_seq = SequenceFactory(team=team_b.team, owner=team_b.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team, sequence=other_seq)
    assert "sequence" in dry.context["form"].errors
    assert Contact.objects.count() == 0


def test_the_confirm_step_cannot_be_redirected_to_another_team(team_a, team_b, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    form = dry.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["team"] = team_b.team.pk
    done = client.post(PROCESS_URL, data)
    assert done.status_code == 302 and done.url == IMPORT_URL
    assert Contact.objects.count() == 0


def test_the_confirm_step_only_reads_the_uploaders_own_file(team_a, login, client):
    dry = upload(login(team_a.owner), fixture_bytes("google_sheets.tsv"), team=team_a.team)
    form = dry.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    login(team_a.manager)
    assert client.post(PROCESS_URL, data).status_code == 403
    assert Contact.objects.count() == 0


def test_an_expired_upload_says_so(team_a, login):
    client = login(team_a.owner)
    dry = upload(client, fixture_bytes("google_sheets.tsv"), team=team_a.team)
    Path("/tmp", dry.context["confirm_form"].initial["import_file_name"]).unlink()
    done = confirm(client, dry)
    assert done.url == IMPORT_URL
    assert message_texts(done) == [imports.MSG_FILE_EXPIRED]


def test_one_team_is_preselected_and_hidden(team_a, login):
    form = login(team_a.member).get(IMPORT_URL).context["form"]
    assert form.fields["team"].widget.is_hidden
    assert form.fields["team"].initial == team_a.team.pk


def test_superuser_without_membership_imports_as_the_teams_first_owner(team_a, team_b, login):
    admin = UserFactory(is_superuser=True)
    client = login(admin)
    form = client.get(IMPORT_URL).context["form"]
    assert not form.fields["team"].widget.is_hidden
    import_file(client, fixture_bytes("google_sheets.tsv"), team=team_b.team)
    assert set(Contact.objects.values_list("owner", flat=True)) == {team_b.owner.pk}
