"""Read a PyTorch state-dict file into numpy arrays without importing torch or running its code.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the file names, so a plain
``pickle.load`` or ``torch.load`` on a file from elsewhere can execute arbitrary code. This
reader accepts only what a state dict of tensors needs and refuses everything else with one
line:

- globals: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` (replaced by a
  function that records the tensor's view, never torch's own) and the storage type names
  ``torch.FloatStorage`` etc. (inert markers that cannot be called);
- persistent ids of the form ``("storage", <storage type>, key, location, numel, view)``, which
  point at raw little-endian data stored after the pickle.

It reads PyTorch's legacy serialization format (used by ``torch.save`` before 1.6 and with
``_use_new_zipfile_serialization=False``): a magic-number pickle, a protocol-version pickle, a
system-info pickle, the state-dict pickle, a pickle listing the storage keys, then each storage
as an int64 element count followed by its bytes, in that order.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: Storage type name -> numpy dtype (little-endian, as the file records).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchFileError(ValueError):
    """The file is not a state dict this reader accepts (one-line message)."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """An inert stand-in for ``torch.FloatStorage`` etc.: carries the dtype, cannot be called."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclasses.dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class _TensorView:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    *extra: Any,
) -> _TensorView:
    """Record a tensor as a view of a storage (stands in for ``torch._utils``'s function)."""
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor in the file does not refer to a storage")
    ints = (storage_offset, *size, *stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
        raise TorchFileError("a tensor in the file has a malformed offset, size or stride")
    if len(size) != len(stride):
        raise TorchFileError("a tensor in the file has sizes and strides of different lengths")
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
    if any(n == 0 for n in size):
        last = storage_offset - 1
    if last >= storage.numel:
        raise TorchFileError(f"a tensor reaches past the end of storage {storage.key!r}")
    return _TensorView(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a tensor state dict needs; every other global is refused."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFileError(
            f"the file asks for {module}.{name}, which a state dict of tensors never needs: "
            "refusing to load it"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unexpected persistent id in the file: {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError("a storage in the file has no known storage type")
        if len(pid) > 5 and pid[5] is not None:
            raise TorchFileError("storage views (an old PyTorch feature) are not supported")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise TorchFileError("a storage in the file has a malformed key or size")
        storage = self._storages.get(key)
        if storage is None:
            storage = _Storage(key, storage_type.dtype, numel)
            self._storages[key] = storage
        elif storage.dtype != storage_type.dtype or storage.numel != numel:
            raise TorchFileError(f"storage {key!r} is declared twice with different types")
        return storage


def _load_one(stream: BinaryIO, storages: dict[str, _Storage]) -> Any:
    try:
        return _RestrictedUnpickler(stream, storages).load()
    except TorchFileError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as err:
        raise TorchFileError(f"the file is not a readable PyTorch state dict ({err})") from None


def _materialize(value: Any) -> Any:
    if isinstance(value, _TensorView):
        data = value.storage.data
        assert data is not None
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[value.offset :],
            shape=value.size,
            strides=tuple(s * itemsize for s in value.stride),
            writeable=False,
        )
        return np.array(view, copy=True)
    raise TorchFileError(f"the state dict holds a {type(value).__name__}, not only tensors")


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state-dict file as numpy arrays, in file order.

    Parameters
    ----------
    path : str or Path
        A ``.pth`` file written by ``torch.save(model.state_dict())`` in the legacy format.

    Returns
    -------
    dict
        Parameter name -> array (float32 weights, int64 counters such as
        ``num_batches_tracked``), contiguous, in PyTorch's layout (``OIHW`` kernels).

    Raises
    ------
    TorchFileError
        When the file is not in that format, names any global beyond those listed in the
        module docstring, or is truncated.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"PK":
        raise TorchFileError(
            f"{Path(path).name} is in PyTorch's zip format: this reader handles only the legacy "
            "format"
        )
    stream = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}
    if _load_one(stream, storages) != MAGIC_NUMBER:
        raise TorchFileError(f"{Path(path).name} is not a PyTorch file (wrong magic number)")
    if _load_one(stream, storages) != PROTOCOL_VERSION:
        raise TorchFileError(f"{Path(path).name} uses an unknown PyTorch protocol version")
    info = _load_one(stream, storages)
    if not (isinstance(info, dict) and info.get("little_endian") is True):
        raise TorchFileError(f"{Path(path).name} was not written on a little-endian machine")
    state = _load_one(stream, storages)
    keys = _load_one(stream, storages)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise TorchFileError(f"{Path(path).name} does not hold a state dict")
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise TorchFileError(f"{Path(path).name} lists storages that its tensors do not use")
    for key in keys:
        storage = storages[key]
        header = stream.read(8)
        if len(header) != 8:
            raise TorchFileError(f"{Path(path).name} is truncated")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise TorchFileError(f"storage {key!r} holds {count} elements, not {storage.numel}")
        nbytes = count * storage.dtype.itemsize
        chunk = stream.read(nbytes)
        if len(chunk) != nbytes:
            raise TorchFileError(f"{Path(path).name} is truncated")
        storage.data = np.frombuffer(chunk, dtype=storage.dtype)
    if stream.read(1):
        raise TorchFileError(f"{Path(path).name} has unexpected data after its storages")
    return {name: _materialize(value) for name, value in state.items()}
