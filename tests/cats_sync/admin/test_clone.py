"""Clone in the admin: a preview with skip reasons, then settings copied to teammates."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from cats_sync import crypto
from cats_sync import messages as msg
from cats_sync import services as cats
from cats_sync.models import CatsAccount, FieldMapping
from interseller.models import Membership
from tests.factories import GroupFactory, MembershipFactory
from tests.support.admin import act, cats_url
from tests.support.cats import connect

pytestmark = pytest.mark.django_db


# --- clone -------------------------------------------------------------------------------------


@pytest.fixture
def clone_world(team_a, sandbox):
    site = sandbox.create_site()
    other = sandbox.create_site()
    source = connect(team_a.owner, site, sync_mode=CatsAccount.SyncMode.ON_REPLY)
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
    same_site = connect(team_a.manager, site)
    team = team_a.team
    other_site_member = MembershipFactory(team=team)
    other_site = connect(other_site_member, other)
    greenhouse = team_a.member
    Membership.objects.filter(pk=greenhouse.pk).update(
        integration=Membership.Integration.GREENHOUSE
    )
    invalid_member = MembershipFactory(team=team)
    invalid = connect(invalid_member, site)
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
    page = act(client, cats_url("catsaccount"), "clone_settings", [source.pk])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Tech recruiters" in text
    targets = [str(pk) for pk in page.context["form"].fields["targets"].initial]
    assert len(targets) == 5
    preview = act(
        client,
        cats_url("catsaccount"),
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
        cats_url("catsaccount"),
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
    assert "clone_settings" in client.get(cats_url("catsaccount")).content.decode()
    member = MembershipFactory(team=team_a.team)
    mine = connect(member, cats_site_of(own))
    client = login(member)
    page = client.get(cats_url("catsaccount")).content.decode()
    assert "clone_settings" not in page
    response = act(
        client,
        cats_url("catsaccount"),
        "clone_settings",
        [mine.pk],
        clone_step="confirm",
        targets=[str(team_a.manager.pk)],
    )
    assert response.status_code == 403
    assert CatsAccount.objects.get(pk=own.pk).sync_mode == CatsAccount.SyncMode.ON_ADD
    # Someone else's account, even by a member: 404 (it is not in their scope).
    response = act(client, cats_url("catsaccount"), "clone_settings", [clone_world["source"].pk])
    assert response.status_code == 403, response.status_code


def cats_site_of(account: CatsAccount):
    class Handle:
        subdomain = account.subdomain
        api_key = crypto.decrypt(account.api_key_encrypted)

    return Handle


def test_manager_cannot_clone_another_teams_account(team_a, team_b, site, login):
    theirs = connect(team_b.owner, site)
    client = login(team_a.manager)
    response = act(client, cats_url("catsaccount"), "clone_settings", [theirs.pk])
    assert response.status_code == 404
