"""Generated race-free SMP programs, bare multiprocessor against each classic strategy with V
vCPUs on P <= V physical CPUs: each CPU runs its own straight-line work (arithmetic, private
loads and stores, `rdpid`, privileged port reads, system calls, its own local timer), adds into
shared counters with `xadd` (whose order does not matter) and halts; the counters, every CPU's
results and its interrupt counts must be the bare machine's."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.asm import assemble_source
from toyvisor.tools.guest import Guest
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.strategies.native import boot_native

HERE = Path(__file__).resolve().parent
SPECS = ("trap-emulate", "trap-emulate:0/3/3", "binary-translation", "binary-translation-all",
         "hardware-assisted:1", "hardware-assisted:2")
SHARED = 4

def _counter(label: str, table: str) -> str:
    """An interrupt handler that adds one to this CPU's word of `table`."""
    return f"""
{label}: push r1
        push r2
        rdpid   r1
        shli    r1, r1, 2
        li      r2, {table}
        add     r2, r2, r1
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        pop     r2
        pop     r1
        iret"""


PROLOGUE = """
        .include "smp_boot.s"
smp_gates:
        li      r2, 32
        li      r3, tick
        call    gate
        li      r2, 0x81
        li      r3, svc
        call    gate
        jmp     smp_start_aps
smp_main:
        rdpid   r1
        shli    r1, r1, 2
        li      r2, entries
        add     r2, r2, r1
        ld      r2, [r2]
        li      r11, shared
        rdpid   r10
        shli    r10, r10, 5
        li      r1, private
        add     r10, r10, r1            ; r10: this CPU's 32 private bytes
        li      r4, 0
        li      r5, 0
        li      r6, 0
        li      r7, 0
        jmpr    r2
""" + _counter("tick", "ticks") + _counter("svc", "calls") + """
        .include "mem.s"
        .include "idt.s"
"""


def _op(draw) -> str:
    x, y = draw(st.sampled_from(range(4, 8))), draw(st.sampled_from(range(4, 8)))
    slot = 4 * draw(st.integers(0, 7))
    kind = draw(st.sampled_from(["addi", "add", "xor", "shli", "ld", "st", "rdpid", "in",
                                 "int", "xadd", "pause", "cli-sti"]))
    if kind == "addi":
        return f"addi r{x}, r{x}, {draw(st.integers(-9, 9))}"
    if kind in ("add", "xor"):
        return f"{kind} r{x}, r{x}, r{y}"
    if kind == "shli":
        return f"shli r{x}, r{x}, {draw(st.integers(0, 3))}"
    if kind == "ld":
        return f"ld r{x}, [r10 + {slot}]"
    if kind == "st":
        return f"st [r10 + {slot}], r{x}"
    if kind == "rdpid":
        return f"rdpid r12\n add r{x}, r{x}, r12"
    if kind == "in":
        return f"in r12, PORT_CPU_COUNT\n add r{x}, r{x}, r12"
    if kind == "int":
        return "int 0x81"
    if kind == "xadd":  # the old value depends on the interleaving: it is thrown away
        return f"li r12, {draw(st.integers(1, 5))}\n xadd r12, [r11 + {4 * draw(st.integers(0, SHARED - 1))}]"
    if kind == "pause":
        return "pause"
    return "cli\n addi r7, r7, 1\n sti"


@st.composite
def smp_programs(draw):
    cpus = draw(st.integers(2, 4))
    lines = [PROLOGUE]
    for cpu in range(cpus):
        period = draw(st.integers(0, 3)) * 45
        body = "\n ".join(_op(draw) for _ in range(draw(st.integers(1, 10))))
        lines.append(f"""
cpu{cpu}:  li r1, {period}
        out PORT_TIMER_PERIOD, r1
        sti
        li r13, {draw(st.integers(1, 40))}
loop{cpu}:
        {body}
        addi r13, r13, -1
        cmpi r13, 0
        jnz loop{cpu}
        cli
        li r12, results + {16 * cpu}
        st [r12], r4
        st [r12 + 4], r5
        st [r12 + 8], r6
        st [r12 + 12], r7
        hlt""")
    lines.append("        .align 4\nentries: .word " + ", ".join(f"cpu{i}" for i in range(cpus)))
    lines.append(f"shared: .space {4 * SHARED}\nresults: .space {16 * cpus}\n"
                 f"ticks: .space {4 * cpus}\ncalls: .space {4 * cpus}\nprivate: .space {32 * cpus}")
    image = assemble_source("\n".join(lines), include_paths=(HERE,)).image
    guest = Guest(name="generated", image=image, memory_size=0x10000, max_steps=200_000,
                  cpus=cpus, interleave=draw(st.sampled_from([7, 50, 1000])))
    return guest, draw(st.sampled_from(SPECS)), draw(st.integers(1, cpus))


def _observed(read, image, cpus):
    start = image.symbols["shared"]
    end = image.symbols["private"] + 32 * cpus
    return read(start, end - start)


@settings(max_examples=12)
@given(smp_programs())
def test_generated_smp_programs_match_the_bare_machine(case):
    guest, spec, pcpus = case
    machine = boot_native(guest)
    native = machine.run(max_steps=guest.max_steps)
    assert native.stop_reason == "halted"
    strategy = make_strategy(spec)
    result = strategy.run(guest, pcpus=pcpus)
    vm = strategy.last_vm
    assert result.stop_reason == "halted", result.fault_report
    assert _observed(vm.memory.read, guest.image, guest.cpus) == \
        _observed(machine.memory.read, guest.image, guest.cpus)
    guest_causes = {c: n for c, n in result.by_cause.items() if not c.startswith(
        ("vmm:", "exit:", "callout:"))}
    assert guest_causes == native.by_cause
    assert result.resource_violations == ()
