"""Invariants of the scheduling host over generated workloads: every policy finishes every
workload it accepts, the CPU time adds up, the guest work of lock-free programs does not depend on
the policy, and gang scheduling co-schedules every gang that fits the machine."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.vmm.sched import Unschedulable, load_workload, policy_names, simulate

SCHED = Path(__file__).resolve().parents[2] / "guests" / "sched"

vm_specs = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from(["compute.s", "barrier.s"]),
              st.integers(1, 2), st.sampled_from([0, 0, 100, 700])),
    min_size=1, max_size=3)


def write(tmp_path, pcpus, specs) -> Path:
    lines = [f"pcpus = {pcpus}", "quantum = 250", "slot = 250", 'cache = "off"']
    for i, (vcpus, program, work, arrival) in enumerate(specs):
        lines += ["[[vm]]", f'name = "{"ABCDE"[i]}"', f"vcpus = {vcpus}",
                  f'program = "{SCHED / program}"', f"work = {work}", f"arrival = {arrival}"]
    path = tmp_path / "w.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@settings(max_examples=6, deadline=None)
@given(pcpus=st.integers(1, 4), specs=vm_specs)
def test_generated_workloads(tmp_path_factory, pcpus, specs):
    path = write(tmp_path_factory.mktemp("w"), pcpus, specs)
    workload = load_workload(path)
    compute_only = all(program == "compute.s" for _, program, _, _ in specs)
    work = set()
    for policy in policy_names():
        try:
            (run,) = simulate(workload, [policy])
        except Unschedulable:
            assert policy == "space" and any(v > pcpus for v, _, _, _ in specs)
            continue
        assert run.busy_ticks + run.idle_ticks == pcpus * run.makespan
        assert 0 < run.utilization <= 1
        work.add(run.guest_instructions)
        by_vcpu = {}
        for lane, start, end, name in run.spans:
            by_vcpu.setdefault(name, []).append((start, end))
        for stretches in by_vcpu.values():  # a vCPU runs on one CPU at a time
            stretches.sort()
            assert all(a[1] <= b[0] for a, b in zip(stretches, stretches[1:]))
        if policy == "gang":
            for vm in workload.vms:
                if vm.vcpus > pcpus:
                    continue
                members = {f"{vm.name}{i}" for i in range(vm.vcpus)}
                # a slot in which a member ran keeps a cell for every member: the other VMs
                # hold at most P - vcpus of its cells
                for row in run.matrix:
                    if members & set(row):
                        others = [c for c in row if c and c not in members]
                        assert len(others) <= pcpus - vm.vcpus, (vm.name, row)
    if compute_only:
        assert len(work) == 1
