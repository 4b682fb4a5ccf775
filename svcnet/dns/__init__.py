"""Cluster DNS: the Kubernetes DNS-based service discovery specification, answered the way
CoreDNS's kubernetes plugin answers it.

Pure (no I/O, no asyncio): `names` (query name → shape), `projection` (API dicts → slim frozen
dataclasses), `wire` (encoders and the query fast path), `records` (the record table: rules
and precomputed wire-ready answers, updated per Service), `respond` (packet in → packet out).
I/O: `forward` (upstream resolvers + cache), `server` (UDP/TCP/health on uvloop),
`controller` (informers → table), `query` (one question, for `svcnet dns query`) and
`__main__` (`python -m svcnet.dns`).

This file imports nothing, so that importing a pure module never drags in the I/O ones.
"""
