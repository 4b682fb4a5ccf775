"""What the agent (:mod:`svcnet.agent.zygote_runner`) and the warm fork server
(:mod:`svcnet.agent.zygote`) share, in a module that imports nothing: neither side should pay
for the other's imports (the agent for ctypes, the zygote for asyncio)."""

MAX_MESSAGE = 1 << 20  # one SOCK_SEQPACKET message: a request carries a container's env
# Room reserved in the zygote's own argv and environ blocks, which the kernel shows as a
# process's /proc/<pid>/cmdline and /environ: each child writes its container's there.
ARGV_ROOM = 1024  # a built-in image's command line is short; longer ones are cut
ENV_ROOM = 32768
PAD_VAR = "SVCNET_ZYGOTE_ROOM"
