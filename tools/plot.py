"""The one plotting module: bar, line and Gantt charts in one style, as SVG or PNG.

A chart is an immutable value built by `bars`, `lines` or `gantt`; `write(chart, path)` renders it
by the path's suffix.  SVG is drawn here with no dependency and is deterministic (the same chart
gives the same bytes, so generated figures in docs/ can be compared by a test); PNG goes through
matplotlib (the optional ``plot`` extra) with the same palette and layout choices.

    from toyvisor.tools import plot
    chart = plot.bars("cycles by cause", ["bare", "trap"], {"guest": [10, 12], "exits": [0, 30]},
                      stacked=True, ylabel="cycles")
    plot.write(chart, "cycles.svg")
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import write_atomic

# Okabe & Ito's colour-blind-safe palette (black last: it is also the axis colour).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
TITLE_SIZE = 14
CHAR_WIDTH = 0.6 * FONT_SIZE  # an estimate of a glyph's advance, for layout only
INK = "#222222"
GRID = "#dddddd"


class PlotError(ToyvisorError):
    """A chart that cannot be drawn (bad data) or written (unknown format, missing matplotlib)."""


@attrs.frozen
class Chart:
    """What to draw; built by `bars`, `lines` or `gantt`, rendered by `svg` or `write`.

    `series` holds ``(name, values)`` pairs in the caller's order: for bars one value (or None,
    drawn as no bar) per category, for lines the ``(x, y)`` points. `spans` are Gantt
    ``(lane, start, end, label)`` tuples.
    """

    kind: str
    title: str
    xlabel: str = ""
    ylabel: str = ""
    categories: tuple[str, ...] = ()
    series: tuple[tuple[str, tuple], ...] = ()
    lanes: tuple[str, ...] = ()
    spans: tuple[tuple[str, float, float, str], ...] = ()
    stacked: bool = False
    log: bool = False


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlotError(f"{what}: {value!r} is not a finite number")
    return value


def bars(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
         stacked: bool = False, log: bool = False, ylabel: str = "") -> Chart:
    """Bars per category, one per series (side by side, or stacked); None leaves a gap."""
    categories = tuple(str(c) for c in categories)
    if not categories:
        raise PlotError(f"{title}: a bar chart needs at least one category")
    if not series:
        raise PlotError(f"{title}: a bar chart needs at least one series")
    if stacked and log:
        raise PlotError(f"{title}: stacked bars cannot use a log scale (the parts would lie)")
    rows = []
    for name, values in series.items():
        values = tuple(values)
        if len(values) != len(categories):
            raise PlotError(f"{title}: series {name!r} has {len(values)} values for "
                            f"{len(categories)} categories")
        for value in values:
            if value is None:
                continue
            _number(value, f"{title}: series {name!r}")
            if log and value <= 0:
                raise PlotError(f"{title}: series {name!r}: {value} cannot be shown on a log scale")
            if stacked and value < 0:
                raise PlotError(f"{title}: series {name!r}: stacked bars need values ≥ 0")
        rows.append((str(name), values))
    return Chart("bars", str(title), ylabel=str(ylabel), categories=categories,
                 series=tuple(rows), stacked=stacked, log=log)


def lines(title: str, xlabel: str, ylabel: str,
          series: Mapping[str, Sequence[tuple[float, float]]], *, log: bool = False) -> Chart:
    """One polyline with markers per series, through its ``(x, y)`` points in the given order."""
    if not series:
        raise PlotError(f"{title}: a line chart needs at least one series")
    rows = []
    for name, points in series.items():
        checked = []
        for point in points:
            if not isinstance(point, (tuple, list)) or len(point) != 2:
                raise PlotError(f"{title}: series {name!r}: {point!r} is not an (x, y) pair")
            x = _number(point[0], f"{title}: series {name!r}")
            y = _number(point[1], f"{title}: series {name!r}")
            if log and y <= 0:
                raise PlotError(f"{title}: series {name!r}: {y} cannot be shown on a log scale")
            checked.append((x, y))
        if not checked:
            raise PlotError(f"{title}: series {name!r} has no points")
        rows.append((str(name), tuple(checked)))
    return Chart("lines", str(title), xlabel=str(xlabel), ylabel=str(ylabel), series=tuple(rows),
                 log=log)


def gantt(title: str, lanes: Sequence[str],
          spans: Sequence[tuple[str, float, float, str]]) -> Chart:
    """Horizontal spans on named lanes over time; spans with the same label share a colour."""
    lanes = tuple(str(lane) for lane in lanes)
    if not lanes:
        raise PlotError(f"{title}: a Gantt chart needs at least one lane")
    if len(set(lanes)) != len(lanes):
        raise PlotError(f"{title}: lane names must be distinct")
    checked = []
    for span in spans:
        if not isinstance(span, (tuple, list)) or len(span) != 4:
            raise PlotError(f"{title}: {span!r} is not a (lane, start, end, label) span")
        lane, start, end, label = span
        if str(lane) not in lanes:
            raise PlotError(f"{title}: span on unknown lane {lane!r}")
        start = _number(start, f"{title}: span start")
        end = _number(end, f"{title}: span end")
        if end < start:
            raise PlotError(f"{title}: span {label!r} on {lane!r} ends ({end}) before it starts "
                            f"({start})")
        checked.append((str(lane), start, end, str(label)))
    return Chart("gantt", str(title), xlabel="time", lanes=lanes, spans=tuple(checked))


# ----------------------------------------------------------------------------------------------
# scales

def _tidy(value: float) -> float:
    """`value` rounded to 12 significant digits: tick arithmetic leaves 0.30000000000000004."""
    return 0.0 if value == 0 else float(f"{value:.12g}")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    for mantissa in (1, 2, 2.5, 5, 10):
        step = mantissa * magnitude
        if (hi - lo) / step <= count:
            break
    first = math.floor(_tidy(lo / step)) * step
    last = math.ceil(_tidy(hi / step)) * step
    return [_tidy(first + i * step) for i in range(round((last - first) / step) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """The powers of ten covering [lo, hi] (lo > 0)."""
    first = math.floor(math.log10(lo))
    last = max(math.ceil(math.log10(hi)), first + 1)
    return [10.0 ** k for k in range(first, last + 1)]


def tick_label(value: float) -> str:
    """A short label: 0, 250, 1.5k, 20M, 0.001."""
    if value == 0:
        return "0"
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{_tidy(value / divisor):g}{suffix}"
    return f"{_tidy(value):g}"


@attrs.frozen
class _Scale:
    lo: float
    hi: float
    log: bool
    ticks: tuple[float, ...]

    @classmethod
    def fit(cls, values: Sequence[float], *, log: bool, zero: bool) -> _Scale:
        values = list(values) or [0.0, 1.0]
        if log:
            ticks = log_ticks(min(values), max(values))
        else:
            lo, hi = min(values), max(values)
            if zero:
                lo, hi = min(lo, 0.0), max(hi, 0.0)
            ticks = nice_ticks(lo, hi)
        return cls(ticks[0], ticks[-1], log, tuple(ticks))

    def fraction(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            return (math.log10(value) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo))
        return (value - self.lo) / (self.hi - self.lo)


# ----------------------------------------------------------------------------------------------
# SVG

def _f(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * 0.6 * size


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def rect(self, x, y, w, h, fill, title: str = "") -> None:
        shape = (f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0))}" '
                 f'height="{_f(max(h, 0))}" fill="{fill}"')
        self.parts.append(f"{shape}><title>{escape(title)}</title></rect>" if title
                          else f"{shape}/>")

    def line(self, x1, y1, x2, y2, stroke=INK, width: float = 1) -> None:
        self.parts.append(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" '
                          f'stroke="{stroke}" stroke-width="{_f(width)}"/>')

    def text(self, x, y, text, *, anchor="middle", size=FONT_SIZE, weight="normal",
             rotate: float = 0, fill=INK) -> None:
        extra = f' transform="rotate({_f(rotate)} {_f(x)} {_f(y)})"' if rotate else ""
        bold = ' font-weight="bold"' if weight != "normal" else ""
        self.parts.append(f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" '
                          f'font-size="{_f(size)}"{bold} fill="{fill}"{extra}>{escape(text)}'
                          f'</text>')

    def document(self, width: float, height: float) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" '
                f'height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" '
                f'font-family="{FONT}">\n'
                f'<rect width="100%" height="100%" fill="#ffffff"/>\n')
        return head + "\n".join(self.parts) + "\n</svg>\n"


def _legend(svg: _Svg, names: Sequence[str], x: float, y: float) -> None:
    for i, name in enumerate(names):
        top = y + i * 18
        svg.rect(x, top, 12, 12, PALETTE[i % len(PALETTE)])
        svg.text(x + 18, top + 10, name, anchor="start")


def _legend_width(names: Sequence[str]) -> float:
    return (max((_text_width(n) for n in names), default=0) + 40) if names else 0


def _y_axis(svg: _Svg, scale: _Scale, left, top, width, height, label: str) -> None:
    for tick in scale.ticks:
        y = top + height * (1 - scale.fraction(tick))
        svg.line(left, y, left + width, y, GRID)
        svg.text(left - 6, y + 4, tick_label(tick), anchor="end")
    svg.line(left, top, left, top + height)
    svg.line(left, top + height, left + width, top + height)
    if label:
        svg.text(16, top + height / 2, label, rotate=-90)


def svg(chart: Chart) -> str:
    """The chart as an SVG document (a pure function of the chart: same chart, same text)."""
    return {"bars": _svg_bars, "lines": _svg_lines, "gantt": _svg_gantt}[chart.kind](chart)


def _svg_bars(chart: Chart) -> str:
    names = [name for name, _ in chart.series]
    per_slot = 1 if chart.stacked else len(names)
    slot = max(40, per_slot * 16 + 16)
    label_width = max(_text_width(c) for c in chart.categories)
    rotate = label_width > slot - 4
    bottom_room = (label_width * 0.72 + 20) if rotate else 28
    left, top = 72, 40
    width = max(300, slot * len(chart.categories))
    height = 240
    values = []
    if chart.stacked:
        for i in range(len(chart.categories)):
            values.append(sum(v[i] for _, v in chart.series if v[i] is not None))
    else:
        values = [x for _, v in chart.series for x in v if x is not None]
    scale = _Scale.fit(values, log=chart.log, zero=not chart.log)
    out = _Svg()
    out.text(left + width / 2, 22, chart.title, size=TITLE_SIZE, weight="bold")
    _y_axis(out, scale, left, top, width, height, chart.ylabel)
    base = top + height * (1 - scale.fraction(scale.lo if chart.log else 0.0))
    for c, category in enumerate(chart.categories):
        x0 = left + c * slot + 8
        stack = 0.0
        for s, (name, data) in enumerate(chart.series):
            value = data[c]
            if value is None:
                continue
            colour = PALETTE[s % len(PALETTE)]
            tip = f"{name} · {category}: {tick_label(value)}"
            if chart.stacked:
                y1 = top + height * (1 - scale.fraction(stack))
                stack += value
                y2 = top + height * (1 - scale.fraction(stack))
                out.rect(x0, y2, slot - 16, y1 - y2, colour, tip)
            else:
                y = top + height * (1 - scale.fraction(value))
                x = x0 + s * (slot - 16) / per_slot
                out.rect(x, min(y, base), (slot - 16) / per_slot, abs(base - y), colour, tip)
        cx = left + c * slot + slot / 2
        if rotate:
            out.text(cx + 4, top + height + 14, category, anchor="end", rotate=-45)
        else:
            out.text(cx, top + height + 18, category)
    legend_x = left + width + 16
    _legend(out, names, legend_x, top)
    return out.document(legend_x + _legend_width(names),
                        max(top + height + bottom_room, top + 18 * len(names)) + 8)


def _svg_lines(chart: Chart) -> str:
    names = [name for name, _ in chart.series]
    left, top, width, height = 72, 40, 420, 240
    xs = [x for _, points in chart.series for x, _ in points]
    ys = [y for _, points in chart.series for _, y in points]
    xscale = _Scale.fit(xs, log=False, zero=False)
    yscale = _Scale.fit(ys, log=chart.log, zero=not chart.log)
    out = _Svg()
    out.text(left + width / 2, 22, chart.title, size=TITLE_SIZE, weight="bold")
    _y_axis(out, yscale, left, top, width, height, chart.ylabel)
    for tick in xscale.ticks:
        x = left + width * xscale.fraction(tick)
        out.line(x, top + height, x, top + height + 4)
        out.text(x, top + height + 18, tick_label(tick))
    if chart.xlabel:
        out.text(left + width / 2, top + height + 38, chart.xlabel)
    for s, (name, points) in enumerate(chart.series):
        colour = PALETTE[s % len(PALETTE)]
        coords = [(left + width * xscale.fraction(x), top + height * (1 - yscale.fraction(y)))
                  for x, y in points]
        path = " ".join(f"{_f(x)},{_f(y)}" for x, y in coords)
        out.parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"/>')
        for (x, y), (px, py) in zip(coords, points):
            out.parts.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{colour}">'
                             f'<title>{escape(name)}: ({tick_label(px)}, {tick_label(py)})'
                             f'</title></circle>')
    legend_x = left + width + 16
    _legend(out, names, legend_x, top)
    return out.document(legend_x + _legend_width(names),
                        max(top + height + 48, top + 18 * len(names)) + 8)


def _gantt_labels(chart: Chart) -> list[str]:
    return list(dict.fromkeys(label for _, _, _, label in chart.spans))


def _svg_gantt(chart: Chart) -> str:
    labels = _gantt_labels(chart)
    colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    lane_height = 24
    left = max(60, max(_text_width(lane) for lane in chart.lanes) + 16)
    top, width = 40, 480
    height = lane_height * len(chart.lanes)
    times = [t for _, start, end, _ in chart.spans for t in (start, end)]
    scale = _Scale.fit(times or [0.0, 1.0], log=False, zero=True)
    out = _Svg()
    out.text(left + width / 2, 22, chart.title, size=TITLE_SIZE, weight="bold")
    for i, lane in enumerate(chart.lanes):
        y = top + i * lane_height
        out.text(left - 8, y + lane_height / 2 + 4, lane, anchor="end")
        out.line(left, y + lane_height, left + width, y + lane_height, GRID)
    for tick in scale.ticks:
        x = left + width * scale.fraction(tick)
        out.line(x, top, x, top + height, GRID)
        out.text(x, top + height + 18, tick_label(tick))
    out.text(left + width / 2, top + height + 38, chart.xlabel)
    for lane, start, end, label in chart.spans:
        y = top + chart.lanes.index(lane) * lane_height + 3
        x1 = left + width * scale.fraction(start)
        x2 = left + width * scale.fraction(end)
        out.rect(x1, y, x2 - x1, lane_height - 6, colour[label],
                 f"{lane}: {label} [{tick_label(start)}, {tick_label(end)})")
        if _text_width(label, 10) + 4 < x2 - x1:
            out.text((x1 + x2) / 2, y + lane_height / 2 + 1, label, size=10, fill="#ffffff")
    out.line(left, top, left, top + height)
    out.line(left, top + height, left + width, top + height)
    legend_x = left + width + 16
    _legend(out, labels, legend_x, top)
    return out.document(legend_x + _legend_width(labels),
                        max(top + height + 48, top + 18 * len(labels)) + 8)


# ----------------------------------------------------------------------------------------------
# PNG (matplotlib)

def png(chart: Chart) -> bytes:
    """The chart as PNG bytes, drawn by matplotlib; PlotError when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("PNG output needs matplotlib: pip install 'toyvisor[plot]' "
                        "(or write the chart as .svg, which needs nothing)") from None
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(chart.title, fontsize=TITLE_SIZE, fontweight="bold")
    {"bars": _mpl_bars, "lines": _mpl_lines, "gantt": _mpl_gantt}[chart.kind](chart, axes)
    axes.grid(True, axis="y" if chart.kind == "bars" else "both", color=GRID)
    axes.set_axisbelow(True)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _mpl_bars(chart: Chart, axes) -> None:
    n = len(chart.series)
    positions = range(len(chart.categories))
    bottoms = [0.0] * len(chart.categories)
    for s, (name, data) in enumerate(chart.series):
        colour = PALETTE[s % len(PALETTE)]
        present = [i for i, v in enumerate(data) if v is not None]
        heights = [data[i] for i in present]
        if chart.stacked:
            axes.bar(present, heights, 0.8, bottom=[bottoms[i] for i in present], color=colour,
                     label=name)
            for i in present:
                bottoms[i] += data[i]
        else:
            axes.bar([i - 0.4 + (s + 0.5) * 0.8 / n for i in present], heights, 0.8 / n,
                     color=colour, label=name)
    axes.set_xticks(list(positions), chart.categories, rotation=45 if len(chart.categories) > 6
                    else 0, ha="right" if len(chart.categories) > 6 else "center")
    if chart.log:
        axes.set_yscale("log")
    axes.set_ylabel(chart.ylabel)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _mpl_lines(chart: Chart, axes) -> None:
    for s, (name, points) in enumerate(chart.series):
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o",
                  color=PALETTE[s % len(PALETTE)], label=name)
    if chart.log:
        axes.set_yscale("log")
    axes.set_xlabel(chart.xlabel)
    axes.set_ylabel(chart.ylabel)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _mpl_gantt(chart: Chart, axes) -> None:
    labels = _gantt_labels(chart)
    colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    seen: set[str] = set()
    for lane, start, end, label in chart.spans:
        row = len(chart.lanes) - 1 - chart.lanes.index(lane)
        axes.barh(row, end - start, left=start, height=0.75, color=colour[label],
                  label=None if label in seen else label)
        seen.add(label)
    axes.set_yticks(range(len(chart.lanes)), list(reversed(chart.lanes)))
    axes.set_xlabel(chart.xlabel)
    if labels:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def write(chart: Chart, path: str | Path) -> None:
    """Write `chart` to `path` atomically: ``.svg`` (no dependency) or ``.png`` (matplotlib)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        data = svg(chart).encode()
    elif suffix == ".png":
        data = png(chart)
    else:
        raise PlotError(f"{path}: unknown picture format {suffix or '(no suffix)'!r}; "
                        f"use .svg or .png")
    write_atomic(path, data)
