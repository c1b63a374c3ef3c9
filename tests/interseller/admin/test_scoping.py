"""Team scoping in the admin: another team's objects answer 404, members see their own."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.urls import reverse

from interseller.models import Contact, Enrollment
from tests.support.admin import url

pytestmark = pytest.mark.django_db


# --- scoping -----------------------------------------------------------------------------------


def _objects(w):
    return [
        ("team", w["graph"].team),
        ("membership", w["graph"].member),
        ("group", w["group"]),
        ("sequence", w["own_seq"]),
        ("contact", w["mine"]),
        ("enrollment", w["enrollment"]),
        ("emailevent", w["event"]),
        ("apitoken", w["token"]),
    ]


@pytest.mark.parametrize("role", ["owner", "manager", "member"])
def test_other_teams_objects_answer_404_by_typed_url(world, login, role):
    client = login(getattr(world["a"]["graph"], role))
    for model, obj in _objects(world["b"]):
        for view in ("change", "delete", "history"):
            response = client.get(url(model, view, obj.pk))
            assert response.status_code == 404, (model, view, response.status_code)


@pytest.mark.parametrize("role", ["owner", "member"])
def test_changelists_never_show_other_teams_rows(world, login, role):
    client = login(getattr(world["a"]["graph"], role))
    for model in ("contact", "sequence", "enrollment", "emailevent"):
        body = client.get(url(model)).content.decode()
        assert "-b@x.example" not in body and "b member seq" not in body, model


def test_member_sees_only_own_sequences_and_contacts(world, login):
    a = world["a"]
    client = login(a["graph"].member)
    body = client.get(url("contact")).content.decode()
    assert "mine-a@x.example" in body and "boss-a@x.example" not in body
    body = client.get(url("sequence")).content.decode()
    assert "a member seq" in body and "a owner seq" not in body
    assert client.get(url("contact", "change", a["theirs"].pk)).status_code == 404
    assert client.get(url("sequence", "change", a["boss_seq"].pk)).status_code == 404
    assert client.get(url("apitoken")).status_code == 403


def test_member_may_view_but_not_edit_team_memberships_and_groups(world, login):
    a = world["a"]
    client = login(a["graph"].member)
    for model, obj in [
        ("team", a["graph"].team),
        ("membership", a["graph"].owner),
        ("group", a["group"]),
    ]:
        assert client.get(url(model, "change", obj.pk)).status_code == 200
        response = client.post(url(model, "change", obj.pk), {"name": "Hijacked", "role": "member"})
        assert response.status_code == 403, model
    assert client.get(url("membership", "add")).status_code == 403
    assert client.get(url("group", "add")).status_code == 403
    a["graph"].team.refresh_from_db()
    assert a["graph"].team.name != "Hijacked"


def test_action_with_hand_made_ids_of_another_team_answers_404(world, login):
    a, b = world["a"], world["b"]
    client = login(a["graph"].owner)
    response = client.post(
        url("contact"),
        {
            "action": "add_to_sequence",
            ACTION_CHECKBOX_NAME: [a["mine"].pk, b["mine"].pk],
            "apply": "1",
            "sequence": a["own_seq"].pk,
        },
    )
    assert response.status_code == 404
    assert not Enrollment.objects.filter(contact=b["mine"], sequence=a["own_seq"]).exists()
    response = client.post(
        url("apitoken"), {"action": "revoke", ACTION_CHECKBOX_NAME: [b["token"].pk]}
    )
    assert response.status_code == 404
    b["token"].refresh_from_db()
    assert b["token"].revoked_at is None


def test_member_action_on_owners_contact_answers_404(world, login):
    a = world["a"]
    client = login(a["graph"].member)
    response = client.post(
        url("contact"),
        {
            "action": "remove_from_sequence",
            ACTION_CHECKBOX_NAME: [a["theirs"].pk],
            "apply": "1",
            "sequence": a["boss_seq"].pk,
        },
    )
    assert response.status_code == 404
    assert Enrollment.objects.filter(contact=a["theirs"], sequence=a["boss_seq"]).exists()


def test_foreign_key_choices_exclude_other_teams(world, login):
    a = world["a"]
    client = login(a["graph"].owner)
    body = client.get(url("sequence", "add")).content.decode()
    assert a["graph"].team.name in body and world["b"]["graph"].team.name not in body
    client = login(a["graph"].member)
    form = client.get(url("contact", "add")).context["adminform"].form
    assert list(form.fields["owner"].queryset) == [a["graph"].member]


def test_member_cannot_create_contact_owned_by_someone_else(world, login):
    a = world["a"]
    client = login(a["graph"].member)
    response = client.post(
        url("contact", "add"),
        {
            "team": a["graph"].team.pk,
            "owner": a["graph"].owner.pk,
            "email": "x@y.example",
            "enrollments-TOTAL_FORMS": 0,
            "enrollments-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert not Contact.objects.filter(email="x@y.example").exists()


def test_autocomplete_returns_only_scoped_rows(world, login):
    a = world["a"]

    def results(who, field, term):
        response = login(who).get(
            reverse("admin:autocomplete"),
            {
                "app_label": "interseller",
                "model_name": "enrollment",
                "field_name": field,
                "term": term,
            },
        )
        assert response.status_code == 200
        return {r["text"] for r in response.json()["results"]}

    contacts = results(a["graph"].owner, "contact", "mine")
    assert any("mine-a@x.example" in t for t in contacts)
    assert not any("mine-b@x.example" in t for t in contacts)
    sequences = results(a["graph"].member, "sequence", "seq")
    assert sequences == {"a member seq"}


def test_superuser_sees_everything(world, client):
    root = get_user_model().objects.create_superuser("root", "root@x.example", "pw-pw-pw-pw")
    client.force_login(root)
    body = client.get(url("contact")).content.decode()
    assert "mine-a@x.example" in body and "mine-b@x.example" in body


def test_staff_without_team_sees_nothing(world, client):
    loner = get_user_model().objects.create_user("loner", "loner@x.example", "pw", is_staff=True)
    client.force_login(loner)
    assert client.get(url("contact")).status_code == 403
