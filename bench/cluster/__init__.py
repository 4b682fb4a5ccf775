"""bench/cluster (issue 3): `svcnet up` time, pod start latency, idle cluster memory."""
