"""Pause-loop exiting: timesharing for unmodified guests under hardware-assisted virtualization.
The guest sets no flag; instead the CPU notices a vCPU spinning on `pause` (pauses at most `gap`
cycles apart for longer than `window` cycles) and exits, and the hypervisor yields that vCPU's
CPU to another vCPU — hopefully the lock holder.  KVM's defaults: gap 128, window 4096.
"""

from __future__ import annotations

from .timesharing import Timesharing


class PauseLoopExiting(Timesharing):
    name = "ple"
    summary = "timesharing + pause-loop exiting (gap 128, window 4096): a spinner yields"
    order = 3

    def __init__(self, params) -> None:
        super().__init__(params)
        self.pause_loop_exiting = (params.ple_gap, params.ple_window)


POLICY = PauseLoopExiting
