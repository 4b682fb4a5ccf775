"""Label and field selectors: parsing, matching and upstream's error texts."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.errors import BadRequest, FieldErrorType
from svcnet.api.registry import REGISTRY
from svcnet.api.selectors import (
    LabelSelector,
    SelectorError,
    field_value,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    validate_label_selector,
)

WEB = {"app": "web", "tier": "front", "version": "3"}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", WEB, True),
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),
        ("app in (web,db)", WEB, True),
        ("app in (db)", WEB, False),
        ("app notin (db)", WEB, True),
        ("app notin (web)", WEB, False),
        ("missing notin (x)", WEB, True),
        ("missing in (x)", WEB, False),
        ("tier", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!tier", WEB, False),
        ("app=web,tier=front", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("  app = web ,  tier  ", WEB, True),
        ("version>2", WEB, True),
        ("version<3", WEB, False),
        ("app>2", WEB, False),
        ("app=", {"app": ""}, True),
        ("app=", WEB, False),
        ("app in (,web)", {"app": ""}, True),
        ("x in (in,notin)", {"x": "in"}, True),
        ("example.com/role=edge", {"example.com/role": "edge"}, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app in web", "unable to parse requirement: found 'web' expected: '('"),
        ("app in (web", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("app=web,", "found '', expected: identifier after ','"),
        ("app=web tier=x", "found 'tier', expected: ',' or 'end of string'"),
        ("=web", "found '=', expected: !, identifier, or 'end of string'"),
        (
            "app web",
            "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("app=(web)", "unable to parse requirement: found '(', expected: identifier"),
        ("!=x", "found '!=', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        (
            "a/b/c=x",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "app=-x",
            'unable to parse requirement: values[0][app]: Invalid value: "-x": a valid label '
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
            "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "version>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
    ],
)
def test_label_selector_parse_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(selector)
    assert exc.value.message == message
    assert exc.value.code == 400


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        ("tier,app=web", "app=web,tier"),
        ("app in (b,a)", "app in (a,b)"),
        ("!x,a!=b", "a!=b,!x"),
    ],
)
def test_label_selector_string_form_is_sorted_by_key(selector: str, text: str) -> None:
    assert str(parse_label_selector(selector)) == text


def test_everything_matches_any_labels() -> None:
    assert LabelSelector.everything().matches({})
    assert LabelSelector.everything().empty


def test_nothing_matches_no_labels() -> None:
    assert not LabelSelector.nothing().matches({})
    assert not LabelSelector.nothing().matches(WEB)
    assert not LabelSelector.nothing().empty


def test_selector_from_set_requires_every_label() -> None:
    sel = selector_from_set({"app": "web", "tier": "front"})
    assert sel.matches(WEB)
    assert not sel.matches({"app": "web"})
    assert selector_from_set({}).empty


def test_requires_exact_match_reports_pinned_value() -> None:
    assert parse_label_selector("app=web,tier").requires_exact_match("app") == "web"
    assert parse_label_selector("app!=web").requires_exact_match("app") is None


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, WEB, False),
        ({}, WEB, True),
        ({"matchLabels": {"app": "web"}}, WEB, True),
        ({"matchLabels": {"app": "db"}}, WEB, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, WEB, True),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
            WEB,
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, WEB, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, WEB, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}],
            },
            WEB,
            False,
        ),
    ],
)
def test_metav1_label_selector_matches(
    selector: dict[str, Any] | None, labels: dict[str, str], matches: bool
) -> None:
    assert label_selector_from_dict(selector).matches(labels) is matches


@pytest.mark.parametrize(
    ("selector", "errors"),
    [
        ({"matchLabels": {"app": "web"}}, []),
        (
            {"matchExpressions": [{"key": "app", "operator": "In"}]},
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when "
                "`operator` is 'In' or 'NotIn'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]},
            [
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
                "`operator` is 'Exists' or 'DoesNotExist'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "Equals"}]},
            [
                'spec.selector.matchExpressions[0].operator: Invalid value: "Equals": not a valid '
                "selector operator"
            ],
        ),
        (
            {"matchLabels": {"app": "-web"}},
            [
                'spec.selector.matchLabels: Invalid value: "-web": a valid label must be an empty '
                "string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
                "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ],
        ),
    ],
)
def test_metav1_label_selector_validation(selector: dict[str, Any], errors: list[str]) -> None:
    assert [str(e) for e in validate_label_selector(selector, "spec.selector")] == errors


# -- field selectors ------------------------------------------------------------------------

POD = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "hostNetwork": False, "restartPolicy": "Always"},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.244.1.5"}], "podIP": "10.244.1.5"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("metadata.namespace=default,spec.nodeName=node-1", True),
        ("spec.nodeName=node-2", False),
        ("status.phase!=Running", False),
        ("status.phase!=Pending", True),
        ("spec.hostNetwork=false", True),
        ("status.podIP=10.244.1.5", True),
        ("status.nominatedNodeName=", True),
        ("spec.schedulerName=", True),
    ],
)
def test_field_selector_matches(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(POD) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
)
def test_field_selector_parse_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(selector)
    assert exc.value.message == message


def test_field_selector_unescapes_values() -> None:
    sel = parse_field_selector("metadata.name=a\\,b\\=c")
    assert sel.requires_exact_match("metadata.name") == "a,b=c"
    assert str(sel) == "metadata.name=a\\,b\\=c"


@pytest.mark.parametrize(
    ("api_version", "kind", "selector", "message"),
    [
        ("v1", "Pod", "spec.nodeName=x", None),
        ("v1", "Service", "spec.clusterIP=None", None),
        ("v1", "Secret", "type=Opaque", None),
        ("v1", "Pod", "spec.foo=x", "field label not supported: spec.foo"),
        ("v1", "Service", "spec.selector=x", "field label not supported: spec.selector"),
        (
            "apps/v1",
            "Deployment",
            "spec.replicas=1",
            '"spec.replicas" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        ("apps/v1", "ReplicaSet", "status.replicas=1", None),
    ],
)
def test_field_selector_supported_fields(
    api_version: str, kind: str, selector: str, message: str | None
) -> None:
    rt = REGISTRY.by_kind(api_version, kind)
    assert rt is not None
    sel = parse_field_selector(selector)
    if message is None:
        sel.check_supported(rt)
        return
    with pytest.raises(BadRequest) as exc:
        sel.check_supported(rt)
    assert exc.value.message == message


@pytest.mark.parametrize(
    ("obj", "path", "value"),
    [
        ({"kind": "Event", "source": {"component": "kubelet"}}, "source", "kubelet"),
        ({"spec": {"unschedulable": True}}, "spec.unschedulable", "true"),
        ({"status": {"replicas": 3}}, "status.replicas", "3"),
        ({"spec": {}}, "spec.nodeName", ""),
        ({"spec": "x"}, "spec.nodeName", ""),
    ],
)
def test_field_value(obj: dict[str, Any], path: str, value: str) -> None:
    assert field_value(obj, path) == value


def test_label_selector_errors_are_field_errors_of_kind_invalid() -> None:
    errors = validate_label_selector({"matchLabels": {"a b": "x"}}, "spec.podSelector")
    assert [e.type for e in errors] == [FieldErrorType.INVALID]
    assert errors[0].field == "spec.podSelector.matchLabels"
