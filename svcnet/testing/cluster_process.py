"""Find a pod's process of one cluster on this machine, for tests and benches that look at a
process from outside (its memory, its sockets through ``/proc/<pid>/root``).

Several clusters run side by side, each pod's process is an ordinary process of the machine,
and its environment names its cluster's API Service (``KUBERNETES_SERVICE_HOST``, the first
address of the cluster's service range): that tells one cluster's processes from another's.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path


def cluster_process(service_cidr: str, argv_matches: Callable[[list[bytes]], bool]) -> int:
    """The PID of the process of this cluster whose argv ``argv_matches``."""
    api = str(next(ipaddress.ip_network(service_cidr).hosts()))
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if argv_matches(argv) and f"KUBERNETES_SERVICE_HOST={api}\0" in environ:
            return int(pid)
    raise LookupError(f"no such process of the cluster with services {service_cidr}")
