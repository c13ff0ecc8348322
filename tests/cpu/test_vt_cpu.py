"""The "vt" extension's mechanism: VM entry and exit, every exit reason, non-root semantics,
event injection and interrupt exits (nested paging: test_vt_nested.py)."""

from __future__ import annotations

import pytest
from cpu_asm import boot, execute
from toyvisor.cpu.vt import ControlStructure
from toyvisor.isa import vt as V
from toyvisor.isa.spec import (
    CR0_PG,
    FLAG_IF,
    VEC_DE,
    VEC_GP,
    VEC_PF,
    VEC_UD,
)
from vt_helpers import VMCS, enter_and_run, guest_machine

CONSTS = {"VMCS": VMCS, **{k: getattr(V, k) for k in dir(V) if k.isupper()}}


# -- vmrun / vmcall as instructions ----------------------------------------------------------------

HOST = """
        .org 0x1000
start:  li   r1, VMCS
        li   r2, 0x1234
        li   sp, 0x7000
        vmrun r1
        ld   r3, [r1 + EXIT_REASON]
        ld   r4, [r1 + GUEST_REGS + 8]
        ld   r5, [r1 + EXIT_PC]
        ld   r6, [r1 + EXIT_INSTRUCTION_LENGTH]
        hlt
        .org 0x2000
guest:  li   r2, 7
        li   sp, 0x3000
        vmcall
"""


def host_with_guest(source=HOST, **fields):
    machine = boot(source, CONSTS, memory_size=1 << 16)
    vmcs = ControlStructure(machine.memory, VMCS).initialize()
    vmcs.set_guest(pc=0x2000, **fields)
    return machine, vmcs


def test_vmrun_runs_the_guest_until_vmcall_then_resumes_the_host_after_vmrun():
    machine, vmcs = host_with_guest()
    result = machine.run(max_steps=1000)
    cpu = machine.cpu
    assert result.stop_reason == "halted" and not cpu.nonroot
    r = result.registers
    assert r[2] == 0x1234 and r[15] == 0x7000  # host registers restored
    assert r[3] == V.REASON_NUMBERS["vmcall"] == 18
    assert r[4] == 7  # the guest's r2, stored at the exit
    assert r[5] == 0x2010 and r[6] == 4  # the vmcall's pc and length (li is 8 bytes)
    assert vmcs.guest_state()["pc"] == 0x2010 and vmcs.guest_state()["r15"] == 0x3000
    assert cpu.vm_exits == {"vmcall": 1} and result.vmm_entries == 1
    assert cpu.vt.guest_instructions == 2 and result.guest_instructions == 2 + 9


def test_vmrun_resumes_the_guest_where_it_exited():
    source = HOST.replace("        hlt\n", "        vmrun r1\n        hlt\n", 1).replace(
        "        vmcall\n", "        vmcall\n        li r2, 9\n        vmcall\n")
    machine, vmcs = host_with_guest(source)
    # The VMM skips the vmcall by hand: here, a host program would add the length to the pc.
    machine.run(max_steps=11)
    assert machine.cpu.vm_exits == {"vmcall": 1}
    vmcs.set_guest(pc=vmcs[V.EXIT_PC] + vmcs[V.EXIT_INSTRUCTION_LENGTH])
    result = machine.run(max_steps=1000)
    assert result.stop_reason == "halted" and machine.cpu.vm_exits == {"vmcall": 2}
    assert vmcs.guest_state()["r2"] == 9


def test_vmcall_in_root_mode_is_invalid_opcode():
    _, event = execute("vmcall\nbrk")
    assert event.vector == VEC_UD and event.pc == 0


@pytest.mark.parametrize("cpl", [1, 3])
def test_vmrun_is_privileged(cpl):
    _, event = execute("li r1, 0x8000\nvmrun r1\nbrk", cpl=cpl)
    assert (event.vector, event.error) == (VEC_GP, 0)


@pytest.mark.parametrize("address", [0x8002, 0xFFFFFF00])
def test_vmrun_with_a_bad_structure_address_is_gp(address):
    _, event = execute(f"li r1, {address}\nvmrun r1\nbrk")
    assert (event.vector, event.pc) == (VEC_GP, 8)


def test_vmrun_with_a_wrong_revision_is_gp_and_changes_nothing():
    machine, event = execute("li r1, 0x8000\nli r2, 5\nvmrun r1\nbrk")
    assert (event.vector, event.pc) == (VEC_GP, 16)
    assert not machine.cpu.nonroot and machine.cpu.regs[2] == 5


def test_vmrun_in_non_root_mode_exits():
    machine, vmcs, rec = guest_machine("li r1, 0x9000\nvmrun r1")
    enter_and_run(machine)
    assert rec.first.reason == "vmrun" and rec.first.qualification == 0x9000
    assert rec.first.pc == 0x10008 and rec.first.instruction_length == 4


def test_python_vmm_gets_vm_exit_and_can_resume_with_vm_enter():
    machine, vmcs, rec = guest_machine("li r1, 1\nvmcall\naddi r1, r1, 1\nvmcall")

    class Resume:
        exits = []

        def vm_exit(self, cpu, exit):
            self.exits.append(exit)
            if len(self.exits) == 1:
                vmcs.set_guest(pc=exit.pc + exit.instruction_length)
                cpu.vm_enter(exit.vmcs)
            else:
                cpu.stop("done")

    machine.cpu.monitor = Resume()
    result = enter_and_run(machine)
    assert result.stop_reason == "done" and vmcs.guest_state()["r1"] == 2
    assert machine.cpu.vm_exits == {"vmcall": 2} and machine.cpu.vmm_entries == 2
    assert machine.cpu.pc == 0x100  # the host context is back


def test_vm_enter_twice_is_an_error():
    machine, _, _ = guest_machine("vmcall")
    machine.cpu.vm_enter(VMCS)
    with pytest.raises(Exception, match="already in non-root"):
        machine.cpu.vm_enter(VMCS)


# -- instruction exits -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "source, controls, cr_exits, reason, qualification, length",
    [
        ("nop\nhlt", V.EXIT_HLT, 0, "hlt", 0, 4),
        ("nop\nin r3, 0x21", V.EXIT_IO, 0, "io", 0x21 | V.IO_IN | 3 << V.IO_REG_SHIFT, 4),
        ("nop\nout 0x10, r4", V.EXIT_IO, 0, "io", 0x10 | 4 << V.IO_REG_SHIFT, 4),
        ("nop\nmtcr cr3, r6", 0, 1 << 3, "cr-access", 3 | 6 << V.CR_REG_SHIFT, 4),
        ("nop\nmfcr r5, cr3", 0, 1 << (16 + 3), "cr-access", 3 | V.CR_READ | 5 << 8, 4),
        ("nop\nmtcr cr0, r6", 0, 1 << 0, "cr-access", 0 | 6 << V.CR_REG_SHIFT, 4),
        ("li r2, 0x5000\ninvlpg r2", V.EXIT_INVLPG, 0, "invlpg", 0x5000, 4),
        ("li r2, 0x6000\nlidt r2", V.EXIT_LIDT, 0, "lidt", 0x6000, 4),
        ("nop\nvmcall", 0, 0, "vmcall", 0, 4),
    ],
)
def test_instruction_exits(source, controls, cr_exits, reason, qualification, length):
    machine, vmcs, rec = guest_machine(source, controls=controls, cr_exits=cr_exits)
    result = enter_and_run(machine)
    exit = rec.first
    assert result.stop_reason == "vm-exit" and len(rec.exits) == 1
    assert (exit.reason, exit.qualification, exit.instruction_length) == (
        reason, qualification, length)
    start = 0x10000
    second = start + (8 if source.startswith("li") else 4)
    assert exit.pc == second == vmcs[V.EXIT_PC] == vmcs.guest_state()["pc"]
    assert vmcs[V.EXIT_REASON] == V.REASON_NUMBERS[reason]
    assert vmcs[V.EXIT_QUALIFICATION] == qualification
    assert machine.cpu.vm_exits == {reason: 1}


def test_unconfigured_privileged_instructions_act_on_the_guest_state():
    source = """
        li r1, 0x6000
        lidt r1
        sidt r2
        li r3, 0xAAAA
        mtcr ksp0, r3
        mfcr r4, ksp0
        mtcr cr2, r3
        li r5, 0x4000
        mtcr cr3, r5
        mfcr r6, cr3
        cli
        vmcall
    """
    machine, vmcs, rec = guest_machine(source, cr_exits=1 << 0)  # only cr0 writes exit
    enter_and_run(machine)
    g = vmcs.guest_state()
    assert rec.first.reason == "vmcall"
    assert (g["idtr"], g["r2"], g["ksp0"], g["r4"], g["cr2"], g["cr3"], g["r6"]) == (
        0x6000, 0x6000, 0xAAAA, 0xAAAA, 0xAAAA, 0x4000, 0x4000)
    cpu = machine.cpu  # the host's own state is untouched
    assert (cpu.idtr, cpu.ksp[0], cpu.cr2, cpu.mmu.cr3) == (0, 0, 0, 0)


def test_io_without_exit_reaches_the_device_not_the_monitor():
    machine, vmcs, rec = guest_machine(
        "li r4, 'A'\nout PORT_CONSOLE_DATA, r4\nvmcall", consts={})
    calls = []
    rec.port_out = lambda cpu, port, value: calls.append(port) or False
    enter_and_run(machine)
    assert machine.console.text == "A" and calls == [] and rec.first.reason == "vmcall"


def test_privileged_instruction_at_guest_cpl3_faults_before_exiting():
    machine, vmcs, rec = guest_machine("hlt", controls=V.EXIT_HLT, exceptions=1 << VEC_GP,
                                       cpl=3)
    enter_and_run(machine)
    assert rec.first.reason == "exception" and rec.first.interruption == (VEC_GP, 0, "exception")


# -- non-root semantics of the sensitive-unprivileged instructions ---------------------------------

SENSITIVE = """
        pushf
        pop r1
        li r8, 0x200
        push r8
        popf
        pushf
        pop r2
        sti
        pushf
        pop r3
        li r8, 0
        push r8
        popf
        pushf
        pop r4
        rdcs r5
        sidt r6
        smsw r7
"""


@pytest.mark.parametrize("cpl", [0, 3])
def test_sensitive_unprivileged_instructions_behave_as_on_bare_metal(cpl):
    source = SENSITIVE if cpl == 0 else SENSITIVE.replace("        sti\n", "")
    # Bare metal (ends with brk; the TrapRecorder stops there).
    bare, event = execute(source + "brk", cpl=cpl, regs={15: 0x7000})
    assert event is not None
    expected = bare.cpu.regs[1:8]
    # Non-root, the same program with the guest at the same CPL, idtr and cr0 (no exit).
    machine, vmcs, rec = guest_machine(source + "vmcall", cpl=cpl, r15=0x7000, idtr=0x4321,
                                       controls=V.EXIT_HLT | V.EXIT_IO | V.EXIT_LIDT)
    bare_smsw = expected[6]
    enter_and_run(machine)
    g = vmcs.guest_state()
    assert rec.first.reason == "vmcall" and machine.cpu.vm_exits == {"vmcall": 1}
    got = [g[f"r{n}"] for n in range(1, 8)]
    assert got[:4] == expected[:4] and got[4] == cpl == expected[4]
    assert got[5] == 0x4321 and got[6] == bare_smsw == 0  # the guest's own idtr and cr0


def test_smsw_and_mfcr_cr0_read_the_shadow_for_vmm_owned_bits():
    machine, vmcs, rec = guest_machine("smsw r1\nmfcr r2, cr0\nvmcall", cr0=CR0_PG)
    vmcs[V.CR0_GUEST_HOST_MASK] = CR0_PG
    vmcs[V.CR0_READ_SHADOW] = 0
    # cr0.PG = 1 with cr3 = 0 identity? Use a guest page table: map the guest's code page.
    from cpu_asm import identity_map
    identity_map(machine.memory, 0x20000, 0x20000)
    vmcs.set_guest(cr3=0x20000)
    enter_and_run(machine)
    g = vmcs.guest_state()
    assert (g["r1"], g["r2"], g["cr0"]) == (0, 0, CR0_PG)


# -- exceptions ---------------------------------------------------------------------------------------

IDT_GUEST = """
        .org 0x10000
start:  li   r1, idt
        lidt r1
        li   r2, 0
        div  r3, r2, r2
        vmcall
handler:
        li   r9, 0xDE
        vmcall
        .align 8
idt:    .word handler, GATE_P
"""


def test_guest_exceptions_go_through_the_guest_table_without_exit():
    machine, vmcs, rec = guest_machine(IDT_GUEST)
    enter_and_run(machine)
    g = vmcs.guest_state()
    assert rec.first.reason == "vmcall" and g["r9"] == 0xDE
    assert machine.cpu.by_cause == {"divide-error": 1} and machine.cpu.vt.guest_traps == 1
    assert machine.cpu.vm_exits == {"vmcall": 1}


def test_exception_bitmap_makes_an_exception_exit():
    machine, vmcs, rec = guest_machine(IDT_GUEST, exceptions=1 << VEC_DE)
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "exception" and exit.interruption == (VEC_DE, 0, "exception")
    assert exit.pc == vmcs.guest_state()["pc"] == 0x10014  # the div: restartable
    assert vmcs[V.EXIT_INTERRUPTION] == V.event_word(VEC_DE, "exception")
    assert machine.cpu.by_cause == {} and vmcs.guest_state()["r9"] == 0


def test_page_fault_exit_reports_the_address_and_leaves_guest_cr2_alone():
    from cpu_asm import identity_map
    machine, vmcs, rec = guest_machine("li r1, 0x400000\nld r2, [r1]\nvmcall", cr0=CR0_PG,
                                       cr3=0x20000, exceptions=1 << VEC_PF, cr2=0x77)
    identity_map(machine.memory, 0x20000, 0x20000)
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "exception" and exit.interruption[0] == VEC_PF
    assert exit.qualification == 0x400000 == exit.guest_linear
    assert vmcs.guest_state()["cr2"] == 0x77


def test_page_fault_exit_while_delivering_an_event_records_it_as_vectoring():
    """Shadow paging (a generation-1 VMM) needs this: the guest's stack page is missing from
    the table, so pushing the #DE frame faults; the #PF exits with the #DE to re-inject."""
    from cpu_asm import identity_map
    source = """
    start:  li   r2, 0
            div  r3, r2, r2
    handler:
            vmcall
            .org 0x10100
    idt:    .word handler, GATE_P
    """
    machine, vmcs, rec = guest_machine(source, cr0=CR0_PG, cr3=0x20000, r15=0x30000,
                                       idtr=0x10100, exceptions=1 << VEC_PF, cr2=0x77)
    identity_map(machine.memory, 0x20000, 0x20000)  # [0, 128 KiB): the stack at 0x2fffc is not
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "exception" and exit.interruption[0] == VEC_PF
    assert exit.guest_linear == 0x30000 - 4 == exit.qualification
    assert exit.vectoring == (VEC_DE, 0, "exception")
    assert vmcs[V.EXIT_VECTORING] == V.event_word(VEC_DE, "exception")
    assert exit.pc == 0x10008  # the div: the #DE's saved pc
    assert vmcs.guest_state()["cr2"] == 0x77 and vmcs.guest_state()["r15"] == 0x30000


def test_guest_triple_fault_is_an_exit():
    machine, vmcs, rec = guest_machine("li r2, 0\ndiv r3, r2, r2")
    result = enter_and_run(machine)
    assert rec.first.reason == "triple-fault" and result.stop_reason == "vm-exit"
    assert rec.first.pc == 0x10008


# -- interrupts ------------------------------------------------------------------------------------------

TIMER_GUEST = """
        li   r1, 5
        out  PORT_TIMER_PERIOD, r1
loop:   addi r2, r2, 1
        jmp  loop
"""


@pytest.mark.parametrize("ack", [False, True])
def test_external_interrupt_exits_whatever_the_guest_if(ack):
    controls = V.EXIT_EXTERNAL_INTERRUPT | (V.EXIT_ACK_INTERRUPT if ack else 0)
    machine, vmcs, rec = guest_machine(TIMER_GUEST, controls=controls)
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "external-interrupt" and vmcs.guest_state()["flags"] & FLAG_IF == 0
    assert exit.qualification == (32 if ack else 0)
    assert bool(machine.platform.pic.pending & 1) is not ack
    assert vmcs.guest_state()["r2"] == 3  # 5 ticks: out + 4 loop instructions after it


def test_external_interrupts_without_exiting_go_through_the_guest_table_when_if():
    source = """
            li   r1, idt
            lidt r1
            sti
            li   r1, 5
            out  PORT_TIMER_PERIOD, r1
    loop:   jmp  loop
    handler:
            vmcall
            .align 8
    idt:    .space 8*32
            .word handler, GATE_P
    """
    machine, vmcs, rec = guest_machine(source)
    enter_and_run(machine)
    assert rec.first.reason == "vmcall" and machine.cpu.by_cause == {"timer": 1}


def test_hlt_without_exit_waits_for_an_interrupt_exit():
    machine, vmcs, rec = guest_machine("li r1, 50\nout PORT_TIMER_PERIOD, r1\nhlt",
                                       controls=V.EXIT_EXTERNAL_INTERRUPT)
    enter_and_run(machine)
    assert rec.first.reason == "external-interrupt" and rec.first.pc == 0x10010  # after hlt
    assert machine.cpu.idle_ticks == 49


def test_interrupt_window_exit_as_soon_as_the_guest_sets_if():
    machine, vmcs, rec = guest_machine("nop\nnop\nsti\nnop\nvmcall",
                                       controls=V.EXIT_INTERRUPT_WINDOW)
    enter_and_run(machine)
    assert rec.first.reason == "interrupt-window" and rec.first.pc == 0x1000C
    assert vmcs.guest_state()["flags"] & FLAG_IF


def test_event_injection_at_entry_goes_through_the_guest_table():
    source = """
    start:  vmcall
    handler:
            vmcall
            .align 8
    idt:    .space 8*0x40
            .word handler, GATE_P
    """
    machine, vmcs, rec = guest_machine(source, r15=0x18000, flags=FLAG_IF)
    vmcs.set_guest(idtr=0x10008)
    vmcs.inject(0x40, "interrupt")
    enter_and_run(machine)
    g = vmcs.guest_state()
    assert rec.first.pc == 0x10004  # the handler's vmcall
    assert g["r15"] == 0x18000 - 20 and not g["flags"] & FLAG_IF
    frame = [machine.memory.read32(0x18000 - 20 + 4 * i) for i in range(5)]
    assert frame == [0, 0x10000, 0, FLAG_IF, 0x18000]
    assert not vmcs[V.INJECT_EVENT] & V.INJECT_VALID  # consumed
    assert machine.cpu.by_cause == {"irq 32": 1}  # vector 0x40 = 32 + line 32


def test_injected_exception_is_not_subject_to_the_exception_bitmap():
    source = """
    start:  vmcall
    handler:
            li r9, 1
            vmcall
            .align 8
    idt:    .space 8*13
            .word handler, GATE_P
    """
    machine, vmcs, rec = guest_machine(source, exceptions=1 << VEC_GP, r15=0x18000)
    vmcs.set_guest(idtr=0x10010)
    vmcs.inject(VEC_GP, "exception", error=0x42)
    enter_and_run(machine)
    assert rec.first.reason == "vmcall" and vmcs.guest_state()["r9"] == 1
    assert machine.memory.read32(0x18000 - 20) == 0x42


def test_vm_exits_count_as_steps_so_the_budget_ends_an_exit_loop():
    machine, vmcs, rec = guest_machine("vmcall")

    class Loop:
        def vm_exit(self, cpu, exit):
            cpu.vm_enter(exit.vmcs)  # re-run the vmcall forever

    machine.cpu.monitor = Loop()
    result = enter_and_run(machine, max_steps=50)
    assert result.stop_reason == "budget" and machine.cpu.vm_exits == {"vmcall": 50}
