"""The recordings themselves: each says where its shape comes from, each is replayed to the
client and asked of the sandbox, and the shape comparison they rely on notices drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.recordings import MARKS, load, load_raw, recording_names, shape, shape_drift

REPLAY_TESTS = Path(__file__).with_name("test_client_replay.py").read_text()
# The client has no webhook receiver: a delivery is compared with the sandbox's only.
NOT_FOR_THE_CLIENT = {"webhook_delivery"}


@pytest.mark.parametrize("name", recording_names())
def test_each_recording_names_its_source_and_how_sure_it_is(name):
    source = load_raw(name)["_source"]

    assert source.startswith("docs/cats-api-v3.md, ")
    assert any(mark in source for mark in MARKS), source
    assert not any(key.startswith("_") for key in load(name))


@pytest.mark.parametrize("name", sorted(set(recording_names()) - NOT_FOR_THE_CLIENT))
def test_each_answer_is_replayed_to_the_client(name):
    assert f'"{name}"' in REPLAY_TESTS


def test_a_missing_key_is_drift():
    assert shape_drift(shape({"id": 1, "emails": {}}), shape({"id": 2})) == ["body.emails: missing"]


def test_a_value_of_another_kind_is_drift_but_not_another_value():
    recorded = shape({"total": 5, "href": "https://api.catsone.com/v3/jobs", "at": "2024-01-01"})

    assert (
        shape_drift(recorded, shape({"total": 7, "href": "https://x/v3", "at": "2025-02-03"})) == []
    )
    assert shape_drift(recorded, shape({"total": "5", "href": "/v3/jobs", "at": "Jan 1"})) == [
        "body.total: recorded ['int'], here ['digits']",
        "body.href: recorded ['url'], here ['path']",
        "body.at: recorded ['date'], here ['string']",
    ]


def test_only_null_where_a_value_is_recorded_is_drift_and_a_recorded_null_claims_nothing():
    recorded = shape({"rows": [{"company_id": 4, "secondary": None}]})

    assert shape_drift(recorded, shape({"rows": [{"company_id": None, "secondary": "a@b.c"}]})) == [
        "body.rows[].company_id: recorded ['int'], always null here"
    ]


def test_extra_keys_and_rows_are_not_drift():
    recorded = shape({"rows": [{"id": 1}]})

    assert shape_drift(recorded, shape({"rows": [{"id": 1, "more": 2}, {"id": 3}], "x": 1})) == []
