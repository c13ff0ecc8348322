"""A debug session: run a guest to a stop, forwards or backwards, under any VMM.

    >>> session = Session(load_guest("nanobench"), vmm="trap-emulate")
    >>> session.add_breakpoint(session.location("bench_popf"))
    >>> session.cont().reason
    'breakpoint 1'
    >>> session.reverse_stepi()

**Positions.**  The timeline of a session counts guest instructions as the CPU starts them:
position *n* is the state just before the *n*-th instruction (from 0).  An attempt that the VMM
makes the guest repeat invisibly (a hidden page fault while it fills a shadow table) does not
count, so positions are the guest's own instruction count under every strategy.

**Running.**  The world (`toyvisor.tools.debug.world`) runs in a worker thread with a trace
callback; a stop is that callback waiting for the next command, so a stopped guest is exactly
mid-run, with the VMM's state as it really is at that instruction.  The world advances in chunks
of budget steps; at every chunk boundary at a multiple of `checkpoint_every` steps the session
keeps a `Checkpoint` (memory compressed; thinned by doubling the interval past
`max_checkpoints`).

**Going back.**  Runs are deterministic, so the state at any earlier position is the state a fresh
world restored from the last checkpoint before it reaches after the same instructions: going back
costs at most one checkpoint interval of re-execution (twice for ``reverse-continue``: one replay
to find the last stop, one to reach it), never a restart.  What a checkpoint cannot hold — a
VMM's caches (shadow tables, translations) — is rebuilt by the VMM after a restore; the guest
cannot tell, but VMM entries that only fill those caches can happen at other positions after
going back than they did the first time.
"""

from __future__ import annotations

import queue
import threading
from array import array

import attrs

from toyvisor.cpu.events import InstructionEvent
from toyvisor.isa.spec import FLAG_IF, M32, SP

from ..guest import Guest
from .expr import Expression
from .inspect import Inspector
from .world import Checkpoint, DebugError, View, World

DEFAULT_CHECKPOINT_EVERY = 10_000
DEFAULT_MAX_CHECKPOINTS = 64
#: where the monitor's registers and watchable values come from
REGISTER_NAMES = tuple(f"r{i}" for i in range(16)) + ("sp", "pc", "flags", "cpl", "iflag")
_CALLS = frozenset(("call", "callr"))


@attrs.frozen
class Stop:
    """Where a command left the session: the position and why it stopped there."""

    position: int
    reason: str
    #: True when the guest has ended (halted, triple fault, budget used up): nothing runs further
    finished: bool = False
    #: the (v)CPU that stopped (an index into `World.views`)
    cpu: int = 0


@attrs.frozen
class Frame:
    """One frame of the debugger's call chain: a call or a trap it saw begin."""

    kind: str  # "call" or the cause of a trap ("int 0x80", "timer", "page-fault", ...)
    entry: int  # the first instruction of the callee or handler
    site: int  # the calling instruction, or the instruction running when the trap came
    sp: int
    #: a call's return address (the instruction after the call)
    returns_to: int = -1


@attrs.frozen
class Point:
    """A breakpoint, watchpoint or catchpoint (numbered together, as in gdb)."""

    number: int
    kind: str  # "break", "watch", "watch-reg", "catch"
    description: str
    address: int | None = None
    size: int = 0
    access: str = ""  # "r", "w" or "rw" for memory watches
    register: str = ""
    cause: str = ""
    condition: Expression | None = None
    #: a memory watch: the host-physical address of its first byte
    host: int | None = None
    temporary: bool = False


@attrs.frozen
class _Tracking:
    """Per-position bookkeeping a checkpoint carries so a replay continues it exactly."""

    frames: tuple[Frame, ...]
    previous: tuple | None


class _Abandon(BaseException):
    """Unwinds a worker whose world is being replaced (BaseException: no guest code catches it)."""


_ABANDON = object()


# -- goals: when a resumed run stops on its own ---------------------------------------------------

@attrs.frozen
class _Goal:
    start: int
    triggers: bool = True
    target: int | None = None  # stop at this position
    line: tuple | None = None  # stop once the source line differs from this (step/next)
    depth: int | None = None  # next: only at depth <= this; finish: once depth < this
    finish: bool = False
    scan: list | None = None  # reverse-continue: record triggers here, stop at `target`

    def reached(self, session: Session, position: int, pc: int) -> str | None:
        if position <= self.start and self.target != position:
            return None
        if self.target is not None and position >= self.target:
            return "" if self.scan is None else "scanned"
        depth = len(session._frames)
        if self.finish:
            return "finished the frame" if depth < self.depth else None
        if self.line is not None:
            if self.depth is not None and depth > self.depth:
                return None
            key = session.inspector.line_key(pc)
            if key is None or key != self.line:
                return ""
        return None


class Session:
    """A guest under the debugger (see the module docstring)."""

    def __init__(self, guest: Guest, vmm: str | None = None, cpus: int = 1, *,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                 max_checkpoints: int = DEFAULT_MAX_CHECKPOINTS) -> None:
        if checkpoint_every < 1:
            raise DebugError("the checkpoint interval must be at least 1 step")
        self.guest = guest
        self.vmm = None if vmm in (None, "native") else vmm
        self.cpus = cpus
        self.checkpoint_every = checkpoint_every
        self.max_checkpoints = max(2, max_checkpoints)
        self.points: dict[int, Point] = {}
        self._next_point = 1
        self.position = 0
        #: pc and call depth at every position seen so far (the future stays valid going back:
        #: runs are deterministic)
        self.history_pc = array("I")
        self.history_depth = array("I")
        self.checkpoints: dict[int, tuple[Checkpoint, _Tracking]] = {}
        self.replayed = 0  # instructions re-executed by reverse commands (for `info checkpoints`)
        self.world = World.boot(guest, self.vmm, cpus)
        self.inspector = Inspector(self.world)
        self._frames: list[Frame] = []
        self._previous: tuple | None = None
        self._before_previous: tuple | None = None
        self._pending: list[str] = []
        self._reg_last: dict[int, int] = {}
        self._cause_totals = (0, 0)
        self._cause_last: dict[str, int] = {}
        self._resume_at = -1
        self._audit_next = None
        self._interrupt = False
        self._runner: _Runner | None = None
        self.last_stop: Stop | None = None
        self._attach(self.world)
        self._start(_Goal(start=-1, triggers=False, target=0))

    # -- positions and locations -----------------------------------------------------------------

    def location(self, text: str) -> int:
        """An address from ``*0x1000``, ``0x1000``, a symbol, ``symbol+4`` or ``file:line``."""
        text = text.strip().lstrip("*")
        if not text:
            raise DebugError("expected a location: an address, a symbol or file:line")
        value = self.inspector.symbol(text)
        if value is not None:
            return value
        if ":" in text and not text.startswith(":"):
            return self.inspector.address_of_line(text)
        return self.evaluate(text, view=None) & M32

    def names(self, view: View | None) -> dict[str, int]:
        """What an expression can name: the symbols, and with a view its registers."""
        names = {n: v for n, v in self.world.guest.image.symbols.items() if n.isidentifier()}
        if view is not None:
            names.update({f"r{i}": v for i, v in enumerate(view.regs)})
            names.update(sp=view.regs[SP], pc=view.pc, flags=view.flags, cpl=view.cpl,
                         iflag=int(bool(view.flags & FLAG_IF)))
            if view.real and view.real.get("loaded"):
                names.update(real_cpl=view.real["cpl"],
                             real_iflag=int(bool(view.real["flags"] & FLAG_IF)))
        return names

    def evaluate(self, text: str | Expression, view: View | None = None) -> int:
        expression = text if isinstance(text, Expression) else Expression(text)
        view = view if view is not None else self.view()
        return expression.evaluate(self.names(view),
                                   lambda va: self.inspector.word(view, va))

    def view(self, cpu: int = 0) -> View:
        views = self.world.views()
        if not 0 <= cpu < len(views):
            raise DebugError(f"no cpu {cpu} (there {'is' if len(views) == 1 else 'are'} "
                             f"{len(views)})")
        return views[cpu]

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(self._frames)

    # -- points ------------------------------------------------------------------------------------

    def _add(self, **fields) -> Point:
        point = Point(number=self._next_point, **fields)
        self.points[point.number] = point
        self._next_point += 1
        self._install_watches()
        return point

    def add_breakpoint(self, address: int, condition: str | None = None, *,
                       temporary: bool = False) -> Point:
        expression = Expression(condition) if condition else None
        where = self.inspector.where(address)
        text = f"{address:#010x} {self.inspector.describe(address)}".rstrip()
        if where:
            text += f" ({where})"
        if expression is not None:
            text += f" if {expression.text}"
        return self._add(kind="break", description=text, address=address & M32,
                         condition=expression, temporary=temporary)

    def add_watch(self, address: int, size: int = 4, access: str = "w", *,
                  physical: bool = False) -> Point:
        if access not in ("r", "w", "rw"):
            raise DebugError(f"watch access must be r, w or rw, not '{access}'")
        if not 0 < size <= 1 << 20:
            raise DebugError(f"watch size must be 1 to {1 << 20} bytes, not {size}")
        view = self.view()
        gpa = address if physical else self.inspector.translate(view, address)
        memory = self.inspector.guest_physical()
        memory.read(gpa, size)  # inside the guest's memory?
        if not physical:
            last = self.inspector.translate(view, address + size - 1)
            if last != gpa + size - 1:
                raise DebugError("a watched range must not cross into another page mapping")
        host = memory.base + gpa
        place = "physical" if physical else "virtual"
        text = (f"{access} {size} byte{'s' if size != 1 else ''} at {place} {address:#010x}"
                + ("" if physical else f" (guest-physical {gpa:#010x})"))
        return self._add(kind="watch", description=text, address=address, size=size,
                         access=access, host=host)

    def add_register_watch(self, register: str) -> Point:
        if register not in REGISTER_NAMES:
            raise DebugError(f"unknown register '{register}' (watchable: "
                             f"{', '.join(REGISTER_NAMES)})")
        point = self._add(kind="watch-reg", description=f"register {register}",
                          register=register)
        self._reg_last[point.number] = self.names(self.view())[register]
        return point

    def add_catch(self, cause: str) -> Point:
        cause = cause.strip()
        if not cause:
            raise DebugError("catch what? a trap cause (page-fault, timer, int 0x80, ...) or a "
                             "VMM entry cause (vmm:privileged, exit:io, hypercall, ...)")
        self._cause_last = self._causes()
        return self._add(kind="catch", description=cause, cause=cause)

    def delete(self, number: int | None = None) -> None:
        """Delete one point by number, or every point."""
        if number is not None and number not in self.points:
            raise DebugError(f"no breakpoint, watchpoint or catchpoint {number}")
        doomed = list(self.points) if number is None else [number]
        for each in doomed:
            point = self.points.pop(each)
            if point.kind == "watch" and not self.world.virtual:
                # the bare machine has no other watcher; under a VMM the hypervisor re-watches
                # what it needs when it next loads a VM
                self.world.memory.unwatch(point.host, point.size)
        self._install_watches()

    def _install_watches(self) -> None:
        memory = self.world.memory
        watches = [p for p in self.points.values() if p.kind == "watch"]
        for point in watches:
            memory.watch(point.host, point.size, read="r" in point.access,
                         write="w" in point.access)
        memory.audit = self._audit if watches else self._audit_next

    def _attach(self, world: World) -> None:
        """Wire the session's hooks into a (new) world."""
        world.on_retry = self._retry
        world.on_load = self._install_watches
        self._audit_next = world.memory.audit  # the hypervisor's resource-control audit
        self.world = world
        self.inspector.world = world
        self._install_watches()
        self._cause_last = self._causes()
        self._cause_totals = self._totals()
        view = world.views()[0]
        names = self.names(view)
        for point in self.points.values():
            if point.kind == "watch-reg":
                self._reg_last[point.number] = names[point.register]

    def _audit(self, access: str, pa: int, size: int, value) -> None:
        if self._audit_next is not None:
            self._audit_next(access, pa, size, value)
        for point in self.points.values():
            if point.kind != "watch" or access[0] not in point.access:
                continue
            if pa < point.host + point.size and point.host < pa + size:
                start = point.address + max(0, pa - point.host)
                if access == "write":
                    old = bytes(self.world.memory.data[pa:pa + size])
                    new = value if isinstance(value, bytes) else \
                        (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                    self._pending.append(
                        f"watchpoint {point.number}: write at {start:#010x}: "
                        f"{_hex(old)} -> {_hex(new)}{self._by()}")
                else:
                    self._pending.append(f"watchpoint {point.number}: read at {start:#010x}: "
                                         f"{_hex(value, size)}{self._by()}")

    def _by(self) -> str:
        previous = self._previous  # the instruction running now (its access is this one)
        return f" (by {previous[1]:08x} {previous[0]})" if previous else ""

    # -- the stop decision (runs in the worker, before each instruction) -------------------------

    def _totals(self) -> tuple[int, int]:
        return (sum(self.world.guest_causes().values()),
                sum(self.world.vmm_causes().values()))

    def _causes(self) -> dict[str, int]:
        return {**self.world.guest_causes(), **self.world.vmm_causes()}

    def _on_instruction(self, event: InstructionEvent, goal: _Goal) -> Stop | None:
        position = self.position
        totals = self._totals()
        new: list[str] = []
        delivered = totals[0] != self._cause_totals[0]
        if totals != self._cause_totals:
            self._cause_totals = totals
            causes = self._causes()
            last = self._cause_last
            new = [name for name, count in causes.items() if count > last.get(name, 0)]
            self._cause_last = causes
        self._track(event, delivered, new)
        if position == len(self.history_pc):
            self.history_pc.append(event.pc)
            self.history_depth.append(len(self._frames))
        if self._interrupt:
            self._interrupt = False
            self._pending.clear()
            return Stop(position, "interrupted", cpu=event.cpu)
        reasons = []
        if goal.triggers and position != self._resume_at:
            reasons = self._triggers(event, new, record_only=goal.scan is not None)
        if self._pending:
            self._pending.clear()
        if goal.scan is not None and position < goal.target:
            if reasons:
                goal.scan.append((position, "; ".join(reasons), event.cpu))
            return None
        reached = goal.reached(self, position, event.pc)
        if reasons:
            return Stop(position, "; ".join(reasons), cpu=event.cpu)
        if reached is not None:
            return Stop(position, reached, cpu=event.cpu)
        return None

    def _triggers(self, event: InstructionEvent, new: list[str], *,
                  record_only: bool = False) -> list[str]:
        reasons = list(self._pending)
        if not self.points:
            return reasons
        view = None
        for point in list(self.points.values()):
            if point.kind == "break" and point.address == event.pc:
                if point.condition is not None:
                    view = view or self.world.views()[event.cpu]
                    try:
                        if not self.evaluate(point.condition, view):
                            continue
                    except DebugError as exc:
                        reasons.append(f"breakpoint {point.number}: condition failed: {exc}")
                        continue
                reasons.append(f"{'temporary ' if point.temporary else ''}breakpoint "
                               f"{point.number}")
                if point.temporary and not record_only:
                    del self.points[point.number]
            elif point.kind == "watch-reg":
                view = view or self.world.views()[event.cpu]
                value = self.names(view)[point.register]
                old = self._reg_last.get(point.number)
                if old != value:
                    self._reg_last[point.number] = value
                    reasons.append(f"watchpoint {point.number}: {point.register} "
                                   f"{old:#x} -> {value:#x}")
            elif point.kind == "catch" and new:
                caught = [name for name in new if _matches(point.cause, name)]
                if caught:
                    reasons.append(f"catchpoint {point.number}: {', '.join(caught)}"
                                   + self._after())
        return reasons

    def _after(self) -> str:
        """`` (after PC MNEMONIC)``: the instruction that ran just before this stop."""
        previous = self._before_previous
        return f" (after {previous[1]:08x} {previous[0]})" if previous else ""

    def _track(self, event: InstructionEvent, delivered: bool, new: list[str]) -> None:
        """Keep the call chain: what the previous instruction did, seen from this one."""
        previous = self._previous
        sp = self._sp(event.cpu)
        if previous is not None:
            mnemonic, pc, npc = previous
            causes: list[str] = []
            if new:
                guest = self.world.guest_causes()
                causes = [name for name in new if name in guest]
            if delivered:
                self._frames.append(Frame(causes[0] if causes else "trap", event.pc, pc, sp))
            elif mnemonic in _CALLS and event.pc != npc and event.pc != pc:
                self._frames.append(Frame("call", event.pc, pc, sp, npc))
            elif mnemonic == "ret":
                for i in range(len(self._frames) - 1, -1, -1):
                    frame = self._frames[i]
                    if frame.kind == "call" and frame.returns_to == event.pc:
                        del self._frames[i:]
                        break
            elif mnemonic == "iret":
                for i in range(len(self._frames) - 1, -1, -1):
                    if self._frames[i].kind != "call":
                        del self._frames[i:]
                        break
        self._before_previous = previous
        self._previous = (event.decoded.definition.mnemonic, event.pc, event.decoded.npc)

    def _sp(self, cpu: int) -> int:
        world = self.world
        if world.virtual:
            return world.hypervisor.cpu.regs[SP]
        return world.machine.cpus[cpu].regs[SP]

    def _retry(self) -> None:
        self.position -= 1
        self._previous = self._before_previous

    # -- the worker ---------------------------------------------------------------------------------

    def _tracking(self) -> _Tracking:
        return _Tracking(tuple(self._frames), self._previous)

    def _checkpoint_due(self, world: World) -> None:
        steps = world.steps
        if steps % self.checkpoint_every or self.position in self.checkpoints:
            return
        self.checkpoints[self.position] = (world.checkpoint(), self._tracking())
        if len(self.checkpoints) > self.max_checkpoints:
            self.checkpoint_every *= 2
            self.checkpoints = {pos: cp for pos, cp in self.checkpoints.items()
                                if pos == 0 or cp[0].steps % self.checkpoint_every == 0}

    def _chunk(self, world: World) -> int:
        return self.checkpoint_every - world.steps % self.checkpoint_every

    def _start(self, goal: _Goal) -> Stop:
        self._runner = _Runner(self, self.world, goal)
        return self._wait(self._runner)

    def _wait(self, runner: _Runner) -> Stop:
        while True:
            try:
                report = runner.reports.get()
                break
            except KeyboardInterrupt:  # Ctrl-C while the guest runs: stop it where it is
                self._interrupt = True
        if isinstance(report, BaseException):
            self._runner = None
            raise report
        self.last_stop = report
        return report

    def _resume(self, goal: _Goal) -> Stop:
        if self._runner is None:
            raise DebugError("the session has ended")
        self._resume_at = self.position
        self._runner.commands.put(goal)
        return self._wait(self._runner)

    def _goto(self, target: int, reason: str = "") -> Stop:
        """Reach `target` (a position known to exist) by a bounded replay when it lies behind."""
        if target >= self.position:
            stop = self._resume(_Goal(self.position, triggers=False, target=target))
        else:
            stop = self._replay_from(target, _Goal(-1, triggers=False, target=target))
        if reason and not stop.finished:
            stop = attrs.evolve(stop, reason=reason)
            self.last_stop = stop
        return stop

    def _replay_from(self, target: int, goal: _Goal) -> Stop:
        base = max(p for p in self.checkpoints if p <= target)
        checkpoint, tracking = self.checkpoints[base]
        self.close()
        world = World.restore(self.guest, self.vmm, self.cpus, checkpoint)
        self.position = base
        self._frames = list(tracking.frames)
        self._previous = self._before_previous = tracking.previous
        self._pending = []
        self._resume_at = -1
        self._attach(world)
        self.replayed += target - base
        return self._start(goal)

    def close(self) -> None:
        """End the worker (the world stays readable)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.commands.put(_ABANDON)
            runner.thread.join()

    # -- commands -----------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.last_stop is not None and self.last_stop.finished

    def stepi(self, count: int = 1) -> Stop:
        if count < 1:
            raise DebugError("stepi: the count must be at least 1")
        return self._resume(_Goal(self.position, target=self.position + count))

    def step(self) -> Stop:
        line = self.inspector.line_key(self.view().pc)
        if line is None:
            return self.stepi()
        return self._resume(_Goal(self.position, line=line))

    def next(self) -> Stop:
        view = self.view()
        line = self.inspector.line_key(view.pc) or ("", -1)
        return self._resume(_Goal(self.position, line=line, depth=len(self._frames)))

    def finish(self) -> Stop:
        if not self._frames:
            raise DebugError("finish: no call or trap handler the debugger saw begin is active")
        return self._resume(_Goal(self.position, finish=True, depth=len(self._frames)))

    def cont(self) -> Stop:
        return self._resume(_Goal(self.position))

    def reverse_stepi(self, count: int = 1) -> Stop:
        if count < 1:
            raise DebugError("reverse-stepi: the count must be at least 1")
        if self.position == 0:
            raise DebugError("already at the start (position 0)")
        return self._goto(max(0, self.position - count))

    def _line_back(self, depth_limited: bool) -> int:
        here = self.position
        if here == 0:
            raise DebugError("already at the start (position 0)")
        pcs, depths = self.history_pc, self.history_depth
        key = self.inspector.line_key
        line, depth = key(pcs[here]) if here < len(pcs) else None, \
            depths[here] if here < len(depths) else 0
        p = here - 1
        while p > 0 and ((depth_limited and depths[p] > depth)
                         or (line is not None and key(pcs[p]) == line)):
            p -= 1
        target_line = key(pcs[p])
        while p > 0 and target_line is not None and key(pcs[p - 1]) == target_line \
                and depths[p - 1] == depths[p]:
            p -= 1
        return p

    def reverse_step(self) -> Stop:
        return self._goto(self._line_back(False))

    def reverse_next(self) -> Stop:
        return self._goto(self._line_back(True))

    def reverse_continue(self) -> Stop:
        """Back to the last position before this one where a breakpoint, watchpoint or
        catchpoint would have stopped a forward run; the start when there is none."""
        if self.position == 0:
            raise DebugError("already at the start (position 0)")
        end = self.position
        for base in sorted((p for p in self.checkpoints if p < end), reverse=True):
            hits: list = []
            self._replay_from(base, _Goal(-1, target=end, scan=hits))
            if hits:
                position, reason, _cpu = hits[-1]
                return self._goto(position, reason)
            end = base
        return self._goto(0, "reached the start of the run (position 0)")

    def run_to_end(self) -> Stop:
        """Continue with every breakpoint ignored, to where the guest ends."""
        return self._resume(_Goal(self.position, triggers=False))


def _matches(pattern: str, name: str) -> bool:
    return name == pattern or name.startswith(pattern + ":") or \
        (pattern.endswith(":") and name.startswith(pattern))


def _hex(value, size: int | None = None) -> str:
    if isinstance(value, bytes):
        if len(value) == 4:
            return f"{int.from_bytes(value, 'little'):#010x}"
        return value[:16].hex(" ") + (" …" if len(value) > 16 else "")
    return f"{value:#0{2 + 2 * (size or 4)}x}"


class _Runner:
    """The worker thread that runs one world; it pauses inside the trace callback."""

    def __init__(self, session: Session, world: World, goal: _Goal) -> None:
        self.session = session
        self.world = world
        self.goal = goal
        self.commands: queue.Queue = queue.Queue()
        self.reports: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._main, name="toyvisor-debug", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        session, world = self.session, self.world
        try:
            while True:
                reason = world.stop_reason
                if reason is not None:
                    self._pause(Stop(session.position, _ended(world, reason), finished=True))
                    continue
                session._checkpoint_due(world)
                world.run(session._chunk(world), self._trace)
        except _Abandon:
            return
        except BaseException as exc:  # noqa: BLE001 - surfaced in the monitor's thread
            self.reports.put(exc)

    def _trace(self, event) -> None:
        if type(event) is not InstructionEvent:
            return
        world = self.world
        if world.virtual and world.hypervisor.current is not world.vm:
            return
        session = self.session
        stop = session._on_instruction(event, self.goal)
        if stop is not None:
            self._pause(stop)
        session.position += 1

    def _pause(self, stop: Stop) -> None:
        if self.goal.scan is not None and stop.finished:
            stop = attrs.evolve(stop, reason="scanned")
        self.reports.put(stop)
        command = self.commands.get()
        if command is _ABANDON:
            raise _Abandon
        self.goal = command


def _ended(world: World, reason: str) -> str:
    if reason == "budget":
        return f"the guest used its whole budget ({world.guest.max_steps:,} steps)"
    text = {"halted": "the guest halted", "triple-fault": "the guest triple-faulted"}.get(
        reason, f"the guest stopped: {reason}")
    return text


__all__ = ["Frame", "Point", "REGISTER_NAMES", "Session", "Stop"]
