"""Generate one Python function per translation block from the instruction table's semantics.

Each instruction's semantics (`toyvisor.isa.table`) is parsed once and *specialised* for the
decoded instance: operand fields, ``pc``, ``npc`` and the constants of `toyvisor.isa.spec` become
literals (so CPython folds ``imm & M32`` and friends at compile time), ``s32(v)`` is inlined as
``(v ^ 0x80000000) - 0x80000000``, the semantics' temporaries are renamed ``v_<name>`` so they
cannot collide with the block's own names, the condition flags live in the local ``F`` and every
register ``R[k]`` the block names lives in the local ``rk``.  The block function is::

    def tb_<pc>(room):
        r1 = R[1]; r3 = R[3]; F = cpu.flags          # the state the block touches, in locals
        try:
            while True:                               # only for a block that loops to itself
                room -= <instructions in the block>
                <instruction 0>
                <instruction 1>
                ...
                <write the locals back>; cpu.pc = <where control goes>
                return <the chained successor block, or None>, room
        except BaseException:
            <write the locals back>; _sig.room = room
            raise

``cpu``, ``R`` (the register list), RAM and the engine's signal are bound when the block is
compiled (the factory's parameters), so a call costs one argument.

**Budget.**  ``room`` is how many instructions may still retire before the budget ends or the
timer fires; the engine enters a block only when the whole block fits.  A block whose last
instruction branches back to its own first one (a loop that stays in the block) is compiled as a
``while`` loop that runs another iteration only while one more fits in ``room``; otherwise it
returns to the engine exactly as a chained block would.  Since nothing in a block body can change
the timer deadline, interrupts still arrive before exactly the same guest instruction as on the
interpreter.

**Memory.**  ``cpu.load32/load8/store32/store8`` are inlined: the common case (flat memory, or a
hit in the MMU's TLB with the access allowed; an aligned access; a page without code, watches or
audits for a store) reads or writes RAM directly (words through `PhysicalMemory.words`), and anything else calls the CPU's
own access function, which handles faults, A/D bits, hooks and audits.  The fast path is chosen at
translation time for the block's mode (paging or not, the CPL) and for whether memory is
read-watched; the engine drops every block when that changes.

With paging on, a block call keeps a one-page cache of the last translation per direction in
locals: ``c_rk``/``c_rd`` (the virtual page base of the last load's TLB hit and the offset from
virtual to physical address) and ``c_wk``/``c_wd`` (the same for a store allowed to go straight to
RAM: ``write_ok`` and a page without code, watches or audits).  A word access hits with one
compare (``v_ea & 0xFFFFF003 == c_rk`` also tests the alignment) and no TLB lookup.  The cache is
exact because nothing can change the TLB or the page flags while the block's own code runs: a
block body holds no cr3 write, invlpg or cr0 write (they are sensitive and end blocks), so only a
slow-path access — a walk, a D-bit update, a hook — can, and every slow path empties the cache;
each call of the block starts empty.  ``cpu.pc`` is stored before a
slow-path access (so the MMU, audit hooks and monitors see the accessing instruction's pc) and at
the end of the block.

**Faults** are precise at no cost on the fault-free path: the ``except`` clause writes the locals
back (a faulting instruction changes nothing, so they hold the state after the instructions before
it) and saves ``room``; the engine finds the faulting instruction from the traceback's line number
(`BlockSource.lines`), sets ``cpu.pc`` to it and counts the instructions before it as retired.

**Self-modifying code.**  After every memory access that can reach a hook the block tests
``_sig.exit``: the engine sets it when a write hit translated code or something asked the CPU for
attention.  The block then writes its state back and returns ``(None, room)`` with the unexecuted
instructions given back to ``room`` (counting one early exit), so the next instruction is fetched
afresh: exactly the interpreter's behaviour.

**Chaining.**  A block ending in a control transfer with constant destinations returns, for each
destination, the successor block stored in a closure cell (``_l0``, ``_l1``): the engine fills the
cell when it first looks the successor up and empties it when the successor is invalidated.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence
from functools import cache

from toyvisor.isa import spec
from toyvisor.isa.codegen import SEMANTICS_GLOBALS, field_names, inline_s32
from toyvisor.isa.encoding import Decoded
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.table import Instruction

from toyvisor.isa.spec import M32

from ..decode import LENGTHS

#: Constants of the architecture, substituted as literals.
_CONSTANTS = {name: getattr(spec, name) for name in dir(spec)
              if name.isupper() and isinstance(getattr(spec, name), int)}
#: Names that stay names in generated code.
_KEEP = {"R", "cpu", "GuestFault", "abs", "F"} | set(dir(builtins))

INDENT = "    "
_ACCESSES = ("load32", "load8", "store32", "store8")


class Signal:
    """What the engine and its blocks share: ``exit`` (leave after the current instruction),
    ``room`` (the budget left when a block raised), the early exits and in-block loop iterations
    counted by blocks."""

    __slots__ = ("exit", "room", "index", "early_exits", "iterations")

    def __init__(self) -> None:
        self.exit = False
        self.room = 0
        #: the instruction of a block run by `cold_function` that raised
        self.index = 0
        self.early_exits = 0
        self.iterations = 0


def accesses_memory(definition: Instruction) -> bool:
    """Whether the instruction's semantics load or store (explicit memory operands, stack)."""
    text = definition.semantics
    return "cpu.load" in text or "cpu.store" in text


def _is_cpu_attr(node: ast.AST, attr: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == attr
            and isinstance(node.value, ast.Name) and node.value.id == "cpu")


def _access(node: ast.AST) -> str | None:
    """``"load32"`` etc. when `node` is a call ``cpu.<access>(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in _ACCESSES and isinstance(node.func.value, ast.Name) \
            and node.func.value.id == "cpu":
        return node.func.attr
    return None


class _Specialise(ast.NodeTransformer):
    """Rewrite one instruction's semantics into a template: fields, ``pc`` and ``npc`` become
    placeholders ``__name__``, the spec's constants literals, temporaries ``v_<name>``, the flags
    the local ``F``; memory accesses become `_Access` markers the block generator expands."""

    def __init__(self, fields: tuple[str, ...]):
        self.fields = set(fields) | {"pc", "npc"}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.fields:
            return ast.copy_location(ast.Name(f"__{node.id}__", node.ctx), node)
        if isinstance(node.ctx, ast.Load) and node.id in _CONSTANTS:
            return ast.copy_location(ast.Constant(_CONSTANTS[node.id]), node)
        if node.id in _KEEP:
            return node
        return ast.copy_location(ast.Name(f"v_{node.id}", node.ctx), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if _is_cpu_attr(node, "flags"):
            return ast.copy_location(ast.Name("F", node.ctx), node)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        return inline_s32(self, node)


class Template:
    """One instruction's generated code with ``__field__`` placeholders.

    `steps` are the statements (for a control transfer: all but the final ``cpu.pc = ...``):
    source text, or for a memory access a tuple ``(access, target, address, value)`` of source
    texts (`target` None for a store, `value` None for a load).  `final` describes the pc
    assignment: ``("if", test, taken, fallthrough)`` for a conditional branch,
    ``("const", destination)`` for a fixed destination, ``("dynamic", expression)`` for a
    computed one (destinations are placeholders or text), None when the instruction does not
    set the pc.  `writes_flags` tells whether it assigns ``F``.
    """

    def __init__(self, steps, final, writes_flags):
        self.steps = steps
        self.final = final
        self.writes_flags = writes_flags


def _placeholder(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and node.id.startswith("__") and node.id.endswith("__"):
        return node.id
    return None


def _steps(statements: list[ast.stmt]) -> list:
    steps: list = []
    for statement in statements:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and _access(statement.value) in ("load32", "load8"):
            call = statement.value
            steps.append((call.func.attr, ast.unparse(statement.targets[0]),
                          ast.unparse(call.args[0]), None))
        elif isinstance(statement, ast.Expr) and _access(statement.value) in ("store32",
                                                                              "store8"):
            call = statement.value
            steps.append((call.func.attr, None, ast.unparse(call.args[0]),
                          ast.unparse(call.args[1])))
        else:
            steps.extend(ast.unparse(statement).splitlines())
    return steps


@cache
def template(definition: Instruction) -> Template:
    """The code template of `definition` (cached: built once per instruction)."""
    tree = ast.parse(definition.semantics)
    transformer = _Specialise(field_names(definition))
    body = [transformer.visit(statement) for statement in tree.body]
    final = None
    if definition.sets_pc:
        last = body.pop()
        if not (isinstance(last, ast.Assign) and _is_cpu_attr(last.targets[0], "pc")):
            raise ValueError(f"{definition.mnemonic}: semantics must end by setting cpu.pc")
        value = last.value
        if (isinstance(value, ast.IfExp) and _placeholder(value.body)
                and _placeholder(value.orelse)):
            final = ("if", ast.unparse(value.test), value.body.id, value.orelse.id)
        elif _placeholder(value):
            final = ("const", value.id)
        else:
            final = ("dynamic", ast.unparse(value))
    writes_flags = any(isinstance(node, ast.Name) and node.id == "F"
                       and isinstance(node.ctx, ast.Store)
                       for statement in body for node in ast.walk(statement))
    return Template(tuple(_steps(body)), final, writes_flags)


_PLACEHOLDER = re.compile(r"__(\w+?)__")
_REGISTER = re.compile(r"\bR\[(\d+)\]")


def _fill(text: str, values: dict[str, int]) -> str:
    def value(match: re.Match) -> str:
        number = values[match.group(1)]
        return f"({number})" if number < 0 else str(number)
    return _REGISTER.sub(r"r\1", _PLACEHOLDER.sub(value, text))


def _values(decoded: Decoded) -> dict[str, int]:
    return {**decoded.fields, "pc": decoded.pc, "npc": decoded.npc}


#: Conditional branches fused with a preceding compare (``cmp``/``cmpi``, whose semantics name
#: their operands ``x`` and ``y``): the branch tests the operands directly, as the condition on
#: the flags the compare would produce (unsigned ``x`` and ``y``; the signed ones compare with the
#: sign bit flipped), and the flags themselves are computed only where the block exits.
#: tests/cpu/test_engines.py checks every entry against the ISA table's semantics.
FUSED_CONDITIONS = {
    "jz": "v_x == v_y",
    "jnz": "v_x != v_y",
    "jb": "v_x < v_y",
    "jae": "v_x >= v_y",
    "jbe": "v_x <= v_y",
    "ja": "v_x > v_y",
    "jl": "(v_x ^ 2147483648) < (v_y ^ 2147483648)",
    "jge": "(v_x ^ 2147483648) >= (v_y ^ 2147483648)",
    "jle": "(v_x ^ 2147483648) <= (v_y ^ 2147483648)",
    "jg": "(v_x ^ 2147483648) > (v_y ^ 2147483648)",
}
FUSED_COMPARES = ("cmp", "cmpi")


def _fusion(body: Sequence[Decoded]) -> tuple[list[str], list[str]] | None:
    """For a body ending in a fusable compare + branch: the compare's statements split into
    those computing the operands (kept in place) and the rest (the flags: deferred to exits)."""
    if len(body) < 2 or body[-2].definition.mnemonic not in FUSED_COMPARES \
            or body[-1].definition.mnemonic not in FUSED_CONDITIONS:
        return None
    steps = template(body[-2].definition).steps
    values = _values(body[-2])
    operands = [_fill(step, values) for step in steps
                if isinstance(step, str) and step.startswith(("v_x = ", "v_y = "))]
    rest = [_fill(step, values) for step in steps
            if isinstance(step, str) and not step.startswith(("v_x = ", "v_y = "))]
    if len(operands) != 2 or len(operands) + len(rest) != len(steps):
        return None
    return operands, rest


def _plain_operands(operands: list[str]) -> dict[str, str] | None:
    """``{"v_x": text, "v_y": text}`` when both of a fused compare's operands are a register
    local or a constant (``v_x = r8``, ``v_y = 0 & 4294967295``): the branch then tests them in
    place and the exits alone assign them (for the deferred flags), which nothing between the
    compare and the branch can change.  None otherwise."""
    plain = {}
    for line in operands:
        name, _, text = line.partition(" = ")
        tree = ast.parse(text, mode="eval").body
        if isinstance(tree, ast.Name) and re.fullmatch(r"r\d+", tree.id):
            plain[name] = tree.id
        elif isinstance(tree, (ast.Constant, ast.BinOp, ast.UnaryOp)) \
                and not any(isinstance(n, ast.Name) for n in ast.walk(tree)):
            plain[name] = repr(eval(compile(ast.Expression(tree), "<operand>", "eval")))  # noqa: S307 - constants only
        else:
            return None
    return plain if set(plain) == {"v_x", "v_y"} else None


class MemoryMode:
    """What the inlined memory accesses of a block may assume (fixed for the block's life).

    `paging`: addresses go through the TLB (else they are physical); `cpl`: the CPL of every
    access; `read_watched`: loads must go through the CPU (audit hooks); `size`: RAM bytes."""

    __slots__ = ("paging", "cpl", "read_watched", "size")

    def __init__(self, paging: bool, cpl: int, read_watched: bool, size: int) -> None:
        self.paging = paging
        self.cpl = cpl
        self.read_watched = read_watched
        self.size = size


#: Stands, in `_access_lines`' output, where the block generator puts the ``_sig.exit`` test.
SLOW_EXIT = "\0slow-exit"


def _access_lines(step, pc: int, mode: MemoryMode, check_in_slow_path: bool = False
                  ) -> list[str]:
    """The inlined code of one memory access (see the module docstring).  With
    `check_in_slow_path` the `SLOW_EXIT` marker follows the slow-path call (only it can run a
    hook, so the instruction's ``_sig.exit`` test goes there)."""
    access, target, address, value = step
    word = access.endswith("32")
    slow_call = f"cpu.{access}(v_ea{'' if value is None else ', ' + value})"
    slow = [f"cpu.pc = {pc:#x}", slow_call if target is None else f"{target} = {slow_call}"]
    lines = [f"v_ea = {address}"]
    if value is None and mode.read_watched:
        return lines + slow + ([SLOW_EXIT] if check_in_slow_path else [])
    if mode.paging:
        # The block's page cache (module docstring, **Memory**): a hit is one compare; a miss consults the TLB and
        # refills the cache when the access may go straight to RAM; the slow path (which may run
        # hooks that change the TLB or the page flags) empties it.
        slow.append("c_rk = c_wk = -1")
        if check_in_slow_path:
            slow.append(SLOW_EXIT)
        key, cache = ("c_wk", "c_wd") if value is not None else ("c_rk", "c_rd")
        where = f"v_ea + {cache}"
        direct = (f"ram32[({where}) >> 2] = {value}" if value is not None and word
                  else f"ram[{where}] = {value}" if value is not None
                  else f"{target} = ram32[({where}) >> 2]" if word
                  else f"{target} = ram[{where}]")
        refuse = ["v_te is None"]
        if word:
            refuse.append("v_ea & 3")
        if mode.cpl:
            refuse.append(f"{mode.cpl} > v_te[1]")
        if value is not None:
            refuse += ["not v_te[2]", "pflags[v_te[0] >> 12]"]
            fill = ["c_rk = c_wk = v_ea & 4294963200", "c_rd = c_wd = v_te[0] - c_rk"]
        else:
            fill = ["c_rk = v_ea & 4294963200", "c_rd = v_te[0] - c_rk"]
        lines.append(f"if v_ea & {0xFFFFF003 if word else 0xFFFFF000} == {key}:")
        lines.append(INDENT + direct)
        lines.append("else:")
        lines.append(f"{INDENT}v_te = tlb_get(v_ea >> 12)")
        lines.append(f"{INDENT}if {' or '.join(refuse)}:")
        lines += [INDENT * 2 + line for line in slow]
        lines.append(f"{INDENT}else:")
        lines += [INDENT * 2 + line for line in fill + [direct]]
        return lines
    if check_in_slow_path:
        slow.append(SLOW_EXIT)
    refuse = [f"v_ea & 3 or v_ea > {mode.size - 4}" if word else f"v_ea > {mode.size - 1}"]
    if value is not None:
        lines.append(f"if {' or '.join(refuse)} or pflags[v_ea >> 12]:")
        lines += [INDENT + line for line in slow]
        lines.append("else:")
        lines.append(INDENT + (f"ram32[v_ea >> 2] = {value}" if word
                               else f"ram[v_ea] = {value}"))
    else:
        lines.append(f"if {' or '.join(refuse)}:")
        lines += [INDENT + line for line in slow]
        lines.append("else:")
        lines.append(INDENT + (f"{target} = ram32[v_ea >> 2]" if word
                               else f"{target} = ram[v_ea]"))
    return lines


class BlockSource:
    """The generated source of a block and what the engine needs to run and link it."""

    def __init__(self, text: str, name: str, lines: list[int], exits: dict[int, str],
                 loops: bool):
        self.text = text
        self.name = name
        #: first source line of each instruction (1-based, in the function's code object)
        self.lines = lines
        #: constant destination pc -> closure cell name holding the chained successor
        self.exits = exits
        #: whether the block is compiled as a loop (its last instruction can branch to its first)
        self.loops = loops


def block_source(body: Sequence[Decoded], *, tail: Decoded | None, end_pc: int,
                 mode: MemoryMode, loop: bool = False) -> BlockSource:
    """Generate the factory source for a block.

    `body` are the instructions executed by the generated code; the last may transfer control.
    `tail` is the instruction the engine runs after the body (a callout or a software
    interrupt), or None.  `end_pc` is where control goes after the body when its last instruction
    does not set the pc (the tail's pc, or the next instruction when the block was cut short).
    `loop` allows compiling a branch back to the block's first instruction as a ``while`` loop.
    """
    start_pc = body[0].pc if body else end_pc
    name = f"tb_{start_pc:08x}"
    count = len(body)
    total = count + (tail is not None)
    exits = {pc: f"_l{i}" for i, pc in enumerate(exit_pcs(body, tail=tail, end_pc=end_pc))}
    loops = loop and count > 0 and tail is None and _branches_to(body[-1], start_pc)

    def cell(pc: int) -> str:
        return exits[pc]

    # The instructions' code, at the indentation of the function body; written registers and
    # flags are collected on the way.
    code: list[str] = []
    starts: list[int] = []  # index in `code` of each instruction's first line
    exit_marks: list[int] = []  # indices of "<writeback>" placeholders in `code`
    memory_used = False
    WB = "\0writeback"  # replaced by the write-back statements once they are known

    fused = _fusion(body)
    plain = _plain_operands(fused[0]) if fused is not None else None

    def emit_exit(lines: list[str], depth: int, pc: int | str, result: str,
                  room: str = "room", flags: Sequence[str] = ()) -> None:
        pad = INDENT * depth
        lines.extend(pad + line for line in flags)
        exit_marks.append(len(lines))
        lines.append(pad + WB)
        lines.append(f"{pad}cpu.pc = {pc if isinstance(pc, str) else hex(pc)}")
        if loops:
            # Iterations that stayed in the function count as chained block entries.
            lines.append(f"{pad}_sig.iterations += (room0 - room) // {total} - 1")
        lines.append(f"{pad}return {result}, {room}")

    for index, decoded in enumerate(body):
        definition = decoded.definition
        starts.append(len(code))
        tmpl = template(definition)
        values = _values(decoded)
        memory = accesses_memory(definition)
        memory_used |= memory
        if fused is not None and index == count - 2:
            if plain is None:
                code.extend(fused[0])  # the compare's operands; its flags are deferred to exits
            continue
        final = tmpl.final
        last = index == count - 1
        exit_check = memory and (not last or tail is not None)
        # A lone load or store: only its slow path can run a hook, so the test goes there.
        in_slow_path = exit_check and final is None and len(tmpl.steps) == 1
        for step in tmpl.steps:
            if isinstance(step, tuple):
                filled = tuple(None if part is None else _fill(part, values) for part in step)
                for line in _access_lines(filled, decoded.pc, mode, in_slow_path):
                    if line.strip() == SLOW_EXIT:
                        depth = (len(line) - len(line.lstrip())) // len(INDENT)
                        code.append(INDENT * depth + "if _sig.exit:")
                        code.append(INDENT * (depth + 1) + "_sig.early_exits += 1")
                        emit_exit(code, depth + 1, decoded.npc, "None",
                                  f"room + {total - index - 1}")
                    else:
                        code.append(line)
            else:
                code.append(_fill(step, values))
        if exit_check and not in_slow_path:
            # Leave right after this instruction if a write hit translated code or the CPU was
            # asked for attention (the next instruction must be fetched afresh), giving the
            # instructions not executed back to the budget.  The last instruction of a block
            # without tail checks at the block's exit instead (below).
            code.append("if _sig.exit:")
            code.append(f"{INDENT}_sig.early_exits += 1")
            emit_exit(code, 1, decoded.npc, "None", f"room + {total - index - 1}")
        if final is not None:
            if not last:
                raise ValueError("a control transfer must end the block")
            if final[0] == "if":
                taken, fall = values[final[2][2:-2]], values[final[3][2:-2]]
                if fused is not None:
                    test, flags = FUSED_CONDITIONS[definition.mnemonic], fused[1]
                    if plain is not None:
                        test = re.sub(r"\bv_[xy]\b", lambda m: plain[m.group(0)], test)
                        flags = [*fused[0], *flags]
                else:
                    test, flags = _fill(final[1], values), ()
                code.append(f"if {test}:")
                if memory:
                    code.append(f"{INDENT}if _sig.exit:")
                    emit_exit(code, 2, taken, "None", flags=flags)
                if loops and taken == start_pc:
                    code.append(f"{INDENT}if room >= {total}:")
                    code.append(f"{INDENT * 2}continue")
                emit_exit(code, 1, taken, cell(taken), flags=flags)
                if memory:
                    code.append("if _sig.exit:")
                    emit_exit(code, 1, fall, "None", flags=flags)
                if loops and fall == start_pc:
                    code.append(f"if room >= {total}:")
                    code.append(f"{INDENT}continue")
                emit_exit(code, 0, fall, cell(fall), flags=flags)
            elif final[0] == "const":
                destination = values[final[1][2:-2]]
                if memory:
                    code.append("if _sig.exit:")
                    emit_exit(code, 1, destination, "None")
                if loops and destination == start_pc:
                    code.append(f"if room >= {total}:")
                    code.append(f"{INDENT}continue")
                emit_exit(code, 0, destination, cell(destination))
            else:
                code.append(f"v_dest = {_fill(final[1], values)}")
                emit_exit(code, 0, "v_dest", "None")
            break
    else:
        if tail is None:
            if body and accesses_memory(body[-1].definition):
                code.append("if _sig.exit:")
                emit_exit(code, 1, end_pc, "None")
            emit_exit(code, 0, end_pc, cell(end_pc))
        else:
            emit_exit(code, 0, end_pc, "None")

    # Registers and flags the block touches: loaded on entry, written back at every exit.
    text = "\n".join(code)
    used = sorted({int(k) for k in re.findall(r"\br(\d+)\b", text)})
    written = sorted({int(k) for k in re.findall(r"\br(\d+) = ", text)}
                     | {int(k) for k in re.findall(r"\br(\d+)\b(?= [-+&|^*/%<>]{1,2}= )", text)})
    flags_used = bool(re.search(r"\bF\b", text))
    flags_written = bool(re.search(r"\bF = ", text))
    if "R[" in text:
        raise ValueError(f"{name}: a register index that is not a constant")
    writeback = [f"R[{k}] = r{k}" for k in written]
    if flags_written:
        writeback.append("cpu.flags = F")
    for mark in exit_marks:
        line = code[mark]
        pad = line[:len(line) - len(WB)]
        code[mark] = "\n".join(pad + w for w in writeback) if writeback else pad + "pass"
    prologue = [f"r{k} = R[{k}]" for k in used]
    if flags_used:
        prologue.append("F = cpu.flags")
    if memory_used and mode.paging:
        prologue.append("tlb_get = cpu.mmu.tlb.get")
        prologue.append("c_rk = c_wk = -1")
    if loops:
        prologue.append("room0 = room")

    i1, i2, i3 = INDENT, INDENT * 2, INDENT * 3
    out = [f"def make_{name}(cpu, R, _sig, ram, pflags, ram32"
           + "".join(f", {c}" for c in exits.values()) + "):",
           f"{i1}def {name}(room):"]
    out += [i2 + line for line in prologue]
    out.append(f"{i2}try:")
    body_indent = i3
    if loops:
        out.append(f"{i3}while True:")
        body_indent = i3 + INDENT
    out.append(f"{body_indent}room -= {total}")
    first_line = len(out) + 1
    lines: list[int] = []
    flat: list[str] = []
    offsets = []
    for line in code:
        offsets.append(len(flat))
        flat.extend(line.split("\n"))
    for start in starts:
        lines.append(first_line + offsets[start])
    out += [body_indent + line for line in flat]
    out.append(f"{i2}except BaseException:")
    out += [i3 + w for w in writeback]
    out.append(f"{i3}_sig.room = room")
    out.append(f"{i3}raise")
    out.append(f"{i1}return {name}")
    return BlockSource("\n".join(out) + "\n", name, lines, exits, loops)


def exit_pcs(body: Sequence[Decoded], *, tail: Decoded | None, end_pc: int) -> list[int]:
    """The constant destinations a block can be chained to, in cell order (``_l0``, ``_l1``):
    both sides of a final conditional branch, the destination of a final jump or call, or
    `end_pc` for a block that falls through; none after a tail or a computed destination."""
    if tail is not None:
        return []
    if not body:
        return [end_pc]
    last = body[-1]
    final = _final(last.definition)
    if final is None:
        return [end_pc]
    if final[0] == "if":
        taken, fall = _value(last, final[2]), _value(last, final[3])
        return [taken] if taken == fall else [taken, fall]
    if final[0] == "const":
        return [_value(last, final[1])]
    return []


#: opcode -> its template's ``final`` (`_final`)
_FINALS: dict[int, tuple | None] = {}


def _final(definition: Instruction) -> tuple | None:
    """``template(definition).final``, by opcode: `template` is cached by the definition, whose
    hash covers every field, too slow for every block a kernel forms."""
    try:
        return _FINALS[definition.opcode]
    except KeyError:
        final = _FINALS[definition.opcode] = template(definition).final
        return final


def _value(decoded: Decoded, placeholder: str) -> int:
    """The value of a template placeholder (``{{name}}``) for `decoded`, as `_values` has it."""
    name = placeholder[2:-2]
    if name == "npc":
        return (decoded.pc + LENGTHS[decoded.definition.opcode]) & M32
    if name == "pc":
        return decoded.pc
    return decoded.fields[name]


def _branches_to(decoded: Decoded, pc: int) -> bool:
    """Whether `decoded` (a block's last instruction) has `pc` as a constant destination."""
    final = template(decoded.definition).final
    if final is None:
        return decoded.npc == pc
    values = _values(decoded)
    if final[0] == "if":
        return pc in (values[final[2][2:-2]], values[final[3][2:-2]])
    if final[0] == "const":
        return values[final[1][2:-2]] == pc
    return False


#: The globals of every generated block function.
BLOCK_GLOBALS = {**SEMANTICS_GLOBALS, "GuestFault": GuestFault}


def compile_block(source: BlockSource, cpu, signal: Signal, filename):
    """Compile `source` for `cpu`; returns (function, {cell name: cell object}).  `filename`
    names the code, or is the code object of ``source.text`` compiled already (the CPUs of a
    machine share it)."""
    namespace = dict(BLOCK_GLOBALS)
    code = filename if not isinstance(filename, str) else compile(source.text, filename, "exec")
    exec(code, namespace)  # noqa: S102 - generated from the table
    factory = namespace[f"make_{source.name}"]
    memory = cpu.memory
    function = factory(cpu, cpu.regs, signal, memory.data, memory.page_flags, memory.words,
                       *([None] * len(source.exits)))
    freevars = function.__code__.co_freevars
    cells = {name: function.__closure__[freevars.index(name)]
             for name in source.exits.values() if name in freevars}
    return function, cells


__all__ = ["BLOCK_GLOBALS", "BlockSource", "FUSED_CONDITIONS", "MemoryMode", "Signal",
           "Template", "accesses_memory", "block_source", "compile_block", "exit_pcs", "template"]
