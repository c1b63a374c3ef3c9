"""Per-site answers to the questions docs/cats-api-v3.md leaves open.

Each site carries a config; the defaults are what the notes state or guess, and every key can
be changed at site creation (`make_seed(**config)`) or later with
`PATCH /_sandbox/sites/{id}/config`, so one test can run against each answer.

- `search_case_sensitive` (False): whether the `exactly` filter of `POST /candidates/search`
  compares `emails.*` case-sensitively.
- `contains_case_sensitive` (False): the same for `contains`. False folds case even when
  `exactly` does not, as MySQL's LIKE under a `*_ci` collation does.
- `duplicate_pipeline_status` (409): the answer to a second `POST /pipelines` for the same
  candidate and job; 400 and 422 refuse too, 200 and 201 answer with the existing pipeline.
- `duplicate_candidate_status` (409): the refusal of `POST /candidates?check_duplicate=true`
  when a duplicate exists; 400 and 422 allowed. The body always names the duplicate:
  `{"message": ..., "duplicate_id": N}`.
- `status_change_code` (204): success code of `POST /pipelines/{id}/status`; 200 and 201
  answer with the pipeline as body.
- `total_style` ("int"): how a list writes `total`: "int", "string" or "null".
- `link_style` ("absolute"): `_links` hrefs "absolute" or "relative" (`Location` stays
  absolute).
- `max_per_page` (100): the largest page a list answers; a larger `per_page` is cut to it and
  `_links.next` follows the page actually served.
- `rate_limit` (None): requests per rolling window for the whole site (account), shared by its
  keys; None uses the server's (`--rate-limit`, 500 by default).
- `rate_window` (None): seconds of that rolling window; None uses the server's (3600).

`VARIANTS` names whole configs for tests to parametrise over: `documented` (the defaults),
`opposite` (every open question answered the other plausible way) and `strict_case` (both
search filters case-sensitive).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SITE_CONFIG_DEFAULTS: dict[str, Any] = {
    "search_case_sensitive": False,
    "contains_case_sensitive": False,
    "duplicate_pipeline_status": 409,
    "duplicate_candidate_status": 409,
    "status_change_code": 204,
    "total_style": "int",
    "link_style": "absolute",
    "max_per_page": 100,
    "rate_limit": None,
    "rate_window": None,
}

# The open questions only: the rate limit is an account setting, not a question.
_DOCUMENTED = {
    k: v for k, v in SITE_CONFIG_DEFAULTS.items() if k not in {"rate_limit", "rate_window"}
}

VARIANTS: dict[str, dict[str, Any]] = {
    "documented": dict(_DOCUMENTED),
    "opposite": {
        "search_case_sensitive": True,
        "contains_case_sensitive": False,
        "duplicate_pipeline_status": 200,
        "duplicate_candidate_status": 422,
        "status_change_code": 200,
        "total_style": "string",
        "link_style": "relative",
        "max_per_page": 25,
    },
    "strict_case": {**_DOCUMENTED, "search_case_sensitive": True, "contains_case_sensitive": True},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: (_is_int(v) or isinstance(v, str)) and v in choices


def _positive_or_none(value: Any) -> bool:
    return value is None or (_is_int(value) or isinstance(value, float)) and value > 0


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "search_case_sensitive": (lambda v: isinstance(v, bool), "true or false"),
    "contains_case_sensitive": (lambda v: isinstance(v, bool), "true or false"),
    "duplicate_pipeline_status": (_one_of(200, 201, 400, 409, 422), "200, 201, 400, 409 or 422"),
    "duplicate_candidate_status": (_one_of(400, 409, 422), "400, 409 or 422"),
    "status_change_code": (_one_of(200, 201, 204), "200, 201 or 204"),
    "total_style": (_one_of("int", "string", "null"), '"int", "string" or "null"'),
    "link_style": (_one_of("absolute", "relative"), '"absolute" or "relative"'),
    "max_per_page": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "rate_limit": (lambda v: v is None or _is_int(v) and v > 0, "a positive integer or null"),
    "rate_window": (_positive_or_none, "a positive number of seconds or null"),
}


def config_errors(config: Any) -> list[str]:
    """What is wrong with a (partial) site config, one message per key; [] when fine."""
    if not isinstance(config, dict):
        return ["config must be an object."]
    errors = []
    for key, value in config.items():
        rule = _RULES.get(key)
        if rule is None:
            errors.append(f"Unknown config key {key!r}.")
        elif not rule[0](value):
            errors.append(f"{key} must be {rule[1]}.")
    return errors
