"""The multiprocessor: start-up by start IPI, IPIs, CPU identity, IRQ routing, the round-robin
interleave, idle CPUs, and the same results on both engines."""

from __future__ import annotations

import pytest
from cpu_asm import assemble

from toyvisor.cpu import ENGINES, Machine, MachineError
from toyvisor.isa.spec import (
    SMP_BAD_ADDRESS,
    SMP_BAD_LINE,
    SMP_BAD_VECTOR,
    SMP_BUSY,
    SMP_NO_CPU,
    SMP_OK,
)

# Interrupt table at 0x2000: gate 48 (the first IPI vector) and gate 33 (console) run `handler`,
# which counts into `hits` + 4*cpu and returns.
IDT = """
idt_setup:
        li   r10, 0x2000
        li   r11, ipi_handler
        st   [r10 + 384], r11       ; gate 48
        li   r11, 1                 ; present, DPL 0, ring 0, interrupt gate
        st   [r10 + 388], r11
        li   r11, irq_handler
        st   [r10 + 264], r11       ; gate 33
        li   r11, 1
        st   [r10 + 268], r11
        lidt r10
        ret
ipi_handler:
        push r1
        push r2
        rdpid r1
        shli r1, r1, 2
        li   r2, hits
        add  r1, r1, r2
        li   r2, 1
        xadd r2, [r1]
        pop  r2
        pop  r1
        iret
irq_handler:
        push r1
        in   r1, PORT_CONSOLE_DATA
        rdpid r1
        li   r3, irq_cpu
        st   [r3], r1
        pop  r1
        iret
"""


def smp_machine(source: str, cpus: int = 4, **kw) -> Machine:
    machine = Machine(memory_size=1 << 16, cpus=cpus, **kw)
    machine.load(assemble(source))
    return machine


def labels(source: str):
    return assemble(source)


# -- configuration errors ------------------------------------------------------------------------

@pytest.mark.parametrize("cpus", [0, 65, -1, 2.0, "4", True, None])
def test_bad_cpu_counts_are_machine_errors(cpus):
    with pytest.raises(MachineError, match="number of CPUs must be an integer from 1 to 64"):
        Machine(memory_size=1 << 16, cpus=cpus)


@pytest.mark.parametrize("interleave", [0, -5, 1.5, "10", False])
def test_bad_interleaves_are_machine_errors(interleave):
    with pytest.raises(MachineError, match="interleave must be a positive number"):
        Machine(memory_size=1 << 16, cpus=2, interleave=interleave)


def test_sixty_four_cpus_boot():
    machine = smp_machine("hlt", cpus=64)
    result = machine.run(100)
    assert result.halted and len(result.per_cpu) == 64
    assert [c.state for c in result.per_cpu] == ["halted"] + ["waiting"] * 63


# -- start-up ------------------------------------------------------------------------------------

START = """
start:  li   sp, 0x8000
        li   r1, 1
        out  PORT_IPI_DEST, r1
        li   r2, ap_entry
        out  PORT_CPU_START, r2
        in   r3, PORT_SMP_STATUS        ; ok
        out  PORT_CPU_START, r2
        in   r4, PORT_SMP_STATUS        ; busy: CPU 1 runs already
        li   r1, 9
        out  PORT_IPI_DEST, r1
        out  PORT_CPU_START, r2
        in   r5, PORT_SMP_STATUS        ; no such CPU
        li   r1, 2
        out  PORT_IPI_DEST, r1
        li   r2, 0x10000
        out  PORT_CPU_START, r2
        in   r6, PORT_SMP_STATUS        ; outside RAM
        li   r2, 0x102
        out  PORT_CPU_START, r2
        in   r7, PORT_SMP_STATUS        ; misaligned
        in   r8, PORT_CPU_COUNT
        rdpid r9
        hlt
ap_entry:
        rdpid r1
        li   r2, 0x55
        hlt
"""


def test_only_cpu0_runs_at_reset_and_a_start_ipi_starts_an_ap():
    machine = smp_machine(START, cpus=3)
    result = machine.run(1000)
    assert result.halted
    cpu0, cpu1, cpu2 = result.per_cpu
    assert cpu0.registers[3:10] == (SMP_OK, SMP_BUSY, SMP_NO_CPU, SMP_BAD_ADDRESS,
                                    SMP_BAD_ADDRESS, 3, 0)
    assert cpu1.state == "halted" and cpu1.registers[1] == 1 and cpu1.registers[2] == 0x55
    assert cpu1.pc == assemble(START)["ap_entry"] + 16
    assert cpu2.state == "waiting" and cpu2.guest_instructions == 0
    assert cpu0.ipis_sent == 1  # only the start that succeeded


def test_an_ap_starts_in_reset_state_with_its_clock_in_step():
    source = "start: li r1, 1\n out PORT_IPI_DEST, r1\n li r2, ap\n out PORT_CPU_START, r2\n" \
             " hlt\nap: in r3, PORT_CLOCK\n mfcr r4, cr0\n hlt"
    result = smp_machine(source, cpus=2).run(100)
    ap = result.per_cpu[1]
    # started when CPU 0's `out` retired at tick 4; its own `in` is its first instruction
    assert ap.registers[3] == 5 and ap.registers[4] == 0 and ap.cpl == 0
    assert ap.ticks == 4 + 3


# -- IPIs ----------------------------------------------------------------------------------------

IPI = START_ALL = """
start:  li   sp, 0x8000
        call idt_setup
        in   r8, PORT_CPU_COUNT
        li   r1, 1
boot:   cmp  r1, r8
        jge  booted
        out  PORT_IPI_DEST, r1
        li   r2, ap
        out  PORT_CPU_START, r2
        addi r1, r1, 1
        jmp  boot
booted: li   r1, ready              ; wait until every AP has its interrupt table
        addi r9, r8, -1
wait:   ld   r2, [r1]
        cmp  r2, r9
        jnz  wait
        li   r2, 48
        out  PORT_IPI_SEND, r2          ; to IPI_DEST (the last CPU started)
        li   r2, 0x130
        out  PORT_IPI_SEND, r2          ; 48 to all others
        li   r2, 0x230
        sti
        out  PORT_IPI_SEND, r2          ; 48 to all, this CPU too
        li   r2, 47
        out  PORT_IPI_SEND, r2
        in   r3, PORT_SMP_STATUS        ; bad vector
        li   r2, 0x330
        out  PORT_IPI_SEND, r2
        in   r4, PORT_SMP_STATUS        ; bad shorthand
        li   r2, 12
        out  PORT_IPI_DEST, r2
        li   r2, 48
        out  PORT_IPI_SEND, r2
        in   r5, PORT_SMP_STATUS        ; no such CPU
        li   r6, 2000
spin:   pause
        addi r6, r6, -1
        cmpi r6, 0
        jnz  spin
        cli
        hlt
ap:     rdpid r1
        shli r1, r1, 12
        li   sp, 0x8000
        add  sp, sp, r1
        call idt_setup
        li   r1, ready
        li   r2, 1
        xadd r2, [r1]
        sti
idle:   hlt                         ; woken by each IPI
        li   r1, hits
        rdpid r2
        shli r2, r2, 2
        add  r1, r1, r2
        ld   r1, [r1]
        li   r2, {want}
        rdpid r3
        cmp  r3, r8
        jnz  check
        addi r2, r2, 1              ; the last CPU also got the directed IPI
check:  cmp  r1, r2
        jl   idle
        cli
        hlt
""" + IDT + """
        .align 4
ready:  .word 0
irq_cpu: .word 0xFFFFFFFF
hits:   .space 256
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_ipis_to_one_to_all_others_and_to_all(engine):
    source = IPI.replace("{want}", "1").replace("cmp  r3, r8", "cmp  r3, r9")
    machine = smp_machine(source, cpus=4, interleave=50)
    result = machine.run(200_000, engine=engine)
    assert result.halted, result.stop_reason
    hits = assemble(source)["hits"]
    counts = [machine.memory.read32(hits + 4 * i) for i in range(4)]
    # CPU 0 sends its three IPIs within one turn: a vector already pending on the target merges
    # (as in a local APIC's request register), so each CPU takes vector 48 once
    assert counts == [1, 1, 1, 1]
    cpu0 = result.per_cpu[0]
    assert cpu0.registers[3:6] == (SMP_BAD_VECTOR, SMP_BAD_VECTOR, SMP_NO_CPU)
    assert cpu0.ipis_sent == 3 + 1 + 3 + 4  # three starts, one directed, three others, four all
    assert [c.ipis_received for c in result.per_cpu] == [1, 3, 3, 4]  # with the start
    assert all(c.by_cause == {"ipi 0x30": 1} for c in result.per_cpu)
    assert cpu0.pauses == 2000
    assert all(c.state == "halted" for c in result.per_cpu)


# -- external interrupt routing ------------------------------------------------------------------

ROUTE = """
start:  li   sp, 0x8000
        call idt_setup
        li   r1, 1
        out  PORT_IPI_DEST, r1
        li   r2, ap
        out  PORT_CPU_START, r2
        li   r1, IRQ_CONSOLE
        out  PORT_IRQ_ROUTE_LINE, r1
        in   r5, PORT_IRQ_ROUTE_CPU     ; 0 at reset
        li   r1, 1
        out  PORT_IRQ_ROUTE_CPU, r1     ; console input goes to CPU 1
        in   r6, PORT_IRQ_ROUTE_CPU
        li   r1, 7
        out  PORT_IRQ_ROUTE_CPU, r1
        in   r7, PORT_SMP_STATUS        ; no such CPU: unchanged
        li   r1, 16
        out  PORT_IRQ_ROUTE_LINE, r1
        out  PORT_IRQ_ROUTE_CPU, r1
        in   r8, PORT_SMP_STATUS        ; no such line
        in   r9, PORT_PIC_PENDING
        sti
        li   r1, 300
w:      addi r1, r1, -1
        cmpi r1, 0
        jnz  w
        cli
        hlt
ap:     li   sp, 0x9000
        call idt_setup
        sti
        li   r1, 300
w2:     addi r1, r1, -1
        cmpi r1, 0
        jnz  w2
        cli
        hlt
""" + IDT + """
        .align 4
ready:  .word 0
irq_cpu: .word 0xFFFFFFFF
hits:   .space 256
"""


def test_device_interrupts_go_to_the_cpu_the_guest_routes_them_to():
    machine = Machine(memory_size=1 << 16, cpus=2, interleave=20, console_input=b"x")
    machine.load(assemble(ROUTE))
    result = machine.run(10_000)
    assert result.halted
    cpu0 = result.per_cpu[0]
    assert cpu0.registers[5:9] == (0, 1, SMP_NO_CPU, SMP_BAD_LINE)
    assert cpu0.registers[9] == 0  # the level-triggered console line moved to CPU 1
    assert machine.memory.read32(assemble(ROUTE)["irq_cpu"]) == 1
    assert result.per_cpu[1].by_cause == {"irq 1": 1} and "irq 1" not in cpu0.by_cause


# -- the interleave ------------------------------------------------------------------------------

RACE = """
start:  li   sp, 0x8000
        in   r8, PORT_CPU_COUNT
        li   r1, 1
boot:   cmp  r1, r8
        jge  work
        out  PORT_IPI_DEST, r1
        li   r2, work
        out  PORT_CPU_START, r2
        addi r1, r1, 1
        jmp  boot
work:   li   r4, 500
        li   r5, racy
        li   r6, atomic
loop:   ld   r1, [r5]           ; racy: load, add, store
        addi r1, r1, 1
        st   [r5], r1
        li   r2, 1
        xadd r2, [r6]           ; atomic
        addi r4, r4, -1
        cmpi r4, 0
        jnz  loop
        li   r1, done
        li   r2, 1
        xadd r2, [r1]
        cli
        hlt
        .align 4
racy:   .word 0
atomic: .word 0
done:   .word 0
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unlocked_counter_loses_updates_and_an_atomic_one_does_not(engine):
    machine = smp_machine(RACE, cpus=4, interleave=37)
    result = machine.run(1_000_000, engine=engine)
    image = assemble(RACE)
    racy, atomic = (machine.memory.read32(image[name]) for name in ("racy", "atomic"))
    assert result.halted and atomic == 2000 and machine.memory.read32(image["done"]) == 4
    assert racy < 2000
    assert all(c.guest_instructions > 3000 for c in result.per_cpu)


def test_with_one_cpu_the_same_program_counts_exactly():
    machine = smp_machine(RACE, cpus=1)
    machine.run(100_000)
    image = assemble(RACE)
    assert machine.memory.read32(image["racy"]) == 500


def test_runs_are_deterministic_and_engines_agree():
    results = []
    for engine in ("interpreter", "interpreter", "fast", "fast"):
        machine = smp_machine(RACE, cpus=3, interleave=53)
        results.append((machine.run(1_000_000, engine=engine).to_dict(),
                        bytes(machine.memory.data[:0x1000])))
    assert all(r == results[0] for r in results)
    assert len(results[0][0]["cpus"]) == 3


def test_the_interleave_changes_the_race_but_not_the_atomic_count():
    outcomes = set()
    for interleave in (7, 13, 1000):
        machine = smp_machine(RACE, cpus=2, interleave=interleave)
        machine.run(1_000_000)
        image = assemble(RACE)
        outcomes.add(machine.memory.read32(image["racy"]))
        assert machine.memory.read32(image["atomic"]) == 1000
    assert len(outcomes) > 1


def test_a_budget_split_over_runs_gives_the_same_machine_as_one_run():
    whole = smp_machine(RACE, cpus=3, interleave=11)
    expected = whole.run(5000).to_dict()
    split = smp_machine(RACE, cpus=3, interleave=11)
    for _ in range(10):
        partial = split.run(500)
    assert partial.stop_reason == "budget" and partial.to_dict() == expected


def test_traces_name_the_cpu_and_match_between_engines():
    traces = {}
    for engine in ENGINES:
        events = []
        machine = smp_machine(RACE.replace("500", "5"), cpus=2, interleave=9)
        machine.run(10_000, trace=events.append, engine=engine)
        traces[engine] = events
    assert traces["interpreter"] == traces["fast"]
    assert {e.cpu for e in traces["interpreter"]} == {0, 1}


# -- idle CPUs -----------------------------------------------------------------------------------

def test_all_cpus_idle_without_a_wake_source_halt_the_machine():
    source = "start: li r1, 1\n out PORT_IPI_DEST, r1\n li r2, ap\n out PORT_CPU_START, r2\n" \
             " sti\n hlt\nap: sti\n hlt"
    result = smp_machine(source, cpus=2).run(1000)
    assert result.halted and [c.state for c in result.per_cpu] == ["halted", "halted"]


def test_idle_cpus_jump_to_the_next_timer_deadline_together():
    source = """
    start:  li   r10, 0x2000
            li   r11, tick
            st   [r10 + 256], r11
            li   r11, 1
            st   [r10 + 260], r11
            lidt r10
            li   sp, 0x8000
            li   r1, 1
            out  PORT_IPI_DEST, r1
            li   r2, ap
            out  PORT_CPU_START, r2
            li   r1, 100000
            out  PORT_TIMER_PERIOD, r1
            sti
            hlt
            cli
            hlt
    tick:   addi sp, sp, 20
            li   r1, 0
            out  PORT_TIMER_PERIOD, r1
            li   r1, after
            jmpr r1
    after:  cli
            hlt
    ap:     sti
            hlt
    """
    result = smp_machine(source, cpus=2).run(1000)
    assert result.halted
    assert result.per_cpu[0].by_cause == {"timer": 1}
    assert result.per_cpu[0].idle_ticks == 100000 - 2  # the sti and the hlt ran


# -- the cache model -----------------------------------------------------------------------------

from toyvisor.cpu.cache import CacheGeometry, parse_geometry  # noqa: E402


@pytest.mark.parametrize("text", ["3000,2,32", "4096,3,32", "4096,2,24", "4096,2,2", "64,4,32",
                                  "4096,2", "a,b,c", "0,1,4"])
def test_bad_cache_geometries_are_machine_errors(text):
    with pytest.raises(MachineError, match="cache"):
        parse_geometry(text)


def test_the_cache_model_counts_without_changing_results():
    plain = smp_machine(RACE, cpus=2, interleave=37)
    expected = plain.run(1_000_000)
    for engine in ENGINES:
        machine = smp_machine(RACE, cpus=2, interleave=37, cache=parse_geometry("on"))
        result = machine.run(1_000_000, engine=engine)
        strip = {"cache_hits", "cache_misses", "cache_invalidations"}
        assert [{k: v for k, v in c.to_dict().items() if k not in strip} for c in result.per_cpu] \
            == [{k: v for k, v in c.to_dict().items() if k not in strip}
                for c in expected.per_cpu]
        assert result.guest_instructions == expected.guest_instructions
        assert bytes(machine.memory.data[:0x1000]) == bytes(plain.memory.data[:0x1000])
        for c in result.per_cpu:
            # each of 500 iterations: ld + st of racy and xadd (a load and a store) of atomic,
            # then the xadd of `done`
            assert c.cache_hits + c.cache_misses == 500 * 4 + 2
            # both counters live on one line that the two CPUs keep taking from each other
            assert c.cache_invalidations > 0 and c.cache_misses > c.cache_invalidations
        if engine == "interpreter":
            first = result
        else:
            assert result.to_dict() == first.to_dict()


def test_a_private_line_stays_in_its_cache():
    source = """
    start:  li   r1, buf
            li   r2, 100
    loop:   ld   r3, [r1]
            st   [r1 + 4], r3
            addi r2, r2, -1
            cmpi r2, 0
            jnz  loop
            hlt
            .align 32
    buf:    .word 1, 2
    """
    machine = Machine(memory_size=1 << 16, cache=CacheGeometry(1024, 2, 32))
    machine.load(assemble(source))
    cpu0 = machine.run(10_000).per_cpu[0]
    assert (cpu0.cache_misses, cpu0.cache_hits, cpu0.cache_invalidations) == (2, 198, 0)
