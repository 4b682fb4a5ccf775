"""Name formats: validity tables and upstream's exact messages."""

from __future__ import annotations

import pytest

from svcnet.api import names

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web", []),
        ("a", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("Web", [LABEL_MSG]),
        ("-web", [LABEL_MSG]),
        ("web-", [LABEL_MSG]),
        ("", [LABEL_MSG]),
        ("my_name", [LABEL_MSG]),
        ("a.b", ["must not contain dots"]),
        ("web\n", [LABEL_MSG]),
    ],
)
def test_dns1123_label(value: str, expected: list[str]) -> None:
    assert names.is_dns1123_label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", []),
        ("a-b.c-d", []),
        ("a" * 253, []),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("Example.com", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        (".a", [SUBDOMAIN_MSG]),
        ("", [SUBDOMAIN_MSG]),
    ],
)
def test_dns1123_subdomain(value: str, expected: list[str]) -> None:
    assert names.is_dns1123_subdomain(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web", []),
        ("web-1", []),
        ("1web", [DNS1035_MSG]),
        ("Web", [DNS1035_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_dns1035_label(value: str, expected: list[str]) -> None:
    assert names.is_dns1035_label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("app", []),
        ("app.kubernetes.io/name", []),
        ("My_Key.1", []),
        (
            "a/b/c",
            [
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
                "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        ("/app", ["prefix part must be non-empty"]),
        ("app/", ["name part must be non-empty", QUALIFIED_NAME_PART_MSG]),
        ("-app", [QUALIFIED_NAME_PART_MSG]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("Example.com/app", ["prefix part " + SUBDOMAIN_MSG]),
    ],
)
def test_qualified_name(value: str, expected: list[str]) -> None:
    assert names.is_qualified_name(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("v1.2_x-y", []),
        ("-x", [LABEL_VALUE_MSG]),
        ("a b", [LABEL_VALUE_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_label_value(value: str, expected: list[str]) -> None:
    assert names.is_valid_label_value(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http", []),
        ("web-8080", []),
        ("a" * 16, ["must be no more than 15 characters"]),
        (
            "HTTP",
            [
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)",
            ],
        ),
        ("8080", ["must contain at least one letter (a-z)"]),
        ("a--b", ["must not contain consecutive hyphens"]),
        ("-ab", ["must not begin or end with a hyphen"]),
    ],
)
def test_port_name(value: str, expected: list[str]) -> None:
    assert names.is_valid_port_name(value) == expected


@pytest.mark.parametrize(
    ("port", "ok"), [(0, False), (1, True), (65535, True), (65536, False), (-1, False)]
)
def test_port_number_range(port: int, ok: bool) -> None:
    assert names.is_valid_port_num(port) == (
        [] if ok else ["must be between 1 and 65535, inclusive"]
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [("10.0.0.1", True), ("2001:db8::1", True), ("10.0.0.256", False), ("abc", False)],
)
def test_ip(value: str, ok: bool) -> None:
    assert (names.is_valid_ip(value) == []) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("10.0.0.0/8", True), ("10.1.2.3/8", True), ("10.0.0.0", False), ("10.0.0.0/33", False)],
)
def test_cidr(value: str, ok: bool) -> None:
    assert (names.is_valid_cidr(value) == []) is ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*.example.com", []),
        (
            "example.com",
            [
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and "
                "end with an alphanumeric character (e.g. '*.example.com', regex used for validation "
                "is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
    ],
)
def test_wildcard_subdomain(value: str, expected: list[str]) -> None:
    assert names.is_wildcard_dns1123_subdomain(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("config.yaml", []),
        ("..data", ["must not start with '..'"]),
        (".", ["must not be '.'"]),
        (
            "a/b",
            [
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                "'[-._a-zA-Z0-9]+')"
            ],
        ),
    ],
)
def test_config_map_key(value: str, expected: list[str]) -> None:
    assert names.is_config_map_key(value) == expected
