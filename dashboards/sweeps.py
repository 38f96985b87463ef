"""Worker-side memory of CAMs at every layer: a layer change that costs no computation.

A gradient CAM (Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM, Eigen-CAM) at a layer the worker has
never explained at costs a graph trace, seconds on a 224x224 network, while
:func:`vizkit.explain_layers` computes the CAM of every candidate layer in one forward and one
backward pass through one graph traced once per model and method. :class:`LayerMaps` keeps the
sweeps of the last few (images, targets, parameters) and answers from them:

- a request whose sweep is kept is answered from it (a layer change: no model work at all);
- otherwise a layer whose single-layer graph this worker has traced gets :func:`vizkit.explain`
  (a class change on the layer shown: the cheapest pass);
- otherwise, once the sweep graph is traced (:meth:`LayerMaps.warm`, run while the worker is
  idle), the sweep is computed and kept;
- otherwise None: the caller runs :func:`vizkit.explain`, which traces that layer.

Graphs are remembered per loaded model object, so a model loaded again starts afresh. Runs in
the compute worker (TensorFlow loaded); no Streamlit here.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import warnings
from typing import Any

import numpy as np

KEEP_SWEEPS = 6  # (images, targets, parameters) whose every-layer maps are kept


def _params_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in params.items()))


def images_digest(images: Any) -> str:
    """A content hash of an image batch: its pixels as the model sees them, and its names."""
    x = np.ascontiguousarray(np.asarray(getattr(images, "array", images)))
    digest = hashlib.blake2b(x.tobytes(), digest_size=16)
    digest.update(repr((x.shape, str(x.dtype), getattr(images, "names", ()))).encode())
    digest.update(repr(getattr(images, "class_names", None)).encode())
    return digest.hexdigest()


def one_pass(info: Any, params: dict[str, Any]) -> bool:
    """The method of registry facts ``info`` (a ``MethodInfo``), with ``params``, computes every
    layer in one pass (no TensorFlow needed: the server asks too)."""
    return bool(info.one_pass_layers) and params.get("engine", "native") == "native"


def sweeps_in_one_pass(method: str, params: dict[str, Any]) -> bool:
    """``method`` with ``params`` computes every layer in one pass."""
    import vizkit

    return one_pass(vizkit.get_method(method), params)


class LayerMaps:
    """Sweeps kept by content, and which graphs this worker has traced."""

    def __init__(self, keep: int = KEEP_SWEEPS) -> None:
        self._sweeps: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._traced: set[tuple] = set()  # (model id, method, score[, layer])
        self._lock = threading.Lock()
        self._keep = keep

    @staticmethod
    def _graph(model: Any, method: str, params: dict[str, Any]) -> tuple:
        import vizkit

        score = params.get("score", vizkit.get_method(method).defaults().get("score"))
        return (id(model), method, score)

    def traced(self, model: Any, method: str, params: dict[str, Any], layer: str | None) -> None:
        """Note that ``method``'s graph at ``layer`` (None: the sweep's) is traced."""
        graph = self._graph(model, method, params)
        with self._lock:
            self._traced.add(graph if layer is None else (*graph, layer))

    def explanation(
        self,
        model: Any,
        images: Any,
        method: str,
        targets: Any,
        layer: str,
        params: dict[str, Any],
    ) -> Any | None:
        """``method``'s Explanation at ``layer`` from a kept or new sweep, or None when a
        single-layer :func:`vizkit.explain` is the cheaper call."""
        if not sweeps_in_one_pass(method, params):
            return None
        graph, key = self._keys(model, images, method, targets, params)
        with self._lock:
            kept = key in self._sweeps
            if not kept and ((*graph, layer) in self._traced or graph not in self._traced):
                return None
        sweep = self._sweep(graph, key, model, images, method, targets, params)
        return sweep[layer] if layer in sweep else None

    def sweep(
        self, model: Any, images: Any, method: str, targets: Any, params: dict[str, Any]
    ) -> Any:
        """``method``'s :class:`vizkit.LayerSweep` over every candidate layer: kept, or computed
        now and kept."""
        graph, key = self._keys(model, images, method, targets, params)
        return self._sweep(graph, key, model, images, method, targets, params)

    def _keys(
        self, model: Any, images: Any, method: str, targets: Any, params: dict[str, Any]
    ) -> tuple[tuple, tuple]:
        """The graph's key and the sweep's key (the graph, the images' digest, the targets and
        the parameters)."""
        graph = self._graph(model, method, params)
        return graph, (graph, images_digest(images), repr(targets), _params_key(params))

    def _sweep(
        self,
        graph: tuple,
        key: tuple,
        model: Any,
        images: Any,
        method: str,
        targets: Any,
        params: dict[str, Any],
    ) -> Any:
        with self._lock:
            found = self._sweeps.get(key)
            if found is not None:
                self._sweeps.move_to_end(key)
                return found
        import vizkit

        found = vizkit.explain_layers(model, images, method, None, targets, **params)
        with self._lock:
            self._sweeps[key] = found
            while len(self._sweeps) > self._keep:
                self._sweeps.popitem(last=False)
            if sweeps_in_one_pass(method, params):
                self._traced.add(graph)
        return found

    def warm(self, model: Any, method: str, params: dict[str, Any]) -> bool:
        """Trace ``method``'s every-layer graph on one blank image; False when the method has
        none (it explains layer by layer)."""
        if not sweeps_in_one_pass(method, params):
            return False
        import vizkit

        shape = vizkit.model_info(model).input_shape or ()
        blank = np.zeros((1, *shape[1:]), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vizkit.VizkitWarning)  # a blank image, on purpose
            vizkit.explain_layers(model, blank, method, None, 0, **params)
        self.traced(model, method, params, None)
        return True

    def forget(self, model: Any) -> None:
        """Drop what is kept for ``model`` (it left the worker)."""
        with self._lock:
            for key in [k for k in self._sweeps if k[0][0] == id(model)]:
                del self._sweeps[key]
            self._traced = {t for t in self._traced if t[0] != id(model)}
