"""The platform devices of docs/machine.md, reached with port I/O.

`Platform` owns the machine-wide state every CPU shares: the clock (in ticks), the interrupt
controller, the timer, the console and the block device, and the port dispatch table.  Devices
hold no reference to a CPU; they raise interrupt lines on the controller, and CPUs poll it before
each instruction.

Reset state (what a guest finds at power-on): the clock is 0, the timer is stopped (period 0), no
IRQ line is masked (PIC_MASK = 0), IRQ 1 is pending if console input is waiting, the disk status
is 0 and sector 0 / DMA address 0 are selected.
"""

from __future__ import annotations

from collections.abc import Callable

from toyvisor.isa.spec import (
    DISK_BAD_ADDRESS,
    DISK_BAD_SECTOR,
    DISK_CMD_READ,
    DISK_CMD_WRITE,
    DISK_OK,
    IRQ_CONSOLE,
    IRQ_DISK,
    IRQ_TIMER,
    M32,
    NUM_IRQS,
    PORT_CLOCK,
    PORT_CONSOLE_DATA,
    PORT_CONSOLE_STATUS,
    PORT_DISK_ADDR,
    PORT_DISK_CMD,
    PORT_DISK_SECTOR,
    PORT_DISK_SECTORS,
    PORT_DISK_STATUS,
    PORT_PIC_MASK,
    PORT_PIC_PENDING,
    PORT_TIMER_PERIOD,
    SECTOR_SIZE,
)

from .memory import PhysicalMemory

#: What reading a port nobody answers gives.
UNUSED_PORT = 0xFFFFFFFF
IRQ_LINES = (1 << NUM_IRQS) - 1


class InterruptController:
    """Pending and mask bits for the 16 IRQ lines; the lowest-numbered unmasked line wins."""

    def __init__(self) -> None:
        self.pending = 0
        self.mask = 0

    def raise_irq(self, line: int) -> None:
        self.pending |= 1 << line

    def lower_irq(self, line: int) -> None:
        self.pending &= ~(1 << line)

    def deliverable(self) -> int:
        """Bit set of pending, unmasked lines."""
        return self.pending & ~self.mask

    def acknowledge(self) -> int | None:
        """Take the lowest pending unmasked line (auto end-of-interrupt), or None."""
        ready = self.pending & ~self.mask
        if not ready:
            return None
        line = (ready & -ready).bit_length() - 1
        self.pending &= ~(1 << line)
        return line


class Timer:
    """Raises IRQ 0 every `period` ticks, counted from the write of the period.

    ``deadline`` is the clock value at which IRQ 0 next becomes pending (None when stopped).  The
    write of TIMER_PERIOD takes effect when the `out` retires, so with period P exactly P further
    instructions (or idle ticks) run before the interrupt is pending.
    """

    def __init__(self, pic: InterruptController) -> None:
        self.pic = pic
        self.period = 0
        self.deadline: int | None = None

    def set_period(self, period: int, now: int) -> None:
        self.period = period & M32
        self.deadline = now + self.period if self.period else None

    def update(self, now: int) -> None:
        """Raise IRQ 0 if the deadline has passed (several expirations coalesce into one)."""
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            self.pic.raise_irq(IRQ_TIMER)
            self.deadline = deadline + ((now - deadline) // self.period + 1) * self.period


class Console:
    """A byte console: output is captured; input is a byte string offered one byte at a time.

    IRQ 1 is level-triggered: its line is pending whenever an input byte is waiting (at reset,
    after `feed`, and again after each read that leaves bytes waiting).
    """

    def __init__(self, pic: InterruptController, input: bytes = b"") -> None:
        self.pic = pic
        self.output = bytearray()
        self._input = bytearray(input)
        self._position = 0
        self._update_line()

    @property
    def waiting(self) -> int:
        """Number of input bytes not read yet."""
        return len(self._input) - self._position

    def feed(self, data: bytes) -> None:
        """Offer more input (raises IRQ 1)."""
        self._input += data
        self._update_line()

    def read(self) -> int:
        if self._position >= len(self._input):
            return UNUSED_PORT
        value = self._input[self._position]
        self._position += 1
        self._update_line()
        return value

    def write(self, value: int) -> None:
        self.output.append(value & 0xFF)

    @property
    def text(self) -> str:
        """The output decoded as UTF-8 (invalid bytes become U+FFFD)."""
        return self.output.decode("utf-8", errors="replace")

    def _update_line(self) -> None:
        if self.waiting:
            self.pic.raise_irq(IRQ_CONSOLE)
        else:
            self.pic.lower_irq(IRQ_CONSOLE)


class BlockDevice:
    """A disk of 512-byte sectors backed by a bytearray, transferring by DMA; raises IRQ 2.

    A command names the selected sector and the DMA physical address; it completes at once,
    sets the status (0 ok, 1 bad sector, 2 bad address: the 512 bytes are not all in RAM) and
    raises IRQ 2 whatever the outcome.  Unknown commands are ignored.
    """

    def __init__(self, pic: InterruptController, memory: PhysicalMemory,
                 data: bytes | None = None) -> None:
        self.pic = pic
        self.memory = memory
        self.data = bytearray()
        self.load(data)
        self.sector = 0
        self.address = 0
        self.status = DISK_OK
        self.reads = 0
        self.writes = 0

    def load(self, data: bytes | None) -> None:
        """Replace the disk's contents with `data`, padded to whole sectors."""
        data = bytes(data or b"")
        if len(data) % SECTOR_SIZE:
            data += bytes(SECTOR_SIZE - len(data) % SECTOR_SIZE)
        self.data[:] = data

    @property
    def sectors(self) -> int:
        return len(self.data) // SECTOR_SIZE

    def command(self, command: int) -> None:
        if command not in (DISK_CMD_READ, DISK_CMD_WRITE):
            return
        if self.sector >= self.sectors:
            self.status = DISK_BAD_SECTOR
        elif self.address + SECTOR_SIZE > self.memory.size:
            self.status = DISK_BAD_ADDRESS
        else:
            offset = self.sector * SECTOR_SIZE
            if command == DISK_CMD_READ:
                self.memory.write(self.address, self.data[offset:offset + SECTOR_SIZE])
                self.reads += 1
            else:
                self.data[offset:offset + SECTOR_SIZE] = self.memory.read(self.address, SECTOR_SIZE)
                self.writes += 1
            self.status = DISK_OK
        self.pic.raise_irq(IRQ_DISK)


class Platform:
    """The devices and the clock, shared by every CPU of a machine.

    `clock` counts ticks: CPUs add one per retired instruction and advance it over idle time.
    During the execution of an instruction it already includes that instruction, so I/O sees the
    time at which the instruction takes effect.
    """

    def __init__(self, memory: PhysicalMemory, console_input: bytes = b"",
                 disk: bytes | None = None) -> None:
        self.memory = memory
        self.clock = 0
        #: port reads and writes that reached these devices (the cost model's `port_io`)
        self.port_accesses = 0
        self.pic = InterruptController()
        self.timer = Timer(self.pic)
        self.console = Console(self.pic, console_input)
        self.disk = BlockDevice(self.pic, memory, disk)
        pic, timer, console, disk_ = self.pic, self.timer, self.console, self.disk

        def set_mask(v: int) -> None:
            pic.mask = v & IRQ_LINES

        def set_sector(v: int) -> None:
            disk_.sector = v

        def set_address(v: int) -> None:
            disk_.address = v

        #: port → (read function or None, write function or None)
        self.ports: dict[int, tuple[Callable[[], int] | None, Callable[[int], None] | None]] = {
            PORT_CONSOLE_DATA: (console.read, console.write),
            PORT_CONSOLE_STATUS: (lambda: 1 if console.waiting else 0, None),
            PORT_TIMER_PERIOD: (lambda: timer.period, lambda v: timer.set_period(v, self.clock)),
            PORT_CLOCK: (lambda: self.clock & M32, None),
            PORT_PIC_MASK: (lambda: pic.mask, set_mask),
            PORT_PIC_PENDING: (lambda: pic.pending, None),
            PORT_DISK_SECTOR: (lambda: disk_.sector, set_sector),
            PORT_DISK_ADDR: (lambda: disk_.address, set_address),
            PORT_DISK_CMD: (None, disk_.command),
            PORT_DISK_STATUS: (lambda: disk_.status, None),
            PORT_DISK_SECTORS: (lambda: disk_.sectors & M32, None),
        }

    def port_in(self, port: int) -> int:
        self.port_accesses += 1
        reader = self.ports.get(port, (None, None))[0]
        return UNUSED_PORT if reader is None else reader() & M32

    def port_out(self, port: int, value: int) -> None:
        self.port_accesses += 1
        writer = self.ports.get(port, (None, None))[1]
        if writer is not None:
            writer(value & M32)

    def ticks_to_next_event(self) -> int | None:
        """Ticks until the timer's next deadline (None when no timer runs)."""
        deadline = self.timer.deadline
        return None if deadline is None else deadline - self.clock

    def can_wake(self) -> bool:
        """Whether an interrupt could ever arrive for a halted CPU (without outside help)."""
        pic = self.pic
        return bool(pic.deliverable()) or (
            self.timer.deadline is not None and not pic.mask & (1 << IRQ_TIMER)
        )


__all__ = [
    "BlockDevice",
    "Console",
    "InterruptController",
    "Platform",
    "Timer",
    "UNUSED_PORT",
]
