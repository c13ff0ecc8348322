"""The network interface: on-board RAM, a DMA channel, receive and send-completion interrupts.

Each interface's RAM is a *window* of the node's physical memory (the top of RAM, one page
aligned; ``NIC_CMD_WINDOW`` tells software where): a kernel-only interface leaves the window out
of every user address space, a user-level interface is the same window mapped into a process.
The RAM holds `tx_slots` transmit and `rx_slots` receive slots, each a 32-byte header and room
for the largest packet:

    +0  state    TX: 0 free, 1 go (software hands the slot over: the mapped send), 2 the
                 interface's (a DMA send in progress);  RX: 0 free, 1 full
    +4  node     TX: destination;  RX: source
    +8  port
    +12 length   bytes of payload
    +16 copies   CPU copies software made of this message so far (software's declaration)
    +20 message  the message's number (for reports)
    +32 payload

Two ways to send.  The kernel path: software sets DEST, PORT, ADDR, LEN and writes
``NIC_CMD_SEND``; the interface takes a free slot at once (or answers ``NIC_RAM_FULL``) and at the
next service its DMA channel copies the buffer from main memory into the slot and injects the
packet; TX_FREED then counts the buffer as reusable and IRQ_NIC_TX is raised.  Until then the
buffer belongs to the interface: a sender that writes it earlier sends what it wrote (the seeds'
non-blocking send hazard).  The mapped path: software writes header and payload into a free TX
slot and sets its state to 1; the next service injects it without any DMA, and the slot returns
to state 0 (with IRQ_NIC_TX) when the packet has ended.

Receiving: the network writes each arriving packet into a receive slot (reserved when the head
reaches the node: a node whose slots are all full holds packets back in the network) and raises
IRQ_NIC_RX at the next service.  ``NIC_CMD_RECV`` copies the oldest full slot matching PORT (or
any, with ``NIC_ANY_PORT``) to ADDR by DMA and frees it; mapped software reads the slot and
writes state 0 itself.

Copies are counted per message: the hardware records its own (``dma`` between main memory and
interface RAM, ``wire`` from one interface's RAM to another's); the CPU's copies are declared by
the software that makes them (``PORT_NIC_COPIES``, or the slot header's copies word).
The *service* is run by whoever drives the cluster's clock at each quantum boundary.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from toyvisor.isa.spec import (
    IRQ_NIC_RX,
    IRQ_NIC_TX,
    M32,
    NIC_ANY_PORT,
    NIC_BAD_ADDRESS,
    NIC_BAD_COMMAND,
    NIC_CMD_RECV,
    NIC_CMD_SEND,
    NIC_CMD_WINDOW,
    NIC_EMPTY,
    NIC_NO_NODE,
    NIC_OK,
    NIC_PORT_STRIDE,
    NIC_RAM_FULL,
    NIC_TOO_BIG,
    PAGE_SIZE,
    PORT_NIC_ADDR,
    PORT_NIC_CMD,
    PORT_NIC_COPIES,
    PORT_NIC_DEST,
    PORT_NIC_LEN,
    PORT_NIC_NODE,
    PORT_NIC_NODES,
    PORT_NIC_PORT,
    PORT_NIC_RX_COUNT,
    PORT_NIC_RX_LEN,
    PORT_NIC_RX_PORT,
    PORT_NIC_RX_SRC,
    PORT_NIC_STATUS,
    PORT_NIC_TX_FAILED,
    PORT_NIC_TX_FREED,
    PORT_NIC_TX_ISSUED,
)

from .errors import NetworkError

SLOT_HEADER = 32
TX_FREE, TX_GO, TX_BUSY = 0, 1, 2
RX_FREE, RX_FULL = 0, 1
#: bytes the interface adds to each packet on the wire (source, destination, port, length)
WIRE_HEADER = 8


@attrs.frozen
class InterfaceConfig:
    """The interface's size: the largest payload and the number of slots each way."""

    max_packet: int = 1024
    tx_slots: int = 8
    rx_slots: int = 8

    def __attrs_post_init__(self) -> None:
        for name in ("max_packet", "tx_slots", "rx_slots"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NetworkError(f"interface {name} must be a whole number ≥ 1, not {value!r}")
        if self.max_packet % 4:
            raise NetworkError(f"interface max_packet must be a multiple of 4, not {self.max_packet}")

    @property
    def slot_size(self) -> int:
        return SLOT_HEADER + self.max_packet

    @property
    def window_size(self) -> int:
        size = (self.tx_slots + self.rx_slots) * self.slot_size
        return -(-size // PAGE_SIZE) * PAGE_SIZE


class Message:
    """One message's life, filled in as it goes (ticks of the one clock)."""

    __slots__ = ("id", "src", "dst", "port", "size", "interface", "commanded", "injected",
                 "arrived", "received", "hops", "path", "status", "reason", "copies", "payload",
                 "mapped", "slot")

    def __init__(self, mid, src, dst, port, size, interface, commanded, mapped):
        self.id, self.src, self.dst, self.port, self.size = mid, src, dst, port, size
        self.interface = interface
        self.commanded = commanded
        self.injected = self.arrived = self.received = None
        self.hops = 0
        self.path: tuple[int, ...] = ()
        self.status = "queued"
        self.reason = ""
        self.copies: list[str] = []
        self.payload = b""
        self.mapped = mapped
        self.slot = None

    def to_dict(self) -> dict:
        latency = None if self.received is None else self.received - self.commanded
        network = None if self.arrived is None or self.injected is None \
            else self.arrived - self.injected
        return {
            "id": self.id, "src": self.src, "dst": self.dst, "port": self.port,
            "bytes": self.size, "interface": self.interface,
            "path": "mapped" if self.mapped else "kernel",
            "sent": self.commanded, "injected": self.injected, "arrived": self.arrived,
            "received": self.received, "latency": latency, "network_latency": network,
            "hops": self.hops, "route": list(self.path), "status": self.status,
            "reason": self.reason, "copies": len(self.copies), "copy_path": list(self.copies),
        }


class NetworkInterface:
    """One interface of one node.  `new_message(src, dst, port, size, interface, now, mapped)`
    is the cluster's numbering of messages; `clock()` reads the node's clock."""

    def __init__(self, index: int, node: int, nodes: int, memory, pic,
                 config: InterfaceConfig, clock: Callable[[], int],
                 new_message: Callable[..., Message]) -> None:
        self.index, self.node, self.nodes = index, node, nodes
        self.memory, self.pic, self.config = memory, pic, config
        self.clock = clock
        self.new_message = new_message
        base = memory.size - (index + 1) * config.window_size
        base -= base % PAGE_SIZE
        if base < PAGE_SIZE:
            raise NetworkError(
                f"node {node}: {memory.size} bytes of RAM leave no room for interface RAM "
                f"({config.window_size} bytes per interface)"
            )
        self.window = base
        self.irq_rx = IRQ_NIC_RX + 2 * index
        self.irq_tx = IRQ_NIC_TX + 2 * index
        self.dest = self.port = self.addr = self.length = 0
        self.status = NIC_OK
        self.issued = self.freed = self.failed = 0
        self.pending_copies = 0
        self.last_received: Message | None = None
        self.dma: list[tuple[int, Message]] = []   # (slot, message) waiting for the DMA channel
        self.in_flight: dict[int, int] = {}        # message id → TX slot (mapped and kernel)
        self.rx_order: list[int] = []              # full RX slots, oldest first
        self.rx_reserved: dict[int, int] = {}      # message id → RX slot reserved for it
        self.mapped_received: dict[int, Message] = {}  # RX slot → message, for mapped reads
        self.rx_messages: dict[int, Message] = {}  # RX slot → message
        self.raise_rx = self.raise_tx = False
        self.dead = False
        self.dma_bytes = 0

    # -- slot addresses ---------------------------------------------------------------------------

    def tx_slot(self, i: int) -> int:
        return self.window + i * self.config.slot_size

    def rx_slot(self, i: int) -> int:
        return self.window + (self.config.tx_slots + i) * self.config.slot_size

    def _state(self, slot_address: int) -> int:
        return self.memory.read32(slot_address)

    # -- ports --------------------------------------------------------------------------------------

    def ports(self) -> dict[int, tuple]:
        """Port → (reader, writer), for the platform's port table."""
        off = NIC_PORT_STRIDE * self.index

        def setter(name):
            def write(v: int) -> None:
                setattr(self, name, v & M32)
            return write

        return {
            PORT_NIC_NODE + off: (lambda: self.node, None),
            PORT_NIC_NODES + off: (lambda: self.nodes, None),
            PORT_NIC_DEST + off: (lambda: self.dest, setter("dest")),
            PORT_NIC_PORT + off: (lambda: self.port, setter("port")),
            PORT_NIC_ADDR + off: (lambda: self.addr, setter("addr")),
            PORT_NIC_LEN + off: (lambda: self.length, setter("length")),
            PORT_NIC_CMD + off: (None, self.command),
            PORT_NIC_STATUS + off: (lambda: self.status, None),
            PORT_NIC_RX_COUNT + off: (lambda: len(self._waiting()), None),
            PORT_NIC_RX_SRC + off: (lambda: self._peek(4), None),
            PORT_NIC_RX_PORT + off: (lambda: self._peek(8), None),
            PORT_NIC_RX_LEN + off: (lambda: self._peek(12), None),
            PORT_NIC_TX_ISSUED + off: (lambda: self.issued & M32, None),
            PORT_NIC_TX_FREED + off: (lambda: self.freed & M32, None),
            PORT_NIC_TX_FAILED + off: (lambda: self.failed & M32, None),
            PORT_NIC_COPIES + off: (None, self.copied),
        }

    def attach(self, platform) -> None:
        """Answer this interface's ports on `platform` (its port table is the device bus)."""
        platform.ports.update(self.ports())

    def _waiting(self) -> list[int]:
        self._sync_rx()
        if self.port == NIC_ANY_PORT:
            return self.rx_order
        return [s for s in self.rx_order if self.memory.read32(self.rx_slot(s) + 8) == self.port]

    def _peek(self, offset: int) -> int:
        waiting = self._waiting()
        return self.memory.read32(self.rx_slot(waiting[0]) + offset) if waiting else 0

    def _sync_rx(self) -> None:
        """Slots software freed itself (mapped receive) leave the queue."""
        if any(self.memory.read32(self.rx_slot(s)) != RX_FULL for s in self.rx_order):
            now = self.clock()
            keep = []
            for s in self.rx_order:
                if self.memory.read32(self.rx_slot(s)) == RX_FULL:
                    keep.append(s)
                else:
                    m = self.rx_messages.pop(s)
                    m.received = now
                    declared = self.memory.read32(self.rx_slot(s) + 16)
                    m.copies += ["cpu"] * max(0, declared - m.copies.count("cpu"))
                    m.status = "received"
            self.rx_order = keep

    # -- commands -------------------------------------------------------------------------------------

    def copied(self, value: int) -> None:
        if self.last_received is not None:
            self.last_received.copies += ["cpu"] * value
        else:
            self.pending_copies += value

    def command(self, value: int) -> None:
        if self.dead:
            self.status = NIC_BAD_COMMAND
            return
        if value == NIC_CMD_SEND:
            self.last_received = None
            self.status = self._send()
        elif value == NIC_CMD_RECV:
            self.status = self._receive()
        elif value == NIC_CMD_WINDOW:
            self.addr = self.window
            self.status = NIC_OK
        else:
            self.status = NIC_BAD_COMMAND

    def _send(self) -> int:
        if not 0 <= self.dest < self.nodes:
            return NIC_NO_NODE
        if self.length > self.config.max_packet:
            return NIC_TOO_BIG
        if self.addr + self.length > self.memory.size:
            return NIC_BAD_ADDRESS
        slot = next((i for i in range(self.config.tx_slots)
                     if self._state(self.tx_slot(i)) == TX_FREE), None)
        if slot is None:
            return NIC_RAM_FULL
        self.memory.write32(self.tx_slot(slot), TX_BUSY)
        m = self.new_message(self.node, self.dest, self.port, self.length, self.index,
                             self.clock(), False)
        m.copies += ["cpu"] * self.pending_copies
        self.pending_copies = 0
        m.slot = (slot, self.addr)
        self.dma.append((slot, m))
        self.issued += 1
        return NIC_OK

    def _receive(self) -> int:
        waiting = self._waiting()
        if not waiting:
            return NIC_EMPTY
        s = waiting[0]
        base = self.rx_slot(s)
        length = self.memory.read32(base + 12)
        if length > self.length:
            return NIC_TOO_BIG
        if self.addr + length > self.memory.size:
            return NIC_BAD_ADDRESS
        self.memory.write(self.addr, self.memory.read(base + SLOT_HEADER, length))
        self.dma_bytes += length
        self.memory.write32(base, RX_FREE)
        self.rx_order.remove(s)
        m = self.rx_messages.pop(s)
        m.copies.append("dma")
        m.received = self.clock()
        m.status = "received"
        self.last_received = m
        return NIC_OK

    # -- the service, at quantum boundaries --------------------------------------------------------

    def service(self, now: int) -> list[Message]:
        """Run the DMA channel and pick up mapped sends; returns the messages to inject now."""
        out = []
        for slot, m in self.dma:
            addr = m.slot[1]
            data = self.memory.read(addr, m.size)
            base = self.tx_slot(slot)
            self._write_header(base, TX_BUSY, m.dst, m.port, m.size, len(m.copies), m.id)
            self.memory.write(base + SLOT_HEADER, data)
            self.dma_bytes += m.size
            m.copies.append("dma")
            m.payload = data
            m.slot = slot
            self.freed += 1
            self.raise_tx = True
            out.append(m)
        self.dma = []
        for i in range(self.config.tx_slots):
            base = self.tx_slot(i)
            if self._state(base) == TX_GO:
                dest = self.memory.read32(base + 4)
                port = self.memory.read32(base + 8)
                length = self.memory.read32(base + 12)
                declared = self.memory.read32(base + 16)
                m = self.new_message(self.node, dest, port, min(length, M32), self.index,
                                     now, True)
                if not 0 <= dest < self.nodes or length > self.config.max_packet:
                    # a mapped send is checked here: the error lands in the slot's state word
                    m.status, m.reason = "failed", ("no such node" if length <= self.config.max_packet
                                                    else "too big")
                    self.memory.write32(base, 0x80000000 | (NIC_NO_NODE if m.reason == "no such node"
                                                            else NIC_TOO_BIG))
                    self.failed += 1
                    self.raise_tx = True
                    continue
                m.copies += ["cpu"] * declared
                m.payload = self.memory.read(base + SLOT_HEADER, length)
                self.memory.write32(base, TX_BUSY)
                self.memory.write32(base + 20, m.id)
                m.slot = i
                out.append(m)
        for m in out:
            m.injected = now
            self.in_flight[m.id] = m.slot
        return out

    def raise_interrupts(self) -> None:
        if self.raise_rx:
            self.pic.raise_irq(self.irq_rx)
            self.raise_rx = False
        if self.raise_tx:
            self.pic.raise_irq(self.irq_tx)
            self.raise_tx = False

    def _write_header(self, base, state, node, port, length, copies, mid) -> None:
        w = self.memory.write32
        w(base + 4, node)
        w(base + 8, port)
        w(base + 12, length)
        w(base + 16, copies)
        w(base + 20, mid)
        w(base, state)

    # -- the network's side -------------------------------------------------------------------------

    def reserve(self, mid: int) -> bool:
        """Take a free receive slot for message `mid` (False: the interface RAM is full)."""
        if mid in self.rx_reserved:
            return True
        self._sync_rx()
        taken = set(self.rx_order) | set(self.rx_reserved.values())
        for i in range(self.config.rx_slots):
            if i not in taken and self.memory.read32(self.rx_slot(i)) == RX_FREE:
                self.rx_reserved[mid] = i
                return True
        return False

    def arrive(self, m: Message) -> bool:
        """Message `m` has arrived whole: into its reserved slot (the wire copy).  A message a
        node sent itself never reserved one: it takes a free slot now, or (False) finds none."""
        if m.id not in self.rx_reserved and not self.reserve(m.id):
            return False
        s = self.rx_reserved.pop(m.id)
        base = self.rx_slot(s)
        self.memory.write(base + SLOT_HEADER, m.payload)
        m.copies.append("wire")
        self._write_header(base, RX_FULL, m.src, m.port, m.size, m.copies.count("cpu"), m.id)
        self.rx_order.append(s)
        self.rx_messages[s] = m
        self.raise_rx = True
        return True

    def unreserve(self, mid: int) -> None:
        self.rx_reserved.pop(mid, None)

    def sent_off(self, m: Message, failed: bool) -> None:
        """The network is done with `m` (delivered or failed): its TX slot is free again."""
        slot = self.in_flight.pop(m.id, None)
        if slot is not None:
            self.memory.write32(self.tx_slot(slot), TX_FREE)
            if m.mapped:
                self.raise_tx = True
        if failed:
            self.failed += 1
            self.raise_tx = True
