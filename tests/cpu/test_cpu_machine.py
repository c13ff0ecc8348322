"""The machine as a whole: loading, results, determinism, self-modifying code, the VMM seams."""

from __future__ import annotations

import json

import pytest
from cpu_asm import Segment, ImageStub, assemble, boot, run

from toyvisor.cpu import InstructionEvent, Machine, MachineError, Monitor, StopEvent, TrapEvent
from toyvisor.isa.encoding import encode
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.table import BY_MNEMONIC


def word(mnemonic, *values, pc=0) -> int:
    return int.from_bytes(encode(BY_MNEMONIC[mnemonic], values, pc)[:4], "little")


def test_load_places_segments_and_sets_the_entry():
    image = ImageStub(0x104, (Segment(0x100, b"\0" * 4 + encode(BY_MNEMONIC["hlt"], ())),
                              Segment(0x3000, b"data")), {})
    machine = Machine(memory_size=1 << 16)
    machine.load(image)
    assert machine.cpu.pc == 0x104 and machine.memory.read(0x3000, 4) == b"data"
    assert machine.run().stop_reason == "halted"


@pytest.mark.parametrize("segment", [Segment(0xFFFF, b"ab"), Segment(0x10000, b"a"),
                                     Segment(-4, b"a")])
def test_an_image_that_does_not_fit_is_a_machine_error(segment):
    machine = Machine(memory_size=1 << 16)
    with pytest.raises(MachineError, match="does not fit in 64 KiB") as info:
        machine.load(ImageStub(0, (segment,), {}))
    assert isinstance(info.value, ToyvisorError)


def test_an_entry_outside_ram_is_a_machine_error():
    with pytest.raises(MachineError, match="entry point"):
        Machine(memory_size=1 << 16).load(ImageStub(1 << 16, (), {}))


@pytest.mark.parametrize("size", [0, 4095, 1 << 33, -4096, "big"])
def test_bad_memory_sizes(size):
    with pytest.raises(MachineError, match="memory size"):
        Machine(memory_size=size)


def test_a_256_mib_machine_reaches_its_last_word():
    # start-up time against RAM size is measured by `toyvisor bench --scaling`, not asserted
    machine = Machine(memory_size=256 << 20)
    machine.load(assemble("li r1, 0x0FFFFFFC\n st [r1], r1\n ld r2, [r1]\n hlt"))
    result = machine.run()
    assert result.registers[2] == 0x0FFFFFFC


def test_reset_state():
    machine = Machine(memory_size=1 << 16)
    cpu = machine.cpu
    assert (cpu.pc, cpu.flags, cpu.cpl, cpu.idtr, cpu.cr0, cpu.mmu.cr3) == (0, 0, 0, 0, 0, 0)
    assert cpu.regs == [0] * 16


def test_result_fields_and_json():
    machine, result = run("li r1, 'h'\n out PORT_CONSOLE_DATA, r1\n rdcs r2\n brk", max_steps=50)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["stop_reason"] == "triple-fault" and data["console"] == "h"
    assert data["by_cause"]["breakpoint"] == 1
    assert data["vmm_entries"] == 0 and data["privileged_instructions"] == 1
    # brk does not retire: its delivery fails (no table), so it faults, and that triple-faults.
    assert data["sensitive_instructions"] == 1 and data["guest_instructions"] == 3
    assert set(data) >= {"halted", "ticks", "pc", "registers", "flags", "cpl", "fault_report"}


SMC_SOURCE = """
start:  li   r5, patch
        li   r6, {new}
        li   r7, 3
loop:
patch:  addi r1, r1, 1          ; becomes addi r1, r1, 100 after the first pass
        st   [r5], r6
        addi r7, r7, -1
        cmpi r7, 0
        jnz  loop
        hlt
"""


def test_self_modifying_code_is_seen_by_the_next_execution():
    image = assemble(SMC_SOURCE.format(new=0))
    new = word("addi", 1, 1, 100, pc=image["patch"])
    machine, result = run(SMC_SOURCE.format(new=new))
    assert result.registers[1] == 1 + 100 + 100
    # Every store onto a decoded instruction drops it, even one writing the same bytes.
    assert machine.code.invalidations == 3
    _, traced = run(SMC_SOURCE.format(new=new), trace=lambda e: None)
    assert traced.registers[1] == 201


def test_overwriting_the_next_instruction_takes_effect_immediately():
    source = """
    start:  li   r5, target
            li   r6, {new}
    again:  st   [r5], r6
    target: li   r2, 0x1111       ; first word (li r2) overwritten by `li r3`: same length
            addi r4, r4, 1
            cmpi r4, 2
            jnz  again
            hlt
    """
    image = assemble(source.format(new=0))
    new = word("li", 3, 0, pc=image["target"])
    machine, result = run(source.format(new=new))
    assert result.registers[3] == 0x1111 and result.registers[2] == 0


def test_dma_into_code_invalidates_it():
    hlt_sector = encode(BY_MNEMONIC["li"], (1, 0xD15C), 0x200) + encode(BY_MNEMONIC["hlt"], ())
    source = """
    start:  call code
            li   r1, 0x200
            out  PORT_DISK_ADDR, r1
            li   r1, DISK_CMD_READ
            out  PORT_DISK_CMD, r1
            call code
    spin:   jmp  spin
            .org 0x200
    code:   li   r1, 7
            ret
    """
    machine, result = run(source, disk=hlt_sector)
    assert result.stop_reason == "halted" and result.registers[1] == 0xD15C


def test_runs_are_deterministic():
    source = """
    start:  li   r1, idt
            lidt r1
            li   sp, 0x8000
            li   r1, 2
            out  PORT_PIC_MASK, r1     ; the console is polled: mask its IRQ
            li   r1, 7
            out  PORT_TIMER_PERIOD, r1
            sti
    loop:   in   r2, PORT_CONSOLE_DATA
            cmpi r2, -1
            jz   loop
            out  PORT_CONSOLE_DATA, r2
            jmp  loop
    tick:   addi r3, r3, 1
            cmpi r3, 40
            jz   stop
            iret
    stop:   hlt
            .org 0x2000
            .align 8
    idt:    .space 8 * 32
            .word tick, GATE_P | GATE_RING0
            .space 8 * 223
    """

    def once():
        events = []
        machine, result = run(source, console_input=b"deterministic", trace=events.append)
        return events, result

    first_events, first = once()
    second_events, second = once()
    assert first_events == second_events and first == second
    assert [str(e) for e in first_events] == [str(e) for e in second_events]
    _, untraced = run(source, console_input=b"deterministic")
    assert untraced == first
    assert first.console == "deterministic" and first.by_cause["timer"] == 40
    kinds = {type(e) for e in first_events}
    assert kinds == {InstructionEvent, TrapEvent, StopEvent}


def test_trace_events_describe_instructions_and_traps():
    events = []
    run("li r1, 5\n int 0x21", trace=events.append, max_steps=10)
    first = events[0]
    assert isinstance(first, InstructionEvent)
    assert (first.pc, first.cpl, first.text) == (0, 0, "li r1, 0x5")
    assert str(first) == "00000000 [0] li r1, 0x5"
    trap = events[2]
    assert isinstance(trap, TrapEvent)
    assert (trap.kind, trap.vector, trap.pc, trap.cause) == ("trap", 0x21, 12, "int 0x21")
    assert isinstance(events[-1], StopEvent) and events[-1].reason == "triple-fault"


class Counting(Monitor):
    def __init__(self):
        self.traps = []
        self.ports = []

    def trap(self, cpu, event):
        self.traps.append(event.cause)
        if event.cause == "int 0x80":  # a hypercall: r1 += 1000, resume after the int
            cpu.regs[1] += 1000
            cpu.pc = event.pc
            return True
        return False

    def port_out(self, cpu, port, value):
        self.ports.append((port, value))
        return port == 0x99

    def port_in(self, cpu, port):
        return 42 if port == 0x99 else None


def test_the_monitor_sees_traps_and_ports_first():
    machine = boot("li r1, 1\n int 0x80\n out 0x99, r1\n out PORT_CONSOLE_DATA, r1\n"
                   " in r2, 0x99\n hlt", memory_size=1 << 16)
    monitor = Counting()
    machine.cpu.monitor = monitor
    result = machine.run()
    assert result.stop_reason == "halted"
    assert result.registers[1] == 1001 and result.registers[2] == 42
    assert monitor.traps == ["int 0x80"]
    assert monitor.ports == [(0x99, 1001), (0x10, 1001)]
    assert machine.console.output == b"\xe9"
    assert result.vmm_entries == 4


def test_bare_metal_never_enters_a_monitor():
    _, result = run("int 0x80")
    assert result.vmm_entries == 0


def test_memory_audit_hook_sees_watched_writes_and_reads():
    source = """
        li   r1, 0x3000
        li   r2, 0xAB
        st   [r1 + 4], r2
        stb  [r1 + 9], r2
        ld   r3, [r1 + 4]
        li   r4, 0x5000
        st   [r4], r2             ; not watched
        hlt
    """
    machine = boot(source, memory_size=1 << 16)
    seen = []
    machine.memory.audit = lambda *access: seen.append(access)
    machine.memory.watch(0x3000, read=True)
    machine.run()
    assert seen == [("write", 0x3004, 4, 0xAB), ("write", 0x3009, 1, 0xAB),
                    ("read", 0x3004, 4, 0xAB)]
    machine.memory.unwatch(0x3000)
    assert not machine.memory.read_watched


def test_memory_watch_through_paging():
    from cpu_asm import identity_map

    source = "li r1, 0x3000\n li r2, 7\n st [r1], r2\n ld r3, [r1]\n hlt"
    machine = boot(source, memory_size=1 << 20)
    identity_map(machine.memory, 0x80000, 1 << 16)
    machine.cpu.write_cr(3, 0x80000)
    machine.cpu.write_cr(0, 1)
    seen = []
    machine.memory.audit = lambda *access: seen.append(access)
    machine.memory.watch(0x3000, read=True)
    machine.run()
    assert seen == [("write", 0x3000, 4, 7), ("read", 0x3000, 4, 7)]


def test_statistics_count_privileged_and_sensitive_instructions():
    _, result = run("cli\n sti\n cli\n pushf\n pop r1\n rdcs r2\n sidt r3\n smsw r4\n hlt")
    assert result.privileged_instructions == 4
    assert result.sensitive_instructions == 4
    assert result.guest_instructions == 9


def test_a_hook_that_stops_the_cpu_inside_the_fast_loop_takes_effect_at_once():
    source = """
    start:  li   r1, 0x3000
    loop:   addi r2, r2, 1
            cmpi r2, 50
            jnz  loop
            st   [r1], r2          ; the watched write
            addi r3, r3, 1
            jmp  loop
    """
    machine = boot(source, memory_size=1 << 16)
    cpu = machine.cpu
    machine.memory.audit = lambda *access: cpu.stop("watchpoint")
    machine.memory.watch(0x3000)
    result = machine.run(max_steps=10_000)
    assert result.stop_reason == "watchpoint"
    assert result.registers[3] == 0 and result.guest_instructions == 1 + 3 * 50 + 1


def test_cpus_share_memory_devices_and_the_decode_cache():
    source = """
    start:  addi r1, r1, 1
            jmp  start
            .org 0x100
    other:  st   [r5], r6
            out  PORT_CONSOLE_DATA, r7
            hlt
    """
    machine = boot(source, memory_size=1 << 16, cpus=2)
    first, second = machine.cpus
    machine.started[1] = True  # driven by hand here: no start IPI
    first.run(100)
    assert first.regs[1] == 50
    second.pc = 0x100
    second.regs[5], second.regs[6], second.regs[7] = 0, word("addi", 1, 1, 100), ord("!")
    assert second.run(10) == "halted"
    first.run(2)  # the cached `addi r1, r1, 1` was dropped for both CPUs
    assert first.regs[1] == 150
    assert machine.console.output == b"!" and second.retired == 3
    assert machine.result().guest_instructions == 105
