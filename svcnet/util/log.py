"""Logging set-up shared by every svcnet process: one line per record, component first."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(component: str, level: str | None = None, path: str | None = None) -> None:
    """Log to stderr (or a file) as ``time level component: message``.

    ``SVCNET_LOG_LEVEL`` overrides the level so a user can turn on debug output for one run
    without changing how the component was started.
    """
    chosen = (os.environ.get("SVCNET_LOG_LEVEL") or level or "INFO").upper()
    handler: logging.Handler = (
        logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname).1s {component} %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(chosen)
    # aiohttp's access log line per request would drown everything else at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
