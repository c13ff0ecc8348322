"""Devices, time and the run loop: timer, hlt, budget, console, disk, interrupt controller."""

from __future__ import annotations

import pytest
from cpu_asm import assemble, boot, run

from toyvisor.isa.spec import FLAG_IF, SECTOR_SIZE


def idt(gates: dict[int, str]) -> str:
    lines = ["        .align 8", "idt:"]
    for vector in range(256):
        handler = gates.get(vector)
        lines.append(f"        .word {handler}, GATE_P | GATE_RING0" if handler else
                     "        .word 0, 0")
    return "\n".join(lines)


TIMER_SOURCE = """
start:  li   r1, idt            ; 1
        lidt r1                 ; 2
        li   sp, 0x8000         ; 3
        li   r1, 10             ; 4
        out  PORT_TIMER_PERIOD, r1   ; 5: the clock reads 5 as it takes effect
        sti                     ; 6
loop:   addi r2, r2, 1
        jmp  loop
timer:  in   r11, PORT_CLOCK
        mov  r10, sp
        hlt
        .org 0x2000
""" + idt({32: "timer"})


def test_timer_interrupt_arrives_after_exactly_period_instructions():
    machine, result = run(TIMER_SOURCE)
    labels = assemble(TIMER_SOURCE).labels
    regs = result.registers
    # After the out: sti + 9 loop instructions (5 addi, 4 jmp), then IRQ 0 before the next jmp.
    assert regs[2] == 5
    assert machine.memory.read32(regs[10] + 4) == labels["loop"] + 4
    assert regs[11] == 5 + 10 + 1  # the in itself has retired when it reads the clock
    assert result.by_cause == {"timer": 1}
    assert result.ticks == result.guest_instructions == 5 + 10 + 3


def test_traced_and_untraced_runs_agree_on_timer_timing():
    events = []
    _, traced = run(TIMER_SOURCE, trace=events.append)
    _, plain = run(TIMER_SOURCE)
    assert traced == plain
    assert sum(1 for e in events if type(e).__name__ == "InstructionEvent") == traced.ticks


PERIODIC_SOURCE = """
start:  li   r1, idt
        lidt r1
        li   sp, 0x8000
        li   r5, 0x3000          ; where the handler records the clock
        li   r1, 37
        out  PORT_TIMER_PERIOD, r1
        sti
loop:   cmpi r3, 6
        jnz  loop
        cli
        hlt
timer:  in   r4, PORT_CLOCK
        st   [r5], r4
        addi r5, r5, 4
        addi r3, r3, 1
        iret
        .org 0x2000
""" + idt({32: "timer"})


def test_the_timer_is_periodic_from_the_write():
    machine, result = run(PERIODIC_SOURCE)
    clocks = [machine.memory.read32(0x3000 + 4 * i) for i in range(6)]
    write_tick = 6  # the out is the 6th instruction
    assert clocks == [write_tick + 37 * (i + 1) + 1 for i in range(6)]
    assert result.by_cause == {"timer": 6} and result.stop_reason == "halted"


HLT_SOURCE = """
start:  li   r1, idt
        lidt r1
        li   sp, 0x8000
        li   r1, 1000
        out  PORT_TIMER_PERIOD, r1     ; tick 5
        sti                            ; 6
        hlt                            ; 7: idle until tick 1005
after:  nop
timer:  in   r11, PORT_CLOCK
        mov  r10, sp
        hlt
        .org 0x2000
""" + idt({32: "timer"})


def test_hlt_with_interrupts_on_idles_to_the_next_timer_deadline():
    machine, result = run(HLT_SOURCE)
    labels = assemble(HLT_SOURCE).labels
    assert result.stop_reason == "halted"
    assert result.idle_ticks == 1005 - 7
    assert result.registers[11] == 1005 + 1
    assert result.guest_instructions == 10
    assert result.ticks == result.guest_instructions + result.idle_ticks
    assert machine.memory.read32(result.registers[10] + 4) == labels["after"]


@pytest.mark.parametrize("setup", ["", "li r1, 100\n out PORT_TIMER_PERIOD, r1\n li r1, 1\n"
                                       " out PORT_PIC_MASK, r1"])
def test_hlt_that_nothing_can_wake_stops_the_machine(setup):
    machine, result = run(f"{setup}\n sti\n hlt\n nop")
    assert result.stop_reason == "halted" and result.idle_ticks == 0
    assert result.flags & FLAG_IF


def test_budget_stops_and_resumes():
    machine, result = run("loop: addi r1, r1, 1\n jmp loop", max_steps=1001)
    assert result.stop_reason == "budget" and not result.halted
    assert result.guest_instructions == 1001 and result.registers[1] == 501
    again = machine.run(max_steps=1000)
    assert again.guest_instructions == 2001 and again.registers[1] == 1001
    assert machine.run(max_steps=0).guest_instructions == 2001


def test_a_fault_loop_still_runs_out_of_budget():
    # The #UD handler is itself an undefined instruction: no instruction ever retires.
    source = "start: li r1, idt\n lidt r1\n li sp, 0x8000\n .word 0\n .org 0x100\nud: .word 0\n"
    source += " .org 0x2000\n" + idt({6: "ud"})
    machine, result = run(source, max_steps=500)
    assert result.stop_reason == "budget"
    assert result.guest_instructions == 3 and result.by_cause == {"invalid-opcode": 497}


def test_console_output_and_input():
    source = """
    echo:
        in   r1, PORT_CONSOLE_STATUS
        cmpi r1, 0
        jz   done
        in   r1, PORT_CONSOLE_DATA
        addi r1, r1, 1
        out  PORT_CONSOLE_DATA, r1
        jmp  echo
    done:
        in   r2, PORT_CONSOLE_DATA
        li   r1, 0xC3
        out  PORT_CONSOLE_DATA, r1
        li   r1, 0xA9
        out  PORT_CONSOLE_DATA, r1
        li   r1, 0xFF
        out  PORT_CONSOLE_DATA, r1
        hlt
    """
    machine, result = run(source, console_input=b"HAL")
    assert result.console == "IBM\u00e9\ufffd"
    assert machine.console.output == b"IBM\xc3\xa9\xff"
    assert result.registers[2] == 0xFFFFFFFF


def _disk_program(body: str) -> str:
    return f"""
        {body}
        in   r7, PORT_DISK_STATUS
        in   r8, PORT_PIC_PENDING
        in   r9, PORT_DISK_SECTORS
        hlt
    """


def test_disk_dma_read():
    disk = bytes(range(256)) * 2 + b"second sector".ljust(SECTOR_SIZE, b".")
    source = _disk_program("""
        li   r1, 1
        out  PORT_DISK_SECTOR, r1
        li   r1, 0x3000
        out  PORT_DISK_ADDR, r1
        in   r2, PORT_DISK_SECTOR
        in   r3, PORT_DISK_ADDR
        li   r1, DISK_CMD_READ
        out  PORT_DISK_CMD, r1
    """)
    machine, result = run(source, disk=disk)
    regs = result.registers
    assert (regs[2], regs[3], regs[7], regs[9]) == (1, 0x3000, 0, 2)
    assert regs[8] & 4  # IRQ 2 pending (IF is off)
    assert machine.memory.read(0x3000, SECTOR_SIZE) == disk[SECTOR_SIZE:]


def test_disk_dma_write():
    source = _disk_program("""
        li   r1, 0x3000
        li   r2, 0x64636261
        st   [r1 + 508], r2
        out  PORT_DISK_ADDR, r1
        li   r1, 0
        out  PORT_DISK_SECTOR, r1
        li   r1, DISK_CMD_WRITE
        out  PORT_DISK_CMD, r1
    """)
    machine, result = run(source, disk=bytes(2 * SECTOR_SIZE))
    assert result.registers[7] == 0
    assert bytes(machine.disk.data[508:512]) == b"abcd"
    assert bytes(machine.disk.data[SECTOR_SIZE:]) == bytes(SECTOR_SIZE)


@pytest.mark.parametrize(("sector", "address", "status"), [(2, 0x3000, 1), (5000, 0, 1),
                                                           (0, 0x10000 - 256, 2)])
def test_disk_errors(sector, address, status):
    source = _disk_program(f"""
        li   r1, {sector}
        out  PORT_DISK_SECTOR, r1
        li   r1, {address}
        out  PORT_DISK_ADDR, r1
        li   r1, DISK_CMD_READ
        out  PORT_DISK_CMD, r1
    """)
    machine, result = run(source, disk=bytes(2 * SECTOR_SIZE), memory_size=1 << 16)
    assert result.registers[7] == status and result.registers[8] & 4


def test_no_disk_has_no_sectors():
    machine, result = run(_disk_program("li r1, 1\n out PORT_DISK_CMD, r1"))
    assert result.registers[7] == 1 and result.registers[9] == 0


def test_disk_image_is_padded_to_whole_sectors():
    machine = boot("hlt", disk=b"abc")
    assert machine.disk.sectors == 1 and len(machine.disk.data) == SECTOR_SIZE


IRQ_SOURCE = """
start:  li   r1, idt
        lidt r1
        li   sp, 0x8000
        li   r1, 2                ; mask IRQ 1
        out  PORT_PIC_MASK, r1
        li   r1, 0x3000
        out  PORT_DISK_ADDR, r1
        li   r1, DISK_CMD_READ
        out  PORT_DISK_CMD, r1    ; IRQ 2 pending
        in   r6, PORT_PIC_PENDING
        in   r7, PORT_PIC_MASK
        sti
        nop
done:   cli
        hlt
console: addi r3, r3, 1
        iret
disk:   addi r4, r4, 1
        li   r1, 0                ; unmask IRQ 1: it is delivered right after the iret
        out  PORT_PIC_MASK, r1
        iret
        .org 0x2000
""" + idt({33: "console", 34: "disk"})


def test_interrupt_controller_mask_and_priority():
    machine, result = run(IRQ_SOURCE, console_input=b"z", disk=bytes(SECTOR_SIZE))
    regs = result.registers
    assert regs[6] == 0b110 and regs[7] == 2
    assert regs[4] == 1 and regs[3] == 1
    assert result.by_cause == {"irq 1": 1, "irq 2": 1}


def test_lowest_pending_line_first():
    events = []
    source = IRQ_SOURCE.replace("li   r1, 2                ; mask IRQ 1", "li r1, 0")
    run(source, console_input=b"z", disk=bytes(SECTOR_SIZE), trace=events.append)
    causes = [e.cause for e in events if type(e).__name__ == "TrapEvent"]
    # IRQ 1 is delivered first; the console handler runs with IF = 0 and its iret lets IRQ 2 in.
    assert causes == ["irq 1", "irq 2"]
