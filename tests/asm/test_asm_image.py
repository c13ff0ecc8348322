"""The image format: round trips, every kind of damage, atomic saving."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toyvisor.asm import (FORMAT_VERSION, Image, ImageError, Segment, SourceLocation,
                          assemble_source, load_image, save_image)
from toyvisor.asm import image as image_module
from toyvisor.isa.errors import ToyvisorError

SAMPLE = """
N = 3
start:  li r1, msg
        jmp start
        .data
msg:    .asciz "hello"
"""


def sample() -> Image:
    return assemble_source(SAMPLE, "sample.s").image


def craft(header, payload: bytes = b"", version: int = FORMAT_VERSION) -> bytes:
    """A file with a valid checksum around an arbitrary header (dict or raw bytes)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = struct.pack("<8sIIQ", b"TOYVIMG\0", version, len(raw), len(payload)) + raw + payload
    return body + hashlib.sha256(body).digest()


def good_header(**changes):
    header = {"entry": 0, "segments": [{"name": "text", "address": 0, "offset": 0, "size": 4}],
              "symbols": {}, "files": [], "source_map": []}
    header.update(changes)
    return header


def test_round_trip_through_bytes():
    img = sample()
    again = Image.from_bytes(img.to_bytes())
    assert again == img
    assert dict(again.symbols) == {"N": 3, "start": 0, "msg": 0x1000}
    assert again.source_map[0] == SourceLocation(0, "sample.s", 3, 9)
    assert again.version == FORMAT_VERSION


def test_layout_of_the_file():
    data = sample().to_bytes()
    magic, version, header_length, payload_length = struct.unpack_from("<8sIIQ", data)
    assert (magic, version) == (b"TOYVIMG\0", 1)
    header = json.loads(data[24:24 + header_length])
    assert set(header) == {"entry", "segments", "symbols", "files", "source_map"}
    assert header["segments"][1] == {"name": "data", "address": 0x1000, "offset": 12, "size": 6}
    assert payload_length == 18
    assert len(data) == 24 + header_length + payload_length + 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]


def test_save_and_load(tmp_path):
    path = tmp_path / "prog.img"
    save_image(sample(), path)
    assert load_image(path) == sample()
    assert list(tmp_path.iterdir()) == [path]


def test_save_replaces_and_keeps_the_mode(tmp_path):
    path = tmp_path / "prog.img"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    save_image(sample(), path)
    assert load_image(path) == sample()
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("failing", ["replace", "fsync", "chmod"])
def test_failed_save_leaves_no_partial_or_temporary_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "prog.img"
    path.write_bytes(b"previous contents")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_module.os, failing, fail)
    with pytest.raises(ImageError, match="cannot write image: No space left on device"):
        save_image(sample(), path)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"previous contents"


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(image_module.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(ImageError):
        save_image(sample(), tmp_path / "new.img")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_cleans_up(tmp_path, monkeypatch):
    monkeypatch.setattr(image_module.os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_image(sample(), tmp_path / "new.img")
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(ImageError, match="cannot write image"):
        save_image(sample(), tmp_path / "nope" / "x.img")


def test_load_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"missing\.img: cannot read image: No such file"):
        load_image(tmp_path / "missing.img")


@pytest.mark.parametrize("data, reason", [
    (b"", "not a toyvisor image (the file is empty)"),
    (b"\x7fELF\x02\x01\x01\0" + bytes(100), "not a toyvisor image (bad magic number)"),
    (b"hello", "not a toyvisor image (bad magic number)"),
    (b"TOYV", "truncated image (4 bytes)"),
    (b"TOYVIMG\0\1\0", "truncated image (10 bytes, the fixed header alone takes 24)"),
])
def test_not_an_image(data, reason):
    with pytest.raises(ImageError) as info:
        Image.from_bytes(data)
    assert str(info.value) == reason


def test_load_names_the_file(tmp_path):
    path = tmp_path / "bad.img"
    path.write_bytes(b"garbage!" * 10)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"{path}: not a toyvisor image (bad magic number)"
    assert isinstance(info.value, ToyvisorError)


def test_unsupported_version():
    data = bytearray(sample().to_bytes())
    data[8:12] = struct.pack("<I", 7)
    with pytest.raises(ImageError, match="unsupported image format version 7"):
        Image.from_bytes(bytes(data))


@pytest.mark.parametrize("cut", [1, 10, 32, 33, 100])
def test_truncated(cut):
    data = sample().to_bytes()
    with pytest.raises(ImageError, match="truncated image"):
        Image.from_bytes(data[:-cut])


def test_trailing_bytes():
    with pytest.raises(ImageError, match=r"corrupted image \(3 unexpected bytes after the end\)"):
        Image.from_bytes(sample().to_bytes() + b"xyz")


@pytest.mark.parametrize("where", ["header", "payload", "checksum"])
def test_corrupted(where):
    data = bytearray(sample().to_bytes())
    header_length = struct.unpack_from("<I", data, 12)[0]
    index = {"header": 30, "payload": 24 + header_length + 2, "checksum": len(data) - 1}[where]
    data[index] ^= 0x01
    with pytest.raises(ImageError, match=r"corrupted image \(checksum mismatch\)"):
        Image.from_bytes(bytes(data))


@pytest.mark.parametrize("header, reason", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    ({"segments": []}, "missing entry point"),
    (good_header(entry="0"), "entry point must be an integer"),
    (good_header(entry=True), "entry point must be an integer"),
    (good_header(segments=[{"name": "t", "address": 0, "offset": 0}]), "missing segment 0 size"),
    (good_header(segments=[{"name": "t", "address": 0, "offset": 1, "size": 3}]),
     "segment 0 does not match the payload"),
    (good_header(segments=[{"name": "t", "address": 0, "offset": 0, "size": 2}]),
     "the segments cover 2 of 4 payload bytes"),
    (good_header(symbols={"a": "x"}), "symbol 'a' must be an integer"),
    (good_header(symbols=[]), "symbol table has the wrong type"),
    (good_header(source_map=[[0, 0, 1, 1]]), "bad source map entry"),
    (good_header(files=[3]), "file names must be strings"),
    (good_header(entry=1 << 32), "entry point 0x100000000 is outside the 32-bit address space"),
])
def test_malformed_header(header, reason):
    with pytest.raises(ImageError) as info:
        Image.from_bytes(craft(header, b"\0" * 4))
    assert str(info.value).startswith("malformed image header (") and reason in str(info.value)


def test_overlapping_segments_in_a_file():
    header = good_header(segments=[{"name": "a", "address": 0x100, "offset": 0, "size": 4},
                                   {"name": "b", "address": 0x102, "offset": 4, "size": 4}])
    with pytest.raises(ImageError) as info:
        Image.from_bytes(craft(header, bytes(8)))
    assert str(info.value) == ("segments overlap: 'a' 0x00000100-0x00000103 and 'b' "
                               "0x00000102-0x00000105")


def test_segment_beyond_the_address_space_in_a_file():
    header = good_header(segments=[{"name": "a", "address": 0xFFFFFFFE, "offset": 0, "size": 4}])
    with pytest.raises(ImageError, match="outside the 32-bit address space"):
        Image.from_bytes(craft(header, bytes(4)))


def test_image_constructor_validates():
    with pytest.raises(ImageError, match="segments overlap"):
        Image(0, (Segment("a", 0, b"1234"), Segment("b", 3, b"x")))
    with pytest.raises(ImageError, match="outside the 32-bit address space"):
        Image(0, (Segment("a", 0xFFFFFFFF, b"12"),))
    with pytest.raises(ImageError, match="entry point"):
        Image(-1, ())


def test_image_queries():
    img = sample()
    assert img.size == 18
    assert img.segment_at(0x1002).name == "data" and img.segment_at(0x800) is None
    assert img.read(0x1000, 8) == b"hello\0\0\0"
    assert img.location_of(5).line == 3 and img.location_of(9).line == 4


segments_strategy = st.lists(
    st.tuples(st.sampled_from(["text", "data", "x"]), st.integers(0, 2**32 - 1),
              st.binary(max_size=64)),
    max_size=5,
)


@given(segments_strategy, st.integers(0, 2**32 - 1),
       st.dictionaries(st.text(max_size=8), st.integers(-(2**40), 2**40), max_size=5),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.text(max_size=5), st.integers(1, 9999),
                          st.integers(1, 999)), max_size=5))
def test_random_images_round_trip(segments, entry, symbols, locations):
    placed, end = [], 0
    for name, address, data in sorted(segments, key=lambda s: s[1]):
        if address >= end and address + len(data) <= 2**32:
            placed.append(Segment(name, address, data))
            end = address + len(data)
    img = Image(entry, tuple(placed), symbols, tuple(SourceLocation(*l) for l in locations))
    assert Image.from_bytes(img.to_bytes()) == img


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_loader(data):
    with pytest.raises(ImageError):
        Image.from_bytes(data)


@given(st.data())
def test_damaged_images_raise_image_error(data):
    original = sample().to_bytes()
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(damaged) - 1))
        damaged[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    damaged = bytes(damaged[:cut])
    if damaged == original:
        return
    with pytest.raises(ImageError):
        Image.from_bytes(damaged)
