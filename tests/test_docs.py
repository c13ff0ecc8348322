"""The documentation tells the truth: outputs quoted in the tutorial are what the commands print."""

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```\n\$ (toyvisor run [^\n]*)\n(.*?)```", re.S)


def quoted_runs(doc):
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
        command, expected = match.group(1), match.group(2)
        yield pytest.param(command, expected, id=command)


@pytest.mark.parametrize("command, expected", list(quoted_runs("tutorial.md")))
def test_tutorial_output_is_what_the_command_prints(command, expected, monkeypatch):
    monkeypatch.chdir(REPO)
    args = shlex.split(command.split("|")[0])[1:]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    printed = [line.rstrip() for line in result.output.splitlines()]
    position = 0
    for line in expected.splitlines():
        line = line.rstrip()
        if line in ("", "..."):
            continue
        assert line in printed[position:], f"{command}: {line!r} not printed (in order)"
        position = printed.index(line, position) + 1


def test_readme_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", text, re.S)
    assert "toyvisor compare guests/minikernel" in blocks[0]
    assert "pytest" in blocks[1] and "[test]" in blocks[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -e '.[test]'" in ci
    assert os.access(REPO / ".ci" / "run", os.X_OK)


def test_virtualization_doc_table_is_what_compare_prints(monkeypatch):
    monkeypatch.chdir(REPO)
    text = (REPO / "docs" / "virtualization.md").read_text(encoding="utf-8")
    start = text.index("<!-- compare guests/minikernel")
    quoted = text[text.index("\n", start) + 1:text.index("<!-- end -->")]
    result = CliRunner().invoke(main, ["compare", "guests/minikernel", "--markdown"])
    assert result.exit_code == 0
    assert quoted == result.output, "docs/virtualization.md is stale: regenerate its table"


def test_minikernel_port_size_table_is_what_portsize_prints():
    from toyvisor.tools.portsize import measure, render_markdown

    text = (REPO / "guests" / "minikernel" / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- portsize guests/minikernel")
    quoted = text[text.index("\n", start) + 1:text.index("<!-- end -->", start)]
    assert quoted == render_markdown(measure(REPO / "guests" / "minikernel")), \
        "guests/minikernel/README.md is stale: regenerate its port-size table"


def test_portsize_refuses_a_guest_without_a_port(capsys):
    from toyvisor.tools.portsize import main

    assert main([str(REPO / "guests" / "nanobench")]) == 1
    assert "no pv_source" in capsys.readouterr().err


def test_ptbench_doc_tables_are_what_ptbench_prints(monkeypatch):
    monkeypatch.chdir(REPO)
    text = (REPO / "docs" / "ptbench.md").read_text(encoding="utf-8")
    start = text.index("<!-- ptbench: generated")
    quoted = text[text.index("\n", start) + 1:text.index("<!-- end -->", start)]
    result = CliRunner().invoke(main, ["ptbench", "--markdown"])
    assert result.exit_code == 0
    assert quoted == result.output, "docs/ptbench.md is stale: regenerate its tables"


def test_portsize_names_a_bad_manifest_in_one_line(tmp_path, capsys):
    from toyvisor.tools.portsize import main

    (tmp_path / "guest.toml").write_text('entry_source = "k.s"\npv_source = [')
    assert main([str(tmp_path)]) == 1
    assert "invalid TOML" in capsys.readouterr().err
    (tmp_path / "guest.toml").write_text('entry_source = "k.s"\npv_source = "pv.s"\n')
    assert main([str(tmp_path)]) == 1
    assert "entry_source 'k.s' not found" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 1
    assert "not a guest directory" in capsys.readouterr().err
