"""NetworkPolicy bad input, through the real kubectl and raw HTTP: each is refused with a 422
(``Invalid``) naming its field path, in upstream's words (``ValidateNetworkPolicyPort``,
``ValidateIPBlock``, ``ValidateLabelSelector`` of pkg/apis/networking/validation, v1.32).
"""

from __future__ import annotations

import json
import textwrap

import pytest
from apiserver_harness import Http, Kubectl


def netpol(name: str, rule: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: {name}}}
        spec:
          podSelector: {{}}
        """) + textwrap.indent(rule, "  ")


CASES = {
    "invalid-cidr": (
        "ingress:\n- from:\n  - ipBlock: {cidr: 10.0.0.300/8}\n",
        ["spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"10.0.0.300/8\": "
         "not a valid CIDR"],
    ),
    "except-outside-cidr": (
        "egress:\n- to:\n  - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}\n",
        ["spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": "
         "must be a strict subset of `cidr`"],
    ),
    "endport-without-port": (
        "ingress:\n- ports:\n  - {endPort: 8080}\n",
        ["spec.ingress[0].ports[0].endPort: Invalid value: 8080: "
         "may not be specified when `port` is not specified"],
    ),
    # v1.32 reports the port's value here (upstream reports endPort's from v1.36).
    "endport-below-port": (
        "ingress:\n- ports:\n  - {port: 9000, endPort: 8080}\n",
        ["spec.ingress[0].ports[0].endPort: Invalid value: 9000: "
         "must be greater than or equal to `port`"],
    ),
    "unknown-protocol": (
        "ingress:\n- ports:\n  - {port: 80, protocol: ICMP}\n",
        ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": '
         'supported values: "TCP", "UDP", "SCTP"'],
    ),
    "bad-selector": (
        "ingress:\n- from:\n  - podSelector:\n      matchExpressions:\n"
        "      - {key: app, operator: Exists, values: [x]}\n",
        ["spec.ingress[0].from[0].podSelector.matchExpressions[0].values: Forbidden: "
         "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_kubectl_prints_the_field_path_and_reason(kubectl: Kubectl, case: str) -> None:
    rule, errors = CASES[case]
    proc = kubectl.run("apply", "-f", "-", input=netpol(case, rule), check=False)
    assert proc.returncode == 1
    assert proc.stderr == f'The NetworkPolicy "{case}" is invalid: {errors[0]}\n'
    assert kubectl.run("get", "networkpolicy", case, check=False).returncode == 1


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_answers_422_with_the_field_path(http: Http, namespace: str, case: str) -> None:
    import yaml

    rule, errors = CASES[case]
    body = json.dumps(yaml.safe_load(netpol(case, rule))).encode()
    status, _, raw = http.request(
        "POST", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies", body
    )
    answer = json.loads(raw)
    assert (status, answer["reason"], answer["code"]) == (422, "Invalid", 422)
    fields = [c["field"] for c in answer["details"]["causes"]]
    assert fields == [e.split(":")[0] for e in errors]
