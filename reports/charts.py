"""Charts from DataFrames, rendered to small, deterministic inline SVG.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot: nothing is
registered in pyplot's global figure list (so nothing leaks and nothing needs closing) and no GUI
backend is ever chosen, whatever the host configured. Styling goes through ``rc_context``, which
changes matplotlib's global settings, so renders take a lock. Text stays text (``svg.fonttype = none``)
and ids are salted per chart, so the same data gives the same bytes and two charts on one page never
share an id. Huge frames are reduced before plotting, so a 1M-row line chart costs a few numpy passes.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import matplotlib
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from reports.errors import ReportError
from reports.formatting import format_cell, format_number

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

ChartKind = Literal["line", "bar", "barh", "area", "scatter", "pie"]
CHART_KINDS: tuple[str, ...] = get_args(ChartKind)

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0ea5e9", "#84cc16", "#64748b")
WIDTH_IN = 7.0
"""A4 width less 15 mm margins: charts print at 1:1 and never scale their text down."""
HEIGHT_IN = 3.2
MAX_POINTS = 5000
"""Line and area charts: about 120 KB of SVG, more points than an A4 width can show."""
MAX_SCATTER = 2000
"""Every scatter marker is an SVG element, so samples stay smaller than line data."""
MAX_BARS = 60
MAX_SLICES = 8

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["Inter", "Helvetica Neue", "Arial", "DejaVu Sans"],
    "font.size": 8.5,
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#94a3b8",
    "axes.labelcolor": "#334155",
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "path.simplify": True,
}


_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered chart: the SVG markup and, when data was reduced, a note saying how."""

    svg: str
    note: str | None = None


def y_columns(df: pd.DataFrame, x: str | None, y: str | Sequence[str] | None, kind: str) -> list[str]:
    """Check a chart declaration against the frame and return its y columns.

    Called when the chart is declared so a typo fails at the author's line, naming the chart.
    """
    if kind not in CHART_KINDS:
        raise ReportError(f"unknown chart kind {kind!r}; use one of {', '.join(CHART_KINDS)}", retriable=False)
    if x is not None and x not in df.columns:
        raise ReportError(f"x column {x!r} not in frame (columns: {', '.join(map(str, df.columns))})", retriable=False)
    if y is None:
        ys = [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])]
    else:
        ys = [y] if isinstance(y, str) else list(y)
    if not ys:
        raise ReportError("no numeric y column to plot; pass y=", retriable=False)
    for col in ys:
        if col not in df.columns:
            raise ReportError(
                f"y column {col!r} not in frame (columns: {', '.join(map(str, df.columns))})", retriable=False
            )
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise ReportError(f"y column {col!r} is not numeric (dtype {df[col].dtype})", retriable=False)
    if kind == "pie" and len(ys) != 1:
        raise ReportError("a pie chart takes exactly one y column", retriable=False)
    return ys


def render(
    df: pd.DataFrame,
    *,
    x: str | None,
    y: str | Sequence[str] | None = None,
    kind: ChartKind = "line",
    title: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    max_points: int | None = None,
    salt: str = "chart",
) -> Chart:
    """Render ``df`` as a chart of ``kind``; ``x=None`` plots against the index.

    Args:
        title: drawn inside the figure; leave None when the page already has a heading.
        x_label, y_label: axis labels; default to the column names (y only for a single column).
        max_points: line and area charts keep the min and max of each bucket up to this many
            points (default :data:`MAX_POINTS`), so spikes survive; scatter charts keep a fixed
            random sample (default :data:`MAX_SCATTER`).
        salt: makes SVG ids unique per chart on a page; the same salt and data give the same bytes.

    Raises:
        ReportError: for an unknown kind, missing or non-numeric columns, or negative pie values.
    """
    ys = y_columns(df, x, y, kind)
    if max_points is None:
        max_points = MAX_SCATTER if kind == "scatter" else MAX_POINTS
    if max_points < 10:
        raise ReportError(f"max_points must be at least 10, got {max_points}", retriable=False)
    xs = _x_series(df, x)
    rc: dict[RcKeyType, Any] = {**_RC, "svg.hashsalt": f"backburner:{salt}"}
    with _LOCK, matplotlib.rc_context(rc):
        height = HEIGHT_IN
        if kind == "barh":  # one bar per ~6 mm, so labels never collide
            height = max(HEIGHT_IN, min(0.24 * min(len(df), MAX_BARS) + 0.9, 9.0))
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        ax = fig.add_subplot()
        plot = {"line": _line, "area": _line, "scatter": _scatter, "bar": _bars, "barh": _bars, "pie": _pie}
        note = plot[kind](ax, df, xs, ys, kind, max_points)
        if kind != "pie":
            _label_axes(ax, xs, ys, kind, x_label, y_label)
            if len(ys) > 1:
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        if title:
            ax.set_title(title, loc="left")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return Chart(svg=_inline(buf.getvalue()), note=note)


def _x_series(df: pd.DataFrame, x: str | None) -> pd.Series:
    series = df.index.to_series(index=df.index) if x is None else df[x]
    if isinstance(series.dtype, pd.DatetimeTZDtype):  # plot wall-clock time in the data's own zone
        series = series.dt.tz_localize(None)
    return series.rename(series.name if series.name is not None else "index")


def _floats(df: pd.DataFrame, col: str, idx: np.ndarray | None) -> np.ndarray:
    series = df[col] if idx is None else df[col].iloc[idx]
    return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan))


def _minmax_indices(columns: list[np.ndarray], max_points: int) -> np.ndarray:
    """At most ``max_points`` row positions: the ends, and the min and max of every bucket in every
    column, so spikes survive where plain striding would drop them."""
    n, k = len(columns[0]), len(columns)
    buckets = max(1, (max_points - 2 - 2 * k) // (2 * k))  # room for the ends and a partial last bucket
    size = math.ceil(n / buckets)
    full = (n // size) * size
    keep = [np.array([0, n - 1])]
    for values in columns:
        grid = values[:full].reshape(-1, size)
        offsets = np.arange(grid.shape[0]) * size
        keep.append(offsets + np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1))
        keep.append(offsets + np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1))
        if full < n:
            tail = values[full:]
            if not np.isnan(tail).all():
                keep.append(full + np.array([np.nanargmin(tail), np.nanargmax(tail)]))
    return np.unique(np.concatenate(keep))


def _line(ax: Axes, df: pd.DataFrame, xs: pd.Series, ys: list[str], kind: str, max_points: int) -> str | None:
    n = len(df)
    order = None if xs.is_monotonic_increasing else np.argsort(xs.to_numpy(), kind="stable")
    note = None
    values = [_floats(df, c, order) for c in ys]
    if n > max_points:
        keep = _minmax_indices(values, max_points)
        order = keep if order is None else order[keep]
        values = [v[keep] for v in values]
        note = f"Downsampled from {n:,} to {len(keep):,} points (min and max per interval)."
    x_values = xs.to_numpy() if order is None else xs.iloc[order].to_numpy()
    if kind == "area":
        stacked = [np.nan_to_num(v) for v in values]
        ax.stackplot(x_values, *stacked, labels=ys, alpha=0.85, linewidth=0)
    else:
        for col, v in zip(ys, values, strict=True):
            ax.plot(x_values, v, label=col)
    ax.margins(x=0)
    return note


def _scatter(ax: Axes, df: pd.DataFrame, xs: pd.Series, ys: list[str], kind: str, max_points: int) -> str | None:
    n, idx, note = len(df), None, None
    if n > max_points:  # a fixed seed: the same frame always gives the same picture
        idx = np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))
        note = f"Showing a random sample of {max_points:,} of {n:,} points."
    x_values = xs.to_numpy() if idx is None else xs.iloc[idx].to_numpy()
    shown = n if idx is None else max_points
    alpha = 0.9 if shown < 500 else 0.5 if shown < 2000 else 0.3
    for col in ys:
        ax.scatter(x_values, _floats(df, col, idx), s=12 if shown < 500 else 5, alpha=alpha, label=col, lw=0)
    ax.grid(True, axis="both")
    return note


def _bars(ax: Axes, df: pd.DataFrame, xs: pd.Series, ys: list[str], kind: str, max_points: int) -> str | None:
    n = len(df)
    shown = min(n, MAX_BARS)
    note = f"Showing the first {shown:,} of {n:,} categories." if n > shown else None
    labels = [format_cell(v, thousands=False) for v in xs.iloc[:shown].tolist()]
    pos = np.arange(shown)
    width = 0.72 / len(ys)
    for i, col in enumerate(ys):
        offset = pos - 0.36 + width * (i + 0.5)
        values = _floats(df, col, np.arange(shown))
        if kind == "barh":
            ax.barh(offset, values, height=width, label=col)
        else:
            ax.bar(offset, values, width=width, label=col)
    if kind == "barh":
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()  # first row on top, as in the table
        ax.grid(False, axis="y")
        ax.grid(True, axis="x")
    else:
        long_labels = shown > 12 or (shown > 4 and max(map(len, labels), default=0) > 10)
        ax.set_xticks(pos, labels, rotation=45 if long_labels else 0, ha="right" if long_labels else "center")
    return note


def _pie(ax: Axes, df: pd.DataFrame, xs: pd.Series, ys: list[str], kind: str, max_points: int) -> str | None:
    values = pd.Series(_floats(df, ys[0], None), index=[format_cell(v) for v in xs.tolist()]).fillna(0)
    if (values < 0).any():
        raise ReportError(f"a pie chart cannot show negative values (column {ys[0]!r})", retriable=False)
    if values.sum() == 0:
        raise ReportError(f"a pie chart needs a positive total (column {ys[0]!r})", retriable=False)
    note = None
    if len(values) > MAX_SLICES:  # keep the largest slices, fold the long tail into "Other"
        top = values.sort_values(ascending=False)
        other = top.iloc[MAX_SLICES - 1 :]
        values = pd.concat([top.iloc[: MAX_SLICES - 1], pd.Series({"Other": other.sum()})])
        note = f"{len(other):,} smallest categories grouped as “Other”."
    wedges, _texts, _pct = ax.pie(
        values.to_numpy(),
        colors=[PALETTE[i % len(PALETTE)] for i in range(len(values))],
        autopct=lambda p: f"{p:.0f}%" if p >= 4 else "",
        pctdistance=0.78,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.45, "edgecolor": "white", "linewidth": 1},
        textprops={"color": "white", "fontsize": 8, "fontweight": "bold"},
    )
    legend = [f"{label} — {format_number(v, decimals=0 if abs(v) >= 1000 else None)}" for label, v in values.items()]
    ax.legend(wedges, legend, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_aspect("equal")
    return note


def _label_axes(ax: Axes, xs: pd.Series, ys: list[str], kind: str, x_label: str | None, y_label: str | None) -> None:
    category_axis, value_axis = (ax.yaxis, ax.xaxis) if kind == "barh" else (ax.xaxis, ax.yaxis)
    category_axis.set_label_text(x_label if x_label is not None else str(xs.name))
    default_value = ys[0] if len(ys) == 1 else ""
    value_axis.set_label_text(y_label if y_label is not None else default_value)
    value_axis.set_major_formatter(_Thousands())
    if kind in {"line", "area", "scatter"}:
        if pd.api.types.is_datetime64_any_dtype(xs.dtype):
            locator = mdates.AutoDateLocator(maxticks=10)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        elif pd.api.types.is_numeric_dtype(xs.dtype) and not pd.api.types.is_bool_dtype(xs.dtype):
            ax.xaxis.set_major_formatter(_Thousands())


class _Thousands(Formatter):
    """Tick labels with separators and just enough decimals for the tick step."""

    def __init__(self) -> None:
        self.decimals = 0

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:,.{self.decimals}f}"

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        steps = np.abs(np.diff(np.asarray(values, dtype=float)))
        steps = steps[steps > 0]
        step = float(steps.min()) if steps.size else 1.0
        self.decimals = min(6, -math.floor(math.log10(step))) if step < 1 else 0
        return [self(v) for v in values]


_PROLOG = re.compile(r"\A.*?(?=<svg)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_GROUP_IDS = re.compile(r'(<g) id="[^"]+_\d+"')  # figure_1, axes_1...: repeat per chart, never referenced


def _inline(svg: str) -> str:
    """Strip the XML prolog, DOCTYPE, RDF metadata and group ids: inline SVG needs none of them, and
    the group ids would repeat on a page with several charts."""
    svg = _METADATA.sub("", _PROLOG.sub("", svg, count=1), count=1)
    return _GROUP_IDS.sub(r"\1", svg).strip()
