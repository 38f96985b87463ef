"""Result types of :mod:`vizkit.metrics`: how far to trust an attribution map.

Each is a frozen dataclass of numpy arrays plus metadata (see :class:`~vizkit.results.base.Result`)
with ``to_frame()`` (a pandas DataFrame, one row per image or per step) and ``plot(ax=None)``
(drawn by :mod:`vizkit.plotting.metrics`). No TensorFlow here.

(Over 500 lines: seven small result types, one per metric, much of it attribute documentation.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.results.base import Result

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def trapezoid_auc(values: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Area under ``values`` (``(..., S+1)``) over ``fractions`` (``(S+1,)``, from 0 to 1).

    With evenly spaced fractions this is RISE's ``(sum - first/2 - last/2) / S``.
    """
    values = np.asarray(values, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    widths = np.diff(fractions)
    return ((values[..., 1:] + values[..., :-1]) * 0.5 * widths).sum(axis=-1)


def _names(names: tuple[str, ...], n: int) -> list[str]:
    return list(names) if len(names) == n else [f"image {i}" for i in range(n)]


# --------------------------------------------------------------------------------------------
# Faithfulness: deletion and insertion
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PerturbationCurve(Result):
    """A deletion or insertion curve (Petsiuk et al., 2018, RISE) per image.

    Attributes
    ----------
    kind : {"deletion", "insertion"}
        Deletion removes the most-attributed pixels first (lower area = more faithful map);
        insertion adds them back first to a blank canvas (higher area = more faithful).
    fractions : ndarray, shape (S+1,)
        Share of pixels removed (deletion) or inserted (insertion) at each step, 0 to 1.
    scores : ndarray, shape (N, S+1)
        The target's score (probability by default) along the map's pixel order.
    baseline : ndarray, shape (N, S+1), optional
        The same curve along a random pixel order: a map should beat it.
    targets : ndarray of int, shape (N,)
    method : str, optional
        Name of the attribution method that produced the maps.
    fill : str
        What removed pixels became (``"zero"``, ``"blur"``, ``"mean"``, ``"value"`` or
        ``"array"``).
    score : {"probability", "logit"}
    names : tuple of str
    forward_passes : int
        Batched model calls made (the performance contract: about ``steps + 1`` images per image,
        in batches, not one call per perturbed image).
    images_evaluated : int
        Perturbed images run through the model.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    baseline: np.ndarray | None = None
    targets: np.ndarray | None = None
    method: str | None = None
    fill: str = "zero"
    score: str = "probability"
    names: tuple[str, ...] = ()
    forward_passes: int = 0
    images_evaluated: int = 0

    @property
    def steps(self) -> int:
        return int(len(self.fractions) - 1)

    @property
    def auc(self) -> np.ndarray:
        """Area under each image's curve, shape ``(N,)``."""
        return trapezoid_auc(self.scores, self.fractions)

    @property
    def baseline_auc(self) -> np.ndarray | None:
        """Area under each image's random-order curve, shape ``(N,)``, or None."""
        return None if self.baseline is None else trapezoid_auc(self.baseline, self.fractions)

    @property
    def mean_auc(self) -> float:
        return float(np.mean(self.auc))

    @property
    def mean_baseline_auc(self) -> float:
        auc = self.baseline_auc
        return float("nan") if auc is None else float(np.mean(auc))

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "insertion"

    @property
    def beats_baseline(self) -> bool | None:
        """Whether the mean area is better than the random order's (None without a baseline)."""
        if self.baseline is None:
            return None
        if self.higher_is_better:
            return self.mean_auc > self.mean_baseline_auc
        return self.mean_auc < self.mean_baseline_auc

    def to_frame(self) -> pd.DataFrame:
        """One row per image: ``image, target, method, auc, random_auc``."""
        import pandas as pd

        n = len(self.scores)
        baseline = self.baseline_auc
        return pd.DataFrame(
            {
                "image": _names(self.names, n),
                "target": self.targets if self.targets is not None else np.full(n, -1),
                "method": [self.method] * n,
                "auc": self.auc,
                "random_auc": baseline if baseline is not None else np.full(n, np.nan),
            }
        )

    def curves_frame(self) -> pd.DataFrame:
        """Long form: one row per image and step (``image, fraction, score, order``)."""
        import pandas as pd

        names = _names(self.names, len(self.scores))
        frames = []
        for order, values in (("map", self.scores), ("random", self.baseline)):
            if values is None:
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "image": np.repeat(names, len(self.fractions)),
                        "fraction": np.tile(self.fractions, len(values)),
                        "score": np.asarray(values).reshape(-1),
                        "order": order,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def plot(
        self, ax: Axes | None = None, *, per_image: bool = False, label: str | None = None
    ) -> Axes:
        """Mean curve (band: one standard deviation) and the random-order baseline."""
        from vizkit.plotting.metrics import plot_perturbation_curve

        return plot_perturbation_curve(self, ax=ax, per_image=per_image, label=label)


# --------------------------------------------------------------------------------------------
# Localization
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PointingGameResult(Result):
    """Pointing game (Zhang et al., 2018): is the map's maximum inside the object?

    Attributes
    ----------
    hits : ndarray of bool, shape (N,)
        True when a maximal pixel lies in the (tolerance-dilated) mask.
    points : ndarray of int, shape (N, 2)
        ``(row, col)`` of the first maximal pixel of each map.
    area_share : ndarray, shape (N,)
        Share of the image the mask covers: the hit rate of a uniformly random point.
    valid : ndarray of bool, shape (N,)
        False where the mask is empty or the map has no finite maximum (scored as a miss).
    tolerance : int
        Pixels by which masks were grown (Zhang et al. use 15 on 224-pixel images).
    """

    hits: np.ndarray
    points: np.ndarray
    area_share: np.ndarray
    valid: np.ndarray
    tolerance: int = 0
    method: str | None = None
    names: tuple[str, ...] = ()

    @property
    def accuracy(self) -> float:
        """Share of valid images whose maximum hits the object."""
        valid = np.asarray(self.valid, dtype=bool)
        return float(np.mean(self.hits[valid])) if valid.any() else float("nan")

    @property
    def chance(self) -> float:
        """Accuracy a uniformly random point would get on average."""
        valid = np.asarray(self.valid, dtype=bool)
        return float(np.mean(self.area_share[valid])) if valid.any() else float("nan")

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        n = len(self.hits)
        return pd.DataFrame(
            {
                "image": _names(self.names, n),
                "method": [self.method] * n,
                "hit": self.hits,
                "row": self.points[:, 0],
                "col": self.points[:, 1],
                "area_share": self.area_share,
                "valid": self.valid,
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Hits and misses per image against the chance level."""
        from vizkit.plotting.metrics import plot_localization

        return plot_localization(self, ax=ax)


@dataclasses.dataclass(frozen=True)
class RelevanceMassResult(Result):
    """Relevance mass accuracy (Arras et al., 2022): share of positive attribution in the object.

    Attributes
    ----------
    mass : ndarray, shape (N,)
        ``sum(max(map, 0) inside) / sum(max(map, 0))``; NaN where the map has no positive
        attribution or the mask is empty.
    area_share : ndarray, shape (N,)
        Share of the image the mask covers: the mass of a uniform map.
    """

    mass: np.ndarray
    area_share: np.ndarray
    method: str | None = None
    names: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        """Mean mass over images where it is defined."""
        finite = np.isfinite(self.mass)
        return float(np.mean(self.mass[finite])) if finite.any() else float("nan")

    @property
    def chance(self) -> float:
        """Mean object area share: what a uniform map scores."""
        finite = np.isfinite(self.mass)
        return float(np.mean(self.area_share[finite])) if finite.any() else float("nan")

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        n = len(self.mass)
        return pd.DataFrame(
            {
                "image": _names(self.names, n),
                "method": [self.method] * n,
                "relevance_mass": self.mass,
                "area_share": self.area_share,
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Mass per image against the object's area share."""
        from vizkit.plotting.metrics import plot_localization

        return plot_localization(self, ax=ax)


# --------------------------------------------------------------------------------------------
# Sanity checks
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RandomizationResult(Result):
    """Sanity check (Adebayo et al., 2018): do the maps change when the model is randomized?

    Attributes
    ----------
    kind : {"cascading", "data"}
        ``"cascading"``: layers' weights re-initialized cumulatively from the top layer down;
        ``"data"``: the architecture retrained on shuffled labels.
    steps : tuple of str
        What was randomized at each step: layer paths top-down (cumulative), or
        ``("random labels",)``.
    spearman : ndarray, shape (S, N)
        Spearman rank correlation between each original map and its randomized counterpart.
    spearman_abs : ndarray, shape (S, N)
        The same on absolute values (insensitive to sign flips).
    ssim : ndarray, shape (S, N)
        Structural similarity of ``|map|`` scaled to [0, 1] (7x7 uniform window).
    original_maps : ndarray, shape (N, H, W)
    randomized_maps : ndarray, shape (S, N, H, W)
    targets : ndarray of int, shape (N,)
    method : str
    threshold : float
        A method is flagged when, at the middle of the cascade (:attr:`check_index`), the mean
        Spearman correlation is still at or above this in absolute value (see :attr:`flagged`).
    train_accuracy : float, optional
        For ``"data"``: how well the random-label model fit its shuffled labels.
    """

    kind: str
    steps: tuple[str, ...]
    spearman: np.ndarray
    spearman_abs: np.ndarray
    ssim: np.ndarray
    original_maps: np.ndarray
    randomized_maps: np.ndarray
    targets: np.ndarray
    method: str = ""
    threshold: float = 0.5
    train_accuracy: float | None = None
    names: tuple[str, ...] = ()

    @property
    def mean_spearman(self) -> np.ndarray:
        """Mean rank correlation per step, shape ``(S,)``."""
        return np.nanmean(self.spearman, axis=1) if self.spearman.size else np.zeros(0)

    @property
    def mean_spearman_abs(self) -> np.ndarray:
        return np.nanmean(self.spearman_abs, axis=1) if self.spearman.size else np.zeros(0)

    @property
    def mean_ssim(self) -> np.ndarray:
        return np.nanmean(self.ssim, axis=1) if self.ssim.size else np.zeros(0)

    @property
    def check_index(self) -> int:
        """The step the flag is decided at: the middle of the cascade (step ``ceil(S / 2)``).

        By then the top half of the weighted layers, the part that turns features into the
        decision, is random; a map that still looks the same does not depend on it.
        """
        return max(-(-len(self.steps) // 2) - 1, 0)

    @property
    def check_step(self) -> str:
        return self.steps[self.check_index] if self.steps else ""

    @property
    def check_spearman(self) -> float:
        """Mean Spearman correlation (signed) at :attr:`check_index`."""
        values = self.mean_spearman
        return float(values[self.check_index]) if len(values) else float("nan")

    @property
    def check_ssim(self) -> float:
        """Mean SSIM at :attr:`check_index`."""
        values = self.mean_ssim
        return float(values[self.check_index]) if len(values) else float("nan")

    @property
    def final_spearman(self) -> float:
        """Mean Spearman correlation (signed) with the fully randomized model's maps."""
        values = self.mean_spearman
        return float(values[-1]) if len(values) else float("nan")

    @property
    def flagged(self) -> bool:
        """True when the maps barely change under randomization: the method fails the check.

        Decided by ``|check_spearman| >= threshold``: the signed rank correlation in absolute
        value, so maps that merely flip sign also count as unchanged, while the block of exact
        zeros that input-multiplied maps share on a blank background (which inflates the
        correlation of ``|map|``, also reported) does not.
        """
        rho = self.check_spearman
        return bool(np.isfinite(rho) and abs(rho) >= self.threshold)

    @property
    def warning(self) -> str | None:
        """A one-line explanation when :attr:`flagged`, else None."""
        if not self.flagged:
            return None
        if self.kind == "cascading":
            what = (
                f"with the top {self.check_index + 1} of {len(self.steps)} weighted layers "
                f"randomized (down to {self.check_step})"
            )
        else:
            what = "from a model trained on shuffled labels"
        return (
            f"{self.method or 'this method'} fails the sanity check: its maps {what} still "
            f"rank-correlate {self.check_spearman:.2f} with the original ones (|rho| >= "
            f"{self.threshold:.2f}), so they show the input more than what the model learned"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per step: ``step, randomized, spearman, spearman_abs, ssim`` (means)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "step": np.arange(1, len(self.steps) + 1),
                "randomized": list(self.steps),
                "method": [self.method] * len(self.steps),
                "spearman": self.mean_spearman,
                "spearman_abs": self.mean_spearman_abs,
                "ssim": self.mean_ssim,
                "spearman_std": np.nanstd(self.spearman, axis=1) if self.spearman.size else [],
                "checked": np.arange(len(self.steps)) == self.check_index,
                "flagged": [self.flagged] * len(self.steps),
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Similarity to the original maps along the cascade (flagged methods say so)."""
        from vizkit.plotting.metrics import plot_randomization

        return plot_randomization(self, ax=ax)

    def plot_maps(self, fig: Figure | None = None, *, image: int = 0) -> Figure:
        """The original map and each step's randomized map for one image, side by side."""
        from vizkit.plotting.metrics import plot_randomization_maps

        return plot_randomization_maps(self, fig=fig, image=image)


# --------------------------------------------------------------------------------------------
# Map health
# --------------------------------------------------------------------------------------------
HEALTH_STATUSES = ("ok", "nan", "blank", "constant", "saturated")


@dataclasses.dataclass(frozen=True)
class HealthReport(Result):
    """Whether one map is usable, and if not, why.

    Attributes
    ----------
    index : int
        Position of the map in its batch.
    status : {"ok", "nan", "blank", "constant", "saturated"}
    reason : str
        Empty when ok; otherwise what is wrong and the likely cause and fix.
    max_abs : float
        Largest absolute finite value of the map.
    saturated_share : float
        Share of pixels within 1% of the map's range from its maximum.
    """

    index: int
    status: str
    reason: str = ""
    max_abs: float = 0.0
    saturated_share: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def badge(self) -> str:
        """A short label for a warning badge (empty when the map is healthy)."""
        labels = {
            "nan": "NaN",
            "blank": "blank",
            "constant": "constant",
            "saturated": "saturated",
        }
        return labels.get(self.status, "")

    def __bool__(self) -> bool:
        return self.ok


@dataclasses.dataclass(frozen=True)
class HealthResult(Result):
    """Health of a batch of maps: a sequence of :class:`HealthReport`, one per map."""

    reports: tuple[HealthReport, ...]
    method: str | None = None
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.reports)

    def __iter__(self) -> Iterator[HealthReport]:
        return iter(self.reports)

    def __getitem__(self, index: int) -> HealthReport:
        return self.reports[index]

    @property
    def ok(self) -> bool:
        """True when every map is healthy."""
        return all(r.ok for r in self.reports)

    @property
    def failures(self) -> tuple[HealthReport, ...]:
        return tuple(r for r in self.reports if not r.ok)

    @property
    def badges(self) -> list[str]:
        """One badge label per map (empty string when healthy)."""
        return [r.badge for r in self.reports]

    def summary(self) -> list[str]:
        """One line per failing status: how many maps, which, and the first map's reason."""
        lines = []
        for status in HEALTH_STATUSES[1:]:
            failing = [r for r in self.reports if r.status == status]
            if not failing:
                continue
            shown = ", ".join(str(r.index) for r in failing[:8])
            more = ", ..." if len(failing) > 8 else ""
            lines.append(
                f"{len(failing)} of {len(self.reports)} maps {status} (maps {shown}{more}): "
                f"{failing[0].reason}"
            )
        return lines

    def counts(self) -> dict[str, int]:
        """Maps per status, every status listed."""
        return {s: sum(r.status == s for r in self.reports) for s in HEALTH_STATUSES}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        n = len(self.reports)
        return pd.DataFrame(
            {
                "image": _names(self.names, n),
                "method": [self.method] * n,
                "status": [r.status for r in self.reports],
                "ok": [r.ok for r in self.reports],
                "reason": [r.reason for r in self.reports],
                "max_abs": [r.max_abs for r in self.reports],
                "saturated_share": [r.saturated_share for r in self.reports],
            }
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Bar chart of maps per status."""
        from vizkit.plotting.metrics import plot_health

        return plot_health(self, ax=ax)


# --------------------------------------------------------------------------------------------
# Methods x metrics
# --------------------------------------------------------------------------------------------
#: Table columns, what they mean, and which direction is better (+1 higher, -1 lower, 0 neither).
COLUMNS: dict[str, tuple[str, int]] = {
    "deletion_auc": ("area under the deletion curve", -1),
    "deletion_random_auc": ("deletion area along a random pixel order", 0),
    "insertion_auc": ("area under the insertion curve", +1),
    "insertion_random_auc": ("insertion area along a random pixel order", 0),
    "pointing_game": ("share of maps whose maximum is inside the object", +1),
    "pointing_game_chance": ("pointing-game accuracy of a random point", 0),
    "relevance_mass": ("share of positive attribution inside the object", +1),
    "relevance_mass_chance": ("object area share: the mass of a uniform map", 0),
    "randomization_spearman": (
        "rank correlation with the maps once the top half of the layers is randomized",
        -1,
    ),
    "randomization_ssim": ("SSIM with the maps once the top half of the layers is randomized", -1),
    "randomization_flagged": ("maps barely change under model randomization", 0),
    "data_randomization_spearman": ("rank correlation with maps of a random-label model", -1),
    "data_randomization_flagged": ("maps barely change under label randomization", 0),
    "unhealthy_maps": ("maps that are blank, constant, NaN or saturated", -1),
}


@dataclasses.dataclass(frozen=True)
class EvaluationResult(Result):
    """Every metric's result for every method: the methods x metrics table and its parts.

    Attributes
    ----------
    methods : tuple of str
    metrics : tuple of str
    results : mapping
        ``results[method][metric]`` is that metric's result object
        (:class:`PerturbationCurve`, :class:`PointingGameResult`, ...).
    seconds : mapping
        ``seconds[method]``: time spent computing the method's maps.
    input_spec : InputSpec, optional
        The input scale of the images (None for arrays given as model-ready).
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    results: Mapping[str, Mapping[str, Result]]
    seconds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    input_spec: Any = None

    def __getitem__(self, method: str) -> Mapping[str, Result]:
        return self.results[method]

    def get(self, method: str, metric: str) -> Result | None:
        return self.results.get(method, {}).get(metric)

    def to_frame(self) -> pd.DataFrame:
        """Rows: methods; columns: the metrics' summary numbers (see :data:`COLUMNS`)."""
        import pandas as pd

        rows = {}
        for method in self.methods:
            row: dict[str, Any] = {}
            for metric, result in self.results.get(method, {}).items():
                row.update(summarize(metric, result))
            rows[method] = row
        frame = pd.DataFrame.from_dict(rows, orient="index")
        order = [c for c in COLUMNS if c in frame.columns]
        frame = frame[order + [c for c in frame.columns if c not in order]]
        frame.index.name = "method"
        return frame

    @property
    def warnings(self) -> dict[str, list[str]]:
        """Per method, one-line warnings: unhealthy maps and failed sanity checks."""
        out: dict[str, list[str]] = {}
        for method in self.methods:
            notes: list[str] = []
            for result in self.results.get(method, {}).values():
                if isinstance(result, RandomizationResult) and result.flagged:
                    notes.append(str(result.warning))
                if isinstance(result, HealthResult):
                    notes.extend(result.summary())
            out[method] = notes
        return out

    def curves(self, kind: str = "deletion") -> dict[str, PerturbationCurve]:
        """``{method: curve}`` for ``"deletion"`` or ``"insertion"``."""
        found = {}
        for method in self.methods:
            result = self.results.get(method, {}).get(kind)
            if isinstance(result, PerturbationCurve):
                found[method] = result
        return found

    def plot(self, ax: Axes | None = None, *, kind: str = "deletion") -> Axes:
        """Deletion (or insertion) curves of every method on one axes."""
        from vizkit.plotting.metrics import plot_curves

        return plot_curves(self.curves(kind), ax=ax)


def summarize(metric: str, result: Result) -> dict[str, Any]:
    """The table cells one metric's result contributes (see :data:`COLUMNS`)."""
    if isinstance(result, PerturbationCurve):
        return {
            f"{result.kind}_auc": result.mean_auc,
            f"{result.kind}_random_auc": result.mean_baseline_auc,
        }
    if isinstance(result, PointingGameResult):
        return {"pointing_game": result.accuracy, "pointing_game_chance": result.chance}
    if isinstance(result, RelevanceMassResult):
        return {"relevance_mass": result.mean, "relevance_mass_chance": result.chance}
    if isinstance(result, RandomizationResult):
        prefix = "randomization" if result.kind == "cascading" else "data_randomization"
        cells: dict[str, Any] = {
            f"{prefix}_spearman": result.check_spearman,
            f"{prefix}_flagged": result.flagged,
        }
        if result.kind == "cascading":
            cells["randomization_ssim"] = result.check_ssim
        return cells
    if isinstance(result, HealthResult):
        return {"unhealthy_maps": len(result.failures)}
    raise TypeError(f"no table summary for metric {metric!r} ({type(result).__name__})")
