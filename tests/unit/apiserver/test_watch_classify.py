"""Watch event types under a selection: objects moving in and out of a label selector."""

from __future__ import annotations

import orjson
import pytest

from svcnet.api.registry import CONFIGMAPS
from svcnet.apiserver.selection import selection_for
from svcnet.apiserver.watch import classify
from svcnet.store.interface import EventType, KeyValue, WatchEvent

CM = CONFIGMAPS
assert CM is not None


def _kv(rev: int, **labels: str) -> KeyValue:
    value = orjson.dumps({"metadata": {"name": "c", "namespace": "d", "labels": labels}})
    return KeyValue("/registry/configmaps/d/c", value, 1, rev)


@pytest.mark.parametrize(
    ("etype", "prev", "new", "want"),
    [
        (EventType.PUT, None, {"a": "1"}, "ADDED"),
        (EventType.PUT, None, {"a": "2"}, None),
        (EventType.PUT, {"a": "1"}, {"a": "1", "b": "x"}, "MODIFIED"),
        (EventType.PUT, {"a": "1"}, {"a": "2"}, "DELETED"),
        (EventType.PUT, {"a": "2"}, {"a": "1"}, "ADDED"),
        (EventType.PUT, {"a": "2"}, {"a": "3"}, None),
        (EventType.DELETE, {"a": "1"}, {"a": "1"}, "DELETED"),
        (EventType.DELETE, {"a": "2"}, {"a": "2"}, None),
    ],
)
def test_classify_with_label_selector(
    etype: EventType, prev: dict[str, str] | None, new: dict[str, str], want: str | None
) -> None:
    sel = selection_for(CM, "a=1", "")
    event = WatchEvent(etype, _kv(5, **new), None if prev is None else _kv(4, **prev))
    got = classify(event, sel)
    assert (got[0] if got else None) == want


def test_classify_without_selection_needs_no_decode() -> None:
    sel = selection_for(CM, "", "")
    assert classify(WatchEvent(EventType.PUT, _kv(5), _kv(4)), sel) == ("MODIFIED", None)
