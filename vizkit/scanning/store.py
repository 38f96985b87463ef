"""The scan store on disk: chunk files written atomically, a manifest, the final table.

Layout of a scan directory::

    manifest.json                  model, source, settings, methods, the chunk plan, progress
    scan.parquet                   the table: one row per image (written when a run finishes)
    skipped.parquet                unreadable files and why
    log.jsonl                      one line per chunk started / stored (resume bookkeeping)
    chunks/base-<key>/<fp>.parquet predictions per chunk (key: model, targets, scale)
    chunks/<key>/<fp>.parquet      one method's statistics, health and metrics per chunk
    maps.zarr/<key>/<fp>/          that method's maps, (n, h, w) float16/32, one array per chunk
    maps.zarr/images-<key>/<fp>/   uint8 thumbnails at the maps' size

``<fp>`` is the chunk's content fingerprint and ``<key>`` hashes the model's weights with the
method, its parameters and the scan settings, so a finished chunk is found again whatever the
order of runs. Every file is written to ``tmp/`` and renamed into place, and a method's parquet
file is written after its maps: a chunk counts as done only when its parquet file exists, so a
crash or Ctrl-C at any point leaves a valid store that a rerun completes.

No TensorFlow here: the dashboard opens scans with :class:`Scan` directly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vizkit.errors import InputError

FORMAT = 1
MANIFEST = "manifest.json"
TABLE = "scan.parquet"
SKIPPED = "skipped.parquet"
LOG = "log.jsonl"


def _atomic_bytes(path: Path, data: bytes, tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    part = tmp / f"{uuid.uuid4().hex}.part"
    part.write_bytes(data)
    os.replace(part, path)


def write_json(path: Path, value: Any, tmp: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_bytes(path, json.dumps(value, indent=1, default=str).encode(), tmp)


def write_parquet(path: Path, frame: pd.DataFrame, tmp: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    part = tmp / f"{uuid.uuid4().hex}.parquet"
    frame.to_parquet(part, index=False)
    os.replace(part, path)


def write_array(path: Path, values: np.ndarray, tmp: Path, *, rows_per_chunk: int = 64) -> None:
    """Write ``values`` as a Zarr array at ``path`` (a directory), atomically."""
    import zarr
    from zarr.codecs import BloscCodec

    tmp.mkdir(parents=True, exist_ok=True)
    part = tmp / uuid.uuid4().hex
    chunks = (max(1, min(rows_per_chunk, len(values))), *values.shape[1:])
    # zstd level 1 after a byte shuffle: as fast as zarr's default, smaller for smooth maps
    codec = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
    array = zarr.create_array(
        store=str(part),
        shape=values.shape,
        dtype=values.dtype,
        chunks=chunks,
        compressors=[codec],
        overwrite=True,
    )
    if len(values):
        array[...] = values
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # left by a run that stopped before its parquet file: replace it
        shutil.rmtree(path)
    os.replace(part, path)


def read_array(path: Path) -> Any:
    import zarr

    return zarr.open_array(store=str(path), mode="r")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
class StoreWriter:
    """Writes one scan directory (see the module docstring for the layout).

    Parameters
    ----------
    root : path
    model_hash : str
        SHA-256 of the model's weights; a directory holding another model's scan is refused
        unless ``overwrite``.
    overwrite : bool
        Delete an existing scan of another model in ``root`` first.
    """

    def __init__(self, root: str | os.PathLike, model_hash: str, *, overwrite: bool = False):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        manifest = read_manifest(self.root, missing_ok=True)
        if manifest is not None:
            previous = manifest.get("model", {}).get("weights_sha256")
            if previous != model_hash:
                if not overwrite:
                    raise InputError(
                        f"{str(self.root)!r} holds a scan of another model (weights "
                        f"{str(previous)[:12]}): choose another out= folder or pass "
                        "overwrite=True (--overwrite) to replace it"
                    )
                for name in ("chunks", "maps.zarr", "tmp", MANIFEST, TABLE, SKIPPED, LOG):
                    target = self.root / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
                manifest = None
        elif self.root.exists() and any(self.root.iterdir()):
            if not overwrite:
                raise InputError(
                    f"{str(self.root)!r} is not empty and holds no scan: choose an empty or new "
                    "out= folder"
                )
        self.manifest: dict[str, Any] = manifest or {}
        self.root.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():  # parts left by a killed run
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._log = open(self.root / LOG, "a", encoding="utf-8")  # noqa: SIM115

    # -- paths -----------------------------------------------------------------------------
    def table_path(self, key: str, fingerprint: str) -> Path:
        return self.root / "chunks" / key / f"{fingerprint}.parquet"

    def maps_path(self, key: str, fingerprint: str) -> Path:
        return self.root / "maps.zarr" / key / fingerprint

    def has(self, key: str, fingerprint: str) -> bool:
        return self.table_path(key, fingerprint).is_file()

    def has_images(self, key: str, fingerprint: str) -> bool:
        return (self.maps_path(key, fingerprint) / "zarr.json").is_file()

    # -- writing ---------------------------------------------------------------------------
    def write_chunk(self, output: Any, base_key: str, images_key: str | None) -> None:
        """Store a :class:`~vizkit.scanning.compute.ChunkOutput`: maps first, tables last."""
        fp = output.fingerprint
        if output.images is not None and images_key is not None:
            write_array(self.maps_path(images_key, fp), output.images, self.tmp)
        for key, frame in output.methods.items():
            write_array(self.maps_path(key, fp), output.maps[key], self.tmp)
            write_parquet(self.table_path(key, fp), frame, self.tmp)
        if output.base is not None:
            write_parquet(self.table_path(base_key, fp), output.base, self.tmp)
        self.log(
            "stored",
            chunk=output.index,
            fingerprint=fp,
            methods=sorted(output.methods),
            seconds=round(output.seconds, 4),
        )

    def log(self, event: str, **fields: Any) -> None:
        line = {"event": event, "time": round(time.time(), 3), "pid": os.getpid(), **fields}
        self._log.write(json.dumps(line) + "\n")
        self._log.flush()

    def save_manifest(self, **changes: Any) -> None:
        self.manifest.update(changes)
        self.manifest["format"] = FORMAT
        self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(self.root / MANIFEST, self.manifest, self.tmp)

    def close(self) -> None:
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_manifest(root: str | os.PathLike, *, missing_ok: bool = False) -> dict[str, Any] | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        if missing_ok:
            return None
        raise InputError(
            f"{str(root)!r} is not a vizkit scan (no {MANIFEST}): run vizkit.scan(..., out=) first"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{str(path)!r} is unreadable: {err}") from None


# --------------------------------------------------------------------------------------------
# Consolidation: chunk files -> one table
# --------------------------------------------------------------------------------------------
def assemble(
    root: str | os.PathLike, manifest: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-image table and the skipped files, from the chunk files present.

    Chunks still missing (an interrupted scan) are left out; ``id`` is the image's position in
    the source.
    """
    root = Path(root)
    base_key = manifest["base_key"]
    methods = manifest["current"]
    frames, skipped = [], []
    for chunk in manifest.get("plan", []):
        fp, start = chunk["fingerprint"], int(chunk["start"])
        base_path = root / "chunks" / base_key / f"{fp}.parquet"
        if not base_path.is_file():
            continue
        base = pd.read_parquet(base_path)
        base.insert(0, "id", start + base["offset"].to_numpy())
        bad = base[base["error"] != ""]
        if len(bad):
            skipped.append(bad[["id", "path", "error"]].rename(columns={"error": "reason"}))
        frame = base[base["error"] == ""].drop(columns=["error", "offset"])
        frame["chunk"] = fp
        complete = True
        for entry in methods:
            path = root / "chunks" / entry["key"] / f"{fp}.parquet"
            if not path.is_file():
                complete = False
                break
            part = pd.read_parquet(path).drop(columns=["offset"])
            part.columns = [f"{entry['column']}.{c}" for c in part.columns]
            frame = pd.concat([frame.reset_index(drop=True), part.reset_index(drop=True)], axis=1)
        if complete:
            frames.append(frame)
    others = manifest.get("others", [])
    if others:
        skipped.append(
            pd.DataFrame(
                {"id": -1, "path": [o[0] for o in others], "reason": [o[1] for o in others]}
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"id": []})
    if len(table):
        labels = table["label"].to_numpy()
        table["correct"] = pd.array(
            np.where(labels >= 0, table["prediction"].to_numpy() == labels, False), dtype="boolean"
        )
        table.loc[labels < 0, "correct"] = pd.NA
    skipped_frame = (
        pd.concat(skipped, ignore_index=True)
        if skipped
        else pd.DataFrame({"id": pd.Series([], dtype=np.int64), "path": [], "reason": []})
    )
    return table, skipped_frame


def finish(root: str | os.PathLike, manifest: Mapping[str, Any], tmp: Path) -> pd.DataFrame:
    """Write ``scan.parquet`` and ``skipped.parquet`` from the chunk files; return the table."""
    table, skipped = assemble(root, manifest)
    write_parquet(Path(root) / TABLE, table, tmp)
    write_parquet(Path(root) / SKIPPED, skipped, tmp)
    return table


def done_chunks(
    root: str | os.PathLike, keys: Iterable[str], fingerprints: Sequence[str]
) -> np.ndarray:
    """Bool per fingerprint: every key's parquet file is there."""
    root = Path(root)
    keys = list(keys)
    return np.array(
        [
            all((root / "chunks" / k / f"{fp}.parquet").is_file() for k in keys)
            for fp in fingerprints
        ],
        dtype=bool,
    )
