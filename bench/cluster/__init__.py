"""bench/cluster: `svcnet up` time, pod start latency, idle cluster memory."""
