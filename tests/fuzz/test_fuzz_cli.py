"""Every `toyvisor` command, fed hypothesis-generated command lines (its own options in any order
and number, unknown options, values of every wrong kind, files that are missing, empty, binary,
broken or fine): it succeeds or exits non-zero with a one-line reason — never a traceback, never
a hang — and a failed command leaves every file as it was."""

from __future__ import annotations

import os

import click
import pytest
from fuzz_support import cli, files_of
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.asm import assemble_source, save_image
from toyvisor.tools.cli import main


def _commands(group, path=()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(_commands(main))

TINY = "start: li r1, 'k'\n out PORT_CONSOLE_DATA, r1\n hlt\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A working directory of user files, good and bad, that command lines refer to."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "tiny.s").write_text(TINY)
    (root / "spin.s").write_text("start: jmp start\n")
    spin = root / "spindir"
    spin.mkdir()
    (spin / "guest.toml").write_text("entry_source = 'spin.s'\nmax_steps = 3000\n")
    (spin / "spin.s").write_text("start: jmp start\n")
    (root / "broken.s").write_text("start: li r1,\n jmp nowhere\n.include \"nothere.s\"\n")
    (root / "binary.s").write_bytes(bytes(range(256)) * 4)
    (root / "empty.s").write_bytes(b"")
    (root / "latin1.s").write_bytes("start: hlt ; caf\xe9\n".encode("latin-1"))
    save_image(assemble_source(TINY, "tiny.s").image, root / "tiny.tvimg")
    good = (root / "tiny.tvimg").read_bytes()
    (root / "cut.tvimg").write_bytes(good[: len(good) // 2])
    (root / "garbage.tvimg").write_bytes(b"\x00garbage" * 9)
    (root / "dir").mkdir()
    guest = root / "guestdir"
    guest.mkdir()
    (guest / "guest.toml").write_text("entry_source = 'k.s'\nmax_steps = 500\n")
    (guest / "k.s").write_text(TINY)
    (root / "badguest").mkdir()
    (root / "badguest" / "guest.toml").write_text("entry_source = [1, 2\n")
    (root / "bad.toml").write_text("[costs\nx = 1")
    (root / "wrong.toml").write_text("name = 'w'\n[costs]\ninstruction = -1\n")
    (root / "domains.toml").write_text("[dom0]\nkernel = 'dom0'\nmax_steps = 3000\n")
    (root / "domains_bad.toml").write_text("[dom0]\nkernel = 'dom0'\n[[domain]]\nkernel = 3\n")
    (root / "disk.bin").write_bytes(b"\x01" * 700)
    return root


#: "/dev/zero" is an input only: output options get OUTPUT_FILES (never a real device)
FILES = ["/dev/zero", "tiny.s", "spindir", "broken.s", "binary.s", "empty.s", "latin1.s", "tiny.tvimg",
         "cut.tvimg", "garbage.tvimg", "dir", "guestdir", "badguest", "bad.toml", "wrong.toml",
         "domains.toml", "domains_bad.toml", "disk.bin", "missing.s", "missing/x.tvimg",
         "examples/hello.s", "", "-", "dir/out.tvimg", "guestdir/guest.toml"]

OUTPUT_FILES = [f for f in FILES if not f.startswith("/dev/")]

#: what a shell can pass: any text without NUL (argv strings end at NUL), and bytes that are not
#: UTF-8 as Python hands them over (surrogate escapes)
TEXT = st.one_of(st.text(st.characters(blacklist_characters="\0"), max_size=12),
                 st.sampled_from(["\udcff", "caf\udce9", "\udc80x"]))
INTS = st.sampled_from(["0", "1", "-1", "2", "7", "400", "4096", "65536", "1073741825",
                        "99999999999999999999", "0x10", "1e3", "nan", "", " "])
SMALL_INTS = st.sampled_from(["0", "1", "2", "3", "7", "400", "4096"])
STRATEGY_NAMES = ["native", "trap-emulate", "trap-emulate:0/3/3", "trap-emulate:9/9/9",
                  "binary-translation", "binary-translation:x", "hardware-assisted:2",
                  "hardware-assisted:3", "paravirtual", "bogus", ":", ""]
#: values of the string options, by option name (plus any text)
VALUES = {
    "--vmm": STRATEGY_NAMES,
    "--cost-model": ["pentium4", "core2", "nope", "bad.toml", "wrong.toml", "missing.toml",
                     "dir", "tiny.s", "disk.bin"],
    "--bench": ["syscall", "popf", "cpl", "empty", "nope", "SYSCALL"],
    "--do": ["list", "@5 list", "pause 1", "unpause 0", "balloon 0 4", "destroy 0",
             "destroy 99", "balloon 0 99999999999", "@x list", "reboot"],
    "--input": ["hello", "", "\x7f\n", "\udcff\udcfe"],
}
JUNK = st.one_of(st.sampled_from(["--bogus", "-x", "--json=1", "--", "-", "=", "--help"]), TEXT)


def _value(param):
    """Values for one parameter: mostly of its kind, sometimes of any other."""
    kind = param.type
    if isinstance(kind, click.Path) and param.opts[-1] == "--output":
        fitting = st.sampled_from(OUTPUT_FILES)
    elif isinstance(kind, click.Path):
        fitting = st.sampled_from(FILES if kind.file_okay else ["dir", "guestdir", "missing"])
    elif isinstance(kind, click.IntRange):
        fitting = st.one_of(SMALL_INTS, SMALL_INTS, INTS)
    elif isinstance(kind, click.Choice):
        fitting = st.sampled_from([*kind.choices, "bogus", ""])
    else:
        fitting = st.sampled_from(VALUES.get(param.opts[-1], ["x"]))
    files = OUTPUT_FILES if param.opts[-1] == "--output" else FILES
    other = st.one_of(INTS, st.sampled_from(files), TEXT)
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else fitting)


#: options the heavy commands always get, so that a valid line measures one small case
BOUNDED = {("nanobench",): ["--bench", "syscall", "--vmm", "native"],
           ("ptbench",): ["--n", "1", "--vmm", "native"],
           ("bench",): ["--workload", "compute", "--scale", "0.0002", "--repeat", "1"]}
#: options never drawn for a command: they size the work (a valid value may mean minutes), so
#: BOUNDED fixes them instead
FIXED = {("bench",): {"--scale", "--repeat", "--scaling"}}


@st.composite
def command_lines(draw, path, command):
    """Positional arguments, then options (each with a value unless a flag) in random order,
    now and then a word that fits nowhere."""
    words = [*path, *BOUNDED.get(path, [])]
    for param in command.params:
        if isinstance(param, click.Argument) and draw(st.integers(0, 9)):
            words.append(draw(_value(param)))
    options = [p for p in command.params if isinstance(p, click.Option)
               and not set(p.opts) & FIXED.get(path, set())]
    for param in draw(st.lists(st.sampled_from(options), max_size=5)) if options else []:
        words.append(draw(st.sampled_from(param.opts)))
        if not param.is_flag:
            words.append(draw(_value(param)))
    if not draw(st.integers(0, 4)):
        fixed = len(path) + len(BOUNDED.get(path, []))
        words.insert(draw(st.integers(fixed, len(words))), draw(JUNK))
    return words


#: the heavy commands measure every strategy on valid input: fewer examples keep CI bounded
EXAMPLES = {("nanobench",): 10, ("ptbench",): 10, ("compare",): 15, ("bench",): 10}


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_any_command_line_ends_cleanly(corpus, path, monkeypatch):
    monkeypatch.chdir(corpus)

    # the ci profile's count (60 by default) scales these; nightly searches proportionally deeper
    @settings(max_examples=max(1, EXAMPLES.get(path, 25) * settings.default.max_examples // 60))
    @given(command_lines(path, COMMANDS[path]))
    def check(args):
        before = files_of(corpus)
        result = cli(*args)
        after = files_of(corpus)
        if result.exit_code != 0:
            assert after == before, f"a failed command changed files: {args}"
        else:
            # success may write its output (-o, or an image next to the source), nothing else
            outputs = {args[i + 1] for i, word in enumerate(args[:-1]) if word in ("-o", "--output")}
            changed = {k for k in before if after.get(k) != before[k]}
            assert all(k in outputs or k.endswith(".tvimg") for k in changed), (args, changed)
        for name in os.listdir(corpus):
            assert not name.endswith(".tmp"), f"temporary file left behind: {name}"

    check()


@pytest.mark.parametrize("args", [["asm", "prog.s", "-o", "prog.s"], ["asm", "prog.tvimg"],
                                  ["asm", "prog.s", "-o", "./prog.s"]])
def test_assembling_never_overwrites_the_source(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    for name in ("prog.s", "prog.tvimg"):
        (tmp_path / name).write_text("start: hlt\n")
    result = cli(*args)
    assert result.exit_code == 1 and "would overwrite the source" in result.output
    assert files_of(tmp_path) == {"prog.s": b"start: hlt\n", "prog.tvimg": b"start: hlt\n"}


@pytest.mark.parametrize("args, message", [
    (["run", "/dev/zero"], "not a regular file"),
    (["disasm", "/dev/zero"], "not a regular file"),
    (["run", "tiny.s", "--disk", "/dev/zero"], "not a regular file"),
    (["compare", "tiny.s", "--vmm", "native", "--cost-model", "/dev/zero"],
     "not a regular file"),
])
def test_a_device_given_as_a_file_is_refused_not_read_for_ever(corpus, monkeypatch, args,
                                                               message):
    monkeypatch.chdir(corpus)
    result = cli(*args)
    assert result.exit_code == 1 and message in result.output


def test_console_input_that_is_not_utf8_reaches_the_guest_byte_for_byte(tmp_path):
    source = tmp_path / "echo.s"
    source.write_text("start: in r1, PORT_CONSOLE_DATA\n li r2, 'N'\n cmpi r1, 0xff\n jnz .out\n"
                      " li r2, 'Y'\n.out: out PORT_CONSOLE_DATA, r2\n cli\n hlt\n")
    result = cli("run", source, "--json", "--input", "\udcff")  # the shell's byte 0xff
    assert result.exit_code == 0
    assert __import__("json").loads(result.output)["console"] == "Y"


def test_an_output_that_is_a_fifo_or_device_is_written_through_not_replaced(tmp_path):
    """`-o /dev/null` must not replace the device node with a file (as root it could)."""
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    source = tmp_path / "prog.s"
    source.write_text("start: hlt\n")
    result = cli("asm", source, "-o", fifo)
    reader.join(timeout=10)
    assert result.exit_code == 0
    assert received and received[0].startswith(b"TOYVIMG")
    assert fifo.is_fifo()
