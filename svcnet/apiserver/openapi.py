"""The OpenAPI documents kube-apiserver publishes, built once from the vendored schemas.

What kubectl 1.32 fetches (read from kubectl/cli-runtime/client-go 1.32 and checked by
``tests/unit/api/test_openapi_kubectl.py`` against the real binary, recording its requests):

* Every command first reads ``/version`` and discovery (``/api``, ``/apis``, preferring the
  aggregated ``apidiscovery.k8s.io/v2`` form).
* ``kubectl apply`` / ``kubectl create`` (``--validate=strict``, the default): the validator is
  a ``ParamVerifyingSchema`` over ``queryParamVerifierV3``. It reads ``/openapi/v3`` (the root:
  ``{"paths": {"api/v1": {"serverRelativeURL": ...}}}``), then the group-version document at
  that URL, and looks for a ``patch`` operation whose ``x-kubernetes-group-version-kind`` is the
  object's kind and whose parameters include ``fieldValidation``. Found: validation is left to
  the server (kubectl sends ``?fieldValidation=Strict``) and no client-side schema is loaded.
  Not found: kubectl falls back to client-side validation with the OpenAPI v2 document
  (``/openapi/v2`` asked for as protobuf, ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``);
  when that fails too it refuses with ``error validating data: failed to download openapi``
  unless ``--validate=false``. A kind missing from a v3 document is treated as unsupported; a
  group version missing from the root makes the verifier look for a CRD and then use Namespace's
  document (core/v1).
* ``kubectl apply`` (client-side), for an object that exists: ``Patcher`` computes the three-way
  strategic merge patch from the v3 document of the object's group version: it needs the patch
  operation's ``requestBody.content`` to list ``application/strategic-merge-patch+json`` and a
  ``components.schemas`` entry whose ``x-kubernetes-group-version-kind`` (a list) names the kind,
  resolving ``$ref: #/components/schemas/...`` (and ``allOf``) for the patch metadata. If v3
  fails it falls back to v2 (protobuf) and then to the types compiled into kubectl. For a kind
  whose patch operation does not list strategic merge patch (Gateway API here, CRDs upstream) it
  sends a JSON merge patch.
* ``kubectl apply --server-side``: the validator above, then one ``PATCH`` with
  ``application/apply-patch+yaml`` (a JSON body), ``fieldManager=kubectl``, ``force=false`` and
  ``fieldValidation=Strict``. When the object carries a ``last-applied-configuration``
  annotation it re-applies that annotation as manager ``kubectl-last-applied``, and when
  client-side managers own the annotation it moves their ownership to ``kubectl`` with a JSON
  patch of ``metadata.managedFields`` (``csaupgrade``). No OpenAPI v2.
* ``kubectl create``: the validator above, then ``POST ?fieldManager=kubectl-create&fieldValidation=Strict``.
* ``kubectl explain`` (1.32 uses OpenAPI v3 by default): ``/openapi/v3`` and the document of the
  resource's group version; it renders ``components.schemas`` (descriptions, types, required).
* ``kubectl edit``: GETs the object, runs the validator above on the edited copy (v3 root and
  group-version document), and sends a two-way strategic merge patch computed from the types
  compiled into kubectl (merge patch for kinds it does not know) with
  ``fieldManager=kubectl-edit&fieldValidation=Strict``.
* kubectl caches the documents on disk under ``--cache-dir``, keyed by the ``hash`` URLs: a
  second process with an unchanged root fetches only ``/openapi/v3``.

svcnet serves the v3 root and documents and v2 as JSON. As protobuf, v2 is served as a document
header with no definitions: kubectl 1.32 asks for it only to validate a kind that v3 does not
describe (a kind the server does not serve, or a CRD's), and a v2 document without that kind
makes kubectl skip client-side validation and go on to its own "no matches for kind" error, as
against a real cluster. Without any v2 protobuf kubectl stops at "failed to download openapi".

Caching is upstream's (kube-openapi ``handler3``): every document has an ETag (the upper-case
hex SHA-512 of its bytes); the root lists each document's URL with ``?hash=<etag>``; a request
with the right hash is answered ``Cache-Control: public, immutable`` with a one-year ``Expires``
(kubectl's disk cache keys on it), a wrong hash is redirected (301) to the current one, and
without a hash the answer is ``Cache-Control: no-cache, private`` with the ETag (304 on
``If-None-Match``). The documents never change while the server runs, so their bytes are built
once, on first use.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import cache
from typing import Any

from svcnet.api import schema as sch
from svcnet.api.registry import REGISTRY, ResourceType

KUBERNETES_VERSION = "v1.32.0"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
JSON_CONTENT_TYPE = "application/json"
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

PATCH_TYPES_BUILTIN = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
# CRDs (and so Gateway API upstream) do not accept strategic merge patch.
PATCH_TYPES_CUSTOM = PATCH_TYPES_BUILTIN[:3]
RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
LIST_RESPONSE_TYPES = (
    *RESPONSE_TYPES,
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
)

_PARAM_TEXT: dict[str, tuple[str, str]] = {
    "pretty": (
        "string",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    ),
    "dryRun": (
        "string",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
    ),
    "fieldManager": (
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
    ),
    "fieldValidation": (
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
    ),
    "force": (
        "boolean",
        'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.',
    ),
    "allowWatchBookmarks": (
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server\'s discretion.',
    ),
    "continue": (
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    "fieldSelector": (
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    "labelSelector": (
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "resourceVersion": (
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset",
    ),
    "resourceVersionMatch": (
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset",
    ),
    "sendInitialEvents": (
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
    ),
    "timeoutSeconds": (
        "integer",
        "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
    ),
    "watch": (
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    ),
    "gracePeriodSeconds": (
        "integer",
        "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.",
    ),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean",
        "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
    ),
    "orphanDependents": (
        "boolean",
        "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
    ),
    "propagationPolicy": (
        "string",
        "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
    ),
    "container": (
        "string",
        "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
    ),
    "follow": ("boolean", "Follow the log stream of the pod. Defaults to false."),
    "previous": ("boolean", "Return previous terminated container logs. Defaults to false."),
    "tailLines": ("integer", "If set, the number of lines from the end of the logs to show."),
    "timestamps": (
        "boolean",
        "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
    ),
    "sinceSeconds": (
        "integer",
        "A relative time in seconds before the current time from which to show logs.",
    ),
}
LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_PARAMS = (*WRITE_PARAMS, "force")
DELETE_PARAMS = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
DELETE_COLLECTION_PARAMS = (
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)
LOG_PARAMS = ("container", "follow", "previous", "sinceSeconds", "tailLines", "timestamps")


# --- naming ------------------------------------------------------------------------------------


def gv_path(r: ResourceType) -> str:
    """The key of a group version in the v3 root: ``api/v1`` or ``apis/apps/v1``."""
    return f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"


def _group_camel(group: str) -> str:
    # Upstream's operation ids: "networking.k8s.io" -> "Networking", core -> "Core",
    # "gateway.networking.k8s.io" -> "GatewayNetworking".
    if not group:
        return "Core"
    trimmed = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in trimmed.split("."))


def _tag(r: ResourceType) -> str:
    camel = _group_camel(r.group)
    return f"{camel[:1].lower()}{camel[1:]}_{r.version}"


def _op_id(verb: str, r: ResourceType, suffix: str = "", *, all_namespaces: bool = False) -> str:
    scope = "Namespaced" if r.namespaced and not all_namespaces else ""
    tail = "ForAllNamespaces" if all_namespaces else ""
    return f"{verb}{_group_camel(r.group)}{r.version.capitalize()}{scope}{r.kind}{suffix}{tail}"


def _gvk(r: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": r.group, "kind": kind or r.kind, "version": r.version}


# --- schemas -------------------------------------------------------------------------------------


def _closure(names: Iterable[str]) -> list[str]:
    defs = sch.definitions()
    seen: set[str] = set()
    todo = [n for n in names if n in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(defs[name]) if r not in seen and r in defs)
    return sorted(seen)


def _refs(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.add(v.removeprefix(V2_PREFIX))
            else:
                out |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def _to_v3(node: Any) -> Any:
    """A v2 schema node in v3 form: refs under components, a ref with siblings inside allOf."""
    if isinstance(node, list):
        return [_to_v3(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = {"$ref": V3_PREFIX + node["$ref"].removeprefix(V2_PREFIX)}
        siblings = {k: _to_v3(v) for k, v in node.items() if k != "$ref"}
        # OpenAPI 3.0 ignores siblings of $ref; kube-openapi wraps the ref in allOf.
        return {"allOf": [ref], **siblings} if siblings else ref
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "properties":
            out[k] = {name: _to_v3(p) for name, p in v.items()}
        elif isinstance(v, (dict, list)) and k not in (
            "x-kubernetes-group-version-kind",
            "enum",
            "required",
            "x-kubernetes-list-map-keys",
        ):
            out[k] = _to_v3(v)
        else:
            out[k] = v
    return out


# OpenAPI v3 has oneOf, so kube-openapi publishes these two without a single type
# (OpenAPIV3OneOfTypes); kubectl explain then names them IntOrString and Quantity.
_V3_ONE_OF: dict[str, list[str]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ["integer", "string"],
    "io.k8s.apimachinery.pkg.api.resource.Quantity": ["string", "number"],
}


def _v3_definition(name: str, node: Mapping[str, Any]) -> Any:
    if name in _V3_ONE_OF:
        out = {k: v for k, v in node.items() if k != "type"}
        out["oneOf"] = [{"type": t} for t in _V3_ONE_OF[name]]
        return out
    return _to_v3(node)


def _ref(name: str, v3: bool) -> dict[str, str]:
    return {"$ref": (V3_PREFIX if v3 else V2_PREFIX) + name}


def custom_definition_name(r: ResourceType, kind: str | None = None) -> str:
    """How apiextensions-apiserver names a CRD version's definitions: the group reversed,
    then version and kind (``com.example.stable.v1.CronTab``)."""
    group = ".".join(reversed(r.group.split(".")))
    return f"{group}.{r.version}.{kind or r.kind}"


def _kind_definition(r: ResourceType, kind: str | None = None) -> str:
    if r.custom is not None:
        return custom_definition_name(r, kind)
    name = sch.definition_name(r.group_version, kind or r.kind)
    if name is None:
        raise LookupError(f"no schema for {r.group_version} {kind or r.kind}")
    return name


# --- operations ----------------------------------------------------------------------------------


@dataclass
class _Op:
    method: str
    action: str
    description: str
    op_id: str
    params: tuple[str, ...] = ()
    body: str | None = None  # definition name of the request body
    body_types: tuple[str, ...] = ("*/*",)
    body_required: bool = True
    ok: str | None = None  # definition name of the 200 answer; None: a string (logs)
    codes: tuple[str, ...] = ("200",)
    produces: tuple[str, ...] = RESPONSE_TYPES
    gvk: dict[str, str] = field(default_factory=dict)


@dataclass
class _PathItem:
    path_params: tuple[str, ...]
    ops: list[_Op]


def _query_param(name: str, v3: bool) -> dict[str, Any]:
    typ, text = _PARAM_TEXT[name]
    if v3:
        return {
            "name": name,
            "in": "query",
            "description": text,
            "schema": {"type": typ, "uniqueItems": True},
        }
    return {"name": name, "in": "query", "description": text, "type": typ, "uniqueItems": True}


def _path_param(name: str, v3: bool) -> dict[str, Any]:
    text = {
        "name": "name of the resource",
        "namespace": "object name and auth scope, such as for teams and projects",
    }[name]
    if v3:
        return {
            "name": name,
            "in": "path",
            "description": text,
            "required": True,
            "schema": {"type": "string", "uniqueItems": True},
        }
    return {
        "name": name,
        "in": "path",
        "description": text,
        "required": True,
        "type": "string",
        "uniqueItems": True,
    }


def _resource_paths(r: ResourceType) -> dict[str, _PathItem]:
    base = r.base_path
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    coll = f"{base}{ns}/{r.plural}"
    item = coll + "/{name}"
    gvk = _gvk(r)
    kind_def = _kind_definition(r)
    list_def = _kind_definition(r, r.list_kind)
    patch_types = (
        PATCH_TYPES_BUILTIN if sch.is_builtin(r.group_version, r.kind) else PATCH_TYPES_CUSTOM
    )
    scope_params: tuple[str, ...] = ("namespace",) if r.namespaced else ()
    kind = r.kind
    paths: dict[str, _PathItem] = {
        coll: _PathItem(
            scope_params,
            [
                _Op(
                    "get",
                    "list",
                    f"list or watch objects of kind {kind}",
                    _op_id("list", r),
                    LIST_PARAMS,
                    ok=list_def,
                    produces=LIST_RESPONSE_TYPES,
                    gvk=gvk,
                ),
                _Op(
                    "post",
                    "post",
                    f"create a {kind}",
                    _op_id("create", r),
                    WRITE_PARAMS,
                    body=kind_def,
                    ok=kind_def,
                    codes=("200", "201", "202"),
                    gvk=gvk,
                ),
                _Op(
                    "delete",
                    "deletecollection",
                    f"delete collection of {kind}",
                    _op_id("deleteCollection", r),
                    DELETE_COLLECTION_PARAMS,
                    body=META + "DeleteOptions",
                    body_required=False,
                    ok=META + "Status",
                    gvk=gvk,
                ),
            ],
        ),
        item: _PathItem(
            (*scope_params, "name"),
            [
                _Op(
                    "get",
                    "get",
                    f"read the specified {kind}",
                    _op_id("read", r),
                    ok=kind_def,
                    gvk=gvk,
                ),
                _Op(
                    "put",
                    "put",
                    f"replace the specified {kind}",
                    _op_id("replace", r),
                    WRITE_PARAMS,
                    body=kind_def,
                    ok=kind_def,
                    codes=("200", "201"),
                    gvk=gvk,
                ),
                _Op(
                    "delete",
                    "delete",
                    f"delete a {kind}",
                    _op_id("delete", r),
                    DELETE_PARAMS,
                    body=META + "DeleteOptions",
                    body_required=False,
                    ok=META + "Status",
                    codes=("200", "202"),
                    gvk=gvk,
                ),
                _Op(
                    "patch",
                    "patch",
                    f"partially update the specified {kind}",
                    _op_id("patch", r),
                    PATCH_PARAMS,
                    body=META + "Patch",
                    body_types=patch_types,
                    ok=kind_def,
                    codes=("200", "201"),
                    gvk=gvk,
                ),
            ],
        ),
    }
    if r.namespaced:
        paths[f"{base}/{r.plural}"] = _PathItem(
            (),
            [
                _Op(
                    "get",
                    "list",
                    f"list or watch objects of kind {kind}",
                    _op_id("list", r, all_namespaces=True),
                    LIST_PARAMS,
                    ok=list_def,
                    produces=LIST_RESPONSE_TYPES,
                    gvk=gvk,
                ),
            ],
        )
    for sub in r.subresources:
        sub_path = f"{item}/{sub}"
        title = sub.capitalize()
        if sub in ("status", "scale"):
            body_def = kind_def if sub == "status" else "io.k8s.api.autoscaling.v1.Scale"
            sub_gvk = (
                gvk
                if sub == "status"
                else {"group": "autoscaling", "kind": "Scale", "version": "v1"}
            )
            what = (
                f"status of the specified {kind}"
                if sub == "status"
                else f"scale of the specified {kind}"
            )
            paths[sub_path] = _PathItem(
                (*scope_params, "name"),
                [
                    _Op(
                        "get",
                        "get",
                        f"read {what}",
                        _op_id("read", r, title),
                        ok=body_def,
                        gvk=sub_gvk,
                    ),
                    _Op(
                        "put",
                        "put",
                        f"replace {what}",
                        _op_id("replace", r, title),
                        WRITE_PARAMS,
                        body=body_def,
                        ok=body_def,
                        codes=("200", "201"),
                        gvk=sub_gvk,
                    ),
                    _Op(
                        "patch",
                        "patch",
                        f"partially update {what}",
                        _op_id("patch", r, title),
                        PATCH_PARAMS,
                        body=META + "Patch",
                        body_types=patch_types,
                        ok=body_def,
                        codes=("200", "201"),
                        gvk=sub_gvk,
                    ),
                ],
            )
        elif sub == "log":
            paths[sub_path] = _PathItem(
                (*scope_params, "name"),
                [
                    _Op(
                        "get",
                        "get",
                        f"read log of the specified {kind}",
                        _op_id("read", r, "Log"),
                        LOG_PARAMS,
                        ok=None,
                        produces=("text/plain", "application/json", "application/yaml"),
                        gvk=gvk,
                    ),
                ],
            )
        elif sub in ("binding", "eviction"):
            body_def = (
                "io.k8s.api.core.v1.Binding"
                if sub == "binding"
                else "io.k8s.api.policy.v1.Eviction"
            )
            sub_gvk = (
                {"group": "", "kind": "Binding", "version": "v1"}
                if sub == "binding"
                else {"group": "policy", "kind": "Eviction", "version": "v1"}
            )
            paths[sub_path] = _PathItem(
                (*scope_params, "name"),
                [
                    _Op(
                        "post",
                        "post",
                        f"create {title.lower()} of a {kind}",
                        _op_id("create", r, title),
                        WRITE_PARAMS,
                        body=body_def,
                        ok=body_def,
                        codes=("200", "201", "202"),
                        gvk=sub_gvk,
                    ),
                ],
            )
        elif sub == "finalize":
            paths[sub_path] = _PathItem(
                ("name",),
                [
                    _Op(
                        "put",
                        "put",
                        f"replace finalize of the specified {kind}",
                        _op_id("replace", r, "Finalize"),
                        WRITE_PARAMS,
                        body=kind_def,
                        ok=kind_def,
                        codes=("200", "201"),
                        gvk=gvk,
                    ),
                ],
            )
    return paths


def _response(ok: str | None, types: tuple[str, ...], v3: bool) -> dict[str, Any]:
    schema: dict[str, Any] = _ref(ok, v3) if ok else {"type": "string"}
    if v3:
        return {"description": "OK", "content": {t: {"schema": schema} for t in types}}
    return {"description": "OK", "schema": schema}


def _operation(op: _Op, r: ResourceType, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": [_tag(r)],
        "description": op.description,
        "operationId": op.op_id,
    }
    params = [_query_param(p, v3) for p in op.params]
    responses: dict[str, Any] = {}
    for code in op.codes:
        resp = _response(op.ok, op.produces, v3)
        resp["description"] = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
        responses[code] = resp
    responses["401"] = {"description": "Unauthorized"}
    if v3:
        if op.body:
            out["requestBody"] = {
                "content": {t: {"schema": _ref(op.body, True)} for t in op.body_types},
                "required": op.body_required,
            }
    else:
        out["consumes"] = list(op.body_types)
        out["produces"] = list(op.produces)
        out["schemes"] = ["https"]
        if op.body:
            params.insert(
                0,
                {
                    "name": "body",
                    "in": "body",
                    "required": op.body_required,
                    "schema": _ref(op.body, False),
                },
            )
    if params:
        out["parameters"] = params
    out["responses"] = responses
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = op.gvk
    return out


def _paths(resources: Iterable[ResourceType], v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in resources:
        for path, item in _resource_paths(r).items():
            entry: dict[str, Any] = {op.method: _operation(op, r, v3) for op in item.ops}
            entry["parameters"] = [_path_param(p, v3) for p in reversed(item.path_params)] + [
                _query_param("pretty", v3)
            ]
            out[path] = entry
    return out


def _used_definitions(resources: Iterable[ResourceType]) -> list[str]:
    roots: set[str] = {META + n for n in ("Status", "DeleteOptions", "WatchEvent", "Patch")}
    for r in resources:
        roots.add(_kind_definition(r))
        roots.add(_kind_definition(r, r.list_kind))
        for sub in r.subresources:
            roots |= {
                "scale": {"io.k8s.api.autoscaling.v1.Scale"},
                "binding": {"io.k8s.api.core.v1.Binding"},
                "eviction": {"io.k8s.api.policy.v1.Eviction"},
            }.get(sub, set())
    return _closure(roots)


# --- documents -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One served document: its bytes and ETag (upper-case hex SHA-512, as kube-openapi)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, value: Any) -> Document:
        body = json.dumps(value, separators=(",", ":"), sort_keys=False).encode()
        return cls(body, hashlib.sha512(body).hexdigest().upper())


def _v3_document(resources: list[ResourceType]) -> dict[str, Any]:
    defs = sch.definitions()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": _paths(resources, v3=True),
        "components": {
            "schemas": {
                name: _v3_definition(name, defs[name]) for name in _used_definitions(resources)
            },
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
    }


@dataclass(frozen=True)
class _Built:
    root: Document
    by_path: Mapping[str, Document]
    v2: Document


def _published() -> list[ResourceType]:
    return list(REGISTRY.resources)


@cache
def _built() -> _Built:
    groups: dict[str, list[ResourceType]] = {}
    for r in _published():
        groups.setdefault(gv_path(r), []).append(r)
    by_path = {path: Document.of(_v3_document(rs)) for path, rs in groups.items()}
    root = Document.of(
        {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc.etag}"}
                for path, doc in by_path.items()
            }
        }
    )
    defs = sch.definitions()
    v2 = Document.of(
        {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": _paths(_published(), v3=False),
            "definitions": {name: defs[name] for name in _used_definitions(_published())},
            "securityDefinitions": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                }
            },
            "security": [{"BearerToken": []}],
        }
    )
    return _Built(root, by_path, v2)


# --- custom resources ----------------------------------------------------------------------------


def _custom_definitions(r: ResourceType) -> dict[str, Any]:
    """The kind and list definitions of a custom resource (v2 form)."""
    assert r.custom is not None
    kind = dict(r.custom.published)
    kind["x-kubernetes-group-version-kind"] = [_gvk(r)]
    list_kind = {
        "description": f"{r.kind}List is a list of {r.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": _ref(custom_definition_name(r), False)},
            "kind": {"type": "string"},
            "metadata": _ref(META + "ListMeta", False),
        },
        "x-kubernetes-group-version-kind": [_gvk(r, r.list_kind)],
    }
    return {custom_definition_name(r): kind, custom_definition_name(r, r.list_kind): list_kind}


def _custom_schemas(resources: list[ResourceType]) -> dict[str, Any]:
    """Every definition the documents of ``resources`` (custom) refer to, v2 form."""
    own: dict[str, Any] = {}
    for r in resources:
        own.update(_custom_definitions(r))
    defs = sch.definitions()
    builtin = set(_used_definitions([])) | set(_closure(_refs(own)))
    for r in resources:
        if "scale" in r.subresources:
            builtin |= set(_closure(["io.k8s.api.autoscaling.v1.Scale"]))
    return {**{n: defs[n] for n in sorted(builtin)}, **own}


@dataclass(frozen=True)
class CustomDocuments:
    """The OpenAPI documents of a server that serves custom resources: the v3 root and v2
    document of built-in and custom kinds, and every group version's v3 document."""

    root: Document
    by_path: Mapping[str, Document]
    v2: Document


def custom_documents(resources: list[ResourceType]) -> CustomDocuments | None:
    """The documents of the custom rows ``resources`` (None when there are none)."""
    if not resources:
        return None
    built = _built()
    groups: dict[str, list[ResourceType]] = {}
    for r in resources:
        groups.setdefault(gv_path(r), []).append(r)
    by_path: dict[str, Document] = {}
    for path, rs in groups.items():
        schemas = _custom_schemas(rs)
        doc = _v3_document([])
        doc["info"] = {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}
        doc["paths"] = _paths(rs, v3=True)
        doc["components"]["schemas"] = {n: _v3_definition(n, node) for n, node in schemas.items()}
        by_path[path] = Document.of(doc)
    root = Document.of(
        {
            "paths": {
                p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={d.etag}"}
                for p, d in {**built.by_path, **by_path}.items()
            }
        }
    )
    v2 = json.loads(built.v2.body)
    v2["paths"].update(_paths(resources, v3=False))
    v2["definitions"].update(_custom_schemas(resources))
    return CustomDocuments(root, {**built.by_path, **by_path}, Document.of(v2))


def openapi_v3_root() -> bytes:
    """``GET /openapi/v3``."""
    return _built().root.body


def openapi_v3_document(gv_path: str) -> bytes | None:
    """``GET /openapi/v3/<gv_path>`` (``api/v1``, ``apis/apps/v1``); None: 404."""
    doc = _built().by_path.get(gv_path.strip("/"))
    return None if doc is None else doc.body


def openapi_v3_paths() -> list[str]:
    return list(_built().by_path)


def openapi_v2() -> bytes:
    """``GET /openapi/v2`` as JSON."""
    return _built().v2.body


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2); payloads here stay under 128 bytes."""
    assert len(payload) < 128
    return bytes([(number << 3) | 2, len(payload)]) + payload


def openapi_v2_protobuf() -> bytes:
    """The v2 document as gnostic's ``openapi_v2.Document`` protobuf, header only.

    Fields: swagger (1), info (2: title 1, version 2), paths (8), definitions (9) — the
    schemas are in v3, which is what kubectl reads for every kind svcnet serves (see the module
    docstring for why a header is what kubectl needs from v2).
    """
    info = _pb_field(1, b"Kubernetes") + _pb_field(2, b"v1.32.0")
    return _pb_field(1, b"2.0") + _pb_field(2, info) + _pb_field(8, b"") + _pb_field(9, b"")


def warm() -> None:
    """Build every document now (the API server calls this at startup, off the request path)."""
    _built()


@dataclass(frozen=True)
class OpenAPIResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _document_response(
    doc: Document,
    query_hash: str | None,
    if_none_match: str | None,
    url_path: str,
    now: float | None,
) -> OpenAPIResponse:
    etag = '"' + doc.etag + '"'
    headers = {"Content-Type": JSON_CONTENT_TYPE, "Etag": etag}
    if query_hash is not None and query_hash != "":
        if query_hash != doc.etag:
            return OpenAPIResponse(301, {"Location": f"{url_path}?hash={doc.etag}"}, b"")
        headers["Vary"] = "Accept"
        headers["Cache-Control"] = "public, immutable"
        # One year from the request: the cache never expires (kube-openapi handler3).
        headers["Expires"] = formatdate(
            (time.time() if now is None else now) + 365 * 86400, usegmt=True
        )
    else:
        headers["Cache-Control"] = "no-cache, private"
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return OpenAPIResponse(304, headers, b"")
    return OpenAPIResponse(200, headers, doc.body)


def serve(
    url_path: str,
    accept: str = "",
    query_hash: str | None = None,
    if_none_match: str | None = None,
    now: float | None = None,
    custom: CustomDocuments | None = None,
) -> OpenAPIResponse | None:
    """The whole answer to a GET under ``/openapi/``, or None when the path is not ours (404).

    ``now`` (seconds since the epoch) sets the one-year ``Expires`` of hashed answers;
    ``custom``: the documents of the custom resources served now.
    """
    built: _Built | CustomDocuments = custom or _built()
    path = url_path.rstrip("/")
    if path == "/openapi/v2":
        if PROTOBUF_V2 in accept and JSON_CONTENT_TYPE not in accept and "*/*" not in accept:
            # kube-openapi answers with the dotted form: Go's mime parser rejects the '@'.
            return OpenAPIResponse(
                200,
                {"Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"},
                openapi_v2_protobuf(),
            )
        return _document_response(built.v2, None, if_none_match, path, now)
    if path == "/openapi/v3":
        return _document_response(built.root, None, if_none_match, path, now)
    if path.startswith("/openapi/v3/"):
        doc = built.by_path.get(path.removeprefix("/openapi/v3/"))
        if doc is None:
            return None
        return _document_response(doc, query_hash, if_none_match, path, now)
    return None
