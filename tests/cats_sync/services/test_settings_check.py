"""The settings check: every problem with a fix, clean settings, a refused key, and never a
500 while CATS or the budget makes us wait."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from cats_sync import services as cats
from cats_sync.models import CatsRequest
from tests.factories import SequenceFactory
from tests.support.cats import SIX, connect, map_fields, sequence_sync

pytestmark = pytest.mark.django_db


# --- Settings check --------------------------------------------------------------------------


def test_settings_check_reports_every_problem_with_a_fix(team_a, site, seq, cats_sandbox):
    account = connect(team_a.member, site, default_job_id=site.jobs["Office Manager"])
    map_fields(account, site, {"bounced": "Bounced"})
    sequence_sync(seq, job_id=site.jobs["VP of Engineering"])
    other = SequenceFactory(team=team_a.team, owner=team_a.member, title="Gone job")
    sequence_sync(other, job_id=site.jobs["Product Designer"])
    cats_sandbox.delete_job(site.id, site.jobs["Product Designer"])
    cats_sandbox.delete_custom_field(site.id, site.custom_fields["Bounced"])
    findings = cats.cats_settings_check(account=account)
    problems = [f for f in findings if not f.ok]
    text = "\n".join(f.message for f in problems)
    assert "The API key works" in findings[0].message
    assert "“Office Manager” is Closed" in text
    assert "“Gone job”" in text and "does not exist in CATS" in text
    assert "Workflow “Executive Search” has no status “Replied”" in text
    assert "Bounced is mapped to a custom field that no longer exists" in text
    assert all(f.fix for f in problems)


def test_settings_check_is_clean_for_good_settings(team_a, site, seq):
    account = connect(team_a.member, site, default_job_id=site.jobs["Senior Backend Engineer"])
    map_fields(account, site, SIX)
    findings = cats.cats_settings_check(account=account)
    assert findings and all(f.ok for f in findings)


def test_settings_check_says_when_key_is_refused(team_a, site, cats_sandbox):
    account = connect(team_a.member, site)
    cats_sandbox.rotate_key(site.id)
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "rejected the API key" in finding.message


# --- the settings check never 500s on a wait ------------------------------------------------------


def test_settings_check_when_the_budget_is_spent_says_when_to_try_again(team_a, site, login):
    account = connect(team_a.member, site)
    CatsRequest.objects.bulk_create(
        [CatsRequest(site=account.site, at=timezone.now())] * account.site.rate_limit
    )
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "Check again after" in finding.fix
    response = login(team_a.member).get(
        reverse("admin:cats_sync_catsaccount_check", args=[account.pk])
    )
    assert response.status_code == 200 and "Check again after" in response.content.decode()


def test_settings_check_when_cats_asks_us_to_wait(team_a, site, cats_sandbox):
    account = connect(team_a.member, site)
    cats_sandbox.fault("rate_limit", route="*", retry_after=30)
    [finding] = cats.cats_settings_check(account=account)
    assert not finding.ok and "Check again after" in finding.fix


def test_saving_settings_sends_no_request_to_cats(team_a, site, cats_sandbox, login):
    account = connect(team_a.member, site, default_job_id=424242)
    client = login(team_a.member)
    page = client.get(reverse("admin:cats_sync_catsaccount_change", args=[account.pk]))
    data = {
        k: v
        for k, v in page.context["adminform"].form.initial.items()
        if v is not None and k not in ("api_key", "membership")
    }
    data.update({"mappings-TOTAL_FORMS": 0, "mappings-INITIAL_FORMS": 0, "sync_mode": "on_add"})
    data.update({name: "on" for name in ("deduplication", "activity_tracking", "status_sync")})
    before = cats_sandbox.requests()["total"]
    response = client.post(
        reverse("admin:cats_sync_catsaccount_change", args=[account.pk]), data, follow=True
    )
    assert response.status_code == 200
    assert cats_sandbox.requests()["total"] == before
    # It still warns, from what we know of CATS.
    assert "(#424242) does not exist in CATS" in response.content.decode()


# --- the sync mode "only when they reply with interest" ------------------------------------------


def test_settings_check_warns_when_replies_never_carry_a_sentiment_in_interest_mode(
    team_a, site, seq
):
    from cats_sync import messages as msg
    from cats_sync.models import CatsAccount
    from tests.support.cats import add, event

    account = connect(team_a.member, site, sync_mode=CatsAccount.SyncMode.ON_INTEREST)
    findings = cats.cats_settings_lint(account=account)
    assert findings[0].ok and "no reply in the last 30 days" in findings[0].message
    contact = add(seq, "plain@example.com")
    event(contact, seq, "r1", "reply_received", at=timezone.now())
    [problem] = [f for f in cats.cats_settings_lint(account=account) if not f.ok]
    assert problem.message == msg.CHECK_INTEREST_NO_SENTIMENT.format(n=1, days=30)
    assert problem.fix == msg.CHECK_INTEREST_NO_SENTIMENT_FIX
    other = add(seq, "keen@example.com")
    event(other, seq, "r2", "reply_received", at=timezone.now(), sentiment="interested")
    findings = cats.cats_settings_lint(account=account)
    assert findings[0].ok and "1 of the 2 replies" in findings[0].message
    # Other modes do not depend on sentiments: no such finding.
    CatsAccount.objects.filter(pk=account.pk).update(sync_mode=CatsAccount.SyncMode.ON_REPLY)
    account.refresh_from_db()
    assert not any("sentiment" in f.message for f in cats.cats_settings_lint(account=account))
