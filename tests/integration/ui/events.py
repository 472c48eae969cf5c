"""Reading a server-sent event stream in tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One event of the stream."""

    name: str
    data: Any


def events(lines: Iterator[str]) -> Iterator[Event]:
    """Parse ``event:``/``data:`` lines into events (comments and ``retry:`` are skipped)."""
    name, data = "message", ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line == "" and data:
            yield Event(name, json.loads(data))
            name, data = "message", ""


def until(stream: Iterator[Event], wanted: Callable[[Event], bool], timeout: float = 10) -> Event:
    """The first event that ``wanted`` accepts; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for event in stream:
        if wanted(event):
            return event
        assert time.monotonic() < deadline, f"no wanted event within {timeout} s (last: {event})"
    raise AssertionError("the stream ended")
