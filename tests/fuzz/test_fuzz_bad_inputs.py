"""The bad inputs of issue 10, item 5, and the generators that found them: deep nesting in an
image header and in a ``[port_outcome]`` regex, FIFOs and devices given as input files, macros
that double an expression per level, and option combinations that contradict each other.  Each
ends in one located error line (exit 1), never a traceback or a hang."""

from __future__ import annotations

import os
import pytest
from fuzz_support import cli, no_hang
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_files import SAMPLE, _craft, _header_and_payload

from toyvisor.asm import AssemblyError, assemble_source
from toyvisor.asm.image import Image, ImageError
from toyvisor.tools.guest import GuestError, load_guest

TINY = "start: li r1, 'k'\n out PORT_CONSOLE_DATA, r1\n hlt\n"
FAST = 20  # seconds: every case here is refused at once; more is a hang


def _one_line(result, *needles):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert errors, result.output
    for needle in needles:
        assert needle in result.output, result.output


# -- deep nesting --------------------------------------------------------------------------------

@settings(max_examples=8, deadline=None)
@given(st.integers(100, 5000), st.sampled_from("[{"), st.sampled_from(["entry", "symbols", "x"]))
def test_an_image_header_nested_any_depth_is_one_error(depth, bracket, key):
    header, payload = _header_and_payload(SAMPLE)
    nested = ("[" * depth + "]" * depth) if bracket == "[" else ('{"a":' * depth + "1"
                                                                  + "}" * depth)
    text = f'{{"{key}": {nested}, ' + __import__("json").dumps(header)[1:]
    with no_hang(FAST):
        try:  # a key the format ignores may load: what matters is that nothing else escapes
            Image.from_bytes(_craft(text.encode(), payload))
        except ImageError as error:
            assert "\n" not in str(error)


def test_the_issue_s_1000_deep_image_runs_and_disassembles_to_one_error(tmp_path):
    header, payload = _header_and_payload(SAMPLE)
    text = '{"x": ' + "[" * 1000 + "]" * 1000 + ", " + __import__("json").dumps(header)[1:]
    (tmp_path / "deep.tvimg").write_bytes(_craft(text.encode(), payload))
    for command in ("run", "disasm"):
        _one_line(cli(command, tmp_path / "deep.tvimg"), "nests too deeply")


@settings(max_examples=6, deadline=None)
@given(st.integers(100, 3000), st.sampled_from(["lines", "words", "ignore"]))
def test_a_port_outcome_regex_nested_any_depth_is_one_error(tmp_path_factory, depth, table):
    root = tmp_path_factory.mktemp("outcome")
    pattern = "(" * depth + "x" + ")" * depth
    rule = f"ignore = ['{pattern}']" if table == "ignore" else f"{table} = {{ a = '{pattern}' }}"
    (root / "guest.toml").write_text(f"entry_source = 'k.s'\n[port_outcome]\n{rule}\n")
    (root / "k.s").write_text(TINY)
    with no_hang(FAST):
        try:
            load_guest(root)
        except GuestError as error:
            assert "guest.toml: port_outcome" in str(error) and "\n" not in str(error)


def test_the_issue_s_500_paren_outcome_regex_is_one_error_for_run_compare_check(tmp_path):
    pattern = "(" * 500 + "x" + ")" * 500
    (tmp_path / "guest.toml").write_text(
        f"entry_source = 'k.s'\n[port_outcome]\nlines = {{ a = '{pattern}' }}\n")
    (tmp_path / "k.s").write_text(TINY)
    for command in ("run", "compare", "check"):
        _one_line(cli(command, tmp_path), "port_outcome.lines.a")


@settings(max_examples=8, deadline=None)
@given(st.integers(100, 6000), st.sampled_from(["array", "inline table"]),
       st.sampled_from(["guest.toml", "domains.toml", "cluster.toml", "profile.toml"]))
def test_toml_nested_any_depth_is_one_error(tmp_path_factory, depth, kind, name):
    from toyvisor.tools.cluster import ClusterError, load_cluster
    from toyvisor.tools.domains import ConfigError, load_config
    from toyvisor.vmm import costs

    loaders = {"guest.toml": lambda root: load_guest(root),
               "domains.toml": lambda root: load_config(root / name),
               "cluster.toml": lambda root: load_cluster(root / name),
               "profile.toml": lambda root: costs.load(root / name)}
    root = tmp_path_factory.mktemp("toml")
    value = "[" * depth + "]" * depth if kind == "array" else "{a=" * depth + "1" + "}" * depth
    (root / name).write_text(f"entry_source = 'k.s'\nx = {value}\n")
    (root / "k.s").write_text(TINY)
    with no_hang(FAST):
        with pytest.raises((GuestError, ConfigError, ClusterError, costs.CostModelError)) as caught:
            loaders[name](root)
    assert f"{name}:" in str(caught.value) and "\n" not in str(caught.value)


def test_a_deeply_nested_cost_model_is_one_error(tmp_path):
    (tmp_path / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("compare", "minikernel", "--cost-model", tmp_path / "deep.toml")
    _one_line(result, "deep.toml: invalid TOML", "nested too deeply")
    assert len(result.output.strip().splitlines()) == 1, result.output


# -- FIFOs and devices as input files ------------------------------------------------------------

@pytest.fixture
def fifos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("f.s", "f.tvimg", "d.bin", "c.toml", "ff.s", "domains.toml"):
        os.mkfifo(tmp_path / name)
    (tmp_path / "tiny.s").write_text(TINY)
    (tmp_path / "inc.s").write_text('.include "ff.s"\n' + TINY)
    guest = tmp_path / "g"
    guest.mkdir()
    (guest / "k.s").write_text(TINY)
    os.mkfifo(guest / "guest.toml")
    return tmp_path


@pytest.mark.parametrize("args", [
    ["asm", "f.s"], ["disasm", "f.s"], ["run", "f.s"], ["run", "f.tvimg"], ["disasm", "f.tvimg"],
    ["run", "tiny.s", "--disk", "d.bin"], ["compare", "tiny.s", "--cost-model", "c.toml"],
    ["run", "g"], ["check", "f.s"], ["asm", "inc.s"], ["domains", "boot", "domains.toml"],
], ids=" ".join)
def test_a_fifo_given_as_any_input_file_is_refused_without_blocking(fifos, args):
    with no_hang(FAST):
        result = cli(*args)
    _one_line(result, "not a regular file (a FIFO)")


@pytest.mark.parametrize("disk, says", [
    ("/dev/zero", "not a regular file (a character device)"),
    ("d.fifo", "not a regular file (a FIFO)"),
    (".", "not a regular file (a directory)"),
    ("nothere", "not found"),
])
def test_a_manifest_disk_is_reported_for_what_it_is(tmp_path, disk, says):
    (tmp_path / "k.s").write_text(TINY)
    os.mkfifo(tmp_path / "d.fifo")
    (tmp_path / "guest.toml").write_text(f"entry_source = 'k.s'\ndisk = '{disk}'\n")
    with no_hang(FAST):
        _one_line(cli("run", tmp_path), "guest.toml: disk", says)


# -- expression blow-up through macros ---------------------------------------------------------

def _doubling(levels: int, uses: int, operator: str) -> str:
    lines = [".macro m0 p", "        li r1, p", ".endm"]
    for level in range(1, levels + 1):
        argument = operator.join(["(p)"] * uses)
        lines += [f".macro m{level} p", f"        m{level - 1} {argument}", ".endm"]
    return "\n".join([*lines, f"start:  m{levels} 1", "        hlt", ""])


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.integers(2, 4), st.sampled_from(["+", "*", "|", "-"]))
def test_macros_that_multiply_an_expression_end_fast_with_a_located_error(levels, uses,
                                                                          operator):
    with no_hang(FAST):
        try:
            assemble_source(_doubling(levels, uses, operator), "blow.s")
        except AssemblyError as error:
            first = str(error).splitlines()[0]
            assert first.startswith("blow.s:") and "error:" in first


def test_the_issue_s_28_doubling_macros_are_one_located_error(tmp_path):
    (tmp_path / "blow.s").write_text(_doubling(28, 2, "+"))
    with no_hang(FAST):
        result = cli("asm", tmp_path / "blow.s")
    assert result.exit_code == 1
    assert "blow.s:" in result.output and "expression too large after macro expansion" \
        in result.output


# -- contradictory or meaningless options --------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["check", "minikernel", "--vmm", "native"], "native is the bare machine"),
    (["check", "minikernel", "--efficiency", "nan"], "efficiency threshold"),
    (["compare", "tiny.s", "--json", "--markdown"], "--json and --markdown exclude each other"),
    (["run", "tiny.s", "--vmm", "trap-emulate:0/1/3", "--ring-model", "0/3/3"], "choose one"),
    (["run", "tiny.s", "--vmm", "trap-emulate:0/3/3", "--ring-model", "0/1/3"], "choose one"),
    (["run", "tiny.s", "--vmm", "hardware-assisted:2", "--ring-model", "0/3/3"], "choose one"),
    (["run", "tiny.s", "--ring-model", "0/3/3"], "it needs --vmm trap-emulate"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_contradictory_options_are_bad_input(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.s").write_text(TINY)
    _one_line(cli(*args), says)


def test_an_agreeing_variant_and_ring_model_still_run(tmp_path):
    (tmp_path / "tiny.s").write_text(TINY)
    result = cli("run", tmp_path / "tiny.s", "--vmm", "trap-emulate:0/3/3", "--ring-model",
                 "0/3/3")
    assert result.exit_code == 0 and "trap-emulate:0/3/3" in result.output
