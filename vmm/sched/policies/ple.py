"""Pause-loop exiting: timesharing for unmodified guests under hardware-assisted virtualization.
The guest sets no flag; instead the CPU notices a vCPU spinning on `pause` (pauses at most `gap`
cycles apart for longer than `window` cycles) and exits, and the hypervisor yields that vCPU's
CPU to another vCPU — hopefully the lock holder.  KVM's defaults: gap 128, window 4096.
"""

from __future__ import annotations

from .timesharing import Timesharing

#: KVM's defaults (arch/x86/kvm/vmx: ple_gap 128, ple_window 4096)
PLE_GAP, PLE_WINDOW = 128, 4096


class PauseLoopExiting(Timesharing):
    name = "ple"
    summary = "timesharing + pause-loop exiting (gap 128, window 4096): a spinner yields"
    order = 3
    pause_loop_exiting = (PLE_GAP, PLE_WINDOW)


POLICY = PauseLoopExiting
