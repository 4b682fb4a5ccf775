from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient


@pytest.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(
        ClientConfig(server=fake.url, token=TOKEN), read_retries=2, retry_backoff=0.01
    ) as c:
        yield c
