"""Server slots: endpoint changes stay inside a configuration's structure (no reload).

Fixture ranges: endpoints 10.244.1.0/24.
"""

from __future__ import annotations

from svcnet.ingress.haproxycfg import MIN_SLOTS, assign_slots, render
from svcnet.ingress.model import Endpoint
from tests.unit.ingress.builders import endpoint_slice, ingress, path, rule
from tests.unit.ingress.test_model import LAYOUT, model_of

WEB = "default_web_80"
ING = ingress("s", rule("s.example.com", path("/", "web")))


def ips(n: int, first: int = 2) -> list[str]:
    return [f"10.244.1.{first + i}" for i in range(n)]


def model_with(n: int, first: int = 2, ing: dict[str, object] = ING) -> object:
    return model_of(ing, services=("web",), slices=(endpoint_slice("web", *ips(n, first)),))


def test_endpoints_keep_their_slots_and_new_ones_take_free_slots() -> None:
    three = assign_slots({}, model_with(3))  # type: ignore[arg-type]
    assert len(three[WEB]) == MIN_SLOTS
    # 10.244.1.2 goes away, .5 and .6 arrive: .3 and .4 stay where they were.
    after = assign_slots(three, model_with(4, first=3))  # type: ignore[arg-type]
    assert after[WEB][1:3] == three[WEB][1:3]
    assert {e.ip for e in after[WEB] if e} == set(ips(4, first=3))


def test_a_full_backend_grows_to_the_next_power_of_two_and_never_shrinks() -> None:
    big = assign_slots({}, model_with(MIN_SLOTS + 1))  # type: ignore[arg-type]
    assert len(big[WEB]) == 2 * MIN_SLOTS
    small = assign_slots(big, model_with(3))  # type: ignore[arg-type]
    assert len(small[WEB]) == 2 * MIN_SLOTS


def test_scaling_within_the_slots_keeps_the_structure() -> None:
    m3, m10 = model_with(3), model_with(10)
    s3 = assign_slots({}, m3)  # type: ignore[arg-type]
    s10 = assign_slots(s3, m10)  # type: ignore[arg-type]
    c3, c10 = render(m3, LAYOUT, s3), render(m10, LAYOUT, s10)  # type: ignore[arg-type]
    assert c3.digest == c10.digest
    assert c3.files["haproxy.cfg"] != c10.files["haproxy.cfg"]  # restarts start from them
    assert sum(1 for s in c10.servers if s.enabled) == 10


def test_a_route_change_changes_the_structure() -> None:
    other = ingress("s", rule("s.example.com", path("/v2", "web")))
    a, b = model_with(3), model_with(3, ing=other)
    assert (
        render(a, LAYOUT, assign_slots({}, a)).digest
        != render(  # type: ignore[arg-type]
            b,
            LAYOUT,
            assign_slots({}, b),  # type: ignore[arg-type]
        ).digest
    )


def test_weights_follow_the_endpoints() -> None:
    m = model_with(2)
    slots = assign_slots({}, m)  # type: ignore[arg-type]
    assert slots[WEB][0] == Endpoint("10.244.1.2", 8080, 1)
