"""GatewayClass status: the conditions this controller writes on the classes it implements. Pure.

A GatewayClass is ours when ``spec.controllerName`` is :data:`GATEWAY_CONTROLLER_NAME`. The
Gateway API asks the controller to accept it (condition ``Accepted``, reason ``Accepted``,
``observedGeneration`` the generation it saw); ``lastTransitionTime`` changes only when the
condition's status does, as ``meta.SetStatusCondition`` keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView

GATEWAY_CONTROLLER_NAME = "svcnet.io/gateway-controller"
ACCEPTED = "Accepted"

# What this controller implements, in the names of the Gateway API's pkg/features (core and
# extended conformance), sorted as the specification asks. Not listed because not done:
# HTTPRouteRequestTimeout, HTTPRouteBackendTimeout, HTTPRouteBackendRequestHeaderModification,
# HTTPRouteBackendProtocolH2C/WebSocket (appProtocol), HTTPRouteDestinationPortMatching,
# HTTPRouteNamedRouteRule, 303/307/308 redirects, GatewayStaticAddresses, TCPRoute, UDPRoute.
SUPPORTED_FEATURES = tuple(
    sorted(
        [
            "GRPCRoute",
            "Gateway",
            "GatewayPort8080",
            "HTTPRoute",
            "HTTPRouteHostRewrite",
            "HTTPRouteMethodMatching",
            "HTTPRouteParentRefPort",
            "HTTPRoutePathRedirect",
            "HTTPRoutePathRewrite",
            "HTTPRoutePortRedirect",
            "HTTPRouteQueryParamMatching",
            "HTTPRouteRequestMirror",
            "HTTPRouteRequestMultipleMirrors",
            "HTTPRouteRequestPercentageMirror",
            "HTTPRouteResponseHeaderModification",
            "HTTPRouteSchemeRedirect",
            "ReferenceGrant",
            "TLSRoute",
        ]
    )
)


def supported_features() -> list[dict[str, str]]:
    """``status.supportedFeatures`` of an accepted GatewayClass."""
    return [{"name": name} for name in SUPPORTED_FEATURES]


def is_our_gateway_class(gc: ObjView, controller: str = GATEWAY_CONTROLLER_NAME) -> bool:
    return objects.spec(gc).get("controllerName") == controller


INVALID_PARAMETERS = "InvalidParameters"


def is_accepted_gateway_class(gc: ObjView, controller: str = GATEWAY_CONTROLLER_NAME) -> bool:
    """Ours, and accepted: this controller takes no parameters, so a class that names some
    (``parametersRef``) is refused with ``InvalidParameters`` and its Gateways are not served."""
    return is_our_gateway_class(gc, controller) and not objects.spec(gc).get("parametersRef")


def gateway_class_conditions(gc: ObjView, now: str) -> list[dict[str, Any]]:
    """The status conditions ``gc`` should show; ``now`` is an RFC 3339 time."""
    generation = int(objects.meta(gc).get("generation") or 0)
    accepted = is_accepted_gateway_class(gc, str(objects.spec(gc).get("controllerName")))
    want = {
        "type": ACCEPTED,
        "status": "True" if accepted else "False",
        "reason": ACCEPTED if accepted else INVALID_PARAMETERS,
        "message": "accepted by the svcnet ingress controller"
        if accepted
        else "parametersRef is not supported: the svcnet controller takes no parameters",
        "observedGeneration": generation,
    }
    out: list[dict[str, Any]] = []
    found = False
    for cond in objects.status(gc).get("conditions") or []:
        if not isinstance(cond, Mapping):
            continue
        if cond.get("type") != ACCEPTED:
            out.append(dict(cond))
            continue
        found = True
        same = cond.get("status") == want["status"]
        out.append({**want, "lastTransitionTime": cond.get("lastTransitionTime") if same else now})
    if not found:
        out.append({**want, "lastTransitionTime": now})
    return out
