"""Drawing the metrics' results: curves, localization, the randomization cascade, map health.

Every function draws on the ``ax`` (or ``fig``) it is given and returns it; only ``ax=None`` /
``fig=None`` creates a figure through pyplot (the notebook convenience). No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.text import fit

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from vizkit.results.metrics import (
        HealthReport,
        HealthResult,
        PerturbationCurve,
        PointingGameResult,
        RandomizationResult,
        RelevanceMassResult,
    )

#: Colour of warnings drawn on plots (flagged sanity checks, unhealthy maps).
WARNING_COLOR = "#D55E00"


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6.4, 4.8), layout="constrained").add_subplot()


def _legend(ax: Any) -> Any:
    """The legend beside the axes (never over the curves), entries wrapped to 1.9 inches."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(
        handles,
        [fit(label, 1.9, 8) for label in labels],
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
        frameon=False,
    )


def _figure(fig: Any, width: float, height: float) -> Any:
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained")


def _band(
    ax: Any,
    x: np.ndarray,
    values: np.ndarray,
    label: str,
    limits: tuple[float, float] | None = None,
    **style: Any,
) -> Any:
    """Mean line and a one-standard-deviation band, the band clipped to ``limits`` (a
    probability cannot leave [0, 1], so neither may its band)."""
    mean = np.nanmean(values, axis=0)
    (line,) = ax.plot(x, mean, label=label, **style)
    if len(values) > 1:
        std = np.nanstd(values, axis=0)
        low, high = mean - std, mean + std
        if limits is not None:
            low, high = np.clip(low, *limits), np.clip(high, *limits)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)
    return line


def plot_perturbation_curve(
    curve: PerturbationCurve,
    ax: Axes | None = None,
    *,
    per_image: bool = False,
    label: str | None = None,
) -> Axes:
    """Mean deletion/insertion curve (band: one standard deviation) and its random baseline."""
    ax = _axes(ax)
    name = label or curve.method or "map order"
    x = np.asarray(curve.fractions)
    if per_image:
        for row in curve.scores:
            ax.plot(x, row, color="0.7", lw=0.6, alpha=0.6)
    limits = (0.0, 1.0) if curve.score == "probability" else None
    line = _band(ax, x, np.asarray(curve.scores), f"{name} (AUC {curve.mean_auc:.3f})", limits)
    if curve.baseline is not None:
        ax.plot(
            x,
            np.nanmean(curve.baseline, axis=0),
            ls="--",
            color=line.get_color(),
            alpha=0.7,
            label=f"random order (AUC {curve.mean_baseline_auc:.3f})",
        )
    _label_curve_axes(ax, curve)
    _legend(ax)
    return ax


def _label_curve_axes(ax: Any, curve: Any) -> None:
    verb = "removed" if curve.kind == "deletion" else "inserted"
    better = "lower" if curve.kind == "deletion" else "higher"
    ax.set_xlabel(f"share of pixels {verb}")
    ax.set_ylabel(f"target {curve.score}")
    ax.set_xlim(0, 1)
    if curve.score == "probability":
        ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{curve.kind.capitalize()} ({better} area is better)")


def plot_curves(
    curves: Mapping[str, PerturbationCurve], ax: Axes | None = None, *, baseline: bool = True
) -> Axes:
    """Several methods' mean deletion (or insertion) curves on one axes, for comparison.

    ``curves`` maps a label to a :class:`~vizkit.results.metrics.PerturbationCurve`; the random
    baseline (dashed) is drawn once, averaged over the curves that have one.
    """
    ax = _axes(ax)
    if not curves:
        raise InputError("no curves to plot: run deletion or insertion first")
    first = next(iter(curves.values()))
    kinds = {c.kind for c in curves.values()}
    if len(kinds) > 1:
        raise InputError("cannot mix deletion and insertion curves on one axes")
    for name, curve in curves.items():
        ax.plot(
            curve.fractions,
            np.nanmean(curve.scores, axis=0),
            label=f"{name} (AUC {curve.mean_auc:.3f})",
        )
    baselines = [c.baseline for c in curves.values() if c.baseline is not None]
    if baseline and baselines:
        mean = np.nanmean(np.concatenate(baselines), axis=0)
        auc = float(
            np.mean([c.mean_baseline_auc for c in curves.values() if c.baseline is not None])
        )
        ax.plot(first.fractions, mean, ls="--", color="0.4", label=f"random order (AUC {auc:.3f})")
    _label_curve_axes(ax, first)
    _legend(ax)
    return ax


def plot_localization(
    result: PointingGameResult | RelevanceMassResult, ax: Axes | None = None
) -> Axes:
    """Pointing game (hit/miss per image) or relevance mass per image, against chance."""
    from vizkit.results.metrics import PointingGameResult

    ax = _axes(ax)
    if isinstance(result, PointingGameResult):
        values = np.where(result.valid, result.hits.astype(float), np.nan)
        colors = ["#009E73" if h else WARNING_COLOR for h in result.hits]
        ax.bar(np.arange(len(values)), np.nan_to_num(values) + 0.02, color=colors)
        ax.axhline(result.chance, ls="--", color="0.4", label=f"chance {result.chance:.2f}")
        ax.set_ylabel("hit")
        ax.set_title(f"Pointing game: accuracy {result.accuracy:.2f}")
    else:
        ax.bar(np.arange(len(result.mass)), np.nan_to_num(result.mass), color="#0072B2")
        ax.plot(
            np.arange(len(result.mass)),
            result.area_share,
            "_",
            ms=14,
            color="0.2",
            label="object area share",
        )
        ax.axhline(result.mean, ls="--", color="#0072B2", label=f"mean {result.mean:.2f}")
        ax.set_ylabel("positive attribution inside the object")
        ax.set_title(f"Relevance mass: {result.mean:.2f} (chance {result.chance:.2f})")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("image")
    _legend(ax)
    return ax


def plot_randomization(result: RandomizationResult, ax: Axes | None = None) -> Axes:
    """Similarity of randomized maps to the originals along the cascade (Adebayo et al., Fig. 2).

    The x axis starts at the original model (similarity 1) and goes top-down through the
    randomized layers; dotted lines mark the threshold (+-) and the step where the flag is
    decided. A flagged method gets a warning in the title.
    """
    ax = _axes(ax)
    labels = ["original", *result.steps]
    x = np.arange(len(labels))
    ones = np.ones((result.spearman.shape[1] if result.spearman.ndim == 2 else 1, 1))
    for values, name, marker in (
        (result.spearman, "Spearman", "o"),
        (result.spearman_abs, "Spearman |map|", "s"),
        (result.ssim, "SSIM", "^"),
    ):
        series = np.concatenate([ones, np.asarray(values).T], axis=1)
        _band(ax, x, series, name, (-1.0, 1.0), marker=marker, ms=4)
    ax.axhline(result.threshold, ls=":", color=WARNING_COLOR, lw=1)
    ax.axhline(-result.threshold, ls=":", color=WARNING_COLOR, lw=1)
    ax.axvline(result.check_index + 1, ls=":", color="0.5", lw=1)  # where the flag is decided
    ax.set_xticks(x)
    # layer paths: the last name, wrapped, so the rotated labels leave room for the plot
    short = [fit(str(label).rpartition("/")[2], 1.1, 8) for label in labels]
    ax.set_xticklabels(short, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_ylim(min(-0.6, float(np.nanmin(result.spearman, initial=0.0)) - 0.05), 1.05)
    ax.set_ylabel("similarity to\noriginal maps")
    what = "cascading randomization" if result.kind == "cascading" else "label randomization"
    if result.flagged:
        ax.set_title(f"{result.method}: FAILS the sanity check", color=WARNING_COLOR)
        ax.text(
            result.check_index + 1,
            -result.threshold,
            " maps barely change",
            color=WARNING_COLOR,
            va="bottom",
            fontsize="small",
        )
    else:
        ax.set_title(f"{result.method}: {what}")
    _legend(ax)
    return ax


def plot_randomization_maps(
    result: RandomizationResult, fig: Figure | None = None, *, image: int = 0, cmap: str = "viridis"
) -> Figure:
    """One image's original map and its randomized versions along the cascade, in a row.

    Each map is shown as ``|map|`` scaled to its own maximum (display-time normalization).
    """
    if not 0 <= image < result.original_maps.shape[0]:
        raise InputError(f"image {image} is out of range: {result.original_maps.shape[0]} maps")
    maps = [result.original_maps[image], *[m[image] for m in result.randomized_maps]]
    titles = ["original", *result.steps]
    fig = _figure(fig, 1.6 * len(maps), 2.3)
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for ax, values, title in zip(axes, maps, titles):
        shown = np.abs(np.asarray(values, np.float64))
        top = shown.max()
        ax.imshow(shown / top if top > 0 else shown, cmap=cmap, vmin=0, vmax=1)
        ax.set_title(fit(str(title).rpartition("/")[2], 1.45, 8), fontsize=8)
        ax.set_axis_off()
    if result.flagged:
        fig.suptitle(
            f"{result.method}: fails the sanity check (maps barely change)",
            color=WARNING_COLOR,
            fontsize="small",
        )
    return fig


def plot_health(result: HealthResult, ax: Axes | None = None) -> Axes:
    """Maps per health status; failures in the warning colour."""
    ax = _axes(ax)
    counts = result.counts()
    names = list(counts)
    colors = ["#009E73" if s == "ok" else WARNING_COLOR for s in names]
    ax.bar(names, [counts[s] for s in names], color=colors)
    ax.set_ylabel("maps")
    title = f"Map health: {len(result.failures)} of {len(result)} maps fail"
    ax.set_title(f"{result.method}: {title}" if result.method else title)
    return ax


def health_badge(report: HealthReport) -> str:
    """Text for a warning badge on a map (``"⚠ blank"``), or ``""`` for a healthy map."""
    return f"\u26a0 {report.badge}" if not report.ok else ""


def draw_badge(ax: Axes, report: HealthReport) -> Text | None:
    """Write a warning badge in the corner of an image axes when the map fails a health check."""
    if report.ok:
        return None
    return ax.text(
        0.02,
        0.98,
        health_badge(report),
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize="small",
        color="white",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": WARNING_COLOR, "edgecolor": "none"},
    )
