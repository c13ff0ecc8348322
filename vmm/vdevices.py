"""The virtual devices of one VM: timer, console, block device and interrupt controller.

They are the platform's own device models (`toyvisor.cpu.devices.Platform`) instantiated once per
VM over the VM's *guest-physical* memory, so their behaviour is the bare machine's by
construction.  What makes them virtual:

- the clock is the VM's **virtual time**: the hypervisor advances it by the guest instructions the
  VM retires (directly or emulated) and by the idle ticks of a virtual ``hlt``, never by anything
  the VMM or another VM does, so the virtual timer raises IRQ 0 at exactly the guest instruction
  count at which the bare machine raises it;
- DMA goes through `GuestPhysicalMemory`, bounds-checked against the guest's memory size, so the
  disk can only ever write into the VM's own slice of host RAM;
- each VM has its own disk (a copy of the guest's image) and console.

Every port access made on the guest's behalf counts as a ``device_access`` event, and in a hosted
VMM also as a ``host_syscall`` (the host OS performs the I/O), plus one more for programming a
timer.
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.devices import Platform
from toyvisor.isa.spec import PORT_TIMER_PERIOD


@attrs.frozen
class DeviceState:
    """An immutable copy of a VM's devices (part of a snapshot)."""

    clock: int
    pic_pending: int
    pic_mask: int
    timer_period: int
    timer_deadline: int | None
    console_output: bytes
    console_input: bytes
    console_position: int
    disk: bytes
    disk_sector: int
    disk_address: int
    disk_status: int
    disk_reads: int
    disk_writes: int


class VirtualDevices:
    """The devices of one VM, reached by emulated ``in``/``out``."""

    def __init__(self, memory, console_input: bytes = b"", disk: bytes | None = None,
                 *, hosted: bool = False, events: dict[str, int] | None = None) -> None:
        self.platform = Platform(memory, bytes(console_input), disk)
        self.hosted = hosted
        self.events = events if events is not None else {}

    # -- the guest's view ------------------------------------------------------------------------

    @property
    def clock(self) -> int:
        return self.platform.clock

    @clock.setter
    def clock(self, value: int) -> None:
        self.platform.clock = value

    def _count(self, port: int, write: bool) -> None:
        events = self.events
        events["device_access"] = events.get("device_access", 0) + 1
        if self.hosted:
            calls = 2 if write and port == PORT_TIMER_PERIOD else 1
            events["host_syscall"] = events.get("host_syscall", 0) + calls

    def port_in(self, port: int) -> int:
        self._count(port, False)
        return self.platform.port_in(port)

    def port_out(self, port: int, value: int) -> None:
        self._count(port, True)
        self.platform.port_out(port, value)

    # -- snapshot --------------------------------------------------------------------------------

    def state(self) -> DeviceState:
        p = self.platform
        console, disk = p.console, p.disk
        return DeviceState(
            clock=p.clock, pic_pending=p.pic.pending, pic_mask=p.pic.mask,
            timer_period=p.timer.period, timer_deadline=p.timer.deadline,
            console_output=bytes(console.output), console_input=bytes(console._input),
            console_position=console._position, disk=bytes(disk.data), disk_sector=disk.sector,
            disk_address=disk.address, disk_status=disk.status, disk_reads=disk.reads,
            disk_writes=disk.writes)

    def load(self, state: DeviceState) -> None:
        p = self.platform
        p.clock = state.clock
        p.pic.pending, p.pic.mask = state.pic_pending, state.pic_mask
        p.timer.period, p.timer.deadline = state.timer_period, state.timer_deadline
        console, disk = p.console, p.disk
        console.output = bytearray(state.console_output)
        console._input = bytearray(state.console_input)
        console._position = state.console_position
        disk.data = bytearray(state.disk)
        disk.sector, disk.address, disk.status = (state.disk_sector, state.disk_address,
                                                  state.disk_status)
        disk.reads, disk.writes = state.disk_reads, state.disk_writes


__all__ = ["DeviceState", "VirtualDevices"]
