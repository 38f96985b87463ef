"""What every page works on: the chosen model, its facts, and the chosen images."""

from __future__ import annotations

import dataclasses
from typing import Any

from dashboards.compute import ModelFacts, ModelRef
from dashboards.entries import ModelEntry


@dataclasses.dataclass
class Context:
    """The sidebar's choice for this run.

    ``pool`` is every image of the chosen source (unit pages and searches use it), ``images`` the
    selected ones (rows of the grids); their keys name their content for caches.
    """

    entry: ModelEntry
    facts: ModelFacts
    images: Any | None = None  # vizkit.ImageBatch
    images_key: str | None = None
    pool: Any | None = None
    pool_key: str | None = None
    input_spec: Any | None = None  # vizkit.InputSpec chosen in the sidebar (None: as detected)
    resize: str = "stretch"  # how images of another aspect ratio are fitted
    labels: tuple[str, ...] | None = None  # class names from an uploaded labels file

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def ref(self) -> ModelRef:
        return self.entry.ref

    @property
    def sample(self) -> str | None:
        return self.facts.sample

    @property
    def tags(self) -> tuple[str, ...]:
        """What results computed here depend on: released with the session that uploaded it."""
        return tuple(t for t in (self.entry.key, self.pool_key) if t)

    @property
    def spec(self) -> Any:
        """The input scale the images are put on: the sidebar's choice, else the detected one."""
        return self.input_spec if self.input_spec is not None else self.facts.input_spec

    @property
    def class_names(self) -> list[str] | None:
        """Names of the model's classes when known: an uploaded labels file, the model's own
        (sample metadata, ImageNet for a 1000-way head), or a labelled image set's."""
        if self.labels:
            return list(self.labels)
        if self.facts.class_names:
            return list(self.facts.class_names)
        for batch in (self.images, self.pool):
            if batch is not None and batch.class_names:
                return [str(n) for n in batch.class_names]
        return None


def current() -> Context | None:
    """This session's context, set by ``app.py`` before the page runs."""
    from dashboards import caches

    return caches.session().context


def set_current(ctx: Context | None) -> None:
    from dashboards import caches

    caches.session().context = ctx
