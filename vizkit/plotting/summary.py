"""Drawing for model summaries (architecture diagram) and training histories. No TensorFlow.

Every function draws on the Axes it is given and returns it; none touches pyplot.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.patches import FancyArrowPatch, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from vizkit.plotting.text import CHAR_EM, fit
from vizkit.results.summary import LayerInfo, ModelSummary, _fmt_count

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

# layer families: (name, colour, substrings of the class name), first match wins
FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("convolution", "#4c78a8", ("Conv",)),
    ("pooling", "#f58518", ("Pool",)),
    ("dense", "#b279a2", ("Dense",)),
    ("recurrent", "#9d755d", ("LSTM", "GRU", "RNN", "Bidirectional")),
    ("normalization", "#bab0ac", ("Normalization", "Rescaling")),
    ("merge", "#54a24b", ("Add", "Concatenate", "Multiply", "Average", "Maximum", "Minimum",
                          "Subtract", "Dot")),
    ("activation / dropout", "#e5e5e5", ("Activation", "ReLU", "Softmax", "Dropout", "ELU",
                                          "Noise")),
    ("reshape", "#eeca3b", ("Flatten", "Reshape", "Padding", "Cropping", "UpSampling", "Resizing",
                            "Permute", "RepeatVector", "Crop")),
)  # fmt: skip
OTHER_COLOUR = "#72b7b2"
NESTED_COLOUR = "#d4e6f1"
# layers hidden first when a diagram would have more than ``max_blocks`` blocks
MINOR_FAMILIES = ("normalization", "activation / dropout")

ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
)


def layer_family(type_name: str) -> str:
    """Family of a layer class name ("convolution", "pooling", ..., "other")."""
    for family, _, keys in FAMILIES:
        if any(key in type_name for key in keys):
            return family
    return "other"


def family_colour(family: str) -> str:
    for name, colour, _ in FAMILIES:
        if name == family:
            return colour
    return NESTED_COLOUR if family == "nested model" else OTHER_COLOUR


@dataclasses.dataclass
class _Block:
    info: LayerInfo
    collapsed: bool = False  # a nested model drawn as one box
    x: float = 0.0
    width: float = 0.0
    height: float = 0.0


def _short_shape(shape: tuple | None) -> str:
    if shape is None:
        return "?"
    dims = ["?" if d is None else str(d) for d in shape[1:]]
    return "x".join(dims) if dims else "scalar"


def _size(info: LayerInfo) -> tuple[float, float]:
    """Block (width, height): width ~ log channels, height ~ log spatial size (or units)."""
    shape = info.output_shape or ()
    dims = [32 if d is None else int(d) for d in shape[1:]]
    if len(dims) >= 2:  # (H, W, C), (T, F), ...: height from the first, width from the last
        return 0.25 + 0.11 * math.log2(1 + dims[-1]), 0.5 + 0.32 * math.log2(1 + dims[0])
    units = dims[0] if dims else 1
    return 0.22, 0.5 + 0.22 * math.log2(1 + units)


def _select(summary: ModelSummary, expand: bool | None, max_blocks: int) -> list[_Block]:
    """Blocks to draw: nested models expanded (``expand=True``), collapsed (False), or expanded
    when that stays within ``max_blocks`` (None)."""
    rows = list(summary.layers)
    children: dict[str, list[LayerInfo]] = {}
    for info in rows:
        children.setdefault(info.parent, []).append(info)

    def blocks(parent: str, open_nested: bool) -> list[_Block]:
        out = []
        for info in children.get(parent, []):
            if info.container and open_nested and children.get(info.path):
                out.extend(blocks(info.path, open_nested))
            else:
                out.append(_Block(info, collapsed=info.container))
        return out

    expanded = blocks("", True)
    if expand is True or (expand is None and len(expanded) <= max_blocks):
        chosen = expanded
    else:
        chosen = blocks("", False)
    if len(chosen) > max_blocks:
        chosen = [b for b in chosen if layer_family(b.info.type) not in MINOR_FAMILIES] or chosen
    return chosen


def _edges(summary: ModelSummary, blocks: list[_Block]) -> set[tuple[int, int]]:
    """(source, target) block indices from the layers' inbound links."""
    rows = {info.path: info for info in summary.layers}
    index = {b.info.path: i for i, b in enumerate(blocks)}
    last_child: dict[str, str] = {}
    first_children: dict[str, list[str]] = {}
    for info in summary.layers:
        if info.parent:
            last_child[info.parent] = info.path
            if not info.inbound:
                first_children.setdefault(info.parent, []).append(info.path)

    def anchor(path: str, seen: frozenset = frozenset()) -> set[int]:
        """Blocks that show the output of ``path``."""
        if path in seen or path not in rows:
            return set()
        seen = seen | {path}
        if path in index:
            return {index[path]}
        parent = rows[path].parent
        while parent:  # inside a collapsed nested model: its box
            if parent in index:
                return {index[parent]}
            parent = rows[parent].parent
        if rows[path].container and path in last_child:  # expanded nested model: its last layer
            return anchor(last_child[path], seen)
        found: set[int] = set()
        for source in rows[path].inbound:  # hidden layer: pass through to its inputs
            found |= anchor(source, seen)
        return found

    edges = set()
    for target, block in enumerate(blocks):
        info = block.info
        sources = list(info.inbound)
        parent = info.parent
        while not sources and parent and info.path in first_children.get(parent, []):
            sources = list(rows[parent].inbound)  # first layer of an expanded nested model
            info, parent = rows[parent], rows[parent].parent
        for source in sources:
            for s in anchor(source):
                if s != target:
                    edges.add((s, target))
    return edges


#: Label font size the diagram aims for (points) and the smallest it shrinks to before it
#: drops the second label line, then labels only every other block.
LABEL_FONT = 8.0
MIN_LABEL_FONT = 5.5
_GAP = 0.45  # data units between blocks


def _layout(blocks: list[_Block]) -> float:
    """Place blocks left to right; return the total width in data units."""
    x = 0.0
    for block in blocks:
        block.width, block.height = _size(block.info)
        if block.collapsed:
            block.width = max(block.width, 1.2)
        block.x = x
        x += block.width + _GAP
    return x - _GAP


def _label(block: _Block, lines: int) -> str:
    info = block.info
    kind = f"{info.type} (nested)" if block.collapsed else info.type
    if lines == 1:
        return info.name
    return f"{info.name}\n{kind} {_short_shape(info.output_shape)}"


def _min_pitch(blocks: list[_Block]) -> float:
    """Smallest distance (data units) between the centres of neighbouring blocks."""
    centres = [b.x + b.width / 2 for b in blocks]
    return min((b - a for a, b in zip(centres, centres[1:])), default=10.0)


def label_fit(pitch_pt: float, fontsize: float = LABEL_FONT) -> tuple[float, int, int]:
    """``(fontsize, lines, every)`` so rotated labels ``pitch_pt`` points apart never touch.

    A rotated label of ``lines`` lines is about ``1.25 * lines * fontsize`` points wide. The
    font shrinks (not below :data:`MIN_LABEL_FONT`), then the label drops to the layer name
    alone, then only every ``every``-th block is labelled.
    """
    for lines in (2, 1):
        size = min(fontsize, (pitch_pt - 2.0) / (1.25 * lines))
        if size >= MIN_LABEL_FONT:
            return float(size), lines, 1
    every = max(2, math.ceil((1.25 * MIN_LABEL_FONT + 2.0) / max(pitch_pt, 1e-6)))
    return MIN_LABEL_FONT, 1, every


def architecture_size(
    summary: ModelSummary, *, expand_nested: bool | None = None, max_blocks: int = 40
) -> tuple[float, float]:
    """A figure size (inches) at which :func:`draw_architecture` labels every block at
    :data:`LABEL_FONT` points (at most 24 inches wide)."""
    expand = summary.expand_nested if expand_nested is None else expand_nested
    blocks = _select(summary, expand, max_blocks)
    width = _layout(blocks)
    pitch = _min_pitch(blocks)
    per_unit = (1.25 * 2 * LABEL_FONT + 4.0) / 72.0 / max(pitch, 1e-6)  # inches per data unit
    longest = max((len(line) for b in blocks for line in _label(b, 2).splitlines()), default=8)
    height = 2.6 + CHAR_EM * LABEL_FONT * longest / 72.0
    return float(min(max(6.0, width * per_unit + 1.0), 24.0)), float(min(height, 8.0))


def _figure_inches(ax: Axes) -> tuple[float, float]:
    """Width and height of the figure ``ax`` is drawn on (the root figure for a subfigure)."""
    fig = ax.get_figure(root=True)
    assert fig is not None, "the axes belong to no figure"
    width, height = fig.get_size_inches()
    return float(width), float(height)


def draw_architecture(
    ax: Axes,
    summary: ModelSummary,
    *,
    expand_nested: bool | None = None,
    expand: bool | None = None,
    max_blocks: int = 40,
    show_edges: bool = True,
    legend: bool = True,
    fontsize: float = LABEL_FONT,
) -> Axes:
    """Draw ``summary`` as a left-to-right layered diagram on ``ax``; return ``ax``.

    Each layer is a rectangle (``matplotlib.patches.Rectangle``): height ~ log of its spatial size
    (or units for vectors), width ~ log of its channels, coloured by family and labelled with its
    name, type and output shape. Nested models are drawn as one hatched box (the default, as
    Keras's ``expand_nested=False``) or expanded under a labelled bracket. Labels are sized to
    the axes so they never collide (see :func:`label_fit`); :func:`architecture_size` gives a
    figure size at which they stay at ``fontsize``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    summary : ModelSummary
    expand_nested : bool, optional
        Expand nested models (True) or draw each as one box (False); None follows the summary
        (``summarize(..., expand_nested=...)``). ``expand`` is an older name for it.
    max_blocks : int
        Beyond this many blocks, normalization/activation/dropout layers are hidden.
    show_edges : bool
        Draw connections: arrows between neighbours, arcs over skip connections.
    legend : bool
        Add a legend of the layer families drawn.
    fontsize : float
        Largest label font size.

    (About 100 lines, a third of them this documentation; layout, brackets and edges are
    helpers.)
    """
    if expand_nested is None:
        expand_nested = expand if expand is not None else summary.expand_nested
    blocks = _select(summary, expand_nested, max_blocks)
    width = _layout(blocks)
    top = max((b.height for b in blocks), default=1.0) / 2
    margin = _GAP + max(0.0, (8.0 - width) / 2)  # keep small models from being stretched
    ax.set_xlim(-margin, width + margin)
    axes_w_pt = max(ax.get_position().width * _figure_inches(ax)[0] * 72, 1.0)
    pitch_pt = _min_pitch(blocks) * axes_w_pt / (width + 2 * margin)
    size, lines, every = label_fit(pitch_pt, fontsize)

    families: dict[str, str] = {}
    for i, block in enumerate(blocks):
        info = block.info
        family = "nested model" if block.collapsed else layer_family(info.type)
        colour = family_colour(family)
        families.setdefault(family, colour)
        ax.add_patch(
            Rectangle(
                (block.x, -block.height / 2),
                block.width,
                block.height,
                facecolor=colour,
                edgecolor="#333333",
                linewidth=0.8,
                hatch="//" if block.collapsed else None,
                label=info.path,
            )
        )
        if i % every == 0:
            ax.text(
                block.x + block.width / 2,
                -top - 0.2,
                _label(block, lines),
                rotation=90,
                ha="center",
                va="top",
                fontsize=size,
            )
    depth = _brackets(ax, summary, blocks, top, axes_w_pt / (width + 2 * margin), size)
    arc_height = _draw_edges(ax, summary, blocks) if show_edges else 0.0

    totals = f"{_fmt_count(summary.total_params)} params"
    if summary.total_macs:
        totals += f", {_fmt_count(summary.total_macs)} MACs"
    title = f"{summary.name} ({totals})"
    ax.set_title(fit(title, axes_w_pt / 72.0, 11), fontsize=11)
    # rotated labels take a fixed height in points: convert it to data units for this axes
    longest = max((len(line) for t in ax.texts if t.get_rotation() == 90
                   for line in t.get_text().splitlines()), default=0)  # fmt: skip
    label_pt = CHAR_EM * size * longest + 10
    axes_pt = max(ax.get_position().height * _figure_inches(ax)[1] * 72, 1.0)
    upper = top + max(0.6 + 0.45 * depth, arc_height + 0.3)
    share = min(label_pt / axes_pt, 0.7)
    span = (upper + top + 0.2) / (1 - share)
    ax.set_ylim(upper - span, upper)
    ax.axis("off")
    if legend and families:
        handles = [Patch(facecolor=c, edgecolor="#333333", label=f) for f, c in families.items()]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  fontsize=max(size, 7.0), frameon=False, ncol=min(4, len(handles)))  # fmt: skip
    return ax


def _brackets(
    ax: Any,
    summary: ModelSummary,
    blocks: list[_Block],
    top: float,
    pt_per_unit: float,
    fontsize: float,
) -> int:
    """Brackets (with wrapped labels) over expanded nested models; return the nesting depth."""
    groups: dict[str, list[_Block]] = {}
    for block in blocks:
        parts = block.info.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            groups.setdefault("/".join(parts[:i]), []).append(block)
    rows = {info.path: info for info in summary.layers}
    for path, members in groups.items():
        if path not in rows or any(b.info.path == path for b in blocks):
            continue
        level = path.count("/")
        y = top + 0.35 + 0.45 * level
        left, right = members[0].x, members[-1].x + members[-1].width
        ax.plot([left, left, right, right], [y - 0.15, y, y, y - 0.15], color="#555555", lw=1)
        info = rows[path]
        text = f"{info.name} ({info.type}, {_fmt_count(info.params)} params)"
        room = max((right - left + _GAP) * pt_per_unit / 72.0, 0.6)
        ax.text((left + right) / 2, y + 0.05, fit(text, room, fontsize), ha="center",
                va="bottom", fontsize=fontsize)  # fmt: skip
    return max((p.count("/") + 1 for p in groups), default=0)


def _draw_edges(ax: Any, summary: ModelSummary, blocks: list[_Block]) -> float:
    """Arrows between neighbours and arcs over skip connections; return the arcs' height."""
    arc_height = 0.0
    for source, target in sorted(_edges(summary, blocks)):
        a, b = blocks[source], blocks[target]
        if target == source + 1:
            start, end, style = (a.x + a.width, 0.0), (b.x, 0.0), "arc3"
        else:  # skip connection: arc over the blocks in between
            start, end = (a.x + a.width / 2, a.height / 2), (b.x + b.width / 2, b.height / 2)
            style = "arc3,rad=-0.25" if target > source else "arc3,rad=0.25"
            arc_height = max(arc_height, 0.25 * abs(end[0] - start[0]) / 2)
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="-|>",
                mutation_scale=7,
                connectionstyle=style,
                color="#666666",
                linewidth=0.7,
                zorder=0.5,
            )
        )
    return arc_height


# --------------------------------------------------------------------------------------------
# Training history
# --------------------------------------------------------------------------------------------
def choose_history_metrics(data: Mapping[str, Sequence[float]]) -> list[str]:
    """Default panels: ``loss`` and the first accuracy-like metric (else another metric)."""
    train = [k for k in data if not k.startswith("val_") and k not in ("lr", "learning_rate")]
    chosen = ["loss"] if "loss" in train else []
    accuracy = [k for k in ACCURACY_KEYS if k in train] or [k for k in train if "acc" in k]
    if accuracy:
        chosen.append(accuracy[0])
    else:
        chosen.extend([k for k in train if k not in chosen][:1])
    if not chosen:  # only validation curves
        chosen = [k[4:] for k in data if k.startswith("val_")][:2]
    return chosen


def _title(metric: str) -> str:
    if metric in ACCURACY_KEYS:
        return "Accuracy"
    return metric.replace("_", " ").capitalize()


def draw_history(
    axes: Sequence[Any], data: Mapping[str, Sequence[float]], metrics: Sequence[str]
) -> list[Any]:
    """Draw one panel per metric (train and ``val_`` curves against epoch); return the axes."""
    for ax, metric in zip(axes, metrics):
        for key, label, style in ((metric, "train", "-o"), ("val_" + metric, "validation", "--o")):
            values = data.get(key)
            if values is None:
                continue
            epochs = range(1, len(values) + 1)
            ax.plot(epochs, values, style, label=label, markersize=3)
        ax.set_title(_title(metric))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return list(axes[: len(metrics)])
