"""ClusterIP and NodePort allocation, as kube-apiserver does it. Pure: no I/O, no asyncio.

Upstream (``pkg/registry/core/service/ipallocator`` and ``portallocator``) keeps a bitmap of
offsets in the range and picks dynamic values with a random scan. Since KEP-3070 (ClusterIPs,
on by default from 1.25) and KEP-3668 (NodePorts, from 1.28) the range is split in two bands:

* the *static* (lower) band of ``offset`` values is left for users who ask for a specific
  value (like 10.96.0.10 for DNS), so dynamic allocation takes from the *dynamic* (upper) band
  first — a random start in the upper band, scanning forward and wrapping inside the band — and
  falls back to the lower band, same way, only when the upper one is full;
* ClusterIP band size: ``min(max(16, cidr_size // 16), 256)`` (0 when the range has 16
  addresses or fewer); for 10.96.0.0/16 the static band is 10.96.0.1-10.96.1.0.
* NodePort band size: ``min(max(16, range_size // 32), 128)`` (0 for 16 ports or fewer); for
  30000-32767 the static band is 30000-30085.

For IPv4 the network and broadcast addresses are never allocatable; for IPv6 the subnet-router
address is not, and like upstream at most 65,536 addresses of the range are used.

``reserved`` addresses/ports are ones dynamic allocation never hands out (svcnet reserves
10.96.0.1 for the ``kubernetes`` Service and 10.96.0.10 for DNS); they can still be asked for
by value. Upstream has no such list; the bands make it mostly unnecessary but it keeps the
well-known addresses safe even if the lower band fills up.

Errors carry the upstream wording so the API server can use it verbatim:
``AllocationError.message`` is the allocator's own text (upstream ``err.Error()``) and
``AllocationError.detail`` is what upstream puts in the field error (or the internal error):

* specific ClusterIP refused -> 422, ``spec.clusterIPs: Invalid value: []string{"10.96.0.5"}:
  failed to allocate IP 10.96.0.5: provided IP is already allocated``;
* specific NodePort refused -> 422, ``spec.ports[0].nodePort: Invalid value: 30080: provided
  port is already allocated``;
* range full on dynamic allocation -> upstream answers 500 InternalError ``failed to allocate a
  serviceIP: range is full`` / ``failed to allocate a nodePort: range is full``.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Iterable

from svcnet.api.ranges import DEFAULT_NODE_PORT_HIGH, DEFAULT_NODE_PORT_LOW, DEFAULT_SERVICE_CIDR

ERR_FULL = "range is full"
ERR_IP_ALLOCATED = "provided IP is already allocated"
ERR_PORT_ALLOCATED = "provided port is already allocated"


# Upstream caps IPv6 ranges to what its bitmap holds.
_MAX_IPV6_RANGE = 65536


class AllocationErrorKind(enum.Enum):
    FULL = "Full"
    OUT_OF_RANGE = "OutOfRange"
    ALREADY_ALLOCATED = "AlreadyAllocated"
    INVALID = "Invalid"


class AllocationError(Exception):
    """Why a value could not be allocated.

    ``value`` is what was asked for (None for a dynamic allocation), ``message`` the upstream
    allocator text, ``detail`` the text upstream shows to the user (see the module docstring).
    """

    def __init__(
        self, kind: AllocationErrorKind, value: str | int | None, message: str, detail: str
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.value = value
        self.message = message
        self.detail = detail


def static_band_size(range_size: int, *, step: int, upper: int, lower: int = 16) -> int:
    """Upstream's ``calculateRangeOffset``: ``min(max(lower, size // step), upper)``, or 0."""
    if range_size <= lower:
        return 0
    return min(max(lower, range_size // step), upper)


class _Bands:
    """Allocation state over offsets ``0..size-1``: the static band is ``0..offset-1``."""

    def __init__(self, size: int, offset: int, rng: random.Random) -> None:
        self.size = size
        self.offset = min(offset, size)
        self.rng = rng
        self.allocated: set[int] = set()
        self.reserved: set[int] = set()
        # Offsets of each band that dynamic allocation cannot take (allocated or reserved):
        # when a band is full we skip it without scanning it.
        self.taken_lower = 0
        self.taken_upper = 0

    def reserve(self, offset: int) -> None:
        if offset in self.reserved:
            return
        if offset not in self.allocated:
            self._count(offset, 1)
        self.reserved.add(offset)

    def take(self, offset: int) -> bool:
        if offset in self.allocated:
            return False
        if offset not in self.reserved:
            self._count(offset, 1)
        self.allocated.add(offset)
        return True

    def give_back(self, offset: int) -> bool:
        if offset not in self.allocated:
            return False
        self.allocated.remove(offset)
        if offset not in self.reserved:
            self._count(offset, -1)
        return True

    def take_next(self) -> int | None:
        upper_size = self.size - self.offset
        if self.taken_upper < upper_size:
            found = self._scan(self.offset, upper_size)
            if found is not None:
                return found
        if self.taken_lower < self.offset:
            return self._scan(0, self.offset)
        return None

    def _scan(self, base: int, band: int) -> int | None:
        # random() scaled, not randrange(): a tenth of the cost on every allocation, and the
        # start only has to be spread over the band, not exactly uniform.
        start = int(self.rng.random() * band)
        blocked_a, blocked_b = self.allocated, self.reserved
        for i in range(band):
            at = base + (start + i) % band
            if at not in blocked_a and at not in blocked_b:
                self.take(at)
                return at
        return None

    def _count(self, offset: int, delta: int) -> None:
        if offset < self.offset:
            self.taken_lower += delta
        else:
            self.taken_upper += delta


class _Counted:
    """The counts both allocators report, over the bands they keep in ``_bands``."""

    _bands: _Bands

    @property
    def size(self) -> int:
        """How many values can be allocated at all."""
        return self._bands.size

    @property
    def used(self) -> int:
        return len(self._bands.allocated)

    @property
    def free(self) -> int:
        return self._bands.size - len(self._bands.allocated)


class IPAllocator(_Counted):
    """ClusterIPs out of one service CIDR (IPv4 or IPv6)."""

    def __init__(
        self,
        cidr: str = DEFAULT_SERVICE_CIDR,
        reserved: Iterable[str] = (),
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.network = ipaddress.ip_network(cidr, strict=True)
        self.cidr = str(self.network)
        total = self.network.num_addresses
        # IPv4: neither the network nor the broadcast address; IPv6: not the subnet-router one.
        size = total - 2 if self.network.version == 4 else min(total, _MAX_IPV6_RANGE) - 1
        size = max(size, 0)
        # The first allocatable address: offset 0 is network address + 1.
        self._base = int(self.network.network_address) + 1
        self._bands = _Bands(
            size, static_band_size(total, step=16, upper=256), rng or random.Random()
        )
        for ip in reserved:
            offset = self._offset(ip)
            if offset is None:
                raise ValueError(f"reserved address {ip} is not allocatable in {self.cidr}")
            self._bands.reserve(offset)

    @property
    def static_band(self) -> tuple[str, str] | None:
        """First and last address of the band left for specific requests (None: no band)."""
        if self._bands.offset == 0:
            return None
        return self._ip(0), self._ip(self._bands.offset - 1)

    def contains(self, ip: str) -> bool:
        """Whether ``ip`` is an allocatable address of this range."""
        return self._offset(ip) is not None

    def has(self, ip: str) -> bool:
        """Whether ``ip`` is allocated now."""
        offset = self._offset(ip)
        return offset is not None and offset in self._bands.allocated

    def allocate(self) -> str:
        """A free address, from the dynamic band first; ``AllocationError(FULL)`` if none."""
        offset = self._bands.take_next()
        if offset is None:
            raise AllocationError(
                AllocationErrorKind.FULL,
                None,
                ERR_FULL,
                f"failed to allocate a serviceIP: {ERR_FULL}",
            )
        return self._ip(offset)

    def allocate_specific(self, ip: str) -> str:
        """Allocate ``ip`` (returned in canonical form) or raise ``AllocationError`` saying why."""
        offset = self._check(ip)
        if not self._bands.take(offset):
            raise self._error(AllocationErrorKind.ALREADY_ALLOCATED, ip, ERR_IP_ALLOCATED)
        return self._ip(offset)

    def check_specific(self, ip: str) -> str:
        """What ``allocate_specific`` would do, without allocating (for dryRun)."""
        offset = self._check(ip)
        if offset in self._bands.allocated:
            raise self._error(AllocationErrorKind.ALREADY_ALLOCATED, ip, ERR_IP_ALLOCATED)
        return self._ip(offset)

    def release(self, ip: str) -> bool:
        """Free ``ip``; like upstream, releasing a free or out-of-range address is a no-op."""
        offset = self._offset(ip)
        return offset is not None and self._bands.give_back(offset)

    def restore(self, ips: Iterable[str]) -> list[AllocationError]:
        """Mark addresses found in stored Services as allocated (at startup).

        Returns the ones that could not be (a duplicate, or outside a changed CIDR) so the
        caller can report them, as upstream's repair controller does; the rest are allocated.
        """
        problems: list[AllocationError] = []
        for ip in ips:
            try:
                self.allocate_specific(ip)
            except AllocationError as e:
                problems.append(e)
        return problems

    def allocated(self) -> list[str]:
        """Every allocated address, in address order."""
        return [self._ip(offset) for offset in sorted(self._bands.allocated)]

    # -- internals ---------------------------------------------------------------------------

    def _ip(self, offset: int) -> str:
        n = self._base + offset
        if self.network.version == 4:
            # ipaddress's own formatting, without building an address object (every create).
            return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        return str(ipaddress.ip_address(n))

    def _parse(self, ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(ip)
        except ValueError:
            return None

    def _offset(self, ip: str) -> int | None:
        addr = self._parse(ip)
        if addr is None or addr.version != self.network.version or addr not in self.network:
            return None
        offset = int(addr) - self._base
        if offset < 0 or offset >= self._bands.size:
            return None
        return offset

    def _check(self, ip: str) -> int:
        if self._parse(ip) is None:
            # Upstream validation rejects malformed IPs before allocation; should one get here,
            # kube-apiserver answers an InternalError with this text.
            message = f'failed to parse service IP "{ip}"'
            raise AllocationError(AllocationErrorKind.INVALID, ip, message, message)
        offset = self._offset(ip)
        if offset is None:
            message = (
                f"the provided IP ({ip}) is not in the valid range. "
                f"The range of valid IPs is {self.cidr}"
            )
            raise self._error(AllocationErrorKind.OUT_OF_RANGE, ip, message)
        return offset

    def _error(self, kind: AllocationErrorKind, ip: str, message: str) -> AllocationError:
        return AllocationError(kind, ip, message, f"failed to allocate IP {ip}: {message}")


class PortAllocator(_Counted):
    """NodePorts out of ``low..high`` (inclusive), one pool for every protocol, as upstream."""

    def __init__(
        self,
        low: int = DEFAULT_NODE_PORT_LOW,
        high: int = DEFAULT_NODE_PORT_HIGH,
        reserved: Iterable[int] = (),
        *,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < low <= high <= 65535:
            raise ValueError(f"invalid port range {low}-{high}")
        self.low = low
        self.high = high
        size = high - low + 1
        self._bands = _Bands(
            size, static_band_size(size, step=32, upper=128), rng or random.Random()
        )
        for port in reserved:
            if not self.contains(port):
                raise ValueError(f"reserved port {port} is not in {self.range}")
            self._bands.reserve(port - low)

    @property
    def range(self) -> str:
        """The range as upstream prints it: ``30000-32767``."""
        return f"{self.low}-{self.high}"

    @property
    def static_band(self) -> tuple[int, int] | None:
        if self._bands.offset == 0:
            return None
        return self.low, self.low + self._bands.offset - 1

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def has(self, port: int) -> bool:
        return self.contains(port) and (port - self.low) in self._bands.allocated

    def allocate(self) -> int:
        offset = self._bands.take_next()
        if offset is None:
            raise AllocationError(
                AllocationErrorKind.FULL,
                None,
                ERR_FULL,
                f"failed to allocate a nodePort: {ERR_FULL}",
            )
        return self.low + offset

    def allocate_specific(self, port: int) -> int:
        self._check(port)
        if not self._bands.take(port - self.low):
            raise self._error(AllocationErrorKind.ALREADY_ALLOCATED, port, ERR_PORT_ALLOCATED)
        return port

    def check_specific(self, port: int) -> int:
        """What ``allocate_specific`` would do, without allocating (for dryRun)."""
        self._check(port)
        if (port - self.low) in self._bands.allocated:
            raise self._error(AllocationErrorKind.ALREADY_ALLOCATED, port, ERR_PORT_ALLOCATED)
        return port

    def release(self, port: int) -> bool:
        return self.contains(port) and self._bands.give_back(port - self.low)

    def restore(self, ports: Iterable[int]) -> list[AllocationError]:
        """Mark ports found in stored Services as allocated; returns those that could not be.

        A Service may use the same nodePort for TCP and UDP of one port number, so callers
        pass each distinct port of a Service once.
        """
        problems: list[AllocationError] = []
        for port in ports:
            try:
                self.allocate_specific(port)
            except AllocationError as e:
                problems.append(e)
        return problems

    def allocated(self) -> list[int]:
        return [self.low + offset for offset in sorted(self._bands.allocated)]

    def _check(self, port: int) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or port <= 0:
            message = f"invalid port {port!r}"
            raise AllocationError(AllocationErrorKind.INVALID, port, message, message)
        if not self.contains(port):
            message = (
                f"provided port is not in the valid range. The range of valid ports is {self.range}"
            )
            raise self._error(AllocationErrorKind.OUT_OF_RANGE, port, message)

    def _error(self, kind: AllocationErrorKind, port: int, message: str) -> AllocationError:
        # Upstream puts the allocator's text as is in the spec.ports[i].nodePort field error.
        return AllocationError(kind, port, message, message)
