"""Where a scan's images come from: folders, path lists, arrays and ``tf.data`` datasets.

A source is planned into fixed-size chunks (:class:`ChunkPlan`) before any image is decoded.
Each chunk has a *fingerprint* that identifies its content, so finished chunks are found again
on a rerun without reading them: for files it hashes the paths, sizes and modification times
(of the images and their masks), for arrays the bytes themselves. A ``tf.data`` dataset can only
be fingerprinted once read, so its chunks are always read and hashed (never recomputed).

Decoding (:func:`load_chunk`) never raises for a bad file: corrupt, truncated or non-image files
come back as skipped entries with a one-line reason. No TensorFlow here (a ``tf.data`` dataset is
read through its own ``as_numpy_iterator``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vizkit.errors import InputError
from vizkit.inputs import IMAGE_SUFFIXES, load_images

HASH_BYTES = 16  # blake2b digest size: 32 hex characters


def content_hash(data: bytes | memoryview) -> str:
    """Hex blake2b digest of ``data`` (the per-image content hash)."""
    return hashlib.blake2b(data, digest_size=HASH_BYTES).hexdigest()


def _digest(parts: Sequence[str]) -> str:
    h = hashlib.blake2b(digest_size=HASH_BYTES)
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Entry:
    """One image of a file source: its path (absolute), name (relative), label and mask path."""

    path: str
    name: str
    label: int = -1
    mask: str | None = None
    box: tuple[float, float, float, float] | None = None


@dataclasses.dataclass
class ChunkPlan:
    """Images ``start .. start+count`` of the source and (when known without reading) their
    fingerprint."""

    index: int
    start: int
    count: int
    fingerprint: str | None
    entries: list[Entry] | None = None  # file sources

    def describe(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "count": self.count}


@dataclasses.dataclass
class LoadedChunk:
    """Decoded images of one chunk (only the readable ones) plus what was skipped.

    ``offsets`` are the positions of the readable images within the chunk (0..count-1);
    ``skipped`` pairs positions with a one-line reason.
    """

    plan: ChunkPlan
    fingerprint: str
    images: np.ndarray  # (n, H, W, C) float32, model-ready
    offsets: np.ndarray  # (n,) int
    names: list[str]
    hashes: list[str]
    labels: np.ndarray  # (n,) int64, -1 unknown
    masks: np.ndarray | None  # (n, H, W) bool
    skipped: list[tuple[int, str, str]]  # (offset, name, reason)


class Source:
    """Base of the scan sources: a plan of chunks and a way to decode one."""

    kind = "source"
    class_names: tuple[str, ...] | None = None
    has_masks = False
    total = 0

    def plan(self, chunk_size: int) -> list[ChunkPlan]:
        raise NotImplementedError

    def load(self, plan: ChunkPlan, shape: tuple[int, int, int], value_range: tuple) -> LoadedChunk:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "images": self.total, "class_names": self.class_names}

    # file sources can be re-opened in another process (the Ray engine) from this
    def spec(self) -> dict[str, Any] | None:
        return None


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _walk(root: Path) -> list[str]:
    """Relative POSIX paths of the visible files under ``root``, sorted (hidden files and
    folders, ``.name``, are left out)."""
    found = []
    top = os.fspath(root)
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = os.path.relpath(folder, top).replace(os.sep, "/")
        prefix = "" if base == "." else base + "/"
        found.extend(prefix + f for f in files if not f.startswith("."))
    return sorted(found)


def _mask_index(masks_dir: Path) -> dict[str, str]:
    """Mask files by their relative path without suffix (``circle/00003``)."""
    index: dict[str, str] = {}
    for relative in _walk(masks_dir):
        stem, suffix = os.path.splitext(relative)
        if suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(stem, os.path.join(os.fspath(masks_dir), relative))
    return index


class FileSource(Source):
    """Image files: a folder (class subfolders as labels, or flat) or a list of paths.

    Parameters
    ----------
    entries : list of Entry
    class_names : tuple of str, optional
    root : str, optional
        The folder, when the source is one (recorded in the manifest).
    others : list of (name, reason)
        Files found in the folder that are not images: listed as skipped.
    """

    kind = "files"

    def __init__(
        self,
        entries: list[Entry],
        class_names: tuple[str, ...] | None = None,
        root: str | None = None,
        others: list[tuple[str, str]] | None = None,
    ) -> None:
        self.entries = entries
        self.class_names = class_names
        self.root = root
        self.others = others or []
        self.total = len(entries)
        self.has_masks = any(e.mask is not None or e.box is not None for e in entries)

    def plan(self, chunk_size: int) -> list[ChunkPlan]:
        plans = []
        for index, start in enumerate(range(0, self.total, chunk_size)):
            part = self.entries[start : start + chunk_size]
            keys = []
            for e in part:
                keys.append(f"{e.name}|{e.label}|{_stat_key(e.path)}")
                if e.mask is not None:
                    keys.append(f"mask|{_stat_key(e.mask)}")
                if e.box is not None:
                    keys.append(f"box|{e.box}")
            fingerprint = _digest(keys)
            plans.append(ChunkPlan(index, start, len(part), fingerprint, part))
        return plans

    def load(self, plan: ChunkPlan, shape: tuple[int, int, int], value_range: tuple) -> LoadedChunk:
        entries = plan.entries or []
        decoded = [decode_file(e, shape, value_range) for e in entries]
        return _assemble(plan, plan.fingerprint or "", entries, decoded, shape)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": self.root}


def _stat_key(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def decode_file(
    entry: Entry, shape: tuple[int, int, int], value_range: tuple
) -> tuple[np.ndarray | None, str, np.ndarray | None, str]:
    """``(image, content hash, mask, error)`` for one file; ``image`` is None when unreadable.

    The file is read once: its bytes are hashed and decoded from memory. Plain 8-bit RGB or
    grayscale files already at the model's size take a fast path; everything else goes through
    :func:`vizkit.inputs.load_images` (modes, alpha, resizing, channel conversion).
    """
    try:
        with open(entry.path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        return None, "", None, f"cannot read the file: {err.strerror or err}"
    if not data:
        return None, "", None, "the file is empty"
    digest = content_hash(data)
    height, width, channels = shape
    lo, hi = (float(v) for v in value_range)
    try:
        try:
            image = _fast_decode(data, height, width, channels)
        except Exception:  # noqa: BLE001 - load_images below names the problem
            image = None
        if image is None:
            batch = load_images(
                data, size=(height, width), channels=channels, value_range=(0.0, 1.0)
            )
            image = batch.array[0]
        else:
            image = image.astype(np.float32) / 255.0
        image = (lo + image * (hi - lo)).astype(np.float32)
    except InputError as err:
        reason = str(err).replace("image 'image 0'", "the image").replace("'image 0'", "the file")
        return None, digest, None, reason
    except Exception as err:  # noqa: BLE001 - any decoder failure skips the file
        return None, digest, None, f"cannot decode the image: {type(err).__name__}: {err}"
    mask = None
    if entry.mask is not None:
        try:
            mask = _load_mask(entry.mask, height, width)
        except Exception as err:  # noqa: BLE001
            return None, digest, None, f"its mask {entry.mask!r} is unreadable: {err}"
    elif entry.box is not None:
        from vizkit.metrics.localization import boxes_to_masks

        mask = boxes_to_masks(np.asarray([entry.box], np.float64), 1, (height, width))[0]
    return image, digest, mask, ""


def _fast_decode(data: bytes, height: Any, width: Any, channels: Any) -> np.ndarray | None:
    with Image.open(io.BytesIO(data)) as image:
        if image.size != (width, height) or getattr(image, "n_frames", 1) != 1:
            return None
        if image.mode == "RGB" and channels == 3 or image.mode == "L" and channels == 1:
            image.load()
            array = np.asarray(image, dtype=np.uint8)
            return array[..., None] if array.ndim == 2 else array
    return None


def _load_mask(path: str, height: int, width: int) -> np.ndarray:
    with Image.open(path) as image:
        if image.mode != "L":
            image = image.convert("L")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(image) > 127


def _assemble(
    plan: ChunkPlan,
    fingerprint: str,
    entries: Sequence[Entry],
    decoded: Sequence[tuple[np.ndarray | None, str, np.ndarray | None, str]],
    shape: tuple[int, int, int],
) -> LoadedChunk:
    ok = [i for i, d in enumerate(decoded) if d[0] is not None]
    skipped = [(i, entries[i].name, decoded[i][3]) for i, d in enumerate(decoded) if d[0] is None]
    images = np.stack([decoded[i][0] for i in ok]) if ok else np.zeros((0, *shape), np.float32)
    has_masks = any(decoded[i][2] is not None for i in ok)
    masks = None
    if has_masks:
        masks = np.stack(
            [decoded[i][2] if decoded[i][2] is not None else np.zeros(shape[:2], bool) for i in ok]
        )
    return LoadedChunk(
        plan=plan,
        fingerprint=fingerprint,
        images=images.astype(np.float32, copy=False),
        offsets=np.asarray(ok, np.int64),
        names=[entries[i].name for i in ok],
        hashes=[decoded[i][1] for i in ok],
        labels=np.asarray([entries[i].label for i in ok], np.int64),
        masks=masks,
        skipped=skipped,
    )


def folder_source(
    folder: str | os.PathLike,
    *,
    masks: str | os.PathLike | None = None,
    boxes: Mapping[str, Sequence[float]] | None = None,
    class_names: Sequence[str] | None = None,
) -> FileSource:
    """Plan a folder: class subfolders as labels (``image_dataset_from_directory`` layout,
    alphabetical order), or a flat folder of images (labels unknown).

    Files with other suffixes are listed as skipped; hidden files (``.name``) are ignored.
    ``masks`` is a folder mirroring the images' relative paths (any image suffix; non-zero
    pixels are the object); ``boxes`` maps relative paths to ``(x_min, y_min, x_max, y_max)``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"image folder {str(root)!r} does not exist or is not a folder")
    files = _walk(root)
    subdirs = sorted({f.split("/", 1)[0] for f in files if "/" in f})
    names: tuple[str, ...] | None = tuple(subdirs) if subdirs else None
    label_of = {name: i for i, name in enumerate(subdirs)}
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
    masks_dir = Path(masks) if masks is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise InputError(f"mask folder {str(masks_dir)!r} does not exist or is not a folder")
    mask_files = _mask_index(masks_dir) if masks_dir is not None else {}
    # class folders first (in class order), then files at the top level
    ordered = sorted(files, key=lambda f: ("/" not in f, f))
    entries: list[Entry] = []
    others: list[tuple[str, str]] = []
    for relative in ordered:
        stem, suffix = os.path.splitext(relative)
        if suffix.lower() not in IMAGE_SUFFIXES:
            others.append((relative, f"not an image file (suffix {suffix!r})"))
            continue
        label = label_of[relative.split("/", 1)[0]] if "/" in relative else -1
        box = boxes.get(relative) if boxes is not None else None
        entries.append(
            Entry(
                os.path.join(os.fspath(root), relative),
                relative,
                label,
                mask_files.get(stem) if masks_dir is not None else None,
                tuple(float(v) for v in box) if box is not None else None,
            )
        )
    if not entries and not others:
        raise InputError(f"folder {str(root)!r} holds no image files")
    return FileSource(entries, names, str(root), others)


def paths_source(
    paths: Sequence[str | os.PathLike],
    *,
    labels: Sequence[int] | None = None,
    masks: Sequence[str | os.PathLike | None] | None = None,
    boxes: Sequence[Sequence[float] | None] | None = None,
    class_names: Sequence[str] | None = None,
) -> FileSource:
    """Plan a list of image paths (labels, mask files and boxes aligned with it)."""
    paths = [os.fspath(p) for p in paths]
    n = len(paths)
    for what, values in (("labels", labels), ("masks", masks), ("boxes", boxes)):
        if values is not None and len(values) != n:
            raise InputError(f"{len(values)} {what} given for {n} paths: give one per path")
    entries = []
    for i, path in enumerate(paths):
        box = boxes[i] if boxes is not None else None
        entries.append(
            Entry(
                os.path.abspath(path),
                path,
                int(labels[i]) if labels is not None else -1,
                os.fspath(masks[i]) if masks is not None and masks[i] is not None else None,
                tuple(float(v) for v in box) if box is not None else None,
            )
        )
    if not entries:
        raise InputError("no images given: pass at least one path")
    names = tuple(str(c) for c in class_names) if class_names is not None else None
    return FileSource(entries, names)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------
def make_source(
    source: Any,
    *,
    labels: Any = None,
    masks: Any = None,
    boxes: Any = None,
    class_names: Sequence[str] | None = None,
) -> Source:
    """The :class:`Source` for ``source``: a folder, a path, a list of paths, an array
    ``(N, H, W, C)``, or a ``tf.data.Dataset``."""
    from vizkit.scanning.memory import ArraySource, DatasetSource

    names = tuple(str(c) for c in class_names) if class_names is not None else None
    if isinstance(source, Source):
        return source
    if type(source).__module__.startswith("tensorflow") and hasattr(source, "element_spec"):
        if labels is not None or masks is not None or boxes is not None:
            raise InputError(
                "a tf.data.Dataset carries its own labels and masks: put them in its elements "
                "((image, label, mask) tuples) instead of passing labels=/masks=/boxes="
            )
        return DatasetSource(source, names)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            if labels is not None:
                raise InputError(
                    "labels= does not apply to a folder: labels come from its class subfolders"
                )
            return folder_source(path, masks=masks, boxes=boxes, class_names=names)
        if not path.exists():
            raise InputError(f"image source {str(path)!r} does not exist")
        source = [path]
    if (
        isinstance(source, np.ndarray)
        or hasattr(source, "__array__")
        and not isinstance(source, (list, tuple))
    ):
        images = np.asarray(source)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise InputError(f"image array has shape {images.shape}: pass (N, H, W, C) images")
        label_array = None if labels is None else np.asarray(labels, np.int64).reshape(-1)
        if label_array is not None and len(label_array) != len(images):
            raise InputError(f"{len(label_array)} labels given for {len(images)} images")
        mask_array = None
        if masks is not None:
            mask_array = np.asarray(masks)
        elif boxes is not None:
            from vizkit.metrics.localization import boxes_to_masks

            mask_array = boxes_to_masks(boxes, len(images), images.shape[1:3])
        if mask_array is not None and len(mask_array) != len(images):
            raise InputError(f"{len(mask_array)} masks given for {len(images)} images")
        return ArraySource(images, label_array, mask_array, names)
    if isinstance(source, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in source):
        return paths_source(source, labels=labels, masks=masks, boxes=boxes, class_names=names)
    raise InputError(
        f"cannot scan a {type(source).__name__}: pass a folder, a list of image paths, an "
        "array (N, H, W, C) or a tf.data.Dataset"
    )


def prefetched(
    loader: Callable[[ChunkPlan], LoadedChunk],
    plans: Sequence[ChunkPlan],
    *,
    workers: int = 2,
    depth: int = 2,
) -> Iterator[LoadedChunk]:
    """Decode ``plans`` in order on a thread pool, at most ``depth`` chunks ahead of the
    consumer (memory stays flat whatever the dataset size)."""
    if not plans:
        return
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vizkit-scan") as pool:
        pending = [pool.submit(loader, p) for p in plans[:depth]]
        following = depth
        try:
            while pending:
                chunk = pending.pop(0).result()
                if following < len(plans):
                    pending.append(pool.submit(loader, plans[following]))
                    following += 1
                yield chunk
        finally:
            for future in pending:
                future.cancel()
