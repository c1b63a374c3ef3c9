"""Recorded CATS answers (tests/cats_sync/contract/responses/*.json), replayed to CatsClient
through a requests transport adapter, and compared by shape with what the sandbox answers.

A recording is written from docs/cats-api-v3.md, not captured from CATS: its `_source` names
the notes' section and how sure they are ([doc], [copy], [seen], [guess]). Keys starting with
an underscore are notes for people and are stripped before anything is replayed.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse

RESPONSES = Path(__file__).resolve().parent.parent / "cats_sync" / "contract" / "responses"
# Where the recordings say CATS lives; the client under test is pointed at it.
CATS_URL = "https://api.catsone.com/v3"
MARKS = ("[doc]", "[copy]", "[seen]", "[guess]")


def recording_names() -> list[str]:
    return sorted(p.stem for p in RESPONSES.glob("*.json"))


def load_raw(name: str) -> dict[str, Any]:
    """The file as written, `_source` included."""
    return json.loads((RESPONSES / f"{name}.json").read_text())


def route(path: str) -> str:
    """A path with its ids as `{id}`: /v3/candidates/{id}/pipelines."""
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def load(name: str) -> dict[str, Any]:
    """The file without its notes for people (keys starting with `_`)."""
    return {k: v for k, v in load_raw(name).items() if not k.startswith("_")}


# --- replaying to the client --------------------------------------------------------------------


@dataclass
class Sent:
    """A request the client sent, as the replay saw it."""

    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Recording:
    name: str
    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: Any
    served: int = 0

    @classmethod
    def named(cls, name: str) -> Recording:
        data = load(name)
        request, response = data["request"], data["response"]
        return cls(
            name=name,
            method=request["method"],
            path=request["path"],
            query=request.get("query", {}),
            status=response["status"],
            headers=response["headers"],
            body=response["body"],
        )

    def matches(self, method: str, path: str, query: dict[str, str]) -> bool:
        return (
            self.method == method
            and self.path == path
            and all(query.get(k) == v for k, v in self.query.items())
        )


class ReplayAdapter(HTTPAdapter):
    """Answers each request with the recording for its method and path (and the query values
    the recording names; the one naming most wins). A request no recording answers fails the
    test: the client asked CATS something the recordings do not cover."""

    def __init__(self, recordings: list[Recording]) -> None:
        super().__init__(max_retries=0)
        self.recordings = recordings
        self.sent: list[Sent] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        query = dict(parse_qsl(parts.query))
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        self.sent.append(
            Sent(
                method=request.method,
                url=request.url,
                path=parts.path,
                query=query,
                headers=dict(request.headers),
                body=json.loads(raw) if raw else None,
            )
        )
        found = [r for r in self.recordings if r.matches(request.method, parts.path, query)]
        if not found:
            raise AssertionError(f"no recording answers {request.method} {request.url}")
        recording = max(found, key=lambda r: len(r.query))
        recording.served += 1
        content = b"" if recording.body is None else json.dumps(recording.body).encode()
        answer = HTTPResponse(
            body=io.BytesIO(content),
            headers={**recording.headers, "Content-Length": str(len(content))},
            status=recording.status,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, answer)

    def unused(self) -> list[str]:
        return [r.name for r in self.recordings if not r.served]


def replay_session(names: list[str]) -> tuple[requests.Session, ReplayAdapter]:
    adapter = ReplayAdapter([Recording.named(n) for n in names])
    session = requests.Session()
    session.mount(CATS_URL.split("/v3")[0], adapter)
    return session, adapter


# --- shapes -------------------------------------------------------------------------------------

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def kind(value: Any) -> str:
    """What a JSON value is, as far as a reader depends on it: a date-time, a date, an
    absolute URL or a path are told apart from other strings, a number in a string too."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if RFC3339.match(value):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return "date-time"
    if DATE.match(value):
        return "date"
    if value.startswith(("http://", "https://")):
        return "url"
    if value.startswith("/"):
        return "path"
    if value.isdigit():
        return "digits"
    return "string"


@dataclass
class Shape:
    kinds: set[str] = field(default_factory=set)
    fields: dict[str, Shape] = field(default_factory=dict)
    items: Shape | None = None

    def add(self, value: Any) -> Shape:
        self.kinds.add(kind(value))
        if isinstance(value, dict):
            for key, item in value.items():
                self.fields.setdefault(key, Shape()).add(item)
        elif isinstance(value, list):
            for item in value:
                if self.items is None:
                    self.items = Shape()
                self.items.add(item)
        return self


def shape(value: Any) -> Shape:
    """The shape of a JSON value; a list's items are merged into one shape (keys and kinds of
    every row)."""
    return Shape().add(value)


def shape_drift(recorded: Shape, actual: Shape, where: str = "body") -> list[str]:
    """Where `actual` does not have the recorded shape: a recorded key missing, or a value of
    another kind. Extra keys are allowed (CATS has more fields than the notes list). A recorded
    null claims nothing; a value that is only ever null where the recording has one is drift."""
    found: list[str] = []
    claimed = recorded.kinds - {"null"}
    present = actual.kinds - {"null"}
    if claimed and not present and actual.kinds:
        found.append(f"{where}: recorded {sorted(claimed)}, always null here")
    elif claimed and present and not claimed & present:
        found.append(f"{where}: recorded {sorted(claimed)}, here {sorted(present)}")
    if "object" in claimed and "object" in present:
        for key, inner in recorded.fields.items():
            if key not in actual.fields:
                found.append(f"{where}.{key}: missing")
            else:
                found += shape_drift(inner, actual.fields[key], f"{where}.{key}")
    if recorded.items is not None and actual.items is not None:
        found += shape_drift(recorded.items, actual.items, f"{where}[]")
    return found


def headers_drift(recorded: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Every recorded header present, its value of the same kind (Content-Type: the same
    media type)."""
    got = {k.lower(): v for k, v in actual.items()}
    found = []
    for name, value in recorded.items():
        here = got.get(name.lower())
        if here is None:
            found.append(f"header {name}: missing")
        elif name.lower() == "content-type":
            if here.split(";")[0].strip() != value.split(";")[0].strip():
                found.append(f"header {name}: recorded {value!r}, here {here!r}")
        elif kind(here) != kind(value):
            found.append(f"header {name}: recorded {kind(value)}, here {kind(here)}")
    return found


def response_drift(name: str, answer: requests.Response) -> list[str]:
    """How the sandbox's `answer` differs in shape from recording `name`."""
    response = load(name)["response"]
    found = []
    if answer.status_code != response["status"]:
        found.append(f"status: recorded {response['status']}, here {answer.status_code}")
    found += headers_drift(response["headers"], dict(answer.headers))
    body = answer.json() if answer.content else None
    if (response["body"] is None) != (body is None):
        found.append(f"body: recorded {'empty' if response['body'] is None else 'JSON'}")
    elif body is not None:
        found += shape_drift(shape(response["body"]), shape(body))
    return found
