"""What the admin says of the two-way sync: the member's stop status on the settings page, how
each connection hears of changes made in CATS, and the reconciliation's bound on the health
page (or that SITE_URL is missing)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cats_sync import services as cats
from cats_sync.models import CatsAccount
from cats_sync.services.webhooks import MSG_NO_SITE_URL
from cats_sync.tasks import drain
from tests.support.admin import cats_url, change_post
from tests.support.cats import add, connect

pytestmark = pytest.mark.django_db

HEALTH = "/admin/cats_sync/catsaccount/health/"


@pytest.fixture
def site(sandbox):
    return sandbox.create_site()


def test_the_member_picks_the_stop_status_from_the_workflows(team_a, site, login):
    account = connect(team_a.member, site)
    cats.workflows_refresh(account=account)
    client = login(team_a.member)

    page = client.get(cats_url("catsaccount", "change", account.pk)).content.decode()
    response = change_post(client, account, stop_status="Interviewing")

    assert "Stop the sequence when CATS moves the candidate to" in page
    assert '<option value="Submitted">Submitted</option>' in page
    assert "the first status after “Interested” (default)" in page
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.stop_status == "Interviewing"


def test_without_site_url_the_health_page_says_reconciliation_is_all_there_is(
    team_a, site, seq, login, settings
):
    settings.SITE_URL = ""
    connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])

    html = login(team_a.owner).get(HEALTH).content.decode()

    assert 'id="cats-no-site-url"' in html
    assert MSG_NO_SITE_URL in html
    assert "Reconciliation re-reads the pipelines of 0 active contacts" in html


def test_the_health_page_states_how_soon_a_missed_move_is_caught(
    team_a, site, seq, login, settings
):
    settings.SITE_URL = "https://outreach.example.com"
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    CatsAccount.objects.filter(pk=account.pk).update(
        webhook_id=77, webhook_token="t" * 43, webhook_registered_at=timezone.now()
    )
    add(seq, "a@example.com")
    drain()

    html = login(team_a.owner).get(HEALTH).content.decode()

    assert 'id="cats-no-site-url"' not in html
    assert "CATS tells us of each move right away" in html
    assert (
        "Reconciliation re-reads the pipelines of 1 active contact with at most 50 requests "
        "every 3600 s" in html
    )
    assert "caught within about 6 minutes" in html  # never sooner than RECENT (5) + a tick
