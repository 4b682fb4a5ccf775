"""start_controllers: informers first, then one task per recorder and per controller, named."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.controllers.start import start_controllers


class Ran:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.component = log, name, name

    async def run(self) -> None:
        self.log.append(self.name)


class Factory:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def start(self, tg: Any) -> list[asyncio.Task[None]]:
        self.log.append("informers")
        return []


def test_tasks_named_by_key_and_recorder_component() -> None:
    log: list[str] = []

    async def main() -> list[str]:
        factory = cast(SharedInformerFactory, Factory(log))
        recorders = [cast(EventRecorder, Ran(log, "job-controller"))]
        async with asyncio.TaskGroup() as tg:
            tasks = start_controllers(factory, tg, recorders, [("jobs", Ran(log, "job"))])
        return [t.get_name() for t in tasks]

    assert asyncio.run(main()) == ["events-job-controller", "jobs"]
    assert log == ["informers", "job-controller", "job"]
