"""The platform devices of docs/machine.md, reached with port I/O.

`Platform` is one CPU's view: its clock (in ticks), local interrupt controller and local timer,
and the port dispatch table; `SharedDevices` holds what every CPU shares (the console, the block
device and the IO-APIC-like redirection of their IRQ lines).  Devices hold no reference to a CPU;
they raise interrupt lines on a controller, and CPUs poll their own before each instruction.

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
    IPI_SHORTHAND_MASK,
    IPI_TO_DEST,
    IPI_TO_OTHERS,
    IRQ_TIMER,
    M32,
    MAX_CPUS,
    NUM_IPI_VECTORS,
    NUM_IRQS,
    PORT_CPU_COUNT,
    PORT_CPU_START,
    PORT_IPI_DEST,
    PORT_IPI_SEND,
    PORT_IRQ_ROUTE_CPU,
    PORT_IRQ_ROUTE_LINE,
    PORT_SMP_STATUS,
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
    SMP_BAD_ADDRESS,
    SMP_BAD_LINE,
    SMP_BAD_VECTOR,
    SMP_BUSY,
    SMP_NO_CPU,
    SMP_OK,
    VEC_IPI0,
    VEC_IRQ0,
)

from .memory import PhysicalMemory

#: What reading a port nobody answers gives.
UNUSED_PORT = 0xFFFFFFFF
IRQ_LINES = (1 << NUM_IRQS) - 1


class InterruptController:
    """A CPU's local interrupt controller: pending and mask bits for the 16 IRQ lines (vectors
    32..47) and pending bits for the 16 IPI vectors 48..63 (lines 16..31, never masked); the
    lowest-numbered pending unmasked line wins."""

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


class IORedirection:
    """The IO-APIC-like redirection of the shared devices' IRQ lines: each line goes to the local
    interrupt controller of one CPU (CPU 0 at reset).  Devices raise and lower lines here.

    Re-routing a line moves its pending bit with it, so a level-triggered line (console input)
    stays pending on whichever CPU now receives it."""

    def __init__(self) -> None:
        #: the local controllers, by CPU number
        self.controllers: list[InterruptController] = []
        #: line -> CPU number
        self.routes = [0] * NUM_IRQS
        # lines raised before CPU 0's controller was attached (console input at power-on)
        self._early = 0

    def attach(self, controller: InterruptController) -> None:
        """Add the next CPU's local controller."""
        self.controllers.append(controller)
        if len(self.controllers) == 1:
            controller.pending |= self._early
            self._early = 0

    def raise_irq(self, line: int) -> None:
        if not self.controllers:
            self._early |= 1 << line
            return
        self.controllers[self.routes[line]].raise_irq(line)

    def lower_irq(self, line: int) -> None:
        if not self.controllers:
            self._early &= ~(1 << line)
            return
        self.controllers[self.routes[line]].lower_irq(line)

    def route(self, line: int, cpu: int) -> None:
        old = self.controllers[self.routes[line]]
        self.routes[line] = cpu
        if old.pending >> line & 1:
            old.lower_irq(line)
            self.controllers[cpu].raise_irq(line)


class SharedDevices:
    """What every CPU of a machine shares: the console, the disk and the IRQ redirection, plus
    the CPUs' views (`Platform`) so that IPIs and start-ups reach them.

    ``on_start(cpu, entry, clock)`` is installed by the machine: it starts a CPU waiting for its
    start IPI and returns False when that CPU has been started already."""

    def __init__(self, memory: PhysicalMemory, console_input: bytes = b"",
                 disk: bytes | None = None) -> None:
        self.memory = memory
        self.router = IORedirection()
        self.console = Console(self.router, console_input)
        self.disk = BlockDevice(self.router, memory, disk)
        self.platforms: list[Platform] = []
        self.on_start: Callable[[int, int, int], bool] | None = None
        #: called as ``can_wake(cpu)``: whether another CPU could still send `cpu` an IPI
        self.peers_running: Callable[[int], bool] = lambda _cpu: False

    @property
    def count(self) -> int:
        return len(self.platforms)


class Platform:
    """One CPU's view of the machine's devices: its own clock (ticks), local interrupt
    controller and local timer, and the devices every CPU shares (`SharedDevices`).

    `clock` counts this CPU's ticks: it adds one per retired instruction and advances over idle
    time.  During the execution of an instruction it already includes that instruction, so I/O
    sees the time at which the instruction takes effect.  ``Platform(memory, input, disk)`` makes
    a one-CPU machine's devices; `add_cpu` gives another CPU its view of the same devices.
    """

    def __init__(self, memory: PhysicalMemory, console_input: bytes = b"",
                 disk: bytes | None = None, *, shared: SharedDevices | None = None) -> None:
        if shared is None:
            shared = SharedDevices(memory, console_input, disk)
        self.memory = memory
        self.shared = shared
        #: this CPU's number
        self.index = shared.count
        self.clock = 0
        #: port reads and writes that reached these devices (the cost model's `port_io`)
        self.port_accesses = 0
        self.pic = InterruptController()
        self.timer = Timer(self.pic)
        self.console = shared.console
        self.disk = shared.disk
        #: IPIs this CPU sent (one per destination CPU) and received
        self.ipis_sent = 0
        self.ipis_received = 0
        #: the IPI destination register and the status of the last SMP operation
        self.ipi_dest = 0
        self.smp_status = SMP_OK
        self.route_line = 0
        shared.platforms.append(self)
        shared.router.attach(self.pic)
        pic, timer, console, disk_, router = (self.pic, self.timer, self.console, self.disk,
                                              shared.router)

        def set_mask(v: int) -> None:
            pic.mask = v & IRQ_LINES

        def set_sector(v: int) -> None:
            disk_.sector = v

        def set_address(v: int) -> None:
            disk_.address = v

        def set_dest(v: int) -> None:
            self.ipi_dest = v

        def set_line(v: int) -> None:
            self.route_line = v

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
            PORT_CPU_COUNT: (lambda: shared.count, None),
            PORT_IPI_DEST: (lambda: self.ipi_dest, set_dest),
            PORT_IPI_SEND: (None, self.send_ipi),
            PORT_CPU_START: (None, self.start_cpu),
            PORT_SMP_STATUS: (lambda: self.smp_status, None),
            PORT_IRQ_ROUTE_LINE: (lambda: self.route_line, set_line),
            PORT_IRQ_ROUTE_CPU: (
                lambda: router.routes[self.route_line] if self.route_line < NUM_IRQS
                else UNUSED_PORT, self.route_irq),
        }

    def add_cpu(self) -> Platform:
        """The view of the next CPU of this machine (sharing memory, console, disk, routing)."""
        if self.shared.count >= MAX_CPUS:
            raise ValueError(f"a machine has at most {MAX_CPUS} CPUs")
        return Platform(self.memory, shared=self.shared)

    @property
    def smp(self) -> bool:
        """Whether other CPUs share these devices (the machine then idles a halted CPU slice by
        slice instead of jumping its clock to the next timer deadline)."""
        return self.shared.count > 1

    # -- the multiprocessor's ports ---------------------------------------------------------------
    def send_ipi(self, value: int) -> None:
        """IPI_SEND: vector in bits 0-7, destination shorthand in bits 8-9."""
        vector = value & 0xFF
        shorthand = value & IPI_SHORTHAND_MASK
        platforms = self.shared.platforms
        if not VEC_IPI0 <= vector < VEC_IPI0 + NUM_IPI_VECTORS or shorthand == IPI_SHORTHAND_MASK:
            self.smp_status = SMP_BAD_VECTOR
            return
        if shorthand == IPI_TO_DEST:
            if self.ipi_dest >= len(platforms):
                self.smp_status = SMP_NO_CPU
                return
            targets = [platforms[self.ipi_dest]]
        elif shorthand == IPI_TO_OTHERS:
            targets = [p for p in platforms if p is not self]
        else:
            targets = platforms
        line = vector - VEC_IRQ0
        for target in targets:
            target.pic.raise_irq(line)
            target.ipis_received += 1
        self.ipis_sent += len(targets)
        self.smp_status = SMP_OK

    def start_cpu(self, entry: int) -> None:
        """CPU_START: start the CPU named by IPI_DEST at physical/linear address `entry`."""
        dest = self.ipi_dest
        if dest >= self.shared.count:
            self.smp_status = SMP_NO_CPU
        elif entry & 3 or entry > self.memory.size - 4:
            self.smp_status = SMP_BAD_ADDRESS
        elif self.shared.on_start is None or not self.shared.on_start(dest, entry, self.clock):
            self.smp_status = SMP_BUSY
        else:
            self.ipis_sent += 1
            self.shared.platforms[dest].ipis_received += 1
            self.smp_status = SMP_OK

    def route_irq(self, cpu: int) -> None:
        """IRQ_ROUTE_CPU: send the line selected by IRQ_ROUTE_LINE to CPU `cpu`."""
        if self.route_line >= NUM_IRQS:
            self.smp_status = SMP_BAD_LINE
        elif cpu >= self.shared.count:
            self.smp_status = SMP_NO_CPU
        else:
            self.shared.router.route(self.route_line, cpu)
            self.smp_status = SMP_OK

    # -- port dispatch ----------------------------------------------------------------------------
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
        """Whether an interrupt could ever arrive for a halted CPU (without outside help): one is
        pending, its timer runs unmasked, or another CPU still runs and could send an IPI."""
        pic = self.pic
        return bool(pic.deliverable()) or (
            self.timer.deadline is not None and not pic.mask & (1 << IRQ_TIMER)
        ) or (self.shared.count > 1 and self.shared.peers_running(self.index))


__all__ = [
    "BlockDevice",
    "Console",
    "IORedirection",
    "InterruptController",
    "Platform",
    "SharedDevices",
    "Timer",
    "UNUSED_PORT",
]
