"""The outreach domain: what its signals carried, and the text rule's message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.dispatch import Signal

from interseller.text import MSG_CONTROL_CHARACTER


@contextmanager
def received(signal: Signal) -> Iterator[list[dict]]:
    """The keyword arguments of each time `signal` is sent inside the block."""
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


def control(code: str) -> str:
    """The message refusing text with the control character `code` (e.g. "U+0000")."""
    return MSG_CONTROL_CHARACTER.format(code=code)
