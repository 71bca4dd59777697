"""Charts: every kind draws, text stays text, output is deterministic and huge frames stay small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import Report, ReportError, charts


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": pd.date_range("2026-01-01", periods=60, freq="D"),
            "region": [f"Region {i}" for i in range(60)],
            "revenue": np.linspace(10_000, 50_000, 60),
            "cost": np.linspace(5_000, 20_000, 60),
        }
    )


@pytest.mark.parametrize("kind", charts.CHART_KINDS)
def test_every_kind_renders_inline_svg(frame: pd.DataFrame, kind: charts.ChartKind) -> None:
    data = frame.head(6) if kind in {"pie", "bar", "barh"} else frame
    x = "region" if kind in {"pie", "bar", "barh"} else "day"

    chart = charts.render(data, x=x, y="revenue", kind=kind, title=f"A {kind} chart")

    assert chart.svg.startswith("<svg") and chart.svg.endswith("</svg>")
    assert "<?xml" not in chart.svg and "<!DOCTYPE" not in chart.svg and "<metadata>" not in chart.svg
    assert f"A {kind} chart" in chart.svg  # svg.fonttype = none keeps text as text
    assert chart.note is None


def test_axes_get_labels_thousands_separators_and_dates(frame: pd.DataFrame) -> None:
    svg = charts.render(frame, x="day", y="revenue").svg

    assert ">revenue<" in svg and ">day<" in svg
    assert "20,000" in svg
    assert ">Feb<" in svg  # concise date ticks


def test_several_y_columns_get_a_legend(frame: pd.DataFrame) -> None:
    svg = charts.render(frame, x="day", y=["revenue", "cost"], kind="area").svg

    assert ">revenue<" in svg and ">cost<" in svg


def test_same_data_gives_the_same_bytes_and_salts_separate_ids(frame: pd.DataFrame) -> None:
    a = charts.render(frame, x="day", y="revenue", salt="a").svg
    b = charts.render(frame, x="day", y="revenue", salt="a").svg
    c = charts.render(frame, x="day", y="revenue", salt="c").svg

    assert a == b
    assert a != c  # clip-path ids differ, so two charts can share a page


def test_charts_do_not_leak_pyplot_figures(frame: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for _ in range(3):
        charts.render(frame, x="day", y="revenue")
    assert plt.get_fignums() == before


def test_a_200k_row_line_chart_is_downsampled_and_stays_small() -> None:
    n = 200_000
    values = np.random.default_rng(3).normal(100, 5, n)
    values[123_457] = 10_000  # a spike that must survive
    big = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"), "v": values})

    chart = charts.render(big, x="ts", y="v")

    assert chart.note is not None
    assert chart.note.startswith(f"Downsampled from {n:,} to ")
    assert len(chart.svg) < 250_000
    assert "10,000" in chart.svg  # the y axis reaches the spike


def test_downsampling_keeps_the_extremes_of_every_bucket() -> None:
    values = np.zeros(100_000)
    values[[10, 50_000, 99_998]] = [5.0, -7.0, 3.0]
    values[20] = np.nan

    keep = charts._minmax_indices([values], max_points=1000)
    two = charts._minmax_indices([values, -values], max_points=1000)

    assert len(keep) <= 1000
    assert {0, 10, 50_000, 99_998, 99_999} <= set(keep.tolist())
    assert len(two) <= 1000 and {10, 50_000, 99_998} <= set(two.tolist())


def test_unsorted_x_is_sorted_for_lines(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1, random_state=1)

    assert charts.render(shuffled, x="day", y="revenue").svg == charts.render(frame, x="day", y="revenue").svg


def test_huge_scatter_plots_keep_a_fixed_sample() -> None:
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"a": rng.random(50_000), "b": rng.random(50_000)})

    first = charts.render(big, x="a", y="b", kind="scatter")

    assert first.note == f"Showing a random sample of {charts.MAX_SCATTER:,} of 50,000 points."
    assert first.svg == charts.render(big, x="a", y="b", kind="scatter").svg


def test_many_bars_and_slices_are_capped_with_a_note(frame: pd.DataFrame) -> None:
    many = pd.concat([frame, frame.assign(region=frame["region"] + "b")], ignore_index=True)

    bars = charts.render(many, x="region", y="revenue", kind="bar")
    pie = charts.render(frame.head(12), x="region", y="revenue", kind="pie")

    assert bars.note == f"Showing the first {charts.MAX_BARS} of 120 categories."
    assert pie.note == "5 smallest categories grouped as “Other”."
    assert ">Other" in pie.svg


def test_the_index_is_used_when_x_is_not_given(frame: pd.DataFrame) -> None:
    svg = charts.render(frame.set_index("day"), x=None, y="revenue").svg

    assert ">day<" in svg


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": "day", "y": "revenue", "kind": "donut"}, "unknown chart kind 'donut'"),
        ({"x": "nope", "y": "revenue"}, "x column 'nope' not in frame"),
        ({"x": "day", "y": ["revenue", "nope"]}, "y column 'nope' not in frame"),
        ({"x": "day", "y": "region"}, "y column 'region' is not numeric"),
        ({"x": "region", "y": ["revenue", "cost"], "kind": "pie"}, "a pie chart takes exactly one y column"),
    ],
)
def test_bad_declarations_fail_at_the_authors_line(
    frame: pd.DataFrame, kwargs: dict[str, object], message: str
) -> None:
    rep = Report("Charts")

    with pytest.raises(ReportError, match=f"^Revenue: {message}"):
        rep.chart("Revenue", frame, **kwargs)  # type: ignore[arg-type]


def test_pies_refuse_negative_values() -> None:
    with pytest.raises(ReportError, match="negative"):
        charts.render(pd.DataFrame({"k": ["a", "b"], "v": [1, -1]}), x="k", y="v", kind="pie")


def test_charts_render_the_same_from_several_threads(frame: pd.DataFrame) -> None:
    from concurrent.futures import ThreadPoolExecutor

    salts = [f"s{i}" for i in range(8)]
    serial = [charts.render(frame, x="day", y="revenue", salt=s).svg for s in salts]

    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda s: charts.render(frame, x="day", y="revenue", salt=s).svg, salts))

    assert threaded == serial
