"""The monitor's command language: one line in, text out, over a `Session`.

`Monitor.execute(line)` runs one command and returns what to print; a bad command returns one
``error: …`` line and leaves the session as it was.  `COMMANDS` is the one table of commands
(name, aliases, usage, help): ``help``, completion and docs/debugger.md derive from it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import FLAG_IF, M32, NUM_REGS, SP

from .inspect import Inspector, flag_text, tlb_lines, walk
from .session import REGISTER_NAMES, Session, Stop
from .world import DebugError, View


@attrs.frozen
class Command:
    name: str
    usage: str
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS = (
    Command("break", "break LOCATION [if CONDITION]",
            "Stop before the instruction at LOCATION: an address (0x1000 or *0x1000), a symbol "
            "(bench_popf, label+8) or file:line; with `if`, only when CONDITION holds.", ("b",)),
    Command("tbreak", "tbreak LOCATION [if CONDITION]",
            "A breakpoint that is deleted when it first stops the guest."),
    Command("watch", "watch [-p] ADDRESS [LENGTH] [r|w|rw]  |  watch REGISTER",
            "Stop after an instruction reads (r), writes (w, the default) or touches (rw) "
            "LENGTH bytes (default 4) at a guest-virtual ADDRESS (-p: guest-physical); or after "
            "REGISTER (r0-r15, sp, pc, flags, cpl, iflag) changes."),
    Command("catch", "catch CAUSE",
            "Stop after the guest receives a trap or interrupt (page-fault, timer, int 0x80, "
            "general-protection, ...) or the VMM is entered for CAUSE (vmm:privileged, "
            "vmm:ptemod, exit:io, callout:popf, hypercall, ...); a prefix such as vmm catches "
            "every vmm:* cause."),
    Command("delete", "delete [N]", "Delete breakpoint/watchpoint/catchpoint N, or all.", ("d",)),
    Command("info", "info breakpoints|registers|tlb|pt VADDR|idt|vm|checkpoints",
            "breakpoints: the points set; tlb: the TLB entries (under a VMM the guest's virtual "
            "TLB and the real one); pt VADDR: the page walk of VADDR level by level with ring and "
            "permissions (the guest's table, and the shadow or nested one); idt: the present "
            "gates of the guest's interrupt table (and the real one); vm: the VMs and CPUs; "
            "checkpoints: where reverse execution can restart from."),
    Command("step", "step", "Run to the next source line, into calls and trap handlers.",
            ("s",)),
    Command("next", "next", "Run to the next source line, over calls and software interrupts.",
            ("n",)),
    Command("stepi", "stepi [N]", "Run N instructions (default 1).", ("si",)),
    Command("continue", "continue", "Run until a breakpoint, watchpoint or catchpoint stops the "
            "guest, or it ends.", ("c",)),
    Command("finish", "finish", "Run until the innermost call or trap handler returns."),
    Command("reverse-step", "reverse-step",
            "Go back to the start of the previous source line.", ("rs",)),
    Command("reverse-next", "reverse-next",
            "Go back to the previous source line of this frame, over calls.", ("rn",)),
    Command("reverse-stepi", "reverse-stepi [N]", "Go back N instructions (default 1).",
            ("rsi",)),
    Command("reverse-continue", "reverse-continue",
            "Go back to the last point where a breakpoint, watchpoint or catchpoint would have "
            "stopped the guest (or to the start).", ("rc",)),
    Command("regs", "regs", "The registers of the selected CPU; under a VMM the guest's view "
            "(virtual CPL and IF, its idtr and cr3) beside the real machine's.",
            ("registers",)),
    Command("mem", "mem [-p] ADDRESS [LENGTH]",
            "Hex dump of LENGTH bytes (default 64) at a guest-virtual (-p: guest-physical) "
            "ADDRESS."),
    Command("x", "x/NFU ADDRESS",
            "Examine N units (default 1) at ADDRESS in format F: x hex, d signed, u unsigned, "
            "c characters, s a string, i instructions; unit U: b byte, w word (default)."),
    Command("disasm", "disasm [LOCATION] [N]",
            "N instructions (default 8) from LOCATION (default: the pc) with their source lines; "
            "=> marks the pc, * a breakpoint.", ("disassemble",)),
    Command("bt", "bt", "The chain of calls and trap handlers the debugger saw begin, innermost "
            "first.", ("backtrace", "where")),
    Command("vm", "vm [N]", "List the VMs, or show VM N."),
    Command("vcpu", "vcpu [N]", "List the selected VM's vCPUs, or show vCPU N."),
    Command("cpu", "cpu [N]", "List the CPUs, or show CPU N (on the bare machine)."),
    Command("status", "status", "Where the session is: position, pc, why it stopped."),
    Command("print", "print EXPRESSION", "Evaluate an expression over registers, symbols and "
            "mem[ADDRESS].", ("p",)),
    Command("help", "help [COMMAND]", "List the commands, or explain one.", ("h", "?")),
    Command("quit", "quit", "Leave the monitor.", ("q", "exit")),
)
_BY_NAME = {name: command for command in COMMANDS for name in (command.name, *command.aliases)}
INFO_TOPICS = ("breakpoints", "registers", "tlb", "pt", "idt", "vm", "checkpoints")


class Quit(Exception):
    """The monitor was asked to end."""


def _number(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise DebugError(f"{what}: '{text}' is not a number") from None


class Monitor:
    """Commands over a session; `execute` is the whole interface."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.selected = 0  # the (v)CPU shown

    @property
    def inspector(self) -> Inspector:
        return self.session.inspector

    def view(self) -> View:
        return self.session.view(self.selected)

    # -- the entry point ------------------------------------------------------------------------

    def execute(self, line: str) -> str:
        """Run one command line; returns its output (without a trailing newline)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return ""
        word, _, rest = line.partition(" ")
        if word.startswith("x/") or word == "x":
            word, rest = "x", line[1:].strip()
        command = _BY_NAME.get(word)
        if command is None:
            return f"error: unknown command '{word}' (try help)"
        handler: Callable[[str], str] = getattr(self, "do_" + command.name.replace("-", "_"))
        try:
            return handler(rest.strip())
        except Quit:
            raise
        except ToyvisorError as exc:
            return f"error: {str(exc).splitlines()[0]}"

    def completions(self, text: str, line: str) -> list[str]:
        """Candidates for readline: command names first, then info topics, symbols, registers."""
        words = line.split()
        if len(words) <= 1 and not line.endswith(" "):
            return sorted(name for name in _BY_NAME if name.startswith(text))
        if words[0] == "info":
            return [t for t in INFO_TOPICS if t.startswith(text)]
        names = self.inspector.symbol_names() + [f"r{i}" for i in range(NUM_REGS)] + ["sp", "pc"]
        return sorted(n for n in set(names) if n.startswith(text))

    # -- stops ------------------------------------------------------------------------------------

    def stop_text(self, stop: Stop) -> str:
        self.selected = stop.cpu
        if stop.finished:
            lines = [f"[#{stop.position}] {stop.reason}"]
            report = self.session.world.fault_report
            if report:
                lines.append(report.rstrip("\n"))
            lines.append(self._here())
            return "\n".join(lines)
        head = f"[#{stop.position}]"
        return f"{head} {stop.reason}\n{self._here()}" if stop.reason else self._here(head)

    def _here(self, head: str = "") -> str:
        view = self.view()
        return (f"{head} " if head else "") + self._instruction_line(view, view.pc, True)

    def _instruction_line(self, view: View, address: int, current: bool) -> str:
        inspector = self.inspector
        try:
            text = inspector.instruction(view, address).text
        except DebugError as exc:
            text = f"(unreadable: {exc})"
        marker = "=>" if current else ("* " if self._has_break(address) else "  ")
        label = inspector.describe(address)
        where = inspector.where(address)
        source = inspector.source_line(address)
        out = f"{marker} {address:08x} {label:<22} {text:<26}"
        if where:
            out += f" ; {where}"
            if source:
                out += f"  {source}"
        return out.rstrip()

    def _has_break(self, address: int) -> bool:
        return any(p.kind == "break" and p.address == address
                   for p in self.session.points.values())

    def _run(self, action: Callable[[], Stop]) -> str:
        return self.stop_text(action())

    # -- points -----------------------------------------------------------------------------------

    def _break(self, rest: str, temporary: bool) -> str:
        if not rest:
            raise DebugError("break where? an address, a symbol or file:line")
        location, _, condition = rest.partition(" if ")
        address = self.session.location(location)
        point = self.session.add_breakpoint(address, condition.strip() or None,
                                            temporary=temporary)
        return f"{'temporary ' if temporary else ''}breakpoint {point.number} at " \
               f"{point.description}"

    def do_break(self, rest: str) -> str:
        return self._break(rest, False)

    def do_tbreak(self, rest: str) -> str:
        return self._break(rest, True)

    def do_watch(self, rest: str) -> str:
        words = rest.split()
        if not words:
            raise DebugError("watch what? an address range or a register")
        physical = words[0] == "-p"
        if physical:
            words = words[1:]
        if len(words) == 1 and not physical and words[0] in REGISTER_NAMES:
            point = self.session.add_register_watch(words[0])
            return f"watchpoint {point.number}: {point.description}"
        if not words or len(words) > 3:
            raise DebugError("usage: " + _BY_NAME["watch"].usage)
        access = "w"
        if words[-1] in ("r", "w", "rw"):
            access = words.pop()
        if not 1 <= len(words) <= 2:
            raise DebugError("usage: " + _BY_NAME["watch"].usage)
        address = self.session.evaluate(words[0]) & M32 if words else 0
        size = _number(words[1], "watch length") if len(words) > 1 else 4
        point = self.session.add_watch(address, size, access, physical=physical)
        return f"watchpoint {point.number}: {point.description}"

    def do_catch(self, rest: str) -> str:
        point = self.session.add_catch(rest)
        return f"catchpoint {point.number}: {point.description}"

    def do_delete(self, rest: str) -> str:
        if not rest:
            self.session.delete()
            return "deleted every breakpoint, watchpoint and catchpoint"
        number = _number(rest, "delete")
        self.session.delete(number)
        return f"deleted {number}"

    # -- running ----------------------------------------------------------------------------------

    def do_step(self, rest: str) -> str:
        return self._run(self.session.step)

    def do_next(self, rest: str) -> str:
        return self._run(self.session.next)

    def do_stepi(self, rest: str) -> str:
        count = _number(rest, "stepi") if rest else 1
        return self._run(lambda: self.session.stepi(count))

    def do_continue(self, rest: str) -> str:
        return self._run(self.session.cont)

    def do_finish(self, rest: str) -> str:
        return self._run(self.session.finish)

    def do_reverse_step(self, rest: str) -> str:
        return self._run(self.session.reverse_step)

    def do_reverse_next(self, rest: str) -> str:
        return self._run(self.session.reverse_next)

    def do_reverse_stepi(self, rest: str) -> str:
        count = _number(rest, "reverse-stepi") if rest else 1
        return self._run(lambda: self.session.reverse_stepi(count))

    def do_reverse_continue(self, rest: str) -> str:
        return self._run(self.session.reverse_continue)

    # -- looking ----------------------------------------------------------------------------------

    def do_regs(self, rest: str) -> str:
        view = self.view()
        inspector = self.inspector
        lines = [f"{view.label}  pc {view.pc:#010x} {inspector.describe(view.pc)} "
                 f"{inspector.where(view.pc)}".rstrip()]
        names = [f"r{i}" for i in range(NUM_REGS - 1)] + ["sp"]
        for row in range(0, NUM_REGS, 4):
            lines.append("  ".join(f"{names[i]:>3} {view.regs[i]:#010x}"
                                   for i in range(row, row + 4)))
        lines.append(f"flags {view.flags:#06x} [{flag_text(view.flags)}]  cpl {view.cpl}  "
                     f"idtr {view.idtr:#010x}  cr0 {view.cr0:#x}  cr2 {view.cr2:#010x}  "
                     f"cr3 {view.cr3:#010x}")
        lines.append("  ".join(f"ksp{i} {v:#010x}" for i, v in enumerate(view.ksp)))
        real = view.real
        if real is not None:
            lines.append(self._side_by_side(view))
        return "\n".join(lines)

    def _side_by_side(self, view: View) -> str:
        real = view.real
        strategy = self.session.world.strategy.spec
        if not real.get("loaded"):
            return (f"under {strategy}: the VM is not on the real CPU now (the guest's state "
                    f"above is its vCPU's)")
        if real["nonroot"]:
            paging = f"nested, root {real['root']:#010x}" if real["nested"] else \
                f"shadow {real['cr3']:#010x}"
            return (f"under {strategy}: the CPU runs the guest in non-root mode, so the CPL, "
                    f"IF and idtr above are the hardware's own guest state; real paging: "
                    f"{paging}")
        rows = [("", "guest (virtual)", "real machine"),
                ("CPL", str(view.cpl), str(real["cpl"])),
                ("IF", str(int(bool(view.flags & FLAG_IF))),
                 str(int(bool(real["flags"] & FLAG_IF)))),
                ("idtr", f"{view.idtr:#010x}", f"{real['idtr']:#010x} (the VMM's table)"),
                ("cr3", f"{view.cr3:#010x}", f"{real['cr3']:#010x} (shadow page table)")]
        text = [f"under {strategy}:"]
        text += [f"  {a:<5} {b:<18} {c}" for a, b, c in rows]
        return "\n".join(text)

    def do_mem(self, rest: str) -> str:
        words = rest.split()
        physical = bool(words) and words[0] == "-p"
        words = words[1:] if physical else words
        if not words or len(words) > 2:
            raise DebugError("usage: " + _BY_NAME["mem"].usage)
        address = self.session.evaluate(words[0]) & M32
        length = _number(words[1], "mem length") if len(words) > 1 else 64
        if not 0 < length <= 1 << 16:
            raise DebugError(f"mem length must be 1 to 65536, not {length}")
        view = self.view()
        if physical:
            data = self.inspector.guest_physical().read(address, length)
        else:
            data = self.inspector.read_virtual(view, address, length)
        lines = []
        for offset in range(0, len(data), 16):
            chunk = data[offset:offset + 16]
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{address + offset:08x}  {chunk.hex(' '):<47}  {text}")
        return "\n".join(lines)

    def do_x(self, rest: str) -> str:
        spec, _, where = rest.partition(" ")
        if not spec.startswith("/") and not where:
            spec, where = "/", spec
        if not where.strip():
            raise DebugError("usage: " + _BY_NAME["x"].usage)
        count, fmt, unit = _x_spec(spec[1:])
        view = self.view()
        address = self.session.evaluate(where.strip()) & M32
        inspector = self.inspector
        if fmt == "i":
            lines, pc = [], address
            for _ in range(count):
                lines.append(self._instruction_line(view, pc, pc == view.pc))
                pc += max(4, inspector.instruction(view, pc).size)
            return "\n".join(lines)
        if fmt == "s":
            data = inspector.read_virtual(view, address, min(256, 0x1000 - (address & 0xFFF)))
            text = data.split(b"\0")[0].decode("utf-8", "replace")
            return f"{address:08x}  {text!r}"
        size = 4 if unit == "w" else 1
        data = inspector.read_virtual(view, address, count * size)
        values = [int.from_bytes(data[i:i + size], "little") for i in range(0, len(data), size)]
        per_row = 4 if size == 4 else 8
        lines = []
        for row in range(0, len(values), per_row):
            items = []
            for value in values[row:row + per_row]:
                if fmt == "x":
                    items.append(f"{value:#0{2 + 2 * size}x}")
                elif fmt == "d":
                    items.append(str(value - (1 << (8 * size)) if value >> (8 * size - 1)
                                     else value))
                elif fmt == "u":
                    items.append(str(value))
                else:
                    items.append(repr(chr(value)) if size == 1 else repr(
                        struct.pack("<I", value).decode("latin-1")))
            lines.append(f"{address + row * size:08x}  " + "  ".join(items))
        return "\n".join(lines)

    def do_disasm(self, rest: str) -> str:
        words = rest.split()
        view = self.view()
        address = self.session.location(words[0]) if words else view.pc
        count = _number(words[1], "disasm count") if len(words) > 1 else 8
        if not 0 < count <= 1000:
            raise DebugError(f"disasm count must be 1 to 1000, not {count}")
        lines, pc = [], address & ~3
        for _ in range(count):
            lines.append(self._instruction_line(view, pc, pc == view.pc))
            try:
                pc += self.inspector.instruction(view, pc).size
            except DebugError:
                break
        return "\n".join(lines)

    def do_bt(self, rest: str) -> str:
        inspector = self.inspector
        view = self.view()
        frames = self.session.frames
        lines = [f"#0  {view.pc:08x} {inspector.describe(view.pc)} "
                 f"{inspector.where(view.pc)}".rstrip()]
        for depth, frame in enumerate(reversed(frames), 1):
            entered = inspector.describe(frame.entry) or f"{frame.entry:08x}"
            how = f"call {entered}" if frame.kind == "call" else f"{frame.kind} -> {entered}"
            lines.append(f"#{depth}  {frame.site:08x} {inspector.describe(frame.site)} "
                         f"{inspector.where(frame.site)}  ({how})")
        if not frames:
            lines.append("(no call or trap handler the debugger saw begin is active)")
        return "\n".join(lines)

    def do_info(self, rest: str) -> str:
        topic, _, argument = rest.partition(" ")
        matches = [t for t in INFO_TOPICS if topic and t.startswith(topic)]
        if len(matches) != 1:
            raise DebugError(f"info what? {', '.join(INFO_TOPICS)}")
        return getattr(self, "_info_" + matches[0])(argument.strip())

    def _info_breakpoints(self, argument: str) -> str:
        points = self.session.points
        if not points:
            return "no breakpoints, watchpoints or catchpoints"
        return "\n".join(f"{p.number:>3}  {p.kind:<10} {p.description}" for p in points.values())

    def _info_registers(self, argument: str) -> str:
        return self.do_regs(argument)

    def _info_tlb(self, argument: str) -> str:
        world = self.session.world
        if world.virtual:
            lines = ["guest (virtual TLB, guest-virtual -> guest-physical):"]
            lines += ["  " + line for line in tlb_lines(world.vm.mmu.tlb)]
            lines.append("real TLB (guest-virtual -> host-physical):")
            lines += ["  " + line for line in tlb_lines(world.hypervisor.cpu.mmu.tlb)]
            return "\n".join(lines)
        return "\n".join(tlb_lines(world.real_cpus[self.selected].mmu.tlb))

    def _info_pt(self, argument: str) -> str:
        if not argument:
            raise DebugError("usage: info pt VADDR")
        va = self.session.evaluate(argument) & M32
        view = self.view()
        inspector = self.inspector
        lines = []
        if not view.cr0 & 1:
            lines.append(f"guest paging is off: {va:#010x} is guest-physical {va:#010x}")
        else:
            lines.append(f"guest page table (cr3 {view.cr3:#010x}, guest-physical):")
            lines += _walk_lines(walk(inspector.guest_physical(), view.cr3, va), "guest-physical")
        real = view.real
        if real is not None and real.get("loaded"):
            host = inspector.host_physical()
            if real["nested"]:
                gpa = None
                try:
                    gpa = inspector.translate(view, va)
                except DebugError:
                    pass
                if gpa is not None:
                    lines.append(f"nested page table (root {real['root']:#010x}, host-physical) "
                                 f"for guest-physical {gpa:#010x}:")
                    lines += _walk_lines(walk(host, real["root"], gpa), "host-physical")
            else:
                lines.append(f"real page table (shadow, cr3 {real['cr3']:#010x}, host-physical):")
                lines += _walk_lines(walk(host, real["cr3"], va), "host-physical",
                                     missing="not present (yet: the VMM fills shadow entries "
                                     "on the first access)")
        return "\n".join(lines)

    def _info_idt(self, argument: str) -> str:
        view = self.view()
        lines = [f"guest interrupt table (idtr {view.idtr:#010x}):"]
        lines += ["  " + line for line in self.inspector.gates(view)]
        if view.real is not None and view.real.get("loaded") and not view.real["nonroot"]:
            gates = self.inspector.gates(view, real=True)
            lines.append(f"real interrupt table (idtr {view.real['idtr']:#010x}): "
                         f"{len(gates)} gates, every one enters the VMM")
        return "\n".join(lines)

    def _info_vm(self, argument: str) -> str:
        return self.do_vm("")

    def _info_checkpoints(self, argument: str) -> str:
        session = self.session
        positions = sorted(session.checkpoints)
        return (f"{len(positions)} checkpoints every {session.checkpoint_every:,} steps at "
                f"positions {', '.join(f'#{p}' for p in positions)}; "
                f"{session.replayed:,} instructions replayed so far")

    # -- selecting --------------------------------------------------------------------------------

    def do_vm(self, rest: str) -> str:
        world = self.session.world
        if not world.virtual:
            raise DebugError("no VMM: the guest runs on the bare machine (debug --vmm NAME)")
        vms = [world.vm]
        if rest:
            number = _number(rest, "vm")
            if not 0 <= number < len(vms):
                raise DebugError(f"no VM {number} (VMs: 0 {vms[0].name})")
        return "\n".join(f"{'*' if vm is world.vm else ' '} vm {i}: {vm.name} under "
                         f"{world.strategy.spec}, {vm.state}, slice {vm.base:#x}+{vm.size:#x}, "
                         f"{len(self.session.world.views())} vCPU"
                         for i, vm in enumerate(vms))

    def _select(self, rest: str, what: str) -> str:
        views = self.session.world.views()
        if rest:
            number = _number(rest, what)
            if not 0 <= number < len(views):
                raise DebugError(f"no {what} {number} (there {'is' if len(views) == 1 else 'are'}"
                                 f" {len(views)})")
            self.selected = number
        return "\n".join(f"{'*' if i == self.selected else ' '} {v.label}: pc {v.pc:#010x} "
                         f"{self.inspector.describe(v.pc)}".rstrip() for i, v in enumerate(views))

    def do_vcpu(self, rest: str) -> str:
        if not self.session.world.virtual:
            raise DebugError("no VMM: on the bare machine use cpu N")
        return self._select(rest, "vcpu")

    def do_cpu(self, rest: str) -> str:
        if self.session.world.virtual:
            cpus = self.session.world.real_cpus
            if rest and _number(rest, "cpu") >= len(cpus):
                raise DebugError(f"no cpu {rest} (the real machine has {len(cpus)})")
            return "\n".join(f"  cpu {c.index}: runs {self.session.world.vm.name}"
                             f" (the real CPU's side is in regs)" for c in cpus)
        return self._select(rest, "cpu")

    def do_status(self, rest: str) -> str:
        session = self.session
        stop = session.last_stop
        state = "ended" if session.finished else "stopped"
        reason = f" ({stop.reason})" if stop and stop.reason else ""
        where = self.session.world.vmm or "the bare machine"
        return (f"{session.guest.name} on {where}: {state} at #{session.position}{reason} "
                f"(budget {session.guest.max_steps:,} steps)\n" + self._here())

    def do_print(self, rest: str) -> str:
        value = self.session.evaluate(rest)
        return f"{value} = {value & M32:#010x}"

    def do_help(self, rest: str) -> str:
        if rest:
            command = _BY_NAME.get(rest)
            if command is None:
                raise DebugError(f"no command '{rest}'")
            aliases = f" (also {', '.join(command.aliases)})" if command.aliases else ""
            return f"{command.usage}{aliases}\n  {command.help}"
        width = max(len(c.usage) for c in COMMANDS)
        return "\n".join(f"{c.usage:<{min(width, 34)}}  {c.help.split('.')[0]}."
                         for c in COMMANDS)

    def do_quit(self, rest: str) -> str:
        raise Quit


def _x_spec(spec: str) -> tuple[int, str, str]:
    digits = ""
    while spec and spec[0].isdigit():
        digits, spec = digits + spec[0], spec[1:]
    count = int(digits) if digits else 1
    fmt, unit = "x", "w"
    for letter in spec:
        if letter in "xducsi":
            fmt = letter
        elif letter in "bw":
            unit = letter
        else:
            raise DebugError(f"x: unknown format letter '{letter}' (formats x d u c s i, "
                             f"units b w)")
    if not 0 < count <= 4096:
        raise DebugError(f"x: the count must be 1 to 4096, not {count}")
    return count, fmt, unit


def _walk_lines(result, space: str, missing: str = "not present") -> list[str]:
    lines = ["  " + level.describe() for level in result.levels]
    if result.pa is None:
        lines.append(f"  -> {missing}")
    else:
        lines.append(f"  -> {space} {result.pa:#010x}  ring {result.ring} "
                     f"{'rw' if result.writable else 'ro'}")
    return lines


def run_script(monitor: Monitor, lines, echo: Callable[[str], None]) -> None:
    """Run monitor commands (a script's lines) in order, echoing each with its output."""
    for line in lines:
        text = line.rstrip("\n")
        if not text.strip() or text.strip().startswith("#"):
            continue
        echo(f"(toyvisor) {text.strip()}")
        try:
            output = monitor.execute(text)
        except Quit:
            return
        if output:
            echo(output)


__all__ = ["COMMANDS", "Command", "Monitor", "Quit", "run_script"]
