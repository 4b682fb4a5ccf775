"""Worker processes that prepare POSTed objects, so that a create uses a second core.

The API server is one asyncio process: one core. Of a create's CPU time, about 40 % is the
pure preparation in :mod:`svcnet.apiserver.prepare` (decode, fieldValidation, defaulting,
validation, managedFields), which depends only on the request. A :class:`PreparePool` sends
that part to worker processes (``python -m svcnet.apiserver.preparepool``) over pipes and goes
on serving; the event loop keeps everything that reads or writes state — namespace checks,
ClusterIP/NodePort allocation, the store, watches — so the order of writes and their
resourceVersions stay exactly as with one process.

Wire format, both directions: frames of a 4-byte big-endian length and a payload.
- request: a 4-byte length of a JSON header ``[group, version, plural, contentType,
  namespace, *WriteOptions fields]``, the header, the raw body.
- answer, in request order: ``o`` + 4-byte length + warnings (JSON list) + object (JSON);
  ``e`` + a ``Status`` (an API error, e.g. 422 Invalid); ``x`` + text (an internal error).

A worker that dies loses nothing: its unanswered requests are prepared in the server's own
process, and a new worker is started (unless they keep dying, then the server prepares
everything itself and says so in its log).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, fields
from typing import Any

import orjson

from svcnet.api.errors import ApiError, InternalError
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.apiserver.prepare import prepare_create
from svcnet.apiserver.request import WriteOptions
from svcnet.util.gctune import tune_gc

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
_REQUEST_HEAD = struct.Struct("!II")  # frame length, JSON header length
# A worker that dies sooner than this after it started is not restarted again.
MIN_LIFETIME = 5.0

Prepared = tuple[list[str], dict[str, Any]]
# The write options travel as a list in this order: a field added to WriteOptions travels too.
_OPTION_FIELDS = tuple(f.name for f in fields(WriteOptions))


def default_workers() -> int:
    """One worker where there is a second core to run it on, none otherwise."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


@dataclass(slots=True)
class _Job:
    """One create waiting for its worker: what is needed to prepare it here instead."""

    rt: ResourceType
    raw: bytes
    content_type: str
    opts: WriteOptions
    namespace: str | None
    future: asyncio.Future[Prepared]

    def run_here(self) -> None:
        """Prepare in this process (a worker died with this job unanswered)."""
        if self.future.done():
            return
        try:
            self.future.set_result(
                prepare_create(self.rt, self.raw, self.content_type, self.opts, self.namespace)
            )
        except Exception as exc:
            self.future.set_exception(exc)


class _Worker(asyncio.Protocol):
    """One worker process; also the protocol reading its answers."""

    def __init__(self, pool: PreparePool) -> None:
        self.pool = pool
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.jobs: collections.deque[_Job] = collections.deque()
        self.alive = False
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self._out = bytearray()
        self._in = bytearray()

    async def start(self) -> None:
        # stderr is the server's: a worker's tracebacks land in the server's log.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "svcnet.apiserver.preparepool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.started = time.monotonic()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, self.proc.stdin)
        self._reader, _ = await loop.connect_read_pipe(lambda: self, self.proc.stdout)
        self.alive = True

    def submit(self, job: _Job) -> None:
        self.jobs.append(job)
        header = orjson.dumps(
            [
                job.rt.group,
                job.rt.version,
                job.rt.plural,
                job.content_type,
                job.namespace,
                *(getattr(job.opts, name) for name in _OPTION_FIELDS),
            ]
        )
        if not self._out:
            # Everything submitted in this loop iteration goes out in one write.
            asyncio.get_running_loop().call_soon(self._flush)
        self._out += _REQUEST_HEAD.pack(4 + len(header) + len(job.raw), len(header))
        self._out += header
        self._out += job.raw

    def _flush(self) -> None:
        if self._out and self.alive and self._writer is not None:
            self._writer.write(bytes(self._out))
        self._out.clear()

    # -- answers ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._in += data
        for frame in _take_frames(self._in):
            self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        job = self.jobs.popleft()
        if job.future.done():
            return  # the client went away meanwhile
        tag = frame[:1]
        if tag == b"o":
            (n,) = _LEN.unpack_from(frame, 1)
            warnings = orjson.loads(frame[5 : 5 + n])
            job.future.set_result((warnings, orjson.loads(frame[5 + n :])))
        elif tag == b"e":
            job.future.set_exception(ApiError.from_status(orjson.loads(frame[1:])))
        else:
            job.future.set_exception(InternalError(frame[1:].decode(errors="replace")))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.pool.worker_gone(self)

    def stop(self) -> None:
        """Close its input: the worker finishes what it has and exits."""
        self.alive = False
        if self._writer is not None:
            self._writer.close()

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _take_frames(buf: bytearray) -> list[bytes]:
    """The complete frames at the start of ``buf``, removed from it (a partial one stays)."""
    frames: list[bytes] = []
    start = 0
    while len(buf) - start >= 4:
        (n,) = _LEN.unpack_from(buf, start)
        if len(buf) - start - 4 < n:
            break
        frames.append(bytes(buf[start + 4 : start + 4 + n]))
        start += 4 + n
    del buf[:start]
    return frames


class PreparePool:
    """``workers`` processes preparing creates; ``prepare_create`` as in this process."""

    def __init__(self, workers: int, min_lifetime: float = MIN_LIFETIME) -> None:
        self.size = workers
        self.min_lifetime = min_lifetime
        # Creates prepared in this process because their worker died before answering.
        self.rescued = 0
        self.workers: list[_Worker] = []
        self._closing = False
        self._spawning: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs

    async def start(self) -> None:
        for _ in range(self.size):
            await self._spawn()

    async def _spawn(self) -> None:
        worker = _Worker(self)
        await worker.start()
        if self._closing:  # a replacement that started while the pool was closing
            worker.stop()
            await asyncio.to_thread(worker.wait, 5.0)
            return
        self.workers.append(worker)

    async def prepare_create(
        self,
        rt: ResourceType,
        raw: bytes,
        content_type: str,
        opts: WriteOptions,
        namespace: str | None,
    ) -> Prepared:
        live = [w for w in self.workers if w.alive]
        if not live:
            return prepare_create(rt, raw, content_type, opts, namespace)
        worker = min(live, key=lambda w: len(w.jobs))
        future: asyncio.Future[Prepared] = asyncio.get_running_loop().create_future()
        worker.submit(_Job(rt, raw, content_type, opts, namespace, future))
        return await future

    def worker_gone(self, worker: _Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        unanswered = len(worker.jobs)
        for job in worker.jobs:
            job.run_here()
        worker.jobs.clear()
        if self._closing:
            return
        self.rescued += unanswered
        lived = time.monotonic() - worker.started
        code = worker.proc.poll() if worker.proc is not None else None
        if lived < self.min_lifetime:
            log.error(
                "prepare worker exited (code %s) %.1f s after it started, %d creates "
                "unanswered (prepared here); preparing creates in the API server's own "
                "process from now on",
                code,
                lived,
                unanswered,
            )
            return
        log.warning(
            "prepare worker exited (code %s), %d creates unanswered (prepared here); "
            "starting a new one",
            code,
            unanswered,
        )
        task = asyncio.get_running_loop().create_task(self._spawn())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def close(self) -> None:
        self._closing = True
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.stop()
        for worker in workers:
            await asyncio.to_thread(worker.wait, 5.0)


# -- the worker process --------------------------------------------------------------------


def _prepare_frame(payload: bytes) -> bytes:
    (header_len,) = _LEN.unpack_from(payload)
    group, version, plural, content_type, namespace, *options = orjson.loads(
        payload[4 : 4 + header_len]
    )
    raw = payload[4 + header_len :]
    try:
        rt = REGISTRY.by_plural(group, version, plural)
        if rt is None:
            raise InternalError(f"no resource {group}/{version}/{plural}")
        opts = WriteOptions(**dict(zip(_OPTION_FIELDS, options, strict=True)))
        warnings, obj = prepare_create(rt, raw, content_type, opts, namespace)
        listed = orjson.dumps(warnings)
        return b"o" + _LEN.pack(len(listed)) + listed + orjson.dumps(obj)
    except ApiError as err:
        return b"e" + orjson.dumps(err.to_status())
    except Exception as exc:
        traceback.print_exc()
        return b"x" + f"Internal error occurred: {exc}".encode()


def serve(fd_in: int, fd_out: int) -> None:
    """Answer frames from ``fd_in`` on ``fd_out``, each as soon as it is prepared (the server
    stores one while this prepares the next), until ``fd_in`` ends."""
    buf = bytearray()
    while True:
        data = os.read(fd_in, 1 << 20)
        if not data:
            return
        buf += data
        for request in _take_frames(buf):
            answer = _prepare_frame(request)
            out = _LEN.pack(len(answer)) + answer
            while out:
                out = out[os.write(fd_out, out) :]


def main() -> None:
    # The server stops its workers by closing their input; Ctrl-C in a terminal reaches the
    # whole process group and must not kill a worker before the server drained it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_gc()
    serve(sys.stdin.fileno(), sys.stdout.fileno())


if __name__ == "__main__":
    main()
