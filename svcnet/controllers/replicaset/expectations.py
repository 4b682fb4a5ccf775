"""Controller expectations (upstream ``ControllerExpectations``), pure and clock-injected.

After a sync creates ``n`` pods or deletes some, the controller's own cache does not show
those writes yet. It records what it expects to see; informer events lower the counts; until
they reach zero (or ``EXPECTATIONS_TIMEOUT`` passes — a lost event must not block forever)
the controller does not create or delete again, which is what keeps it from double-creating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Upstream's ExpectationsTimeout.
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    add: int = 0
    deletes: set[str] = field(default_factory=set)
    # Deletions counted without keys (a delete whose pod key we could not know).
    timestamp: float = 0.0

    @property
    def fulfilled(self) -> bool:
        return self.add <= 0 and not self.deletes


class Expectations:
    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str, now: float) -> bool:
        """True when a sync may create or delete: nothing pending, or the record expired."""
        exp = self._items.get(key)
        if exp is None:
            return True
        return exp.fulfilled or now - exp.timestamp > self.timeout

    def expect_creations(self, key: str, count: int, now: float) -> None:
        self._items[key] = _Expectation(add=count, timestamp=now)

    def expect_deletions(self, key: str, pod_keys: list[str], now: float) -> None:
        self._items[key] = _Expectation(deletes=set(pod_keys), timestamp=now)

    def expect(self, key: str, creations: int, pod_keys: list[str], now: float) -> None:
        """Creations and deletions of one sync together (a DaemonSet sync does both)."""
        self._items[key] = _Expectation(add=creations, deletes=set(pod_keys), timestamp=now)

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and exp.add > 0:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected, for tests and logs."""
        exp = self._items.get(key)
        return (0, 0) if exp is None else (max(exp.add, 0), len(exp.deletes))
