"""Check a model file's container before anything reads its config: format, sizes, HDF5 content.

A ``.keras`` file is a zip archive; its ``model.weights.h5`` member is copied to a private
temporary file before h5py opens it (h5py seeks backwards, and every backward seek in a zip
member stream inflates it again from the start). HDF5 files are walked iteratively with bounded
depth and object count, refusing links to other data, external or virtual datasets, and weights
that declare more bytes than the file holds (compressed or unwritten datasets: memory bombs).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from vizkit.errors import InputError, ModelFileError, VizkitError, one_line
from vizkit.loading._limits import RAISE, Limits, over, size

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
EXTENSIONS = {"keras": (".keras",), "h5": (".h5", ".hdf5")}
_REQUIRED_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_MAX_MEMBERS = 10_000
_MEMBER_PART = re.compile(r"[\w\-][\w.\- ]*\Z")
_H5_SLACK = 1_000_000  # HDF5 headers are in the file, so declared data never exceeds it by more


@dataclasses.dataclass(frozen=True)
class Weights:
    """What a weights file declares: bytes and values of its datasets, and its real size."""

    declared_bytes: int = 0
    declared_values: int = 0
    stored_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class Contents:
    """A model file's parts, read after its container passed every check."""

    format: str
    config: dict
    keras_version: str | None
    extra: list  # training configs (legacy .h5, compile=True)
    weights: Weights


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------
def read_source(source: Any, max_bytes: int) -> bytes | None:
    """The bytes of a bytes-like or binary file source, or None for anything else."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif callable(getattr(source, "read", None)):
        data = _read_file_object(source, max_bytes)
    else:
        return None
    if len(data) > max_bytes:
        raise ModelFileError(
            f"uploaded model is larger than the {size(max_bytes)} limit: pass max_bytes= to "
            "allow bigger files"
        )
    return data


def _read_file_object(source: BinaryIO, max_bytes: int) -> bytes:
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
    return bytes(data)


def format_of(head: bytes) -> str | None:
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head.startswith(HDF5_MAGIC):
        return "h5"
    return None


def not_a_model(shown: str, head: bytes) -> str:
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return (
            f"{shown!r} is not a Keras model file: it is a Python pickle, which vizkit never "
            "loads because unpickling can run any code"
        )
    if head.startswith(b"PK"):
        return f"{shown!r} is not a Keras model file: it is an empty or unusual zip archive"
    return f"{shown!r} is not a Keras model file (expected a .keras archive or an .h5 file)"


def check_extension(name: str, fmt: str, shown: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix in EXTENSIONS[fmt]:
        return
    expected = EXTENSIONS[fmt][0]
    kind = ".keras archive" if fmt == "keras" else "legacy .h5 model"
    if any(suffix in exts for exts in EXTENSIONS.values()):
        raise ModelFileError(
            f"{shown!r} is a {kind} but is named {suffix}: rename it to end in {expected}"
        )
    raise ModelFileError(
        f"{shown!r} has the unknown extension {suffix or '(none)'!r}: it looks like a {kind}, "
        f"so rename it to end in {expected}"
    )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def check_file(
    path: Path, shown: str, limits: Limits, compile: bool
) -> tuple[Contents, tuple[int, int, int, int]]:
    """Check a model file's container and read its config; return it and the file's stat key."""
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
        raise ModelFileError(f"{shown!r} is not a regular file: pass a .keras or .h5 model file")
    if st.st_size == 0:
        raise ModelFileError(f"model file {shown!r} is empty")
    if st.st_size > limits.max_bytes:
        raise ModelFileError(
            f"model file {shown!r} is {over(st.st_size, limits.max_bytes)}: pass max_bytes= to "
            "allow bigger files"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {shown!r}: {one_line(err.strerror)}") from err
    fmt = format_of(head)
    if fmt is None:
        raise ModelFileError(not_a_model(shown, head))
    check_extension(path.name, fmt, shown)
    if fmt == "keras":
        contents = _read_keras_archive(path, shown, st.st_size, limits, compile)
    else:
        contents = _read_h5(path, shown, st.st_size, limits, compile)
    return contents, stat_key(st)


def _eocd_present(path: Path, size_: int) -> bool:
    """Whether the zip end-of-central-directory record is in the file's last 64 KiB."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size_ - (65_536 + 22)))
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


def _check_members(archive: zipfile.ZipFile, shown: str, limits: Limits) -> None:
    infos = archive.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise ModelFileError(f"{shown!r} has {len(infos)} archive members: too many to check")
    seen: set[str] = set()
    total = 0
    for info in infos:
        _check_member_name(info.filename, shown)
        if info.filename in seen:
            raise ModelFileError(
                f"{shown!r} has two archive members named {info.filename!r}: refusing to guess "
                "which one Keras would read"
            )
        seen.add(info.filename)
        if info.flag_bits & 0x1:
            raise ModelFileError(f"archive member {info.filename!r} in {shown!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"archive member {info.filename!r} in {shown!r} uses an unsupported compression "
                "method"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ModelFileError(
                f"archive member {info.filename!r} in {shown!r} is a symbolic link"
            )
        total += info.file_size
        if info.file_size > limits.max_bytes:
            raise ModelFileError(
                f"archive member {info.filename!r} in {shown!r} unpacks to "
                f"{over(info.file_size, limits.max_bytes)}: {RAISE}"
            )
    if total > limits.max_bytes:
        raise ModelFileError(f"{shown!r} unpacks to {over(total, limits.max_bytes)}: {RAISE}")
    missing = [name for name in _REQUIRED_MEMBERS if name not in seen]
    if "config.json" in missing:
        raise ModelFileError(
            f"{shown!r} is a zip archive but not a Keras model file: it has no config.json"
        )
    if missing:
        raise ModelFileError(
            f"{shown!r} is an incomplete Keras model file: it has no {', '.join(missing)}"
        )


def _read_keras_archive(
    path: Path, shown: str, size_: int, limits: Limits, compile: bool
) -> Contents:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if not _eocd_present(path, size_):
            raise ModelFileError(f"model file {shown!r} is truncated") from err
        raise ModelFileError(f"model file {shown!r} is a corrupt zip archive") from err
    with archive:
        _check_members(archive, shown, limits)
        try:
            bad = archive.testzip()
        except Exception as err:  # zlib.error, EOFError, BadZipFile, OSError ...
            raise ModelFileError(f"model file {shown!r} is truncated or corrupt") from err
        if bad is not None:
            raise ModelFileError(
                f"archive member {bad!r} in {shown!r} is corrupt: its checksum does not match"
            )
        config = _parse_json(archive, "config.json", shown, limits.config_bytes)
        metadata = _parse_json(archive, "metadata.json", shown, limits.config_bytes)
        weights = _check_weights_member(archive, shown, limits)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(
            f"{shown!r} is not a Keras model file: its config.json does not describe a model"
        )
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{shown!r} is a corrupt Keras model file: metadata.json is invalid")
    version = metadata.get("keras_version")
    if not compile:  # Keras drops the top-level compile config when compile=False
        config = {key: value for key, value in config.items() if key != "compile_config"}
    return Contents("keras", config, version if isinstance(version, str) else None, [], weights)


def _check_weights_member(archive: zipfile.ZipFile, shown: str, limits: Limits) -> Weights:
    """Copy model.weights.h5 to a private temporary file and check it there."""
    member = archive.getinfo("model.weights.h5")
    where = f"model.weights.h5 in {shown!r}"
    with tempfile.TemporaryDirectory(prefix="vizkit-weights-") as tmp:
        copy = Path(tmp) / "model.weights.h5"
        with archive.open(member) as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target, length=1 << 20)
        with open(copy, "rb") as handle:
            if handle.read(8) != HDF5_MAGIC:
                raise ModelFileError(
                    f"{shown!r} is a corrupt Keras model file: model.weights.h5 is not HDF5"
                )
        h5 = open_h5(copy, where)
        with h5:
            return check_h5(h5, where, member.file_size, limits)


def _parse_json(archive: zipfile.ZipFile, member: str, shown: str, limit: int) -> Any:
    declared = archive.getinfo(member).file_size
    if declared > limit:
        raise ModelFileError(
            f"{member} in {shown!r} is {over(declared, limit)} for a model config: {RAISE}"
        )
    try:
        return json.loads(archive.read(member).decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise ModelFileError(
            f"{shown!r} is a corrupt Keras model file: {member} is not valid JSON"
        ) from err


# --------------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------------
def open_h5(path: Path, shown: str) -> Any:
    import h5py

    try:
        return h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError with HDF5 internals in the message
        if "truncated" in str(err):
            raise ModelFileError(f"{shown} is truncated") from err
        raise ModelFileError(f"{shown} is a corrupt HDF5 file") from err


def check_h5(h5: Any, shown: str, stored: int, limits: Limits) -> Weights:
    """Walk an open HDF5 file without recursion; refuse links, external data and bombs.

    Every group is visited once (hard-link cycles are cut), no deeper than ``limits.h5_depth``,
    at most ``limits.h5_objects`` objects in all. Datasets must be plain (not virtual or
    external), and together declare no more bytes than the file holds.
    """
    try:
        declared_bytes, values = _walk_h5(h5, shown, limits)
    except VizkitError:
        raise
    except Exception as err:
        raise ModelFileError(f"{shown} is a corrupt HDF5 file") from err
    if declared_bytes > limits.max_bytes:
        raise ModelFileError(
            f"{shown} unpacks to more than the {size(limits.max_bytes)} limit: {RAISE}"
        )
    if declared_bytes > stored + _H5_SLACK:
        raise ModelFileError(
            f"{shown} declares {size(declared_bytes)} of weights but holds only {size(stored)}: "
            "its weights are compressed or missing, so loading it would allocate memory the "
            "file does not back; re-save the model with Keras"
        )
    return Weights(declared_bytes, values, stored)


def _walk_h5(h5: Any, shown: str, limits: Limits) -> tuple[int, int]:
    """Declared bytes and values of all datasets; HDF5's own visitors do the walking.

    ``H5Lvisit`` reports every link once, with its path, and never follows a hard-link cycle;
    the callback stops it at the first soft or external link, or past the depth or count
    limit. ``H5Ovisit`` then lists the datasets, which are opened one by one.
    """
    import h5py

    problem: list[str] = []
    objects = 0

    def on_link(name: bytes, info: Any) -> bool | None:
        nonlocal objects
        objects += 1
        shown_name = one_line(name.decode("utf-8", "replace"))[:80]
        if info.type in (h5py.h5l.TYPE_SOFT, h5py.h5l.TYPE_EXTERNAL) or info.type > 1:
            problem.append(f"{shown} links to other data ({shown_name!r}): refusing to open it")
        elif objects > limits.h5_objects:
            problem.append(
                f"{shown} holds more than {limits.h5_objects:,} HDF5 objects: too many to "
                "check, refusing to open it"
            )
        elif name.count(b"/") >= limits.h5_depth:
            problem.append(
                f"{shown} nests HDF5 groups more than {limits.h5_depth} deep: refusing to open it"
            )
        return True if problem else None

    h5.id.links.visit(on_link, info=True)
    if problem:
        raise ModelFileError(problem[0])
    datasets: list[bytes] = []

    def on_object(name: bytes, info: Any) -> None:
        if info.type == h5py.h5o.TYPE_DATASET:
            datasets.append(name)

    h5py.h5o.visit(h5.id, on_object, info=True)
    declared = values = 0
    for name in datasets:
        dataset = h5py.h5d.open(h5.id, name)
        plist = dataset.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL or plist.get_external_count() > 0:
            shown_name = one_line(name.decode("utf-8", "replace"))[:80]
            raise ModelFileError(
                f"{shown} reads data from other files ({shown_name!r}): refusing to open it"
            )
        n = 1
        for dim in dataset.shape or ():
            n *= int(dim)
        values += n
        declared += n * dataset.get_type().get_size()
        if declared > limits.max_bytes:
            raise ModelFileError(
                f"{shown} unpacks to more than the {size(limits.max_bytes)} limit: {RAISE}"
            )
    return declared, values


def _read_h5(path: Path, shown: str, size_: int, limits: Limits, compile: bool) -> Contents:
    where = f"model file {shown!r}"
    h5 = open_h5(path, where)
    with h5:
        weights = check_h5(h5, where, size_, limits)
        try:
            raw = _h5_attr(h5, "model_config", shown, limits)
            training = _h5_attr(h5, "training_config", shown, limits) if compile else None
            weights_only = raw is None and (
                "layer_names" in h5.attrs or any(k in h5 for k in ("model_weights", "vars"))
            )
        except VizkitError:
            raise
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
    return Contents("h5", config, None, extra, weights)


def _h5_attr(h5: Any, name: str, shown: str, limits: Limits) -> Any:
    """An attribute's value, refused when it is bigger than a config may be.

    Fixed-size attributes are measured before reading; variable-length strings (what Keras
    writes) live in the file's heap, so reading one costs at most the file's size.
    """
    if name not in h5.attrs:
        return None
    declared = h5.attrs.get_id(name).get_storage_size()
    if declared <= limits.config_bytes:
        value = h5.attrs[name]
        declared = len(value) if isinstance(value, (str, bytes)) else declared
    if declared > limits.config_bytes:
        raise ModelFileError(
            f"the {name} in {shown!r} is {over(declared, limits.config_bytes)} for a model "
            f"config: {RAISE}"
        )
    return value


def _decode_json_attr(raw: Any, shown: str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        return json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError, AttributeError) as err:
        raise ModelFileError(f"{shown!r} is a corrupt model file: its config is not JSON") from err
