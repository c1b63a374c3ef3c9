"""Cloning one member's CATS settings to teammates."""

from __future__ import annotations

import pytest

from cats_sync import services as cats
from cats_sync.models import CatsAccount
from interseller.models import Membership
from tests.support.cats import connect

pytestmark = pytest.mark.django_db


# --- Clone -----------------------------------------------------------------------------------


def test_clone_copies_settings_and_skips_who_cannot_take_them(team_a, site, cats_sandbox):
    other_site = cats_sandbox.create_site()
    source = connect(
        team_a.owner,
        site,
        sync_mode="on_reply",
        deduplication=False,
        default_job_id=site.jobs["Product Designer"],
        fire_triggers=True,
    )
    connect(team_a.manager, site)
    connect(team_a.member, other_site)
    team_a.member2.integration = Membership.Integration.GREENHOUSE
    team_a.member2.save()
    lines = cats.cats_settings_clone(
        source=source, targets=Membership.objects.filter(team=team_a.team)
    )
    by = {line.membership.pk: line for line in lines}
    assert by[team_a.manager.pk].will_update and not by[team_a.manager.pk].note
    assert by[team_a.member.pk].will_update and by[team_a.member.pk].note
    assert not by[team_a.member2.pk].will_update
    assert "Greenhouse" in by[team_a.member2.pk].reason
    manager = CatsAccount.objects.get(membership=team_a.manager)
    member = CatsAccount.objects.get(membership=team_a.member)
    assert (
        manager.sync_mode,
        manager.deduplication,
        manager.default_job_id,
        manager.fire_triggers,
    ) == ("on_reply", False, site.jobs["Product Designer"], True)
    assert (member.sync_mode, member.default_job_id) == ("on_reply", None)


def test_clone_copies_the_interest_mode(team_a, site):
    source = connect(team_a.owner, site, sync_mode=CatsAccount.SyncMode.ON_INTEREST)
    connect(team_a.manager, site)
    cats.cats_settings_clone(source=source, targets=[team_a.manager])
    manager = CatsAccount.objects.get(membership=team_a.manager)
    assert manager.sync_mode == CatsAccount.SyncMode.ON_INTEREST
