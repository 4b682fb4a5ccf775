"""Discovery documents built from the registry."""

from __future__ import annotations

import pytest

from svcnet.api.registry import REGISTRY
from svcnet.apiserver import discovery


def test_aggregated_lists_every_resource() -> None:
    docs = [discovery.aggregated(REGISTRY, legacy) for legacy in (True, False)]
    served = {
        (item["metadata"]["name"], v["version"], r["resource"])
        for doc in docs
        for item in doc["items"]
        for v in item["versions"]
        for r in v["resources"]
    }
    assert served == {(r.group, r.version, r.plural) for r in REGISTRY.resources}


def test_scale_subresource_answers_autoscaling_scale() -> None:
    doc = discovery.api_resource_list(REGISTRY, "apps", "v1")
    assert doc is not None
    scale = next(r for r in doc["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            "v2",
        ),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "v2beta1"),
        ("application/json", None),
        ("", None),
    ],
)
def test_wants_aggregated(accept: str, want: str | None) -> None:
    assert discovery.wants_aggregated(accept) == want
