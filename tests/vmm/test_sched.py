"""The qualitative facts of issue 12, measured on real guest code (guests/sched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toyvisor.vmm.sched import SchedError, load_workload, policy_names, simulate
from toyvisor.vmm.sched.policy import QueueLock

SCHED = Path(__file__).resolve().parents[2] / "guests" / "sched"

#: the seed's figure (Tanenbaum): gangs A6 B3 C3 D5 E7 on 6 CPUs, four rows, repeating
SEED_MATRIX = [
    ["A0", "A1", "A2", "A3", "A4", "A5"],
    ["B0", "B1", "B2", "C0", "C1", "C2"],
    ["D0", "D1", "D2", "D3", "D4", "E0"],
    ["E1", "E2", "E3", "E4", "E5", "E6"],
] * 2


def workload(name: str):
    return load_workload(SCHED / f"{name}.toml")


def runs(name: str, policies, **options):
    return {run.policy: run for run in simulate(workload(name), policies, **options)}


def test_gang_on_the_seed_workload_is_the_seeds_matrix():
    run = runs("tanenbaum", ["gang"], pcpus=6)["gang"]
    assert [list(row) for row in run.matrix] == SEED_MATRIX
    assert run.migrations == 0


def test_every_policy_finishes_every_workload_with_the_same_guest_work():
    for name in ("tanenbaum", "barrier", "independent", "mix", "locks"):
        done = {}
        for policy in policy_names():
            try:
                (run,) = simulate(workload(name), [policy])
            except SchedError as exc:
                assert policy == "space" and "can never start" in str(exc)
                continue
            assert run.busy_ticks + run.idle_ticks == run.pcpus * run.makespan
            done[policy] = run
        # lock-free workloads retire the same instructions under every policy (spinning aside)
        if name in ("tanenbaum", "independent"):
            assert len({r.guest_instructions for r in done.values()}) == 1, name


def test_gang_and_space_spin_five_times_less_on_the_barrier_workload():
    result = runs("barrier", ["timesharing", "gang", "space"])
    spinning = result["timesharing"].spin_instructions
    assert spinning > 0
    assert result["gang"].spin_instructions * 5 <= spinning
    assert result["space"].spin_instructions * 5 <= spinning


def test_smart_scheduling_and_ple_cut_lock_holder_preemption_and_spinning():
    result = runs("locks", ["timesharing", "smart", "ple"])
    plain, smart, ple = result["timesharing"], result["smart"], result["ple"]
    assert plain.lock_holder_preemptions > 0
    assert smart.lock_holder_preemptions < plain.lock_holder_preemptions
    assert smart.spin_instructions < plain.spin_instructions
    assert smart.estimated_cycles < plain.estimated_cycles
    assert ple.ple_exits > 0 and plain.ple_exits == 0
    assert ple.spin_instructions < plain.spin_instructions


def test_affinity_and_two_level_cut_cache_misses():
    result = runs("independent", ["timesharing", "affinity", "two-level"])
    assert result["affinity"].cache_misses < result["timesharing"].cache_misses
    assert result["two-level"].cache_misses < result["timesharing"].cache_misses
    assert result["two-level"].migrations < result["timesharing"].migrations
    for policy in ("affinity", "two-level"):  # ... and fewer estimated cycles
        assert result[policy].estimated_cycles < result["timesharing"].estimated_cycles


def test_two_level_cuts_queue_contention_as_p_grows():
    contention = {}
    for pcpus in (2, 4, 8):
        result = runs("independent", ["timesharing", "two-level"], pcpus=pcpus)
        contention[pcpus] = (result["timesharing"].queue_lock_contended,
                             result["two-level"].queue_lock_contended)
        assert contention[pcpus][1] < contention[pcpus][0]
    assert contention[2][0] < contention[4][0] < contention[8][0]
    gaps = [shared - own for shared, own in (contention[p] for p in (2, 4, 8))]
    assert gaps == sorted(gaps)


def test_space_sharing_leaves_cpus_idle_where_gang_fills_them():
    result = runs("mix", ["space", "gang"])
    assert result["gang"].idle_ticks * 5 < result["space"].idle_ticks
    assert result["space"].context_switches < result["gang"].context_switches


def test_space_sharing_refuses_a_vm_larger_than_the_machine():
    with pytest.raises(SchedError, match=r"tanenbaum.toml:\d+: VM E has 7 vCPUs.*never start"):
        simulate(workload("tanenbaum"), ["space"])


def test_runs_are_deterministic():
    first = simulate(workload("locks"), ["smart"])[0]
    assert simulate(workload("locks"), ["smart"])[0] == first


def test_the_queue_lock_counts_contention_between_cpus_only():
    lock = QueueLock(10)
    lock.take(5, 0)
    lock.take(5, 0)
    assert lock.contended == 0
    lock.take(5, 1)
    lock.take(5, 2)
    assert (lock.contended, lock.wait_cycles) == (2, 10 + 20)
    lock.take(6, 1)
    assert lock.contended == 2


def test_a_user_policy_file_is_loaded_by_path(tmp_path):
    path = tmp_path / "lifo.py"
    path.write_text(
        "from toyvisor.vmm.sched import Policy\n"
        "class Lifo(Policy):\n"
        "    name = 'lifo'\n"
        "    def __init__(self, params):\n"
        "        super().__init__(params)\n"
        "        self.stack = []\n"
        "    def ready(self, vcpu, now, preempted=False, cpu=None):\n"
        "        self.stack.append(vcpu)\n"
        "    def pick(self, cpus, now):\n"
        "        return {c: self.stack.pop() for c in cpus if self.stack}\n"
        "POLICY = Lifo\n")
    (run,) = simulate(workload("tanenbaum"), [str(path)])
    assert run.policy == "lifo" and run.makespan > 0


def test_a_broken_policy_file_is_one_located_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("x = 1\nraise ValueError('no')\n")
    with pytest.raises(SchedError, match=r"broken.py:2: ValueError: no"):
        simulate(workload("tanenbaum"), [str(path)])
    other = tmp_path / "empty.py"
    other.write_text("")
    with pytest.raises(SchedError, match="must define POLICY"):
        simulate(workload("tanenbaum"), [str(other)])


def test_a_tlb_shootdown_by_ipi_holds_under_every_policy():
    outcomes = set()
    for policy in policy_names():
        if policy == "space":
            continue  # T has more vCPUs than the machine has CPUs
        (run,) = simulate(workload("shootdown"), [policy])
        outcomes.add(run.consoles)
    assert outcomes == {(("T", "shootdown: 4 vCPUs saw the new mapping\n"),
                         ("U", "shootdown: 3 vCPUs saw the new mapping\n"))}


def test_both_engines_give_the_same_numbers():
    for name in ("locks", "shootdown", "independent"):
        for policy in ("timesharing", "gang"):
            assert simulate(workload(name), [policy], engine="fast") == \
                simulate(workload(name), [policy], engine="interpreter"), (name, policy)


def test_the_shootdown_guest_reports_a_missing_flush(tmp_path):
    for source in SCHED.glob("*.s"):
        (tmp_path / source.name).write_text(source.read_text())
    program = tmp_path / "shootdown.s"
    text = program.read_text()
    handler = text.index("handler:")
    flush = text.index("        invlpg  r1\n", handler)
    program.write_text(text[:flush] + "        nop\n" + text[flush + len("        invlpg  r1\n"):])
    (tmp_path / "w.toml").write_text((SCHED / "shootdown.toml").read_text())
    (run,) = simulate(load_workload(tmp_path / "w.toml"), ["timesharing"])
    assert all("stale mapping on vCPU" in text for _, text in run.consoles)


def _race_free(text: str) -> list[str]:
    """smpkernel's answers that no schedule may change: every line but the unlocked counter's
    (a real race), in any order (the CPUs announce themselves as they come online)."""
    return sorted(line for line in text.splitlines() if not line.startswith("unlocked counter"))


def test_the_smp_kernel_hosted_on_fewer_cpus_gives_the_bare_machines_answers():
    from toyvisor.cpu import Machine

    loaded = workload("smpkernel")
    (vm,) = loaded.vms
    bare = Machine(memory_size=vm.memory, cpus=vm.vcpus)
    bare.load(vm.image)
    result = bare.run(5_000_000)
    assert result.halted and "all threads done" in result.console
    for run in simulate(loaded, ["timesharing", "gang", "two-level"]):
        ((name, text),) = run.consoles
        assert _race_free(text) == _race_free(result.console), run.policy
        assert "locked counter: 400 (expected 400)" in text
        assert run.pcpus == 2 and run.guest_instructions > 0


def test_the_ple_window_decides_when_a_spinner_exits():
    plain, = simulate(workload("locks"), ["timesharing"])
    never, = simulate(workload("locks"), ["ple"], ple_window=10**9)
    assert never.ple_exits == 0
    assert never.spin_instructions == plain.spin_instructions
    short, = simulate(workload("locks"), ["ple"], ple_window=1000)
    default, = simulate(workload("locks"), ["ple"])
    assert short.ple_exits > default.ple_exits > 0
    assert short.spin_instructions < default.spin_instructions


def test_a_user_policy_that_misbehaves_is_one_located_error(tmp_path):
    path = tmp_path / "buggy.py"
    path.write_text(
        "from toyvisor.vmm.sched import Policy\n"
        "class Buggy(Policy):\n"
        "    name = 'buggy'\n"
        "    def pick(self, cpus, now):\n"
        "        return {cpus[0]: 1 / 0}\n"
        "POLICY = Buggy\n")
    with pytest.raises(SchedError, match=r"buggy.py:5: policy buggy: ZeroDivisionError"):
        simulate(workload("tanenbaum"), [str(path)])
    path.write_text(
        "from toyvisor.vmm.sched import Policy\n"
        "class Bad(Policy):\n"
        "    name = 'bad'\n"
        "    def pick(self, cpus, now):\n"
        "        return {cpus[0]: 'A0'}\n"
        "POLICY = Bad\n")
    with pytest.raises(SchedError, match=r"policy bad put 'A0' on CPU 0: only a ready vCPU"):
        simulate(workload("tanenbaum"), [str(path)])
