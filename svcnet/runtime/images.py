"""Images: a root filesystem plus the OCI image config a container starts from.

An image in the store is a directory ``<root>/<id>/`` with ``rootfs/`` and ``image.json``
(the config fields a kubelet uses: entrypoint, cmd, env, workingDir, user, and the node
directories a built-in image shares read-only). ``<root>/index.json`` maps references
(``docker.io/library/busybox:latest``) to ids. Images come from two places:
- built in (:mod:`svcnet.runtime.builtin_images`), built on first use from the node's Debian
  packages and looked up by repository name whatever the registry or tag, as before;
- ``svcnet image load FILE.tar``: a ``docker save`` or OCI archive, converted with skopeo and
  unpacked with umoci into a temporary directory that is renamed into place only when whole.

:func:`container_command` is Kubernetes' rule for command/args over entrypoint/cmd (kubelet's
``kuberuntime.makeCommand`` + the runtime's ``WithProcessArgs``): ``command`` replaces the
entrypoint and drops cmd; ``args`` alone replace cmd; neither runs entrypoint + cmd.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_IMAGE_ROOT = "/var/lib/svcnet/images"
IMAGE_ROOT_ENV = "SVCNET_IMAGE_ROOT"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(Exception):
    """An image that cannot be imported or read."""


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)  # "K=V", as in the OCI config
    working_dir: str = ""
    user: str = ""
    # Node directories (absolute) mounted read-only at the same path: a built-in image shares
    # the node's Debian /usr instead of carrying a copy of it.
    node_binds: tuple[str, ...] = ()

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ImageConfig:
        def strs(key: str) -> tuple[str, ...]:
            v = data.get(key)
            return tuple(str(x) for x in v) if isinstance(v, list) else ()

        return cls(
            entrypoint=strs("entrypoint"),
            cmd=strs("cmd"),
            env=strs("env"),
            working_dir=str(data.get("working_dir") or ""),
            user=str(data.get("user") or ""),
            node_binds=strs("node_binds"),
        )


@dataclass(frozen=True)
class Image:
    id: str
    references: tuple[str, ...]
    rootfs: str
    config: ImageConfig
    builtin: bool = False


def container_command(
    config: ImageConfig, command: Sequence[str], args: Sequence[str]
) -> tuple[str, ...]:
    if command:
        return (*command, *args)
    if args:
        return (*config.entrypoint, *args)
    return (*config.entrypoint, *config.cmd)


def normalize_reference(ref: str) -> str:
    """Docker's reference normalisation: ``busybox`` → ``docker.io/library/busybox:latest``."""
    name, digest = ([*ref.split("@", 1), ""])[:2]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest" if not digest else ""
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        if "/" not in name.split(":", 1)[0]:
            name = "library/" + name
        name = "docker.io/" + name
    return f"{name}@{digest}" if digest else name


def repository_name(ref: str) -> str:
    """The last path segment of the repository: "registry.k8s.io/x/agnhost:2.52" → "agnhost"."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def svcnet_paths() -> list[str]:
    """Where svcnet's own Python code lives on the node: the interpreter's prefixes and the
    folder svcnet is imported from (outermost first, none inside another). Built-in images
    mount them read-only, so svcnet's agnhost and tools run there as on the node."""
    import svcnet

    candidates = [
        sys.base_prefix,
        sys.prefix,
        os.path.dirname(os.path.dirname(os.path.abspath(svcnet.__file__))),
    ]
    return outermost(candidates)


def outermost(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths}, key=len):
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in out):
            out.append(path)
    return out


def image_root() -> str:
    return os.environ.get(IMAGE_ROOT_ENV) or DEFAULT_IMAGE_ROOT


class ImageStore:
    """The images of this machine (shared by its nodes)."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root or image_root()

    # -- reading ----------------------------------------------------------------------------
    def _index(self) -> dict[str, str]:
        try:
            data = json.loads(Path(self.root, "index.json").read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise ImageError(f"reading the image index: {e}") from e
        return {str(k): str(v) for k, v in data.items()}

    def read(self, image_id: str, builtin: bool = False) -> Image:
        folder = Path(self.root, image_id)
        try:
            data = json.loads((folder / "image.json").read_text())
        except (OSError, ValueError) as e:
            raise ImageError(f"image {image_id}: {e}") from e
        refs = tuple(str(r) for r in data.get("references") or ())
        return Image(
            image_id,
            refs,
            str(folder / "rootfs"),
            ImageConfig.from_json(data.get("config") or {}),
            builtin or bool(data.get("builtin")),
        )

    def find(self, ref: str) -> Image | None:
        """A loaded image by its full reference, then a built-in one by repository name."""
        image_id = self._index().get(normalize_reference(ref))
        if image_id is not None:
            return self.read(image_id)
        from svcnet.runtime.builtin_images import builtin_for

        spec = builtin_for(repository_name(ref), ref)
        if spec is None:
            return None
        return self.read(spec.ensure(self), builtin=True)

    def all(self) -> list[Image]:
        from svcnet.runtime.builtin_images import BUILTINS

        out = [self.read(i) for i in sorted(set(self._index().values()))]
        for spec in BUILTINS:
            out.append(self.read(spec.ensure(self), builtin=True))
        return out

    # -- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def commit(
        self, staging: str, image_id: str, refs: Sequence[str], config: ImageConfig, builtin: bool
    ) -> None:
        """Move a finished ``staging`` folder (with rootfs/) into place, then index it."""
        meta = {"references": list(refs), "config": asdict(config), "builtin": builtin}
        Path(staging, "image.json").write_text(json.dumps(meta, indent=1))
        dest = os.path.join(self.root, image_id)
        with self.locked():
            if os.path.exists(dest):
                shutil.rmtree(staging, ignore_errors=True)
            else:
                os.rename(staging, dest)
            if not builtin:
                index = self._index()
                for ref in refs:
                    old = index.get(ref)
                    index[ref] = image_id
                    if old and old != image_id and old not in index.values():
                        shutil.rmtree(os.path.join(self.root, old), ignore_errors=True)
                self._write_index(index)

    def remove(self, ref: str) -> bool:
        """Forget a loaded image's reference; its files go with its last reference."""
        key = normalize_reference(ref)
        with self.locked():
            index = self._index()
            image_id = index.pop(key, None)
            if image_id is None:
                return False
            self._write_index(index)
            if image_id not in index.values():
                shutil.rmtree(os.path.join(self.root, image_id), ignore_errors=True)
        return True

    def _write_index(self, index: Mapping[str, str]) -> None:
        tmp = os.path.join(self.root, "index.json.tmp")
        Path(tmp).write_text(json.dumps(index, indent=1, sort_keys=True))
        os.replace(tmp, os.path.join(self.root, "index.json"))

    def staging_dir(self) -> str:
        os.makedirs(self.root, exist_ok=True)
        return tempfile.mkdtemp(prefix=".staging-", dir=self.root)

    def load(self, archive: str) -> list[Image]:
        """Import a ``docker save`` or OCI archive; nothing is left behind when it fails."""
        from svcnet.runtime.archive import import_archive

        return import_archive(self, archive)


def run_tool(argv: Sequence[str], what: str) -> str:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise ImageError(f"{what}: {argv[0]} is not installed (Debian package {argv[0]})") from e
    if res.returncode != 0:
        raise ImageError(f"{what}: {(res.stderr or res.stdout).strip()}")
    return res.stdout
