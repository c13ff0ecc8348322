"""Fuzzed input files: images (structurally damaged yet with a valid checksum, bit flips,
truncation, wrong version), cost-model profiles, guest.toml manifests and domain configurations
(hypothesis-mutated TOML documents and raw text), assembly sources with include graphs (cycles,
deep chains, binary and non-UTF-8 files).  Each loads, or fails with our own error naming the
file — never another exception, never a hang."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import tempfile
from pathlib import Path

from fuzz_support import expect_error, no_hang
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.asm import AssemblyError, assemble_file, assemble_source, disassemble, load_image
from toyvisor.asm.assembler import MAX_INCLUDE_DEPTH, guests_directory
from toyvisor.asm.image import FORMAT_VERSION, MAGIC, Image, ImageError
from toyvisor.isa.errors import ToyvisorError
from toyvisor.tools import runner
from toyvisor.tools.domains import ConfigError, load_config
from toyvisor.tools.guest import Guest, GuestError, load_guest
from toyvisor.vmm import costs
from toyvisor.vmm.costs import CostModelError

GUESTS = guests_directory()

# -- images ----------------------------------------------------------------------------------------

SAMPLE = assemble_source("start: li r1, 7\n li r2, data\n st [r2], r1\n hlt\ndata: .word 1, 2\n",
                         "sample.s").image

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
              st.sampled_from([0, 4, -4, 0xFFFFFFFC, 1 << 32, 1 << 64]),
              st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _header_and_payload(image: Image):
    data = image.to_bytes()
    header_length, payload_length = struct.unpack_from("<IQ", data, 12)
    header = json.loads(data[24:24 + header_length])
    return header, data[24 + header_length:24 + header_length + payload_length]


def _craft(header, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    """An image file with a correct checksum around any header and payload."""
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    body = struct.pack("<8sIIQ", MAGIC, version, len(text), len(payload)) + text + payload
    return body + hashlib.sha256(body).digest()


@st.composite
def damaged_headers(draw):
    """The sample's header with one value somewhere replaced by any JSON value."""
    header, payload = _header_and_payload(SAMPLE)
    path = []
    node = header
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    replacement = draw(JSON)
    if not path:
        return replacement, payload
    target = header
    for key in path[:-1]:
        target = target[key]
    if draw(st.integers(0, 4)) == 0 and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return header, payload + draw(st.binary(max_size=3)) if draw(st.integers(0, 5)) == 0 \
        else payload


def _load_and_use(data: bytes, where: Path) -> None:
    """Load image bytes from a file; a loaded image must also disassemble and run (bounded)."""
    where.write_bytes(data)
    loaded = expect_error(load_image, where)
    if isinstance(loaded, ToyvisorError):
        assert isinstance(loaded, ImageError)
        assert str(loaded).startswith(f"{where}: ") and "\n" not in str(loaded)
        return
    disassemble(loaded)
    guest = Guest(name="fuzzed", image=loaded, memory_size=1 << 16, max_steps=2000)
    result = expect_error(runner.run, guest)
    if isinstance(result, ToyvisorError):
        assert "fit" in str(result)  # the only way a loadable image fails to boot


@given(damaged_headers())
def test_structurally_damaged_images_with_a_valid_checksum(header_and_payload):
    header, payload = header_and_payload
    with tempfile.TemporaryDirectory() as directory:
        _load_and_use(_craft(header, payload), Path(directory) / "damaged.tvimg")


@given(st.data())
def test_bit_flips_truncation_and_versions(data):
    good = bytearray(SAMPLE.to_bytes())
    how = data.draw(st.sampled_from(["flip", "cut", "version", "extend", "splice"]))
    if how == "flip":
        for index in data.draw(st.lists(st.integers(0, len(good) - 1), min_size=1, max_size=4)):
            good[index] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "cut":
        good = good[:data.draw(st.integers(0, len(good) - 1))]
    elif how == "version":
        version = data.draw(st.one_of(st.integers(0, 0xFFFFFFFF), st.just(FORMAT_VERSION + 1))
                            .filter(lambda v: v != FORMAT_VERSION))
        header, payload = _header_and_payload(SAMPLE)
        good = bytearray(_craft(header, payload, version))
    elif how == "extend":
        good += data.draw(st.binary(min_size=1, max_size=40))
    else:  # a header or payload length announcing more or less than there is
        field = data.draw(st.sampled_from([(12, "<I"), (16, "<Q")]))
        struct.pack_into(field[1], good, field[0], data.draw(st.integers(0, 1 << 31)))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "broken.tvimg"
        path.write_bytes(bytes(good))
        outcome = expect_error(load_image, path)
        if bytes(good) != SAMPLE.to_bytes():
            assert isinstance(outcome, ImageError), how
            assert str(outcome).startswith(f"{path}: ")


@settings(max_examples=15)
@given(st.binary(max_size=64).map(lambda raw: b"{" + raw))
def test_header_bytes_that_are_not_json(raw):
    with tempfile.TemporaryDirectory() as directory:
        _load_and_use(_craft(raw, b""), Path(directory) / "x.tvimg")


# -- TOML documents ---------------------------------------------------------------------------------

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict) -> str:
    """A TOML document (inline tables only) for any dict of TOML-representable values."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in document.items())


TOML_VALUE = st.recursive(
    st.one_of(st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
              st.sampled_from([0, 1, -1, 4096, 1 << 30, (1 << 30) + 1, 65536]),
              st.floats(), st.text(max_size=10),
              st.sampled_from(["64K", "4M", "0K", "99999999M", " 1k", "dom0", "minikernel",
                               "../dom0", "console", "disk", "/dev/zero", "kernel.s"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


@st.composite
def mutated(draw, document: dict, keys: list[str]):
    """`document` with keys dropped, values replaced (at any depth) and keys added."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        node = document
        while True:
            if not isinstance(node, (dict, list)) or not node:
                break
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                       else range(len(node))))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            action = draw(st.integers(0, 5))
            if action == 0 and isinstance(node, dict):
                del node[key]
            elif action == 1 and isinstance(node, dict):
                node[draw(st.sampled_from(keys) | st.text(max_size=6))] = draw(TOML_VALUE)
            else:
                node[key] = draw(TOML_VALUE)
            break
    return document


@st.composite
def raw_damage(draw, text: str):
    """`text` cut, with a line deleted or duplicated, or with bytes inserted."""
    data = bytearray(text.encode())
    how = draw(st.integers(0, 2))
    if how == 0:
        data = data[:draw(st.integers(0, len(data)))]
    elif how == 1:
        lines = bytes(data).split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [] if draw(st.booleans()) else [lines[i]] * 2
        data = bytearray(b"\n".join(lines))
    else:
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from([b"\xff\xfe", b"[", b"]", b"=", b'"', b"\0",
                                            b"\n[[domain]]\n", b"x = 1\n", b"\\u"]))
    return bytes(data)


def _one_line_naming(error, path) -> None:
    assert str(path) in str(error), str(error)
    assert "\n" not in str(error), str(error)


PENTIUM4 = (Path(costs.__file__).parent / "profiles" / "pentium4.toml").read_text()
PROFILE = __import__("tomllib").loads(PENTIUM4)


@given(st.one_of(mutated(PROFILE, ["name", "description", "costs", "sources"]).map(to_toml),
                 raw_damage(PENTIUM4)))
def test_cost_model_files(text):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.toml"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        outcome = expect_error(costs.load, path)
        if isinstance(outcome, ToyvisorError):
            assert isinstance(outcome, CostModelError)
            _one_line_naming(outcome, path)
        else:
            assert outcome.cycles({"instruction": 3}) >= 0


MANIFEST = {"name": "g", "entry_source": "k.s", "disk": "d.txt", "memory": 65536,
            "max_steps": 1000, "console_input": "hi", "description": "x"}


@settings(max_examples=40)
@given(st.one_of(mutated(MANIFEST, list(MANIFEST)).map(to_toml),
                 raw_damage(to_toml(MANIFEST))))
def test_guest_manifests(text):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "guest.toml").write_bytes(text.encode("utf-8", "surrogatepass")
                                          if isinstance(text, str) else text)
        (root / "k.s").write_text("start: hlt\n")
        (root / "d.txt").write_text("disk")
        outcome = expect_error(load_guest, root)
        if isinstance(outcome, ToyvisorError):
            assert isinstance(outcome, (GuestError, AssemblyError)), type(outcome)
            assert str(root) in str(outcome)
        else:
            expect_error(runner.run, outcome)


DOMAINS = {"disk": "disk.txt",
           "dom0": {"kernel": "dom0", "memory": "64K", "max_steps": 1000},
           "domain": [{"name": "a", "kernel": "../pv_guest", "memory": "64K",
                       "devices": ["console", "disk"], "max_steps": 1000}]}


@settings(max_examples=40)
@given(st.one_of(mutated(DOMAINS, ["disk", "dom0", "domain", "kernel", "memory", "devices",
                                   "name", "max_steps"]).map(to_toml),
                 raw_damage(to_toml(DOMAINS))))
def test_domain_configurations(text):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "conf").mkdir()
        path = root / "conf" / "system.toml"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        (root / "conf" / "disk.txt").write_text("disk")
        (root / "pv_guest").mkdir()
        (root / "pv_guest" / "guest.toml").write_text("entry_source = 'k.s'\n")
        (root / "pv_guest" / "k.s").write_text("start: hlt\n")
        outcome = expect_error(load_config, path)
        if isinstance(outcome, ToyvisorError):
            assert isinstance(outcome, ConfigError), type(outcome)
            _one_line_naming(outcome, path)


# -- assembly sources and their includes ------------------------------------------------------------

FILE_TEXT = st.one_of(
    st.sampled_from(["nop\n", "start: li r1, 1\n hlt\n", "x: .word x\n", ".macro m\nnop\n.endm\nm\n",
                     "li r1,\n", "", ".include\n", 'label: .include "f0.s"\n']),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@st.composite
def include_graphs(draw):
    """Files f0..fn, each with some text and includes of any files (cycles allowed), some
    missing, some directories, some binary."""
    n = draw(st.integers(1, 6))
    files = {}
    for i in range(n):
        parts = []
        for _ in range(draw(st.integers(0, 3))):
            target = draw(st.one_of(st.integers(0, n), st.sampled_from(["dir", "bin", "abs"])))
            name = {"dir": "sub", "bin": "blob.s", "abs": "/dev/zero"}.get(target, f"f{target}.s")
            parts.append(f'.include "{name}"\n')
        parts.insert(draw(st.integers(0, len(parts))), draw(FILE_TEXT))
        files[f"f{i}.s"] = "".join(parts)
    return files


@given(include_graphs())
def test_include_graphs(files):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "sub").mkdir()
        (root / "blob.s").write_bytes(bytes(range(256)))
        for name, text in files.items():
            (root / name).write_bytes(text.encode("utf-8", "surrogateescape"))
        outcome = expect_error(assemble_file, root / "f0.s")
        if isinstance(outcome, ToyvisorError):
            assert isinstance(outcome, AssemblyError)
            for diagnostic in outcome.diagnostics:
                assert diagnostic.file == str(root / "f0.s") or Path(diagnostic.file).exists() \
                    or diagnostic.line == 0, diagnostic


def test_include_chains_deeper_than_the_limit_are_one_error(tmp_path):
    depth = MAX_INCLUDE_DEPTH + 5
    for i in range(depth):
        (tmp_path / f"c{i}.s").write_text(f'.include "c{i + 1}.s"\n' if i + 1 < depth else "nop\n")
    with no_hang(), __import__("pytest").raises(AssemblyError) as info:
        assemble_file(tmp_path / "c0.s")
    assert "nested too deeply" in str(info.value)
