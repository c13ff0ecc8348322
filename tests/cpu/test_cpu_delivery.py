"""Exception and interrupt delivery through the guest's interrupt table (docs/machine.md)."""

from __future__ import annotations

from cpu_asm import assemble, run

from toyvisor.isa.spec import FLAG_IF, FLAG_ZF

KERNEL_STACK = 0x8000
USER_STACK = 0x6000


def idt(gates: dict[int, tuple[str, str]]) -> str:
    """Assembly for a 256-gate table at label `idt`; `gates` maps vector → (handler, flags)."""
    lines = ["        .align 8", "idt:"]
    for vector in range(256):
        handler, flags = gates.get(vector, ("0", "0"))
        lines.append(f"        .word {handler}, {flags}")
    return "\n".join(lines)


def kernel(body: str, gates: dict[int, tuple[str, str]], handlers: str = "",
           user: str = "") -> str:
    """A ring-0 program: load the table, set ksp0, run `body`; `user` code runs in ring 3 when
    the body does `jmp to_user`."""
    return f"""
    start:
        li   r1, idt
        lidt r1
        li   r1, {KERNEL_STACK}
        mtcr ksp0, r1
        {body}
    to_user:                     ; iret into ring 3 at `user` with IF set
        li   r1, {USER_STACK}
        push r1
        li   r1, FLAG_IF
        push r1
        li   r1, 3
        push r1
        li   r1, user
        push r1
        push r0
        iret
    user:
        {user}
        {handlers}
        .org 0x2000
    {idt(gates)}
    """


def frame(machine, sp):
    """The five frame words from `sp` upward: error, pc, cs, flags, old sp."""
    return [machine.memory.read32(sp + 4 * i) for i in range(5)]


def test_syscall_from_ring3_switches_to_ksp0_and_pushes_the_frame():
    source = kernel(
        "jmp to_user",
        {0x80: ("syscall", "GATE_P | GATE_DPL3 | GATE_RING0")},
        handlers="syscall: mov r10, sp\n rdcs r11\n pushf\n pop r12\n hlt",
        user="li r5, 42\n li r6, 0x1234\n cmp r6, r6\n int 0x80",
    )
    machine, result = run(source)
    assert result.stop_reason == "halted"
    regs = result.registers
    sp = regs[10]
    assert sp == KERNEL_STACK - 20
    labels = assemble(source).labels
    after_int = labels["user"] + 8 + 8 + 4 + 4
    assert frame(machine, sp) == [0, after_int, 3, FLAG_IF | FLAG_ZF, USER_STACK]
    assert regs[11] == 0  # the handler runs in ring 0
    assert regs[12] == FLAG_ZF  # interrupt gate: IF cleared, condition flags kept
    assert result.by_cause == {"int 0x80": 1}


def test_iret_returns_to_the_user_after_a_syscall():
    source = kernel(
        "jmp to_user",
        {0x80: ("syscall", "GATE_P | GATE_DPL3 | GATE_RING0"),
         0x81: ("finish", "GATE_P | GATE_DPL3 | GATE_RING0")},
        handlers="syscall: addi r5, r5, 1\n iret\nfinish: hlt",
        user="int 0x80\n int 0x80\n rdcs r7\n mov r8, sp\n pushf\n pop r9\n int 0x81",
    )
    machine, result = run(source)
    regs = result.registers
    assert result.stop_reason == "halted"
    assert regs[5] == 2 and regs[7] == 3 and regs[8] == USER_STACK and regs[9] == FLAG_IF
    assert result.by_cause == {"int 0x80": 2, "int 0x81": 1}


def test_int_through_a_gate_whose_dpl_is_too_low_is_a_gp_at_the_int():
    source = kernel(
        "jmp to_user",
        {0x80: ("syscall", "GATE_P | GATE_DPL0 | GATE_RING0"),
         13: ("gp", "GATE_P | GATE_RING0")},
        handlers="syscall: hlt\ngp: mov r10, sp\n hlt",
        user="nop\nint_here: int 0x80",
    )
    machine, result = run(source)
    sp = result.registers[10]
    labels = assemble(source).labels
    assert frame(machine, sp)[:3] == [0x80 * 8 + 2, labels["int_here"], 3]
    assert result.by_cause == {"int 0x80": 1, "general-protection": 1}


def test_a_not_present_gate_is_a_gp_with_the_gate_error_code():
    source = kernel("int 0x40", {13: ("gp", "GATE_P | GATE_RING0")},
                    handlers="gp: mov r10, sp\n hlt")
    machine, result = run(source)
    assert frame(machine, result.registers[10])[0] == 0x40 * 8 + 2


def test_a_gate_may_not_lower_privilege_to_an_outer_ring():
    source = kernel("int 0x40", {0x40: ("h", "GATE_P | GATE_DPL3 | GATE_RING3"),
                                 13: ("gp", "GATE_P | GATE_RING0")},
                    handlers="h: hlt\ngp: mov r10, sp\n hlt")
    machine, result = run(source)
    error, pc, cs, _, _ = frame(machine, result.registers[10])
    assert (error, cs) == (0x40 * 8 + 2, 0)


def test_same_ring_delivery_keeps_the_stack_and_trap_gates_keep_if():
    source = kernel(
        "li sp, 0x7000\n sti\n int 0x40",
        {0x40: ("h", "GATE_P | GATE_RING0 | GATE_TRAP")},
        handlers="h: mov r10, sp\n pushf\n pop r11\n cli\n hlt",
    )
    machine, result = run(source)
    assert result.registers[10] == 0x7000 - 20
    assert frame(machine, 0x7000 - 20)[2:] == [0, FLAG_IF, 0x7000]
    assert result.registers[11] & FLAG_IF


def test_exceptions_save_the_faulting_pc_and_restart():
    # #DE handler fixes the divisor and returns: the div runs again and completes.
    source = kernel(
        "li r1, 10\n li r2, 0\nfault: div r3, r1, r2\n hlt",
        {0: ("de", "GATE_P | GATE_RING0")},
        handlers="de: li r2, 5\n mov r10, sp\n ld r11, [sp + 4]\n iret",
    )
    machine, result = run(source)
    labels = assemble(source).labels
    assert result.registers[3] == 2 and result.registers[11] == labels["fault"]
    assert result.by_cause == {"divide-error": 1}


def test_a_fault_while_delivering_becomes_a_double_fault():
    # #DE's gate is missing: its delivery raises #GP(2), which turns into #DF (error 0,
    # saved pc: the instruction being executed).
    source = kernel("li r2, 0\nfault: div r3, r1, r2\n hlt",
                    {8: ("df", "GATE_P | GATE_RING0"), 13: ("gp", "GATE_P | GATE_RING0")},
                    handlers="df: mov r10, sp\n hlt\ngp: hlt")
    machine, result = run(source)
    labels = assemble(source).labels
    assert result.stop_reason == "halted"
    assert frame(machine, result.registers[10])[:3] == [0, labels["fault"], 0]
    assert result.by_cause == {"divide-error": 1, "general-protection": 1, "double-fault": 1}


def test_a_fault_while_delivering_a_double_fault_is_a_triple_fault():
    source = kernel("li r2, 0\nfault: div r3, r1, r2\n hlt",
                    {13: ("gp", "GATE_P | GATE_RING0")}, handlers="gp: hlt")
    machine, result = run(source)
    assert result.stop_reason == "triple-fault" and not result.halted
    report = result.fault_report
    labels = assemble(source).labels
    assert f"triple fault at pc {labels['fault']:#010x}" in report
    assert "divide-error" in report and "double-fault" in report
    assert "general-protection (vector 13, error 0x2)" in report
    assert "r2=0x00000000" in report and "sp=" in report
    assert result.pc == labels["fault"]


def test_no_interrupt_table_at_boot_means_any_exception_triple_faults():
    machine, result = run("li r1, 5\n li r9, 0xABCD\n div r1, r1, r0\n hlt")
    assert result.stop_reason == "triple-fault"
    assert result.fault_report.startswith("triple fault at pc 0x00000010: divide-error")
    assert "r9=0x0000abcd" in result.fault_report
    assert result.guest_instructions == 2


def test_a_stack_switch_to_an_unusable_ksp_double_faults():
    # ksp0 points beyond RAM: pushing the #GP frame faults, #DF needs the same stack: triple.
    source = kernel("li r1, 0xFFFFFF00\n mtcr ksp0, r1\n jmp to_user",
                    {13: ("gp", "GATE_P | GATE_RING0"), 8: ("df", "GATE_P | GATE_RING0")},
                    handlers="gp: hlt\ndf: hlt", user="cli")
    machine, result = run(source)
    assert result.stop_reason == "triple-fault"
    assert result.cpl == 3  # nothing changed: the frame push faulted before the commit
    assert result.by_cause["general-protection"] == 3


def test_a_pending_interrupt_arrives_as_soon_as_iret_sets_if():
    # IRQ 1 is pending from reset (console input waits) but IF = 0 in the kernel; the iret into
    # ring 3 sets IF, so the IRQ is delivered before the first user instruction.
    source = kernel(
        "jmp to_user",
        {33: ("console", "GATE_P | GATE_RING0")},
        handlers="console: in r4, PORT_CONSOLE_DATA\n mov r10, sp\n hlt",
        user="nop",
    )
    machine, result = run(source, console_input=b"k")
    labels = assemble(source).labels
    assert result.registers[4] == ord("k")
    assert frame(machine, result.registers[10]) == [0, labels["user"], 3, FLAG_IF, USER_STACK]
    assert result.by_cause == {"irq 1": 1}
