"""Kubeconfig files and in-cluster configuration → :class:`ClientConfig`.

Loading follows ``clientcmd``: ``$KUBECONFIG`` (colon-separated, the first file that sets a
map entry or ``current-context`` wins) or ``~/.kube/config``; the current context or a named
one; ``certificate-authority`` paths relative to the file that names them.

Merging follows kind (``pkg/cluster/internal/kubeconfig``): our cluster, user and context are
added or replaced by name, every other entry is kept as it was, ``current-context`` is set to
ours; removing takes out only our three entries and clears ``current-context`` if it was ours.
Writes are atomic (temporary file + rename) under ``<file>.lock``, as client-go locks it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(Exception):
    """The kubeconfig is missing, unreadable, or does not name what was asked for."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything :class:`svcnet.client.rest.ApiClient` needs to reach one API server."""

    server: str
    ca_data: bytes | None = None
    token: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"
    # The token file is re-read when it changes (projected service-account tokens rotate).
    token_file: str | None = None
    user_agent: str = "svcnet"

    def bearer_token(self) -> str | None:
        if self.token_file:
            with contextlib.suppress(OSError):
                return Path(self.token_file).read_text().strip()
        return self.token


def default_kubeconfig_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    value = env.get("KUBECONFIG", "")
    if value:
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _parse(path: Path, text: str) -> Any:
    # A kubeconfig written as JSON (valid YAML too, and kubectl reads it) is parsed without
    # importing yaml: long-running readers such as the DNS pods then never load it (~1.4 MiB
    # of resident memory per process).
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style that is not JSON: let yaml say what is wrong
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise KubeconfigError(f"{path} is not valid YAML: {e}") from e


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise KubeconfigError(f"cannot read {path}: {e}") from e
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (top level is not a map)")
    return data


def _named(entries: Any, name: str) -> dict[str, Any] | None:
    for entry in entries or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def _file_or_data(
    section: Mapping[str, Any], data_key: str, file_key: str, base: Path
) -> bytes | None:
    data = section.get(data_key)
    if data:
        return base64.b64decode(data)
    file = section.get(file_key)
    if file:
        path = Path(file).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            return path.read_bytes()
        except OSError as e:
            raise KubeconfigError(f"cannot read {file_key} {path}: {e}") from e
    return None


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClientConfig:
    """The client configuration of ``context`` (default: the current context)."""
    paths = [Path(path)] if path is not None else default_kubeconfig_paths()
    # Merge as clientcmd does: the first file to define a name wins.
    merged: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "clusters": {},
        "users": {},
        "contexts": {},
    }
    current = ""
    found = False
    for p in paths:
        data = _read_yaml(p)
        if not data:
            continue
        found = True
        current = current or str(data.get("current-context") or "")
        for section in merged:
            for entry in data.get(section) or ():
                if isinstance(entry, dict) and "name" in entry:
                    merged[section].setdefault(str(entry["name"]), (entry, p.parent))
    if not found:
        raise KubeconfigError(f"no kubeconfig found at {', '.join(map(str, paths))}")
    name = context or current
    if not name:
        raise KubeconfigError("no context given and current-context is not set")
    if name not in merged["contexts"]:
        raise KubeconfigError(f'context "{name}" does not exist')
    ctx = merged["contexts"][name][0].get("context") or {}
    cluster_name = str(ctx.get("cluster", ""))
    if cluster_name not in merged["clusters"]:
        raise KubeconfigError(f'cluster "{cluster_name}" of context "{name}" does not exist')
    cluster_entry, cluster_base = merged["clusters"][cluster_name]
    cluster = cluster_entry.get("cluster") or {}
    user: dict[str, Any] = {}
    user_base = cluster_base
    user_name = ctx.get("user")
    if user_name:
        if user_name not in merged["users"]:
            raise KubeconfigError(f'user "{user_name}" of context "{name}" does not exist')
        user_entry, user_base = merged["users"][user_name]
        user = user_entry.get("user") or {}
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f'cluster "{cluster_name}" has no server')
    token = user.get("token")
    token_file = user.get("tokenFile")
    return ClientConfig(
        server=str(server).rstrip("/"),
        ca_data=_file_or_data(
            cluster, "certificate-authority-data", "certificate-authority", cluster_base
        ),
        token=str(token) if token else None,
        token_file=str(token_file) if token_file else None,
        client_cert_data=_file_or_data(
            user, "client-certificate-data", "client-certificate", user_base
        ),
        client_key_data=_file_or_data(user, "client-key-data", "client-key", user_base),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )


def in_cluster_config(
    env: Mapping[str, str] | None = None, sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> ClientConfig:
    """The configuration of a pod: ``KUBERNETES_SERVICE_HOST/PORT`` + the service account."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError(
            "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
        )
    token_path = sa_dir / "token"
    if not token_path.exists():
        raise KubeconfigError(f"not in a cluster: {token_path} does not exist")
    if ":" in host:  # an IPv6 address needs brackets in a URL
        host = f"[{host}]"
    ca_path = sa_dir / "ca.crt"
    ns_path = sa_dir / "namespace"
    return ClientConfig(
        server=f"https://{host}:{port}",
        ca_data=ca_path.read_bytes() if ca_path.exists() else None,
        token_file=str(token_path),
        namespace=ns_path.read_text().strip() if ns_path.exists() else "default",
    )


# -- writing -------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path, timeout: float = 10.0) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise KubeconfigError(
                    f"{lock} exists: another process is writing the kubeconfig "
                    "(remove the file if no such process runs)"
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    import tempfile  # only writers need it (~0.8 MiB resident with shutil, bz2, lzma)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        import yaml

        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _skeleton(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    data.setdefault("preferences", {})
    for key in ("clusters", "users", "contexts"):
        if not isinstance(data.get(key), list):
            data[key] = []
    return data


def _upsert(entries: list[Any], name: str, key: str, body: dict[str, Any]) -> None:
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            entry[key] = body
            return
    entries.append({"name": name, key: body})


def kubeconfig_document(
    cluster_name: str,
    server: str,
    ca_data: bytes,
    token: str,
    context_name: str = "svcnet",
    user_name: str | None = None,
) -> dict[str, Any]:
    """A standalone kubeconfig holding one cluster, user and context."""
    return merge_into(
        {}, cluster_name, server, ca_data, token, context_name, user_name, set_current=True
    )


def merge_into(
    data: dict[str, Any],
    cluster_name: str,
    server: str,
    ca_data: bytes,
    token: str,
    context_name: str = "svcnet",
    user_name: str | None = None,
    set_current: bool = True,
) -> dict[str, Any]:
    """Add or replace our entries in a parsed kubeconfig, keeping every other entry."""
    user_name = user_name or cluster_name
    data = _skeleton(data)
    _upsert(
        data["clusters"],
        cluster_name,
        "cluster",
        {
            "certificate-authority-data": base64.b64encode(ca_data).decode(),
            "server": server,
        },
    )
    _upsert(data["users"], user_name, "user", {"token": token})
    _upsert(data["contexts"], context_name, "context", {"cluster": cluster_name, "user": user_name})
    if set_current or not data.get("current-context"):
        data["current-context"] = context_name
    return data


def remove_from(
    data: dict[str, Any],
    cluster_name: str,
    context_name: str = "svcnet",
    user_name: str | None = None,
) -> dict[str, Any]:
    user_name = user_name or cluster_name
    data = _skeleton(data)
    for key, name in (("clusters", cluster_name), ("users", user_name), ("contexts", context_name)):
        data[key] = [e for e in data[key] if not (isinstance(e, dict) and e.get("name") == name)]
    if data.get("current-context") == context_name:
        data["current-context"] = ""
    return data


def merge_kubeconfig(
    target_path: str | os.PathLike[str],
    cluster_name: str,
    server: str,
    ca_data: bytes,
    token: str,
    context_name: str = "svcnet",
    set_current: bool = True,
    user_name: str | None = None,
) -> None:
    """Merge our cluster/user/context into ``target_path`` (created if missing), as kind does."""
    path = Path(target_path).expanduser()
    with _locked(path):
        data = _read_yaml(path)
        merge_into(data, cluster_name, server, ca_data, token, context_name, user_name, set_current)
        _write_atomic(path, data)


def remove_from_kubeconfig(
    target_path: str | os.PathLike[str],
    cluster_name: str,
    context_name: str = "svcnet",
    user_name: str | None = None,
) -> None:
    """Take our entries out of ``target_path``; other entries stay. A missing file is fine."""
    path = Path(target_path).expanduser()
    if not path.exists():
        return
    with _locked(path):
        data = _read_yaml(path)
        remove_from(data, cluster_name, context_name, user_name)
        _write_atomic(path, data)
