"""Load Keras models from files that may be broken or hostile.

:func:`load_model` checks a file before Keras sees it: the file exists and is not empty, its
content matches its extension (``.keras`` zip archive or legacy ``.h5``), it and every archive
member are under a size limit, member names are plain, checksums match, and the required
members exist. It then reads the model config and refuses anything that would run code from
the file: ``Lambda`` layers, serialized Python functions, and references to functions or classes
outside Keras (``os.system``, ``builtins.eval``, ``__main__`` classes, registered custom
objects) unless the caller passes them in ``custom_objects`` or says ``trust=True``. Only then is
the file handed to Keras, always with Keras's safe mode on unless ``trust=True``.

Every failure raises :class:`~vizkit.errors.ModelFileError` (or its subclass
:class:`~vizkit.errors.UnsafeModelError`) with a one-line message; the underlying Keras or h5py
exception is chained as ``__cause__``. TensorFlow is imported only once a file has passed the
checks, so refusing a file never imports Keras.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import io
import json
import os
import re
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vizkit.errors import InputError, ModelFileError, UnsafeModelError, VizkitError, one_line

if TYPE_CHECKING:  # pragma: no cover
    from vizkit._tf import keras

__all__ = ["DEFAULT_MAX_BYTES", "ModelFileInfo", "check_model_file", "load_model"]

DEFAULT_MAX_BYTES = 500_000_000
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_EXTENSIONS = {"keras": (".keras",), "h5": (".h5", ".hdf5")}
_REQUIRED_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_MAX_CONFIG_BYTES = 100_000_000  # JSON configs are kilobytes; cap parsing work and memory
_MAX_MEMBERS = 10_000
_MEMBER_PART = re.compile(r"[\w\-][\w.\- ]*\Z")
_SPECIAL_CLASSES = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
)
# Keras layers that run code or read files named by the config (Keras gates them with safe mode)
_CODE_LAYERS = {
    "Lambda": "run Python code",
    "TorchModuleWrapper": "unpickle Python objects, which can run any code,",
    "TFSMLayer": "load and run an external TensorFlow SavedModel",
}
_TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
# Keras modules whose *functions* have no place in a model config (downloads, file I/O,
# global settings); Keras refuses some of these itself (NON_MODELING_APIS).
_KERAS_NON_MODELING = (
    "keras.utils",
    "keras.config",
    "keras.saving",
    "keras.backend",
    "keras.models",
    "keras.preprocessing",
    "keras.callbacks",
    "keras.datasets",
    "keras.export",
    "keras.distribution",
    "keras.src.utils",
    "keras.src.saving",
    "keras.src.backend",
    "keras.src.legacy",
)


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
    """

    path: Path
    format: str
    size: int
    config: dict = dataclasses.field(repr=False)
    keras_version: str | None
    custom_objects: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------
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
        ``True`` runs code from the file: ``Lambda`` layers, serialized Python functions and
        custom objects registered in this process are allowed, and Keras's safe mode is turned
        off for this one call. Use it only for files whose author you trust.
    custom_objects : mapping of str to class or function, optional
        Your implementations of the custom layers and functions the model names, keyed by the
        name in the error message (``{"MyLayer": MyLayer}``). Used for this call only; nothing
        is registered globally.
    max_bytes : int
        Largest allowed file and unpacked archive size (each member and all members together).
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
        The file is missing, empty, too large, truncated, corrupt, not a Keras model, or Keras
        cannot build it.
    InputError
        An argument has the wrong type or value.

    Examples
    --------
    >>> model = vizkit.load_model("cnn.keras")                      # doctest: +SKIP
    >>> model = vizkit.load_model(upload.getvalue(), filename=upload.name)  # doctest: +SKIP
    """
    _check_arguments(trust, custom_objects, max_bytes, compile)
    if _is_path(source):
        if filename is not None:
            raise InputError("filename= is only for bytes or file objects: pass the path alone")
        return _load_path(
            Path(os.path.expanduser(os.fspath(source))),
            None,
            trust,
            custom_objects,
            max_bytes,
            compile,
        )
    data = _read_source(source, max_bytes)
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
    return _load_bytes(data, filename, trust, custom_objects, max_bytes, compile)


def check_model_file(
    path: str | os.PathLike[str],
    *,
    trust: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    compile: bool = False,
) -> ModelFileInfo:
    """Run every check :func:`load_model` runs, without loading the model or importing Keras.

    Parameters are as for :func:`load_model`. Names resolved through ``custom_objects`` or, with
    ``trust=True``, anything outside Keras, pass; TensorFlow may be imported only to tell
    Keras's own names from custom ones in legacy files.

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
    return _check_path(path, _display(path), trust, custom_objects or {}, max_bytes, compile)[0]


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------
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


def _is_path(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))


def _read_source(source: Any, max_bytes: int) -> bytes | None:
    """The bytes of a bytes-like or binary file source, or None for anything else."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif callable(getattr(source, "read", None)):
        if isinstance(source, io.TextIOBase):
            raise InputError("the model file object is open in text mode: open it with 'rb'")
        try:
            if callable(getattr(source, "seek", None)):
                source.seek(0)
            data = source.read(max_bytes + 1)
        except (OSError, ValueError) as err:
            raise ModelFileError(f"could not read the uploaded model: {one_line(err)}") from err
        if isinstance(data, str):
            raise InputError("the model file object is open in text mode: open it with 'rb'")
        if not isinstance(data, (bytes, bytearray)):
            raise InputError(f"reading the model file object gave {type(data).__name__}, not bytes")
        data = bytes(data)
    else:
        return None
    if len(data) > max_bytes:
        raise ModelFileError(
            f"uploaded model is larger than the {_size(max_bytes)} limit: pass max_bytes= to "
            "allow bigger files"
        )
    return data


def _load_bytes(
    data: bytes,
    filename: str | None,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    max_bytes: int,
    compile: bool,
) -> keras.Model:
    shown = filename or "uploaded model"
    if not data:
        raise ModelFileError(
            f"{'model file ' + repr(filename) if filename else 'uploaded model'} is empty"
        )
    fmt = _format_of(data[:8])
    if fmt is None:
        raise ModelFileError(_not_a_model(shown, data[:8]))
    if filename is not None:
        _check_extension(filename, fmt, shown)
    with tempfile.TemporaryDirectory(prefix="vizkit-model-") as tmp:
        path = Path(tmp) / ("model" + _EXTENSIONS[fmt][0])
        with open(path, "wb") as handle:
            handle.write(data)
        return _load_path(path, shown, trust, custom_objects, max_bytes, compile)


# --------------------------------------------------------------------------------------------
# Checking a file
# --------------------------------------------------------------------------------------------
def _display(path: Path) -> str:
    return one_line(str(path))


def _over(size: int, limit: int) -> str:
    """``"2.0 MB, over the 1.0 MB limit"``, exact when rounding would hide the difference."""
    shown, cap = _size(size), _size(limit)
    if shown == cap:
        shown, cap = f"{size:,} bytes", f"{limit:,} bytes"
    return f"{shown}, over the {cap} limit"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _format_of(head: bytes) -> str | None:
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head.startswith(HDF5_MAGIC):
        return "h5"
    return None


def _not_a_model(shown: str, head: bytes) -> str:
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return (
            f"{shown!r} is not a Keras model file: it is a Python pickle, which vizkit never "
            "loads because unpickling can run any code"
        )
    if head.startswith(b"PK"):
        return f"{shown!r} is not a Keras model file: it is an empty or unusual zip archive"
    return f"{shown!r} is not a Keras model file (expected a .keras archive or an .h5 file)"


def _check_extension(name: str, fmt: str, shown: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix in _EXTENSIONS[fmt]:
        return
    expected = _EXTENSIONS[fmt][0]
    kind = ".keras archive" if fmt == "keras" else "legacy .h5 model"
    if any(suffix in exts for exts in _EXTENSIONS.values()):
        raise ModelFileError(
            f"{shown!r} is a {kind} but is named {suffix}: rename it to end in {expected}"
        )
    raise ModelFileError(
        f"{shown!r} has the unknown extension {suffix or '(none)'!r}: it looks like a {kind}, "
        f"so rename it to end in {expected}"
    )


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_path(
    path: Path,
    shown: str,
    trust: bool,
    custom_objects: Mapping[str, Any],
    max_bytes: int,
    compile: bool,
) -> tuple[ModelFileInfo, tuple[int, int, int, int]]:
    try:
        st = os.stat(path)
    except FileNotFoundError as err:
        raise ModelFileError(f"no model file at {shown!r}") from err
    except OSError as err:
        raise ModelFileError(f"cannot read model file {shown!r}: {one_line(err.strerror)}") from err
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(
            f"{shown!r} is a directory: pass the path of a .keras or .h5 model file"
        )
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{shown!r} is not a regular file")
    if st.st_size == 0:
        raise ModelFileError(f"model file {shown!r} is empty")
    if st.st_size > max_bytes:
        raise ModelFileError(
            f"model file {shown!r} is {_over(st.st_size, max_bytes)}: pass max_bytes= to allow "
            "bigger files"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {shown!r}: {one_line(err.strerror)}") from err
    fmt = _format_of(head)
    if fmt is None:
        raise ModelFileError(_not_a_model(shown, head))
    _check_extension(path.name, fmt, shown)
    if fmt == "keras":
        config, version, extra = _read_keras_archive(path, shown, st.st_size, max_bytes, compile)
    else:
        config, version, extra = _read_h5(path, shown, max_bytes, compile)
    used = _scan(config, extra, trust, custom_objects)
    info = ModelFileInfo(path, fmt, st.st_size, config, version, used)
    return info, _stat_key(st)


def _eocd_present(path: Path, size: int) -> bool:
    """Whether the zip end-of-central-directory record is in the file's last 64 KiB."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - (65_536 + 22)))
        return b"PK\x05\x06" in handle.read()


def _check_member_name(name: str, shown: str) -> None:
    plain = name[:-1] if name.endswith("/") else name
    parts = plain.split("/")
    if (
        not plain
        or len(name) > 1024
        or any(not _MEMBER_PART.match(part) or len(part) > 255 for part in parts)
    ):
        raise ModelFileError(
            f"{shown!r} has an archive member with an unsafe name {one_line(repr(name))[:80]}: "
            "refusing to open it"
        )


def _read_keras_archive(
    path: Path, shown: str, size: int, max_bytes: int, compile: bool
) -> tuple[dict, str | None, list]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if not _eocd_present(path, size):
            raise ModelFileError(f"model file {shown!r} is truncated") from err
        raise ModelFileError(f"model file {shown!r} is a corrupt zip archive") from err
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ModelFileError(f"{shown!r} has {len(infos)} archive members: too many to check")
        seen: set[str] = set()
        total = 0
        for info in infos:
            _check_member_name(info.filename, shown)
            if info.filename in seen:
                raise ModelFileError(
                    f"{shown!r} has two archive members named {info.filename!r}: refusing to "
                    "guess which one Keras would read"
                )
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise ModelFileError(f"archive member {info.filename!r} in {shown!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(
                    f"archive member {info.filename!r} in {shown!r} uses an unsupported "
                    "compression method"
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ModelFileError(
                    f"archive member {info.filename!r} in {shown!r} is a symbolic link"
                )
            total += info.file_size
            if info.file_size > max_bytes:
                raise ModelFileError(
                    f"archive member {info.filename!r} in {shown!r} unpacks to "
                    f"{_over(info.file_size, max_bytes)}: pass max_bytes= to allow bigger models"
                )
        if total > max_bytes:
            raise ModelFileError(
                f"{shown!r} unpacks to {_over(total, max_bytes)}: pass max_bytes= to allow "
                "bigger models"
            )
        missing = [name for name in _REQUIRED_MEMBERS if name not in seen]
        if "config.json" in missing:
            raise ModelFileError(
                f"{shown!r} is a zip archive but not a Keras model file: it has no config.json"
            )
        if missing:
            raise ModelFileError(
                f"{shown!r} is an incomplete Keras model file: it has no {', '.join(missing)}"
            )
        try:
            bad = archive.testzip()
        except Exception as err:  # zlib.error, EOFError, BadZipFile, OSError ...
            raise ModelFileError(f"model file {shown!r} is truncated or corrupt") from err
        if bad is not None:
            raise ModelFileError(
                f"archive member {bad!r} in {shown!r} is corrupt: its checksum does not match"
            )
        config = _parse_json(archive, "config.json", shown)
        metadata = _parse_json(archive, "metadata.json", shown)
        with archive.open("model.weights.h5") as weights:
            if weights.read(8) != HDF5_MAGIC:
                raise ModelFileError(
                    f"{shown!r} is a corrupt Keras model file: model.weights.h5 is not HDF5"
                )
            weights.seek(0)
            _check_h5_content(weights, f"model.weights.h5 in {shown!r}", max_bytes).close()
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(
            f"{shown!r} is not a Keras model file: its config.json does not describe a model"
        )
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{shown!r} is a corrupt Keras model file: metadata.json is invalid")
    version = metadata.get("keras_version")
    extra: list = []
    if not compile:  # Keras drops the top-level compile config when compile=False
        config = {key: value for key, value in config.items() if key != "compile_config"}
    return config, version if isinstance(version, str) else None, extra


def _parse_json(archive: zipfile.ZipFile, member: str, shown: str) -> Any:
    if archive.getinfo(member).file_size > _MAX_CONFIG_BYTES:
        raise ModelFileError(
            f"{member} in {shown!r} is {_size(archive.getinfo(member).file_size)}: too big for "
            "a model config"
        )
    try:
        return json.loads(archive.read(member).decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise ModelFileError(
            f"{shown!r} is a corrupt Keras model file: {member} is not valid JSON"
        ) from err


def _check_h5_content(handle: Any, shown: str, max_bytes: int) -> Any:
    """Open an HDF5 file, refuse links and external or oversized data, return the open file."""
    import h5py

    try:
        h5 = h5py.File(handle, "r")
    except Exception as err:  # h5py raises OSError with HDF5 internals in the message
        if "truncated" in str(err):
            raise ModelFileError(f"{shown} is truncated") from err
        raise ModelFileError(f"{shown} is a corrupt HDF5 file") from err
    try:
        problems: list[str] = []
        total = 0

        def visit_link(name: str, link: Any) -> Any:
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                problems.append(f"{shown} links to other data ({name!r})")
                return True
            return None

        def visit(name: str, obj: Any) -> Any:
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                if obj.is_virtual or obj.external:
                    problems.append(f"{shown} reads data from other files ({name!r})")
                    return True
                total += int(obj.size) * obj.dtype.itemsize
                if total > max_bytes:
                    problems.append(
                        f"{shown} unpacks to more than the {_size(max_bytes)} limit: pass "
                        "max_bytes= to allow bigger models"
                    )
                    return True
            return None

        h5.visititems_links(visit_link)
        if not problems:
            h5.visititems(visit)
    except VizkitError:
        h5.close()
        raise
    except Exception as err:
        h5.close()
        raise ModelFileError(f"{shown} is a corrupt HDF5 file") from err
    if problems:
        h5.close()
        raise ModelFileError(f"{problems[0]}: refusing to open it")
    return h5


def _read_h5(path: Path, shown: str, max_bytes: int, compile: bool) -> tuple[dict, None, list]:
    with open(path, "rb") as handle:
        h5 = _check_h5_content(handle, f"model file {shown!r}", max_bytes)
        with h5:
            try:
                raw = h5.attrs.get("model_config")
                training = h5.attrs.get("training_config") if compile else None
                weights_only = raw is None and (
                    "layer_names" in h5.attrs or any(k in h5 for k in ("model_weights", "vars"))
                )
            except Exception as err:
                raise ModelFileError(f"model file {shown!r} is a corrupt HDF5 file") from err
    if raw is None:
        if weights_only:
            raise ModelFileError(
                f"{shown!r} holds only weights, not a model: build the architecture in code "
                "and call model.load_weights on it"
            )
        raise ModelFileError(f"{shown!r} is an HDF5 file but not a Keras model file")
    config = _decode_json_attr(raw, shown)
    extra = [_decode_json_attr(training, shown)] if training is not None else []
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{shown!r} is not a Keras model file: its model config is invalid")
    return config, None, extra


def _decode_json_attr(raw: Any, shown: str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if len(text) > _MAX_CONFIG_BYTES:
            raise ModelFileError(f"the model config in {shown!r} is too big")
        return json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError, AttributeError) as err:
        raise ModelFileError(f"{shown!r} is a corrupt model file: its config is not JSON") from err


# --------------------------------------------------------------------------------------------
# Scanning the config for code
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Ref:
    """A class or function the config names, as Keras would look it up."""

    module: str | None  # None: no module given (legacy .h5) or Keras wrote None
    has_module: bool
    name: str  # class name or function name
    key: str  # name Keras looks up in custom_objects
    function: bool


@dataclasses.dataclass
class _Findings:
    code_layers: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # class: names
    code_in: list[str] = dataclasses.field(default_factory=list)  # serialized functions
    files_read: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # layer, path
    tf_ops: list[str] = dataclasses.field(default_factory=list)
    refs: list[_Ref] = dataclasses.field(default_factory=list)
    malformed: bool = False


def _walk(root: Any) -> Iterator[tuple[dict, str | None]]:
    """Yield every dict in a JSON tree with the name of the layer it belongs to (no recursion)."""
    stack: list[tuple[Any, str | None]] = [(root, None)]
    while stack:
        node, layer = stack.pop()
        if isinstance(node, dict):
            inner = node.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            if not isinstance(name, str) and "class_name" in node:
                name = node.get("name")
            if isinstance(name, str) and "class_name" in node:
                layer = name
            yield node, layer
            stack.extend((value, layer) for value in reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend((value, layer) for value in reversed(node))


def _find(config: dict, extra: list) -> _Findings:
    found = _Findings()
    for root in [config, *extra]:
        for node, layer in _walk(root):
            class_name = node.get("class_name")
            if class_name is None:
                continue
            if not isinstance(class_name, str):
                found.malformed = True
                continue
            where = layer or "(unnamed)"
            if class_name == "__lambda__":
                found.code_in.append(where)
                continue
            inner = node.get("config")
            if isinstance(inner, dict) and isinstance(inner.get("vocabulary"), str):
                found.files_read.append((where, inner["vocabulary"]))
            if class_name in _CODE_LAYERS:
                found.code_layers.setdefault(class_name, []).append(where)
                continue
            if class_name in _TF_OP_LAYERS:
                found.tf_ops.append(where)
                continue
            if class_name in _SPECIAL_CLASSES:
                continue
            module = node.get("module")
            if module is not None and not isinstance(module, str):
                found.malformed = True
                continue
            registered = node.get("registered_name")
            registered = registered if isinstance(registered, str) and registered else None
            if class_name == "__typespec__":
                spec = node.get("spec_name")
                if not isinstance(spec, str):
                    found.malformed = True
                    continue
                found.refs.append(_Ref(module, "module" in node, spec, registered or spec, False))
            elif class_name == "function":
                fn = node.get("config")
                if not isinstance(fn, str):
                    found.malformed = True
                    continue
                found.refs.append(_Ref(module, "module" in node, fn, fn, True))
            else:
                found.refs.append(
                    _Ref(module, "module" in node, class_name, registered or class_name, False)
                )
    return found


def _is_keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def _is_system_module(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in sys.stdlib_module_names or top in ("builtins", "__builtin__")


_FUNCTION_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)


@functools.cache
def _keras_names() -> frozenset[str]:
    """Class names legacy ``.h5`` configs use for Keras's own classes (imports Keras)."""
    from vizkit._tf import keras

    names = {"Functional", "Model", "Sequential", "InputLayer", "Policy"}
    namespaces = [keras.layers, keras.dtype_policies, keras.optimizers.schedules]
    namespaces += [getattr(keras, mod) for mod in _FUNCTION_MODULES]
    for namespace in namespaces:
        names.update(
            name
            for name in dir(namespace)
            if not name.startswith("_") and isinstance(getattr(namespace, name), type)
        )
    return frozenset(names)


def _is_keras_function(name: str) -> bool:
    """Whether Keras resolves a bare function name itself (``"relu"``, ``"mse"``)."""
    from vizkit._tf import keras

    if name.startswith("_") or name in ("get", "serialize", "deserialize"):
        return False
    return any(callable(getattr(getattr(keras, mod), name, None)) for mod in _FUNCTION_MODULES)


def _keras_refusal(ref: _Ref) -> str | None:
    """A keras.* function that is not part of a model (downloads, settings, file I/O)."""
    if not ref.function or ref.module is None:
        return None
    full = f"{ref.module}.{ref.name}"
    if any(ref.module == p or ref.module.startswith(p + ".") for p in _KERAS_NON_MODELING):
        return full
    return None


def _scan(
    config: dict, extra: list, trust: bool, custom_objects: Mapping[str, Any]
) -> tuple[str, ...]:
    """Refuse configs that would run code; return the custom-object names they use."""
    found = _find(config, extra)
    if found.malformed:
        raise ModelFileError("model config is malformed: a class or module entry is not text")
    provided = set(custom_objects)

    def satisfied(ref: _Ref) -> bool:
        return ref.key in provided or ref.name in provided

    if not trust:
        if found.code_layers or found.code_in:
            raise UnsafeModelError(_code_message(found))
        if found.files_read:
            layer, path = found.files_read[0]
            raise UnsafeModelError(
                f"layer {layer!r} would read the file {one_line(path)[:120]!r} from this machine "
                "when loaded: load it with trust=True only if you trust its author"
            )
    if found.tf_ops and not {"TFOpLambda", "SlicingOpLambda"} & provided:
        raise ModelFileError(
            f"model uses raw TensorFlow operations (layer {found.tf_ops[0]!r}) saved by tf.keras "
            "2, which Keras 3 cannot load: re-save it with those operations wrapped in layers"
        )
    system: list[str] = []
    non_modeling: list[str] = []
    custom: list[str] = []
    used: list[str] = []
    for ref in found.refs:
        module = ref.module
        if module is not None and _is_keras_module(module):
            refused = _keras_refusal(ref)
            if refused:
                non_modeling.append(refused)
            continue
        if module == "builtins" and ref.function:
            # Keras writes plain and registered functions as module "builtins"
            if ">" not in ref.name and _is_keras_function(ref.name):
                continue
            if ">" not in ref.name and hasattr(builtins, ref.name):
                system.append(f"builtins.{ref.name}")
            elif satisfied(ref):
                used.append(ref.key)
            else:
                custom.append(ref.key)
            continue
        if module is not None and _is_system_module(module):
            system.append(f"{module}.{ref.name}")
            continue
        if not ref.has_module or module is None:
            if ref.function and _is_keras_function(ref.name):
                continue
            if not ref.function and not ref.has_module and ref.name in _keras_names():
                continue
        if satisfied(ref):
            used.append(ref.key)
        else:
            custom.append(ref.key)
    if trust:
        return tuple(dict.fromkeys(used))
    if system:
        names = ", ".join(dict.fromkeys(system))
        raise UnsafeModelError(
            f"model config refers to {names}, Python code outside Keras that could run on this "
            "machine when loaded: load it with trust=True only if you trust its author"
        )
    if non_modeling:
        raise UnsafeModelError(
            f"model config calls {', '.join(dict.fromkeys(non_modeling))}, which is not part of "
            "a model: load it with trust=True only if you trust its author"
        )
    if custom:
        raise UnsafeModelError(_custom_message(list(dict.fromkeys(custom))))
    return tuple(dict.fromkeys(used))


def _code_message(found: _Findings) -> str:
    advice = "load it with trust=True only if you trust its author"
    for class_name, action in _CODE_LAYERS.items():
        names = list(dict.fromkeys(found.code_layers.get(class_name, [])))
        if names:
            quoted = ", ".join(repr(name) for name in names)
            what = (
                f"{class_name} layer {quoted}"
                if len(names) == 1
                else f"{class_name} layers {quoted}"
            )
            article = "" if len(names) > 1 else "a "
            return f"model contains {article}{what} that would {action} when loaded: {advice}"
    quoted = ", ".join(repr(name) for name in dict.fromkeys(found.code_in))
    return f"model contains Python code in layer {quoted} that would run when loaded: {advice}"


def _custom_message(names: list[str], offer_trust: bool = True) -> str:
    shown = names[:8]
    more = f" (and {len(names) - 8} more)" if len(names) > 8 else ""
    mapping = ", ".join(f"{name!r}: ..." for name in shown)
    return (
        f"model needs custom objects {', '.join(shown)}{more}: pass custom_objects={{{mapping}}} "
        "with your implementations"
        + (", or trust=True to use ones registered in this process" if offer_trust else "")
    )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _load_path(
    path: Path,
    shown: str | None,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    max_bytes: int,
    compile: bool,
) -> keras.Model:
    shown = shown or _display(path)
    info, key = _check_path(path, shown, trust, custom_objects or {}, max_bytes, compile)
    canonical = str(path).endswith(_EXTENSIONS[info.format])
    scratch = (
        contextlib.nullcontext() if canonical else tempfile.TemporaryDirectory(prefix="vizkit-")
    )
    with scratch as tmp:
        target = path
        if tmp is not None:  # Keras needs the exact lower-case extension
            target = Path(tmp) / ("model" + _EXTENSIONS[info.format][0])
            try:
                os.symlink(path.resolve(), target)
            except OSError:
                import shutil

                shutil.copyfile(path, target)
        try:
            unchanged = _stat_key(os.stat(path)) == key
        except OSError:
            unchanged = False
        if not unchanged:
            raise ModelFileError(f"model file {shown!r} changed while it was being checked")
        return _keras_load(target, shown, trust, custom_objects, compile)


def _keras_load(
    path: Path,
    shown: str,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    compile: bool,
) -> keras.Model:
    from vizkit._tf import keras

    try:
        model = keras.saving.load_model(
            path,
            custom_objects=dict(custom_objects) if custom_objects else None,
            compile=compile,
            safe_mode=not trust,
        )
    except VizkitError:
        raise
    except Exception as err:
        raise _translate(err, shown, trust) from err
    if not isinstance(model, keras.Model):
        raise ModelFileError(
            f"{shown!r} holds a {type(model).__name__}, not a model: vizkit needs a keras.Model"
        )
    return model


_MISSING_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown (?:layer|object|class|function|activation)[^:]*: '?([\w>.\-]+)'?"),
    re.compile(r"Could not interpret [\w ]*identifier: '?([\w>.\-]+)'?"),
)


def _translate(err: Exception, shown: str, trust: bool) -> ModelFileError:
    """Turn a Keras/h5py exception into a one-line vizkit error."""
    text = str(err)
    for pattern in _MISSING_PATTERNS:
        match = pattern.search(text)
        if match:
            return ModelFileError(_custom_message([match.group(1)], offer_trust=not trust))
    lowered = text.lower()
    if "lambda" in lowered and "safe_mode" in lowered:
        return UnsafeModelError(
            f"model {shown!r} contains Python code that would run when loaded: load it with "
            "trust=True only if you trust its author"
        )
    if "could not be loaded" in lowered or ("expected" in lowered and "variables" in lowered):
        return ModelFileError(
            f"the weights in {shown!r} do not match its architecture: the file may be corrupt"
        )
    if isinstance(err, MemoryError):
        return ModelFileError(f"not enough memory to load {shown!r}")
    from vizkit._tf import keras

    return ModelFileError(
        f"Keras {keras.__version__} could not build the model in {shown!r}: it may be corrupt or "
        "saved by an incompatible Keras version"
    )
