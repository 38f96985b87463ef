"""Result types for model summaries and receptive fields (numpy/pandas only, no TensorFlow).

:class:`ModelSummary` is what :func:`vizkit.summarize` returns: one :class:`LayerInfo` per layer
(nested models' layers included as ``"outer/inner"`` paths) plus model-wide totals. It renders as
a text table (``str(summary)``), a :class:`pandas.DataFrame` (:meth:`ModelSummary.to_frame`) and
an architecture diagram (:meth:`ModelSummary.plot`); these show a nested model as one row or box
unless the summary was made with ``expand_nested=True`` (or the call asks for it), as Keras's
``model.summary(expand_nested=...)`` does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from vizkit.results.base import Result

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

Shape = tuple[int | None, ...]

FRAME_COLUMNS = (
    "path",
    "name",
    "type",
    "depth",
    "parent",
    "container",
    "output_shape",
    "params",
    "trainable_params",
    "activation",
    "rf_h",
    "rf_w",
    "jump_h",
    "jump_w",
    "macs",
)


@dataclasses.dataclass(frozen=True)
class ReceptiveField(Result):
    """Receptive field of one unit of a spatial layer, in input pixels.

    Input pixel ``(i, j)`` has its centre at coordinates ``(i, j)``; the output unit ``(u, v)``
    of a layer sees the input window centred at ``start + (u, v) * jump`` with extent ``size``.
    Sizes are theoretical (not clipped to the image); see Araujo et al. (2019), "Computing
    Receptive Fields of Convolutional Neural Networks", Distill.

    Attributes
    ----------
    size : (float, float)
        Receptive field height and width in input pixels.
    jump : (float, float)
        Effective stride: distance in input pixels between neighbouring units.
    start : (float, float)
        Centre of the first unit's (``(0, 0)``) receptive field, in input pixel coordinates.
    exact : bool
        False when an assumption was made upstream (an unknown shape-preserving layer treated as
        pointwise, a broadcast gate such as squeeze-and-excitation ignored, up-sampling or
        transposed convolutions approximated).
    """

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]
    exact: bool = True

    def bounds(
        self, row: int, col: int, clip_to: tuple[int, int] | None = None
    ) -> tuple[float, float, float, float]:
        """Input window ``(top, left, bottom, right)`` (inclusive pixel centres) of unit (row, col).

        Parameters
        ----------
        row, col : int
            Position of the unit in the layer's output.
        clip_to : (int, int), optional
            Image ``(height, width)``: clip the window to the image.
        """
        centre = (self.start[0] + row * self.jump[0], self.start[1] + col * self.jump[1])
        top, left = (c - (s - 1) / 2 for c, s in zip(centre, self.size))
        bottom, right = (c + (s - 1) / 2 for c, s in zip(centre, self.size))
        if clip_to is not None:
            height, width = clip_to
            top, bottom = max(top, 0.0), min(bottom, height - 1.0)
            left, right = max(left, 0.0), min(right, width - 1.0)
        return (top, left, bottom, right)

    def __str__(self) -> str:
        return f"{_fmt_pair(self.size)} (jump {_fmt_pair(self.jump)})"


@dataclasses.dataclass(frozen=True)
class LayerInfo(Result):
    """One row of a :class:`ModelSummary`.

    Attributes
    ----------
    path : str
        ``"name"`` or, inside nested models, ``"outer/inner"``.
    name, type : str
        Layer name and class name.
    depth : int
        Nesting depth (0 for the model's own layers).
    output_shape : tuple
        Output shape of the layer's first call in this model, batch dimension included (first
        output for multi-output layers).
    params, trainable_params : int
        Parameter counts; a nested model's row holds its total.
    activation : str or None
        Activation name (``"relu"``, ...) for layers that have one.
    receptive_field : ReceptiveField or None
        For layers with a spatial ``(N, H, W, C)`` output whose spatial structure survives.
    macs : int or None
        Multiply-accumulates for one input sample; None when not counted (unknown layer type or
        unknown dimensions). See :func:`vizkit.summarize` for the conventions.
    container : bool
        True for nested models (their children follow as rows with ``depth + 1``).
    inbound : tuple of str
        Paths of the layers (same nesting level) whose outputs feed this layer.
    """

    path: str
    name: str
    type: str
    depth: int
    output_shape: Shape | None
    params: int
    trainable_params: int
    activation: str | None = None
    receptive_field: ReceptiveField | None = None
    macs: int | None = None
    container: bool = False
    inbound: tuple[str, ...] = ()

    @property
    def parent(self) -> str:
        """Path of the enclosing nested model ("" at the top level)."""
        return self.path.rpartition("/")[0]

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params


@dataclasses.dataclass(frozen=True)
class ModelSummary(Result):
    """Layers, shapes, parameters, compute and receptive fields of a Keras model.

    Attributes
    ----------
    name : str
        Model name.
    input_shapes, output_shapes : tuple of shapes
        Shapes of the model's inputs and outputs, batch dimension included.
    layers : tuple of LayerInfo
        One row per layer in model order, nested models followed by their children.
    total_params, trainable_params, non_trainable_params : int
        Counts over the model's unique weights (``total_params == model.count_params()``).
    total_macs : int
        Multiply-accumulates per input sample, summed over every layer call (nested models counted
        once, through their children). Layers listed in ``uncounted`` contribute nothing.
    uncounted : tuple of str
        Paths of layers whose MACs could not be counted (unknown layer type or dimension).
    expand_nested : bool
        Whether the table, text and diagram show nested models' layers (True) or each nested
        model as one row (False, the default of :func:`vizkit.summarize`). ``layers`` always
        holds every layer; :attr:`shown_layers` the rows the views show.
    """

    name: str
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    layers: tuple[LayerInfo, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    uncounted: tuple[str, ...] = ()
    expand_nested: bool = True

    # ---- derived values ---------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape:
        """Shape of the (first) model input."""
        return self.input_shapes[0]

    @property
    def flops(self) -> int:
        """Approximate floating-point operations per sample: ``2 * total_macs``."""
        return 2 * self.total_macs

    def totals(self) -> dict[str, int]:
        """Model-wide totals: params (total/trainable/non-trainable), MACs and FLOPs."""
        return {
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.total_macs,
            "flops": self.flops,
        }

    def __getitem__(self, path: str) -> LayerInfo:
        for info in self.layers:
            if info.path == path:
                return info
        raise KeyError(f"no layer {path!r} in summary of {self.name!r}")

    def __len__(self) -> int:
        return len(self.layers)

    def shown_layers(self, expand_nested: bool | None = None) -> tuple[LayerInfo, ...]:
        """The rows the views show: every layer, or (collapsed) only the top-level ones."""
        expand = self.expand_nested if expand_nested is None else bool(expand_nested)
        return self.layers if expand else tuple(i for i in self.layers if i.depth == 0)

    def __repr__(self) -> str:
        nested = sum(1 for info in self.layers if info.container)
        extra = f", {nested} nested" if nested else ""
        return (
            f"ModelSummary({self.name!r}, {len(self.layers)} layers{extra}, "
            f"{_fmt_count(self.total_params)} params, {_fmt_count(self.total_macs)} MACs)"
        )

    def _repr_html_(self) -> str:
        """The layer table (notebooks)."""
        from vizkit.results.display import summary_html

        return summary_html(self)

    # ---- renderings -------------------------------------------------------------------------
    def to_frame(self, expand_nested: bool | None = None) -> pd.DataFrame:
        """One row per layer as a :class:`pandas.DataFrame` (columns in ``FRAME_COLUMNS``).

        ``expand_nested`` (default: the summary's) lists nested models' layers or only each
        nested model's own row (its totals). ``rf_h``/``rf_w``/``jump_h``/``jump_w`` are NaN for
        non-spatial layers; ``macs`` is a nullable integer column (``<NA>`` when not counted).
        """
        import pandas as pd

        records = []
        for info in self.shown_layers(expand_nested):
            rf = info.receptive_field
            records.append(
                {
                    "path": info.path,
                    "name": info.name,
                    "type": info.type,
                    "depth": info.depth,
                    "parent": info.parent,
                    "container": info.container,
                    "output_shape": info.output_shape,
                    "params": info.params,
                    "trainable_params": info.trainable_params,
                    "activation": info.activation,
                    "rf_h": rf.size[0] if rf else math.nan,
                    "rf_w": rf.size[1] if rf else math.nan,
                    "jump_h": rf.jump[0] if rf else math.nan,
                    "jump_w": rf.jump[1] if rf else math.nan,
                    "macs": info.macs,
                }
            )
        frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
        frame = frame.astype(
            {"depth": "int64", "params": "int64", "trainable_params": "int64", "container": bool}
        )
        frame["macs"] = pd.array(list(frame["macs"]), dtype="Int64")
        for column in ("rf_h", "rf_w", "jump_h", "jump_w"):
            frame[column] = frame[column].astype("float64")
        return frame

    def to_text(self, width: int = 100, expand_nested: bool | None = None) -> str:
        """A fixed-width text table (what ``vizkit summary`` prints); ``expand_nested`` as in
        :meth:`to_frame`."""
        headers = ("Layer (type)", "Output shape", "Params", "MACs", "RF (jump)")
        rows = []
        for info in self.shown_layers(expand_nested):
            label = "  " * info.depth + f"{info.name} ({info.type})"
            rows.append(
                (
                    label,
                    _fmt_shape(info.output_shape),
                    f"{info.params:,}",
                    "?" if info.macs is None else _fmt_count(info.macs),
                    str(info.receptive_field) if info.receptive_field else "",
                )
            )
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
        # shrink the first column if the table is too wide
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess > 0:
            widths[0] = max(len(headers[0]), widths[0] - excess)

        def line(cells: tuple[str, ...]) -> str:
            out = []
            for i, (cell, w) in enumerate(zip(cells, widths)):
                cell = cell if len(cell) <= w else cell[: w - 1] + "~"
                out.append(cell.rjust(w) if i in (2, 3) else cell.ljust(w))
            return "  ".join(out).rstrip()

        rule = "-" * min(width, sum(widths) + 2 * (len(widths) - 1))
        inputs = ", ".join(_fmt_shape(s) for s in self.input_shapes) or "?"
        outputs = ", ".join(_fmt_shape(s) for s in self.output_shapes) or "?"
        text = [f'Model "{self.name}": input {inputs} -> output {outputs}', rule, line(headers)]
        text += [rule, *(line(r) for r in rows), rule]
        text.append(f"Total params: {self.total_params:,}")
        text.append(f"Trainable params: {self.trainable_params:,}")
        text.append(f"Non-trainable params: {self.non_trainable_params:,}")
        macs = f"MACs per sample: {_fmt_count(self.total_macs)} (FLOPs ~ {_fmt_count(self.flops)})"
        if self.uncounted:
            macs += f"; not counted: {', '.join(self.uncounted)}"
        text.append(macs)
        return "\n".join(text)

    def __str__(self) -> str:
        return self.to_text()

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Axes:
        """Draw the architecture diagram on ``ax`` (a new figure when None); return the axes.

        Keyword arguments go to :func:`vizkit.plotting.summary.draw_architecture`
        (``expand_nested``, ``max_blocks``, ``show_edges``, ``legend``, ``fontsize``). A new
        figure is sized so every layer is labelled at a readable size.
        """
        from vizkit.plotting.summary import architecture_size, draw_architecture

        if ax is None:
            import matplotlib.pyplot as plt

            expand = kwargs.get("expand_nested", kwargs.get("expand"))
            size = architecture_size(
                self, expand_nested=expand, max_blocks=kwargs.get("max_blocks", 40)
            )
            _, ax = plt.subplots(figsize=size, layout="constrained")
        return draw_architecture(ax, self, **kwargs)


# ---- formatting helpers (shared with plotting) ----------------------------------------------
def _fmt_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _fmt_num(value: float) -> str:
    return f"{value:g}"


def _fmt_pair(pair: tuple[float, float]) -> str:
    return f"{_fmt_num(pair[0])}x{_fmt_num(pair[1])}"


def _fmt_count(value: int) -> str:
    """Human-readable count: 1234 -> "1.23K", 5_600_000 -> "5.6M"."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return str(int(value))
