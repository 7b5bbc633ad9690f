"""Server-side inline SVG plots for the report (no JavaScript, no matplotlib).

Every piece of text that reaches the SVG goes through :func:`html.escape`, so the returned
strings are safe to insert into a page as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from stats.ratings import Scale
from stats.report import Distribution, ItemPairs
from stats.systems import SystemsReport

__all__ = ["diverging_bars", "diverging_palette", "paired_plot", "system_means_plot"]

_NEG = (178, 24, 43)  # red: low scores
_MID = (224, 224, 224)  # grey: the neutral middle
_POS = (33, 102, 172)  # blue: high scores
_QUESTION = "#2166ac"
_ANSWER = "#e08214"


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def diverging_palette(n: int) -> list[str]:
    """``n`` colours from red (lowest score) through grey to blue (highest)."""
    if n == 1:
        return [_mix(_MID, _MID, 0)]
    out = []
    for i in range(n):
        t = i / (n - 1) * 2.0 - 1.0  # -1 .. 1
        out.append(_mix(_MID, _NEG, -t) if t < 0 else _mix(_MID, _POS, t))
    return out


def _label(scale: Scale, value: int, labels: Mapping[str, str] | None) -> str:
    if labels and str(value) in labels:
        return f"{value} = {labels[str(value)]}"
    return str(value)


def diverging_bars(
    distributions: Sequence[Distribution],
    scale: Scale,
    labels: Mapping[str, str] | None = None,
    width: int = 680,
) -> str:
    """Diverging stacked bars: one row per (target, criterion), centred on the scale's middle.

    Scores below the middle extend left, above it right; an odd scale's middle point is split
    evenly across the centre line, so the bars show at a glance which way ratings lean.
    """
    points = list(range(scale.minimum, scale.maximum + 1))
    k = len(points)
    colours = diverging_palette(k)
    left_w, row_h, top = 190, 30, 24
    plot_w = width - left_w - 20
    centre = left_w + plot_w / 2.0
    half = (k - 1) / 2.0

    def sides(counts: Sequence[int]) -> tuple[float, float]:
        total = sum(counts) or 1
        share = [c / total for c in counts]
        # An exact middle point (odd scale) is split evenly across the centre line.
        left = sum(s for i, s in enumerate(share) if i < half)
        right = sum(s for i, s in enumerate(share) if i > half)
        middle = sum(s for i, s in enumerate(share) if i == half)
        return left + middle / 2, right + middle / 2

    # The axis reaches the widest side, rounded up to a quarter, so the bars use the width.
    widest = max((max(sides(d.counts)) for d in distributions), default=1.0)
    extent = max(0.25, float(np.ceil(widest * 4 - 1e-9)) / 4)
    px = plot_w / 2.0 / extent  # pixels per unit share
    rows = []
    for r, d in enumerate(distributions):
        total = sum(d.counts) or 1
        share = [c / total for c in d.counts]
        y = top + r * row_h
        # Leftward extent: all points below the middle plus half of an exact middle point.
        left = sides(d.counts)[0]
        x = centre - left * px
        name = f"{d.target} · {d.criterion}"
        rows.append(
            f'<text x="{left_w - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="13">{escape(name)}</text>'
        )
        for i, s in enumerate(share):
            w = s * px
            if w <= 0:
                continue
            tip = f"{name}: {_label(scale, points[i], labels)}: {d.counts[i]} ({s:.0%})"
            rows.append(
                f'<rect x="{x:.2f}" y="{y + 4}" width="{w:.2f}" height="{row_h - 8}" '
                f'fill="{colours[i]}"><title>{escape(tip)}</title></rect>'
            )
            if w >= 30:
                ink = "#000" if abs(i - half) < k / 4 else "#fff"
                rows.append(
                    f'<text x="{x + w / 2:.2f}" y="{y + row_h / 2 + 4:.1f}" font-size="11" '
                    f'text-anchor="middle" fill="{ink}">{s:.0%}</text>'
                )
            x += w
    n_rows = len(distributions)
    bottom = top + n_rows * row_h
    axis = [
        f'<line x1="{centre:.1f}" y1="{top - 4}" x2="{centre:.1f}" y2="{bottom + 2}" '
        'stroke="#333" stroke-width="1"/>'
    ]
    ticks = np.arange(0.25, extent + 1e-9, 0.25)
    for frac in np.concatenate([-ticks[::-1], ticks]):
        xx = centre + frac * px
        axis.append(
            f'<text x="{xx:.1f}" y="{top - 8}" font-size="10" text-anchor="middle" '
            f'fill="#555">{abs(frac):.0%}</text>'
        )
    legend = []
    lx = left_w
    ly = bottom + 18
    for i, p in enumerate(points):
        text = _label(scale, p, labels)
        legend.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colours[i]}"/>'
            f'<text x="{lx + 16}" y="{ly}" font-size="11">{escape(text)}</text>'
        )
        lx += 28 + 7 * len(text)
    height = ly + 12
    title = "Score distributions per target and criterion (diverging stacked bars)"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(rows + axis + legend) + "</svg>"
    )


def paired_plot(pairs: ItemPairs, scale: Scale, max_items: int = 120, width: int = 680) -> str:
    """Per-item dumbbell plot: answer and question mean score of each item, joined by a line.

    Items are sorted by the difference (question - answer), largest first; with more than
    ``max_items`` items an evenly spaced subset (by rank of the difference) is drawn and the
    caption says so.
    """
    q = np.asarray(pairs.question, dtype=float)
    a = np.asarray(pairs.answer, dtype=float)
    order = np.argsort(-(q - a), kind="stable")
    shown = order
    if order.size > max_items:
        shown = order[np.linspace(0, order.size - 1, max_items).round().astype(int)]
    label_items = shown.size <= 60
    left_w = 110 if label_items else 20
    row_h = 14 if label_items else 5
    top = 30
    plot_w = width - left_w - 20
    lo, hi = scale.minimum, scale.maximum

    def sx(v: float) -> float:
        return left_w + (v - lo) / (hi - lo) * plot_w

    parts = []
    for p in range(lo, hi + 1):
        x = sx(p)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" '
            f'y2="{top + shown.size * row_h}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{top - 10}" font-size="11" text-anchor="middle">{p}</text>'
        )
    for r, i in enumerate(shown):
        y = top + r * row_h + row_h / 2
        xq, xa = sx(q[i]), sx(a[i])
        colour = _QUESTION if q[i] > a[i] else (_ANSWER if q[i] < a[i] else "#999")
        tip = f"item {pairs.items[i]}: question {q[i]:.2f}, answer {a[i]:.2f}"
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f'<line x1="{xa:.1f}" y1="{y:.1f}" x2="{xq:.1f}" y2="{y:.1f}" stroke="{colour}" '
            'stroke-width="1.5"/>'
            f'<circle cx="{xa:.1f}" cy="{y:.1f}" r="{min(4, row_h / 2.5):.1f}" '
            f'fill="{_ANSWER}"/>'
            f'<circle cx="{xq:.1f}" cy="{y:.1f}" r="{min(4, row_h / 2.5):.1f}" '
            f'fill="{_QUESTION}"/></g>'
        )
        if label_items:
            parts.append(
                f'<text x="{left_w - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                f"{escape(pairs.items[i])}</text>"
            )
    y_leg = top + shown.size * row_h + 20
    caption = f"{pairs.criterion}: mean score per item, sorted by question - answer"
    if shown.size < order.size:
        caption += f" (every {order.size / shown.size:.0f}th of {order.size} items)"
    parts.append(
        f'<circle cx="{left_w + 6}" cy="{y_leg - 4}" r="4" fill="{_QUESTION}"/>'
        f'<text x="{left_w + 14}" y="{y_leg}" font-size="11">question</text>'
        f'<circle cx="{left_w + 86}" cy="{y_leg - 4}" r="4" fill="{_ANSWER}"/>'
        f'<text x="{left_w + 94}" y="{y_leg}" font-size="11">answer</text>'
    )
    height = y_leg + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(caption)}">'
        f"<title>{escape(caption)}</title>" + "".join(parts) + "</svg>"
    )


# Colour-blind-safe qualitative colours (Okabe & Ito 2008), one per system.
_SYSTEM_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")


def system_means_plot(report: SystemsReport, scale: Scale, width: int = 680) -> str:
    """Dot-and-whisker plot: each system's mean item score with its confidence interval, one
    group of rows per (target, criterion), on the scale's full range.

    Systems keep their colour across groups; hovering a row gives the numbers and, for the
    pairs, the matched test. An interval needs two Backgrounds; with one only the dot shows.
    """
    systems = list(report.systems)
    colour = {name: _SYSTEM_COLOURS[i % len(_SYSTEM_COLOURS)] for i, name in enumerate(systems)}
    left_w, row_h, group_gap, top = 200, 18, 26, 34
    plot_w = width - left_w - 70
    lo, hi = scale.minimum, scale.maximum

    def sx(v: float) -> float:
        return left_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    parts: list[str] = []
    y = top
    for c in report.comparisons:
        head = f"{c.target} · {c.criterion}"
        if c.test == "friedman" and c.friedman is not None:
            head += f" (Friedman p {_short_p(c.friedman.p_value)}, W = {c.friedman.kendall_w:.2f})"
        elif c.test == "wilcoxon" and c.pairwise:
            head += f" (Wilcoxon p {_short_p(c.pairwise[0].wilcoxon.p_value)})"
        parts.append(
            f'<text x="8" y="{y + 4}" font-size="12" font-weight="bold">{escape(head)}</text>'
        )
        y += 8
        for summary in c.summaries:
            y += row_h
            ink = colour.get(summary.system, "#333")
            tip = (
                f"{summary.system}, {c.target} {c.criterion}: mean {summary.mean:.2f}"
                + (
                    f", {summary.confidence:.0%} CI {summary.ci_low:.2f} to {summary.ci_high:.2f}"
                    if np.isfinite(summary.ci_low)
                    else ""
                )
                + f", {summary.n_blocks} Backgrounds"
            )
            row = [
                f"<g><title>{escape(tip)}</title>",
                f'<text x="{left_w - 8}" y="{y + 4}" font-size="11" text-anchor="end">'
                f"{escape(summary.system)}</text>",
            ]
            if np.isfinite(summary.ci_low) and np.isfinite(summary.ci_high):
                x1, x2 = sx(summary.ci_low), sx(summary.ci_high)
                row.append(
                    f'<line x1="{x1:.1f}" y1="{y}" x2="{x2:.1f}" y2="{y}" stroke="{ink}" '
                    'stroke-width="2"/>'
                    f'<line x1="{x1:.1f}" y1="{y - 4}" x2="{x1:.1f}" y2="{y + 4}" stroke="{ink}"/>'
                    f'<line x1="{x2:.1f}" y1="{y - 4}" x2="{x2:.1f}" y2="{y + 4}" stroke="{ink}"/>'
                )
            if np.isfinite(summary.mean):
                row.append(
                    f'<circle cx="{sx(summary.mean):.1f}" cy="{y}" r="5" fill="{ink}"/>'
                    f'<text x="{left_w + plot_w + 8}" y="{y + 4}" font-size="11">'
                    f"{summary.mean:.2f}</text>"
                )
            row.append("</g>")
            parts.append("".join(row))
        y += group_gap
    grid = []
    for p in range(lo, hi + 1):
        x = sx(p)
        grid.append(
            f'<line x1="{x:.1f}" y1="{top - 12}" x2="{x:.1f}" y2="{y - group_gap + 6}" '
            f'stroke="#ddd"/><text x="{x:.1f}" y="{top - 16}" font-size="11" '
            f'text-anchor="middle">{p}</text>'
        )
    caption = (
        "Mean item score per system with its "
        f"{report.settings.get('confidence', 0.95):.0%} confidence interval, "
        "Backgrounds shared between systems"
    )
    key = (
        f"dot: mean item score over a system's Backgrounds; bar: "
        f"{report.settings.get('confidence', 0.95):.0%} t interval; "
        "p: Friedman (3+ systems) or Wilcoxon (2) on matched Backgrounds"
    )
    parts.append(f'<text x="8" y="{y - 4}" font-size="10" fill="#555">{escape(key)}</text>')
    height = y + 4
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(caption)}">'
        f"<title>{escape(caption)}</title>" + "".join(grid + parts) + "</svg>"
    )


def _short_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.0001" if p < 0.0001 else f"= {p:.3g}"
