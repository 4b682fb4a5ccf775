"""``svcnet image load FILE.tar``: a ``docker save`` or OCI archive into the image store.

skopeo copies the archive (``docker-archive:`` or ``oci-archive:``, whichever the archive's
layout says it is) into an OCI layout in a staging folder, umoci unpacks its layers into a
root filesystem (``--rootless`` keeps file owners as recorded without needing them to exist),
and the image config's entrypoint, cmd, env, workingDir and user are read from the manifest's
config blob. The staging folder is renamed into the store only when all of that worked, so a
corrupt archive or one that is not an image leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import Any

from svcnet.runtime.builtin_images import prepare_mountpoints
from svcnet.runtime.images import (
    Image,
    ImageConfig,
    ImageError,
    ImageStore,
    normalize_reference,
    run_tool,
)


def archive_kind(path: str) -> tuple[str, list[str]]:
    """("docker-archive" | "oci-archive", references named inside the archive)."""
    try:
        with tarfile.open(path) as tar:
            names = set(tar.getnames())
            if "manifest.json" in names:
                f = tar.extractfile("manifest.json")
                manifest = json.load(f) if f is not None else []
                refs = [str(t) for entry in manifest for t in entry.get("RepoTags") or ()]
                return "docker-archive", refs
            if "index.json" in names or "./index.json" in names:
                member = "index.json" if "index.json" in names else "./index.json"
                f = tar.extractfile(member)
                index = json.load(f) if f is not None else {}
                refs = [
                    str(
                        m.get("annotations", {}).get("io.containerd.image.name")
                        or m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                        or ""
                    )
                    for m in index.get("manifests") or ()
                ]
                return "oci-archive", [r for r in refs if r]
    except (OSError, EOFError, zlib.error, tarfile.TarError, ValueError, AttributeError) as e:
        raise ImageError(f"{path}: not an image archive ({e})") from e
    raise ImageError(
        f"{path}: not an image archive (no manifest.json of docker save, no OCI index.json)"
    )


def _blob(layout: str, digest: str) -> Any:
    algo, _, hexd = digest.partition(":")
    return json.loads(Path(layout, "blobs", algo, hexd).read_text())


def _config_of(layout: str) -> ImageConfig:
    index = json.loads(Path(layout, "index.json").read_text())
    manifest = _blob(layout, index["manifests"][0]["digest"])
    cfg = (_blob(layout, manifest["config"]["digest"]).get("config")) or {}
    return ImageConfig(
        entrypoint=tuple(cfg.get("Entrypoint") or ()),
        cmd=tuple(cfg.get("Cmd") or ()),
        env=tuple(cfg.get("Env") or ()),
        working_dir=str(cfg.get("WorkingDir") or ""),
        user=str(cfg.get("User") or ""),
    )


def import_archive(store: ImageStore, archive: str) -> list[Image]:
    if not os.path.isfile(archive):
        raise ImageError(f"{archive}: no such file")
    kind, refs = archive_kind(archive)
    if not refs:
        digest = hashlib.sha256(Path(archive).read_bytes()).hexdigest()[:12]
        refs = [f"svcnet.local/loaded/{digest}:latest"]
    staging = store.staging_dir()
    try:
        layout = os.path.join(staging, "oci")
        run_tool(
            ["skopeo", "--insecure-policy", "copy", "-q", f"{kind}:{archive}", f"oci:{layout}:img"],
            f"reading {archive}",
        )
        bundle = os.path.join(staging, "bundle")
        run_tool(
            ["umoci", "unpack", "--rootless", "--image", f"{layout}:img", bundle],
            f"unpacking {archive}",
        )
        config = _config_of(layout)
        os.rename(os.path.join(bundle, "rootfs"), os.path.join(staging, "rootfs"))
        shutil.rmtree(bundle)
        shutil.rmtree(layout)
        prepare_mountpoints(os.path.join(staging, "rootfs"), config)
        normalized = [normalize_reference(r) for r in refs]
        image_id = (
            "loaded-"
            + hashlib.sha256(
                json.dumps(
                    [normalized, os.path.getsize(archive), Path(archive).stat().st_mtime_ns]
                ).encode()
            ).hexdigest()[:16]
        )
        store.commit(staging, image_id, normalized, config, builtin=False)
    except (ImageError, OSError, KeyError, ValueError, IndexError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{archive}: {e}") from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [store.read(image_id)]
