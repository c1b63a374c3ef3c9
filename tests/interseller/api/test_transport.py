"""The events API's doors: tokens, methods, content types, sizes (interseller.api)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from interseller import api, services
from interseller.models import Contact, EmailEvent
from tests.support.api import CONTACTS, EVENTS, event

# --- auth, method, transport ----------------------------------------------------------------


def test_missing_token_is_401_with_bearer_challenge(client, team_a):
    response = client.post(CONTACTS, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"errors": {"authorization": [api.MSG_AUTH_MISSING]}}


def test_unknown_token_is_401(post, team_a):
    response = post(CONTACTS, {"email": "a@b.example"}, token="isk_not-a-real-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"]["authorization"] == [api.MSG_AUTH_INVALID]


def test_revoked_token_is_401_and_stores_nothing(post, team_a):
    token, raw = services.api_token_create(team=team_a.team, name="old")
    services.api_token_revoke(token=token)
    response = post(CONTACTS, {"email": "a@b.example"}, token=raw)
    assert response.status_code == 401
    assert not Contact.objects.exists()


def test_non_bearer_scheme_is_401(client, token_a):
    response = client.post(
        CONTACTS,
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Basic {token_a}"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_is_allowed(client, token_a, method):
    response = getattr(client, method)(EVENTS, headers={"Authorization": f"Bearer {token_a}"})
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"errors": {"method": [api.MSG_METHOD]}}


def test_form_encoded_body_is_415(client, token_a):
    response = client.post(
        CONTACTS, data={"email": "a@b.example"}, headers={"Authorization": f"Bearer {token_a}"}
    )
    assert response.status_code == 415
    assert response.json() == {"errors": {"body": [api.MSG_CONTENT_TYPE]}}


def test_json_with_charset_is_accepted(post, team_a):
    response = post(
        CONTACTS, {"email": "a@b.example"}, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


@override_settings(API_MAX_BODY_BYTES=200)
def test_body_over_the_limit_is_413(post, team_a):
    response = post(CONTACTS, {"email": "a@b.example", "company": "x" * 300})
    assert response.status_code == 413
    assert not Contact.objects.exists()


@override_settings(API_MAX_BODY_BYTES=200)
def test_body_longer_than_its_content_length_header_is_cut_and_refused(post, team_a):
    # A client (or proxy) that understates Content-Length must not slip a big body through:
    # only the declared bytes are read, and half a JSON document is a 400.
    body = json.dumps({"email": "a@b.example", "company": "x" * 300})
    response = post(CONTACTS, body, CONTENT_LENGTH="50")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert not Contact.objects.exists()


@override_settings(API_MAX_BODY_BYTES=200)
def test_declared_content_length_over_the_limit_is_413_before_reading(post, team_a):
    response = post(CONTACTS, "{}", CONTENT_LENGTH="100000")
    assert response.status_code == 413


def test_default_body_limit_is_64_kib(post, sequence_a, enrolled):
    response = post(EVENTS, event(sequence_a, snippet="x" * (64 * 1024)))
    assert response.status_code == 413
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize("body", ["{not json", b"\xff\xfe", '{"email": '])
def test_malformed_json_is_400(post, team_a, body):
    response = post(CONTACTS, body)
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [api.MSG_BAD_JSON]}}


@pytest.mark.parametrize("body", [[], "a string", 3, None])
def test_json_that_is_not_an_object_is_400(post, team_a, body):
    response = post(CONTACTS, json.dumps(body))
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [api.MSG_NOT_OBJECT]}}
