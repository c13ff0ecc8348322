"""toyvisor.tools.plot: charts are values, SVG is deterministic and well formed, bad data is refused."""

import importlib.util
import xml.etree.ElementTree as ET

import attrs
import pytest

from toyvisor.tools import plot

SVG_NS = "{http://www.w3.org/2000/svg}"


def sample_charts():
    return [
        plot.bars("cycles by cause", ["bare", "trap-emulate", "bt"],
                  {"guest": [100, 120, 110], "exits": [0, 900, 40], "emulation": [0, 300, None]},
                  stacked=True, ylabel="cycles"),
        plot.bars("nanobench", ["syscall", "in", "cr8wr", "call/ret", "pgfault", "divzero"],
                  {"bt": [242, 1050, 10, 1, 2120, 2300], "paper bt": [2000, 3000, 26, 5, 4000, None]},
                  log=True, ylabel="cycles"),
        plot.lines("latency", "load", "µs", {"mesh": [(0.1, 2.0), (0.5, 5.5), (0.9, 40.0)],
                                             "torus": [(0.1, 1.5), (0.9, 20.0)]}, log=True),
        plot.gantt("gang <scheduling> & co", ["cpu0", "cpu1"],
                   [("cpu0", 0, 10, "vm A"), ("cpu1", 0, 10, "vm A"), ("cpu0", 10, 25, "vm B")]),
    ]


@pytest.mark.parametrize("chart", sample_charts(), ids=lambda c: c.kind)
def test_svg_is_well_formed_and_the_same_for_the_same_chart(chart, tmp_path):
    text = plot.svg(chart)
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg"
    assert chart.title in "".join(root.itertext())
    # the same input gives the same bytes, also through a rebuilt (equal) chart and write()
    again = attrs.evolve(chart)
    assert plot.svg(again) == text
    plot.write(chart, tmp_path / "a.svg")
    plot.write(again, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes() == text.encode()


def test_charts_are_immutable_values():
    chart = sample_charts()[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        chart.title = "x"
    assert chart == sample_charts()[0]


def test_bars_draw_one_rect_per_present_value_with_a_tooltip():
    chart = sample_charts()[0]
    root = ET.fromstring(plot.svg(chart))
    tips = [r.find(f"{SVG_NS}title").text for r in root.iter(f"{SVG_NS}rect")
            if r.find(f"{SVG_NS}title") is not None]
    assert len(tips) == 8  # 9 values, one None
    assert "exits · trap-emulate: 900" in tips


def test_stacked_bars_reach_the_sum():
    chart = plot.bars("s", ["a"], {"x": [30], "y": [70]}, stacked=True)
    root = ET.fromstring(plot.svg(chart))
    bars = [r for r in root.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    heights = [float(r.get("height")) for r in bars]
    # 100 is the top tick: the two parts together fill the plot's height, 30:70
    assert sum(heights) == pytest.approx(240, abs=0.2)
    assert heights[0] / heights[1] == pytest.approx(30 / 70, rel=0.01)


def test_log_scale_ticks_are_powers_of_ten():
    assert plot.log_ticks(3, 2500) == [1, 10, 100, 1000, 10000]
    assert plot.nice_ticks(0, 0.3) == [0, 0.1, 0.2, 0.3]
    assert [plot.tick_label(v) for v in (0, 250, 1500, 2e7, 0.001)] == ["0", "250", "1.5k", "20M",
                                                                        "0.001"]


def test_text_is_escaped():
    text = plot.svg(sample_charts()[3])
    assert "gang &lt;scheduling&gt; &amp; co" in text


@pytest.mark.parametrize("make, message", [
    (lambda: plot.bars("t", [], {"a": []}), "at least one category"),
    (lambda: plot.bars("t", ["a"], {}), "at least one series"),
    (lambda: plot.bars("t", ["a", "b"], {"s": [1]}), "has 1 values for 2 categories"),
    (lambda: plot.bars("t", ["a"], {"s": ["x"]}), "is not a finite number"),
    (lambda: plot.bars("t", ["a"], {"s": [float("nan")]}), "is not a finite number"),
    (lambda: plot.bars("t", ["a"], {"s": [0]}, log=True), "log scale"),
    (lambda: plot.bars("t", ["a"], {"s": [1]}, log=True, stacked=True), "cannot use a log"),
    (lambda: plot.bars("t", ["a"], {"s": [-1]}, stacked=True), "values ≥ 0"),
    (lambda: plot.lines("t", "x", "y", {"s": [(1,)]}), "not an (x, y) pair"),
    (lambda: plot.lines("t", "x", "y", {"s": []}), "has no points"),
    (lambda: plot.lines("t", "x", "y", {"s": [(1, -2)]}, log=True), "log scale"),
    (lambda: plot.gantt("t", ["a"], [("b", 0, 1, "x")]), "unknown lane"),
    (lambda: plot.gantt("t", ["a"], [("a", 2, 1, "x")]), "before it starts"),
    (lambda: plot.gantt("t", ["a", "a"], []), "distinct"),
])
def test_bad_data_is_one_clear_error(make, message):
    with pytest.raises(plot.PlotError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_unknown_format_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(plot.PlotError, match="use .svg or .png"):
        plot.write(sample_charts()[0], tmp_path / "chart.jpg")
    assert list(tmp_path.iterdir()) == []


HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib (the plot extra) is not installed")
@pytest.mark.parametrize("chart", sample_charts(), ids=lambda c: c.kind)
def test_png_through_matplotlib(chart, tmp_path):
    plot.write(chart, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_png_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(plot.PlotError, match=r"needs matplotlib: pip install 'toyvisor\[plot\]'"):
        plot.write(sample_charts()[0], tmp_path / "chart.png")
    assert list(tmp_path.iterdir()) == []
