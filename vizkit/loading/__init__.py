"""Load Keras models from files that may be broken or hostile.

Threat model: a model file (an upload to the dashboard, a download) is written by someone who
wants to run code on the machine that opens it, read or write its files, reach the network, or
exhaust its memory or CPU so that it stops serving others. Keras's safe mode stops serialized
lambdas, nothing more. :func:`load_model` checks a file before Keras sees it, in four stages:

1. The container (:mod:`._files`, no Keras): a regular file, not empty, magic bytes matching
   the extension (zip for ``.keras``, HDF5 for ``.h5``), sizes and unpacked sizes under
   ``max_bytes``, plain member names, checksums, required members; HDF5 content walked without
   recursion, bounded in depth and object count, with no links, external or virtual data, and no
   weights declared beyond what the file stores.
2. The config (:mod:`._scan`, no Keras): nesting depth, serialized arrays' memory, recorded
   tensor sizes; ``Lambda`` (and other code-running) layers, serialized functions, vocabulary
   files and references to Python's standard library are refused.
3. Every class and function the config names (:mod:`._scan`, :mod:`._allow`, imports Keras) is
   resolved as Keras would resolve it and must be on the allow-list of its position (layer,
   activation, initializer, ...), derived from Keras's public registries; names the process's
   custom-object registry would answer, and ``registered_name`` values that are not Keras's own,
   need ``custom_objects``.
4. What building would allocate (:mod:`._budget`): parameters and tensor sizes counted from the
   config, against limits derived from ``max_bytes`` and against the weights the file stores.

Only then is the file handed to Keras, always with safe mode on unless ``trust=True``; the built
model's output sizes are checked once more. Every failure raises
:class:`~vizkit.errors.ModelFileError` (or its subclass :class:`~vizkit.errors.UnsafeModelError`)
with a one-line message; the underlying exception is chained as ``__cause__``. Files refused in
stages 1 and 2 never import TensorFlow. :class:`Limits` documents the limits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vizkit.errors import InputError, ModelFileError, one_line
from vizkit.loading import _budget, _files, _scan
from vizkit.loading._keras import keras_load
from vizkit.loading._limits import DEFAULT_MAX_BYTES, RAISE, Limits, count

if TYPE_CHECKING:  # pragma: no cover
    from vizkit._tf import keras

__all__ = ["DEFAULT_MAX_BYTES", "Limits", "ModelFileInfo", "check_model_file", "load_model"]

_DECLARED_SLACK = 1_000_000  # parameters a config may create beyond twice what the file stores


@dataclasses.dataclass(frozen=True)
class ModelFileInfo:
    """What :func:`check_model_file` learned about a model file that passed every check.

    Attributes
    ----------
    path : pathlib.Path
        The file that was checked.
    format : str
        ``"keras"`` (zip archive) or ``"h5"`` (legacy HDF5).
    size : int
        File size in bytes.
    config : dict
        The model config, as stored in the file.
    keras_version : str or None
        Keras version that saved the file, when recorded.
    custom_objects : tuple of str
        Names the config resolves through ``custom_objects`` (already checked).
    parameters : int
        Parameters the config creates, as counted before building (a lower bound).
    """

    path: Path
    format: str
    size: int
    config: dict = dataclasses.field(repr=False)
    keras_version: str | None
    custom_objects: tuple[str, ...] = ()
    parameters: int = 0


def load_model(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | keras.Model,
    *,
    filename: str | None = None,
    trust: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    compile: bool = False,
) -> keras.Model:
    """Load a Keras model from a ``.keras`` or ``.h5`` file after checking that it is safe.

    Parameters
    ----------
    source : str, os.PathLike, bytes, binary file object or keras.Model
        A path to a ``.keras`` archive or a legacy ``.h5`` file; the file's content (bytes, or a
        binary file object such as an upload) which is written to a private temporary file; or
        an in-memory ``keras.Model``, returned unchanged.
    filename : str, optional
        Name of the file the bytes came from (``"model.keras"``), used to check the extension
        and in messages; only for bytes and file objects. A file object's ``name`` is used when
        omitted; without a name the format is taken from the content alone.
    trust : bool
        ``True`` runs code from the file: ``Lambda`` layers, serialized Python functions, any
        Keras function in any position, and custom objects registered in this process are
        allowed, and Keras's safe mode is turned off for this one call. Use it only for files
        whose author you trust. Size limits still apply.
    custom_objects : mapping of str to class or function, optional
        Your implementations of the custom layers and functions the model names, keyed by the
        name in the error message (``{"MyLayer": MyLayer}``). Used for this call only; nothing
        is registered globally.
    max_bytes : int
        Largest allowed file and unpacked archive size (each member and all members together);
        every other limit is derived from it (see :class:`Limits`).
    compile : bool
        Restore the training configuration (loss, optimizer, metrics) as well.

    Returns
    -------
    keras.Model
        The loaded model.

    Raises
    ------
    UnsafeModelError
        The file would run code when loaded, or needs custom objects that were not passed.
    ModelFileError
        The file is missing, empty, too large, truncated, corrupt, not a Keras model, would
        allocate more than the limits allow, or Keras cannot build it.
    InputError
        An argument has the wrong type or value.

    Examples
    --------
    >>> model = vizkit.load_model("cnn.keras")                      # doctest: +SKIP
    >>> model = vizkit.load_model(upload.getvalue(), filename=upload.name)  # doctest: +SKIP
    """
    _check_arguments(trust, custom_objects, max_bytes, compile)
    limits = Limits.for_max_bytes(max_bytes)
    if isinstance(source, (str, os.PathLike)):
        if filename is not None:
            raise InputError("filename= is only for bytes or file objects: pass the path alone")
        path = Path(os.path.expanduser(os.fspath(source)))
        return _load_path(path, None, trust, custom_objects, limits, compile)
    data = _files.read_source(source, max_bytes)
    if data is None:
        from vizkit._tf import keras

        if isinstance(source, keras.Model):
            return source
        raise InputError(
            "load_model needs a path, bytes, a binary file object or a keras.Model, "
            f"not {type(source).__name__}"
        )
    if filename is None:
        name = getattr(source, "name", None)
        filename = os.path.basename(name) if isinstance(name, str) else None
    return _load_bytes(data, filename, trust, custom_objects, limits, compile)


def check_model_file(
    path: str | os.PathLike[str],
    *,
    trust: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    compile: bool = False,
) -> ModelFileInfo:
    """Run every check :func:`load_model` runs before handing the file to Keras, without loading.

    Parameters are as for :func:`load_model`. Files refused by their container or for code are
    refused without importing Keras; checking names against Keras's allow-lists imports it.

    Returns
    -------
    ModelFileInfo
        Format, size, config and Keras version of the file.

    Raises
    ------
    UnsafeModelError, ModelFileError, InputError
        As for :func:`load_model`.
    """
    _check_arguments(trust, custom_objects, max_bytes, compile)
    path = Path(os.path.expanduser(os.fspath(path)))
    limits = Limits.for_max_bytes(max_bytes)
    return _check(path, one_line(str(path)), trust, custom_objects or {}, limits, compile)[0]


def _check_arguments(trust: Any, custom_objects: Any, max_bytes: Any, compile: Any) -> None:
    if not isinstance(trust, bool):
        raise InputError(f"trust must be True or False, not {trust!r}")
    if not isinstance(compile, bool):
        raise InputError(f"compile must be True or False, not {compile!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InputError(f"max_bytes must be a positive number of bytes, not {max_bytes!r}")
    if custom_objects is not None:
        if not isinstance(custom_objects, Mapping) or not all(
            isinstance(key, str) for key in custom_objects
        ):
            raise InputError(
                "custom_objects must map names to classes or functions, like {'MyLayer': MyLayer}"
            )


def _load_bytes(
    data: bytes,
    filename: str | None,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    limits: Limits,
    compile: bool,
) -> keras.Model:
    shown = filename or "uploaded model"
    if not data:
        raise ModelFileError(
            f"{'model file ' + repr(filename) if filename else 'uploaded model'} is empty"
        )
    fmt = _files.format_of(data[:8])
    if fmt is None:
        raise ModelFileError(_files.not_a_model(shown, data[:8]))
    if filename is not None:
        _files.check_extension(filename, fmt, shown)
    with tempfile.TemporaryDirectory(prefix="vizkit-model-") as tmp:
        path = Path(tmp) / ("model" + _files.EXTENSIONS[fmt][0])
        with open(path, "wb") as handle:
            handle.write(data)
        return _load_path(path, shown, trust, custom_objects, limits, compile)


def _check(
    path: Path,
    shown: str,
    trust: bool,
    custom_objects: Mapping[str, Any],
    limits: Limits,
    compile: bool,
) -> tuple[ModelFileInfo, tuple[int, int, int, int]]:
    contents, key = _files.check_file(path, shown, limits, compile)
    found = _scan.walk(contents.config, contents.extra, limits)
    _scan.refuse_code(found, trust, custom_objects)
    _scan.check_shapes(found, limits)
    used = _scan.check_names(found, trust, custom_objects)
    params = _check_budget(contents, custom_objects, limits)
    info = ModelFileInfo(
        path, contents.format, key[2], contents.config, contents.keras_version, used, params
    )
    return info, key


def _check_budget(
    contents: _files.Contents, custom_objects: Mapping[str, Any], limits: Limits
) -> int:
    """Refuse configs whose parameters or tensors exceed the limits or the stored weights."""
    from vizkit.loading import _allow

    def class_of(node: dict) -> str | None:
        return _allow.layer_class_name(node, custom_objects)

    estimate = _budget.estimate(contents.config, class_of)
    if estimate.largest > limits.activation_values and estimate.largest_at is not None:
        layer, shape = estimate.largest_at
        raise ModelFileError(_scan.activation_message(layer, shape, estimate.largest, limits))
    params = estimate.parameters
    if params > limits.parameters:
        raise ModelFileError(
            f"model config would create {count(params)} parameters, over the "
            f"{count(limits.parameters)} limit: {RAISE}"
        )
    stored = contents.weights.declared_values
    if params > 2 * stored + _DECLARED_SLACK:  # 2: int4-packed kernels store half
        raise ModelFileError(
            f"model config would create {count(params)} parameters but the file stores only "
            f"{count(stored)} weight values: the file is corrupt or hostile, refusing to "
            "allocate memory it does not back"
        )
    return params


def _load_path(
    path: Path,
    shown: str | None,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    limits: Limits,
    compile: bool,
) -> keras.Model:
    shown = shown or one_line(str(path))
    info, key = _check(path, shown, trust, custom_objects or {}, limits, compile)
    canonical = str(path).endswith(_files.EXTENSIONS[info.format])
    scratch = (
        contextlib.nullcontext() if canonical else tempfile.TemporaryDirectory(prefix="vizkit-")
    )
    with scratch as tmp:
        target = path
        if tmp is not None:  # Keras needs the exact lower-case extension
            target = Path(tmp) / ("model" + _files.EXTENSIONS[info.format][0])
            try:
                os.symlink(path.resolve(), target)
            except OSError:
                import shutil

                shutil.copyfile(path, target)
        try:
            unchanged = _files.stat_key(os.stat(path)) == key
        except OSError:
            unchanged = False
        if not unchanged:
            raise ModelFileError(f"model file {shown!r} changed while it was being checked")
        return keras_load(target, shown, trust, custom_objects, compile, limits)
