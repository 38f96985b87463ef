"""The report's working state: where figures and tables go, sections that fail on their own.

:class:`Writer` saves each figure in every requested format (and embeds a PNG in the page),
writes each table as CSV, and drives the progress bar; :func:`section` collects one section and
turns an exception inside it into a one-line reason, :func:`attempt` does the same for one part
of a section, so a failing view never stops the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from vizkit.errors import VizkitError, one_line
from vizkit.plotting.figures import figure_data_uri, save_figure
from vizkit.plotting.style import STYLE_DPI
from vizkit.plotting.style import style as use_style
from vizkit.progress import Progress
from vizkit.templates import html as tpl

logger = logging.getLogger("vizkit.report")

REPORT_FORMATS = ("html", "pdf", "png", "svg")
HTML_DPI = 110  # resolution of the PNGs embedded in the page (files on disk use the style's dpi)


def slug(text: str) -> str:
    """``text`` as a file-name part: lower-case letters, digits and dashes."""
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "item"


def reason(error: BaseException) -> str:
    """One line for the report: vizkit errors as they are, others with their type."""
    if isinstance(error, VizkitError):
        return one_line(str(error))
    text = one_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def frame_html(frame: Any, *, index: bool = False, float_format: str = "{:.4g}") -> str:
    """A DataFrame as the page's table HTML (values escaped)."""
    return frame.to_html(
        index=index,
        border=0,
        classes="dataframe",
        na_rep="",
        float_format=lambda v: float_format.format(v),
        escape=True,
    )


@dataclasses.dataclass
class Writer:
    """Files and progress of one report, and what sections hand to later ones.

    Attributes
    ----------
    out : Path
        The report folder.
    formats : tuple of str
        Requested formats (``"html"`` and figure formats).
    style : str
        Figure style (:func:`vizkit.style`).
    seed : int
    progress : Progress
        One step per section.
    files : list of str
        Every file written, relative to ``out``.
    explanations : dict
        The images section's explanations by method, for the evaluation section.
    """

    out: Path
    formats: tuple[str, ...]
    style: str
    seed: int
    progress: Progress
    files: list[str] = dataclasses.field(default_factory=list)
    explanations: dict[str, Any] = dataclasses.field(default_factory=dict)
    counter: int = 0
    last_tick: float = 0.0

    @property
    def figure_formats(self) -> tuple[str, ...]:
        return tuple(f for f in self.formats if f != "html")

    @property
    def html(self) -> bool:
        return "html" in self.formats

    def figure(self, fig: Figure, name: str, caption: str) -> tpl.Figure:
        """Save ``fig`` in every requested format and return its HTML block."""
        self.counter += 1
        stem = self.out / "figures" / f"{self.counter:02d}-{slug(name)}"
        written = save_figure(fig, stem, self.figure_formats, dpi=STYLE_DPI[self.style])
        rel = [p.relative_to(self.out).as_posix() for p in written.values()]
        self.files.extend(rel)
        uri = figure_data_uri(fig, dpi=HTML_DPI) if self.html else ""
        return tpl.Figure(caption=caption, uri=uri, files=tuple(rel), alt=caption)

    def table(self, frame: Any, name: str, caption: str = "", *, index: bool = False) -> tpl.Table:
        """Write ``frame`` as CSV and return its HTML block."""
        path = self.out / "tables" / f"{slug(name)}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=index)
        rel = path.relative_to(self.out).as_posix()
        self.files.append(rel)
        return tpl.Table(caption=caption, html=frame_html(frame, index=index), file=rel)

    def tick(self, label: str, *, force: bool = True) -> None:
        """Show ``label`` next to the bar (throttled to a few redraws a second)."""
        if self.progress.bar is None:
            return
        now = time.monotonic()
        if force or now - self.last_tick >= 0.5:
            self.progress.bar.set_postfix_str(label, refresh=True)
            self.last_tick = now

    def hook(self, label: str) -> Callable[[int, int], None] | bool:
        """A progress callback for long library calls (shows ``label done/total``)."""
        if self.progress.bar is None:
            return False

        def update(done: int, total: int) -> None:
            self.tick(f"{label} {done}/{total}", force=done >= total)

        return update


@contextlib.contextmanager
def section(
    writer: Writer, sections: list[tpl.Section], sid: str, title: str
) -> Iterator[tpl.Section]:
    """Collect one section; an exception inside marks it failed with a one-line reason."""
    block = tpl.Section(id=sid, title=title)
    writer.tick(title)
    try:
        with use_style(writer.style):
            yield block
    except Exception as error:  # noqa: BLE001 - a failing section must not kill the report
        logger.debug("report section %r failed", sid, exc_info=True)
        block.status = "failed"
        block.reason = reason(error)
    sections.append(block)
    writer.progress.advance()


def attempt(block: tpl.Section, label: str, work: Callable[[], Any]) -> Any:
    """Run one part of a section; on failure note it and carry on with the other parts."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001
        logger.debug("report part %r of %r failed", label, block.id, exc_info=True)
        block.blocks.append(tpl.Note(f"{label}: {reason(error)}"))
        block.status = "partial"
        return None


def skip(block: tpl.Section, why: str) -> None:
    """Mark a section skipped, with the reason (and how to get it) shown in its place."""
    block.status = "skipped"
    block.reason = why
