"""CPU time of a create's pure preparation (svcnet/apiserver/prepare.py), per Service.

What one prepare worker spends per create apart from its pipes: decode, fieldValidation,
defaulting, validation and managedFields of the same 2-port Service bodies bench.py sends,
in a tight loop in this process (process CPU time, so another process's load shows less).

Usage: ``.venv/bin/python bench/apiserver/prepare_cost.py [--count N]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

# bench.py beside this file (this runs as a script, like bench.py).
sys.path.insert(0, str(Path(__file__).parent))
from bench import NS, service
from svcnet.api.registry import SERVICES
from svcnet.apiserver.prepare import prepare_create
from svcnet.apiserver.request import WriteOptions


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=20_000)
    args = p.parse_args()
    rt = SERVICES
    assert rt is not None
    opts = WriteOptions(field_manager="wrk")
    bodies = [service(i) for i in range(args.count)]
    for body in bodies[: args.count // 10]:  # warm the memos and caches, as a running worker
        prepare_create(rt, body, "application/json", opts, NS)
    gc.freeze()
    start = time.process_time()
    for body in bodies:
        prepare_create(rt, body, "application/json", opts, NS)
    per = (time.process_time() - start) / len(bodies)
    print(f"prepare: {per * 1e6:.1f} µs CPU per Service create ({len(bodies):,} creates)")


if __name__ == "__main__":
    main()
