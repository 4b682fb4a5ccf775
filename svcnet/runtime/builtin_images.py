"""The built-in images, made on this machine from its Debian packages.

Each is a root filesystem of its own with the config of the upstream image it stands for:
- busybox (Debian's busybox-static: one static binary and a link per applet, cmd ``sh``);
- the Debian-based ones share the node's ``/usr`` read-only (mounted at container start) and
  carry their own ``/etc`` (a few files copied from the node: passwd, group, the dynamic
  linker's cache, alternatives, certificates; never shadow, kubeconfigs or /etc/netns), their
  own ``/usr/local`` and the files of their program:
  agnhost (``/agnhost``, svcnet's stdlib-only agnhost run by Debian's python3; cmd ``pause``),
  pause (``/pause``), nginx and httpd (Debian's nginx-light and apache2 serving their default
  pages on port 80, logging to the container's stdout/stderr, writing only /run and /tmp),
  curlimages/curl (entrypoint ``curl``), nicolaka/netshoot (curl, dig, nslookup, nc, ip, ss,
  tcpdump, iperf3; cmd ``bash``), python (Debian's python3).
An image's id carries a digest of its definition and of the files it copies, so a change to
either makes a new image rather than reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from svcnet.runtime.images import DEFAULT_PATH, ImageConfig, ImageError, ImageStore

NODE_USR = "/usr"
# Files of the node's /etc that a Debian userland needs (name lookups, the dynamic linker,
# alternatives such as nc → nc.openbsd, TLS roots). Nothing secret and nothing of svcnet's.
DEBIAN_ETC = (
    "passwd",
    "group",
    "nsswitch.conf",
    "services",
    "protocols",
    "ethertypes",
    "mime.types",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "os-release",
    "debian_version",
    "host.conf",
    "gai.conf",
    "bash.bashrc",
    "profile",
    "inputrc",
)
MERGED_USR_LINKS = (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"))
# Mount points every root filesystem needs (the sandbox mounts these at start).
MOUNT_DIRS = ("proc", "sys", "dev", "tmp", "run", "etc")
MOUNT_FILES = ("etc/hosts", "etc/resolv.conf", "etc/hostname")


def prepare_mountpoints(rootfs: str, config: ImageConfig) -> None:
    """Create what the sandbox mounts over (idempotent; also for imported images)."""
    for d in MOUNT_DIRS:
        p = os.path.join(rootfs, d)
        if not os.path.lexists(p):
            os.makedirs(p, mode=0o755)
    for f in MOUNT_FILES:
        p = os.path.join(rootfs, f)
        if os.path.islink(p):
            os.remove(p)  # a link out of the image would be followed at mount time
        if not os.path.exists(p):
            Path(p).touch(0o644)
    for d in config.node_binds:
        os.makedirs(os.path.join(rootfs, d.lstrip("/")), exist_ok=True)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(text)
    os.chmod(path, mode)


def _copy_node_etc(rootfs: str, names: tuple[str, ...]) -> None:
    for name in names:
        src = os.path.join("/etc", name)
        dst = os.path.join(rootfs, "etc", name)
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        elif os.path.lexists(src):
            shutil.copy2(src, dst, follow_symlinks=False)


def _debian_base(rootfs: str) -> None:
    for link, target in MERGED_USR_LINKS:
        os.symlink(target, os.path.join(rootfs, link))
    if os.path.lexists("/lib64"):
        os.symlink("usr/lib64", os.path.join(rootfs, "lib64"))
    for d in ("usr", "root", "home", "var/tmp", "var/www", "var/lib", "usr-local/bin", "opt"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.symlink("../run", os.path.join(rootfs, "var/run"))
    os.symlink("../run/lock", os.path.join(rootfs, "var/lock"))
    os.chmod(os.path.join(rootfs, "var/tmp"), 0o1777)
    os.makedirs(os.path.join(rootfs, "etc"), exist_ok=True)
    _copy_node_etc(rootfs, DEBIAN_ETC)


def _agnhost_source() -> str:
    return str(Path(__file__).resolve().parent.parent / "agent" / "agnhost.py")


AGNHOST_WRAPPER = '#!/bin/sh\nexec /usr/bin/python3 -S /opt/agnhost/agnhost.py "$@"\n'
PAUSE_WRAPPER = '#!/bin/sh\nexec /usr/bin/python3 -S /opt/agnhost/agnhost.py pause "$@"\n'


def _agnhost(rootfs: str) -> None:
    _debian_base(rootfs)
    os.makedirs(os.path.join(rootfs, "opt/agnhost"))
    shutil.copy2(_agnhost_source(), os.path.join(rootfs, "opt/agnhost/agnhost.py"))
    _write(os.path.join(rootfs, "agnhost"), AGNHOST_WRAPPER, 0o755)
    _write(os.path.join(rootfs, "usr-local/bin/agnhost"), AGNHOST_WRAPPER, 0o755)
    _write(os.path.join(rootfs, "pause"), PAUSE_WRAPPER, 0o755)


NGINX_CONF = """\
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr notice;
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 768; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    server {
        listen 80 default_server;
        listen [::]:80 default_server;
        root /usr/share/nginx/html;
        index index.html;
        location / { try_files $uri $uri/ =404; }
    }
}
"""


def _nginx(rootfs: str) -> None:
    _debian_base(rootfs)
    _copy_node_etc(rootfs, ("nginx",))
    _write(os.path.join(rootfs, "etc/nginx/nginx.conf"), NGINX_CONF)


HTTPD_FOREGROUND = """\
#!/bin/sh
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR"
rm -f "$APACHE_PID_FILE"
exec apache2 -DFOREGROUND "$@"
"""
APACHE_ENVVARS = """\
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE=/run/apache2/apache2.pid
export APACHE_RUN_DIR=/run/apache2
export APACHE_LOCK_DIR=/run/lock/apache2
export APACHE_LOG_DIR=/run/apache2
export LANG=C
"""


def _httpd(rootfs: str) -> None:
    _debian_base(rootfs)
    _copy_node_etc(rootfs, ("apache2",))
    _write(os.path.join(rootfs, "etc/apache2/envvars"), APACHE_ENVVARS)
    conf_dir = Path(rootfs, "etc/apache2")
    for conf in [conf_dir / "apache2.conf", *conf_dir.glob("sites-available/*.conf")]:
        text = conf.read_text()
        text = text.replace("${APACHE_LOG_DIR}/error.log", "/proc/self/fd/2")
        text = text.replace("${APACHE_LOG_DIR}/access.log", "/proc/self/fd/1")
        conf.write_text(text)
    shutil.copy2("/var/www/html/index.html", os.path.join(rootfs, "var/www/index.html"))
    os.makedirs(os.path.join(rootfs, "var/www/html"))
    os.rename(
        os.path.join(rootfs, "var/www/index.html"), os.path.join(rootfs, "var/www/html/index.html")
    )
    _write(os.path.join(rootfs, "usr-local/bin/httpd-foreground"), HTTPD_FOREGROUND, 0o755)


def _python(rootfs: str) -> None:
    _debian_base(rootfs)
    os.symlink("/usr/bin/python3", os.path.join(rootfs, "usr-local/bin/python"))


def _busybox(rootfs: str) -> None:
    busybox = shutil.which("busybox", path="/usr/bin:/bin") or ""
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not busybox:
        raise ImageError("busybox image: busybox-static is not installed")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy2(busybox, os.path.join(rootfs, "bin/busybox"))
    for applet in out.stdout.split():
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    for d in ("root", "home", "var/tmp", "usr"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    _write(
        os.path.join(rootfs, "etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )
    _write(os.path.join(rootfs, "etc/group"), "root:x:0:\nnobody:x:65534:\n")


_ENSURED: dict[tuple[str, str], str] = {}  # (store root, name) → id, checked once per process


@dataclass(frozen=True)
class BuiltinImage:
    name: str  # repository names it answers to, the first one shown by `svcnet image ls`
    repositories: tuple[str, ...]
    config: ImageConfig
    build: Callable[[str], None] = field(compare=False)
    sources: tuple[str, ...] = ()  # files whose content is part of the image

    def digest(self) -> str:
        h = hashlib.sha256(json.dumps(asdict(self.config), sort_keys=True).encode())
        h.update(self.name.encode())
        h.update(Path(__file__).read_bytes())
        for src in self.sources:
            h.update(Path(src).read_bytes())
        return h.hexdigest()[:16]

    def image_id(self) -> str:
        return f"builtin-{self.name.replace('/', '-')}-{self.digest()}"

    def ensure(self, store: ImageStore) -> str:
        """Build the image into the store unless it is already there; its id."""
        key = (store.root, self.name)
        image_id = _ENSURED.get(key) or self.image_id()
        if os.path.exists(os.path.join(store.root, image_id, "image.json")):
            _ENSURED[key] = image_id
            return image_id
        staging = store.staging_dir()
        try:
            rootfs = os.path.join(staging, "rootfs")
            os.makedirs(rootfs)
            self.build(rootfs)
            prepare_mountpoints(rootfs, self.config)
            store.commit(staging, image_id, (self.name,), self.config, builtin=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return image_id


def _debian(**kw: object) -> ImageConfig:
    env = kw.pop("env", ())
    assert isinstance(env, tuple)
    return ImageConfig(
        env=(f"PATH={DEFAULT_PATH}", *env),
        node_binds=(NODE_USR,),
        **kw,  # type: ignore[arg-type]
    )


AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost"
PAUSE_IMAGE = "registry.k8s.io/pause"
BUILTINS: tuple[BuiltinImage, ...] = (
    BuiltinImage(
        AGNHOST_IMAGE,
        ("agnhost",),
        _debian(entrypoint=("/agnhost",), cmd=("pause",)),
        _agnhost,
        (_agnhost_source(),),
    ),
    BuiltinImage(
        PAUSE_IMAGE, ("pause",), _debian(entrypoint=("/pause",)), _agnhost, (_agnhost_source(),)
    ),
    BuiltinImage("nginx", ("nginx",), _debian(cmd=("nginx", "-g", "daemon off;")), _nginx),
    BuiltinImage("httpd", ("httpd",), _debian(cmd=("httpd-foreground",)), _httpd),
    BuiltinImage("busybox", ("busybox",), ImageConfig(cmd=("sh",)), _busybox),
    BuiltinImage("curlimages/curl", ("curl",), _debian(entrypoint=("curl",)), _debian_base),
    BuiltinImage("nicolaka/netshoot", ("netshoot",), _debian(cmd=("bash",)), _debian_base),
    BuiltinImage("python", ("python",), _debian(cmd=("python3",)), _python),
    # The add-ons: Debian's userland (haproxy for ingress); their kubeconfigs as volumes.
    BuiltinImage("svcnet/dns", ("dns",), _debian(), _debian_base),
    BuiltinImage("svcnet/ingress", ("ingress",), _debian(), _debian_base),
)
# What an unknown image's command runs over: the node's programs, nothing of its state.
NODE_VIEW = BuiltinImage("svcnet/node-view", (), _debian(), _debian_base)
_BY_REPOSITORY = {repo: b for b in BUILTINS for repo in b.repositories}


def builtin_for(repository: str, ref: str = "") -> BuiltinImage | None:
    del ref  # any registry and any tag: svcnet has one version of each
    return _BY_REPOSITORY.get(repository)
