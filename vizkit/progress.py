"""Progress reporting for long calls: one small adapter every long function shares.

Long functions (``evaluate``, ``explain`` over many images, ``maximize_activation``,
``top_activations``, ``build_report``) take ``progress=`` and pass it to :class:`Progress`:

- ``None`` (the usual default): a bar in Jupyter notebooks only, so scripts and logs stay quiet;
- ``True``: a bar in any case (tqdm's widget in a notebook, text on stderr elsewhere);
- ``False``: nothing;
- a callable: called as ``progress(done, total)``, first with ``done=0`` (the dashboard's
  progress bars use this).

In a notebook the bar is tqdm's widget when ``ipywidgets`` is installed and tqdm's text bar
otherwise (tqdm's own fallback would warn "IProgress not found"). No TensorFlow here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

ProgressHook = Callable[[int, int], Any]
ProgressArg = bool | ProgressHook | None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython must not break a computation
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def make_bar(total: int | None, desc: str, unit: str = "it", *, always: bool = True) -> Any:
    """A tqdm bar: the notebook widget when possible, else text on stderr. Off a notebook,
    ``always=False`` lets tqdm hide the text bar when stderr is not a terminal."""
    notebook = in_notebook()
    if notebook and _has_widgets():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(total=total, desc=desc, unit=unit, leave=False)
    from tqdm.std import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=False if (always or notebook) else None,
    )


class Progress:
    """Adapts a ``progress=`` argument to ``update(done)`` / ``advance()`` calls.

    Parameters
    ----------
    progress : None, bool or callable
        See the module docstring.
    total : int
        Number of steps.
    desc, unit : str
        Bar label and unit.

    Use as a context manager (the bar is closed on exit) or call :meth:`close`.
    """

    def __init__(
        self, progress: ProgressArg, total: int, desc: str = "vizkit", unit: str = "it"
    ) -> None:
        self.total = int(total)
        self.done = 0
        self.hook: ProgressHook | None = progress if callable(progress) else None
        self.bar = None
        show = progress is True or (progress is None and in_notebook())
        if show and not callable(progress):
            self.bar = make_bar(self.total, desc, unit)
        if self.hook is not None:
            self.hook(0, self.total)  # show the bar before the first (often compiling) step

    @property
    def active(self) -> bool:
        """True when anything is reported (a bar or a callback)."""
        return self.hook is not None or self.bar is not None

    def update(self, done: int) -> None:
        """Report that ``done`` of ``total`` steps are finished."""
        done = int(min(max(done, self.done), self.total))
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        if self.hook is not None:
            self.hook(done, self.total)

    def advance(self, steps: int = 1) -> None:
        """Report ``steps`` more finished steps."""
        self.update(self.done + int(steps))

    def child(self, offset: int) -> ProgressHook:
        """A ``(done, total)`` callback for a sub-task whose steps start at ``offset``."""

        def report(done: int, _total: int) -> None:
            self.update(offset + int(done))

        return report

    def set_description(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Progress", "ProgressArg", "ProgressHook", "in_notebook", "make_bar"]
