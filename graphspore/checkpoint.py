"""Checkpoints: save and restore Parameters as safetensors files.

The file is a safetensors file (`safetensors.numpy`): a JSON header naming each tensor, its
dtype and shape, then the raw little-endian data. graphspore adds one metadata entry, the
SHA-256 of the tensors' bytes, so corruption inside the data (which the header cannot see) is
caught on load as well as truncation.

Writes are atomic: the bytes go to a temporary file in the target's directory, are flushed and
fsync'ed, and `os.replace` moves the file over the old one. A crash at any point leaves either
the old checkpoint or the new one, never a mix. The temporary is `<name>.<pid>.<random>.tmp`;
a save deletes the temporaries of the same target left by processes that no longer run (a
killed save), so they never pile up; those of a save still running elsewhere are kept.

Every dtype round-trips: bfloat16 (which safetensors.numpy does not know) is written as its
16-bit patterns under safetensors' `BF16` dtype and loads as `ml_dtypes.bfloat16` Parameters,
as do `BF16` entries written by other tools.

Every error names the file, and for a mismatch the parameter, the expected and the found
shape or dtype.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np

from .ir.types import DType

_DIGEST_KEY = "graphspore.sha256"
_FORMAT_KEY = "format"
_ORDER_KEY = "graphspore.order"   # the saved names in save order (safetensors sorts them)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the network."""


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        array = np.array(tensors[name], order="C")
        h.update(name.encode())
        h.update(str(array.dtype).encode() + str(array.shape).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _host_array(value) -> np.ndarray:
    if hasattr(value, "asnumpy"):
        return np.asarray(value.asnumpy())
    return np.asarray(value)


def _named_arrays(save_obj) -> dict[str, np.ndarray]:
    """Name -> host array for a Cell, a dict, or a list of Parameters / {'name','data'}."""
    if getattr(save_obj, "__gs_cell__", False):
        return {name: _host_array(p) for name, p in _cell_params(save_obj).items()}
    if isinstance(save_obj, dict):
        return {str(k): _host_array(v) for k, v in save_obj.items()}
    if isinstance(save_obj, (list, tuple)):
        out = {}
        for item in save_obj:
            if isinstance(item, dict):
                if "name" not in item or "data" not in item:
                    raise TypeError("save_checkpoint: list items must be Parameters or "
                                    "{'name': ..., 'data': ...} dicts")
                out[str(item["name"])] = _host_array(item["data"])
            elif getattr(item, "__gs_parameter__", False):
                out[item.name] = _host_array(item)
            else:
                raise TypeError(f"save_checkpoint: cannot save a {type(item).__name__} "
                                f"list item; expected a Parameter or a name/data dict")
        return out
    raise TypeError(f"save_checkpoint: expected a Cell, a dict or a list, "
                    f"got {type(save_obj).__name__}")


def _cell_params(cell) -> dict:
    """{Parameter.name: Parameter}: names as MindSpore saves them (a TrainOneStepCell's
    parameters keep the network's names, `fc1.weight`, and the optimizer's `moment1.fc1.weight`)."""
    out = {}
    for _, param in cell.parameters_and_names():
        if param.name in out and out[param.name] is not param:
            raise ValueError(f"two different parameters are both named '{param.name}'")
        out[param.name] = param
    return out


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True              # someone else's process: assume it is still saving
    return True


def remove_stale_temporaries(path: str) -> int:
    """Delete `<path>.<pid>.<random>.tmp` files whose process no longer runs (killed saves of
    the same target). Returns how many were removed."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = os.path.basename(path) + "."
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed += 1
        except OSError:
            pass
    return removed


def _write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{os.path.basename(path)}.{os.getpid()}.",
                               suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:                       # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_checkpoint(save_obj, ckpt_file_name: str, integrated_save: bool = True,
                    async_save: bool = False, append_dict: dict | None = None,
                    enc_key=None, enc_mode="AES-GCM", choice_func=None, **kwargs) -> None:
    """Save the parameters of `save_obj` (a Cell, a dict name -> Tensor/array, or a list of
    Parameters or `{'name', 'data'}` dicts) to `ckpt_file_name` as safetensors.

    `.ckpt` is appended when the name ends in neither `.ckpt` nor `.safetensors` (as MindSpore
    does). `append_dict` adds extra named values (numbers or arrays, e.g. the epoch).
    `choice_func(name) -> bool` selects which parameters to save. In a data-parallel job
    every rank holds the same parameters, so only rank 0 writes (`rank_zero_only=False`
    makes every rank write, to paths of its own).
    """
    from .communication import get_rank
    if kwargs.pop("rank_zero_only", True) and get_rank() != 0:
        return
    if enc_key is not None:
        raise NotImplementedError("save_checkpoint: encrypted checkpoints are not supported")
    path = os.fspath(ckpt_file_name)
    if not path.endswith((".ckpt", ".safetensors")):
        path += ".ckpt"
    tensors = _named_arrays(save_obj)
    if choice_func is not None:
        tensors = {k: v for k, v in tensors.items() if choice_func(k)}
    for key, value in (append_dict or {}).items():
        if str(key) in tensors:
            raise ValueError(f"save_checkpoint: append_dict key '{key}' is also a parameter")
        array = np.asarray(_host_array(value))
        if array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        tensors[str(key)] = array
    tensors = {k: np.array(v, order="C") for k, v in tensors.items()}  # keeps 0-d
    for name, array in tensors.items():
        if array.dtype == object:
            raise TypeError(f"save_checkpoint: '{name}' is not numeric data")
    metadata = {_FORMAT_KEY: "graphspore", _DIGEST_KEY: _digest(tensors),
                _ORDER_KEY: json.dumps(list(tensors))}
    _write_atomic(path, _save_bytes(tensors, metadata))


def _save_bytes(tensors: dict[str, np.ndarray], metadata: dict) -> bytes:
    """safetensors bytes of `tensors`; bfloat16 arrays are saved as their uint16 bits and
    their header entries relabelled `BF16` (same sizes, so the data offsets hold)."""
    from safetensors.numpy import save
    bf16 = {name for name, array in tensors.items() if DType.exactly(array.dtype) is DType.bf16}
    data = save({k: v.view(np.uint16) if k in bf16 else v for k, v in tensors.items()},
                metadata=metadata)
    if not bf16:
        return data
    end = _header_end(data)
    header = json.loads(data[8:end])
    for name in bf16:
        header[name]["dtype"] = "BF16"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[end:]


def _header_end(data: bytes) -> int:
    import struct
    return 8 + struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 0


def _load_with_bfloat16(data: bytes, path: str) -> dict:
    """safetensors entries by hand: BF16 ones as ml_dtypes.bfloat16 arrays of their bits."""
    import json
    from safetensors.numpy import load
    end = _header_end(data)
    header = json.loads(data[8:end])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry.get("dtype") != "BF16":
            continue
        start, stop = entry["data_offsets"]
        raw = np.frombuffer(data[end + start:end + stop], dtype="<u2")
        if raw.size != int(np.prod(entry["shape"], dtype=np.int64)):
            raise CheckpointError(f"load_checkpoint: '{path}' is corrupt: entry '{name}' "
                                  f"(bfloat16) has {raw.size} values for shape {entry['shape']}")
        out[name] = raw.astype(np.uint16).view(DType.bf16.np).reshape(entry["shape"])
    rest = {k: v for k, v in header.items() if k == "__metadata__" or v.get("dtype") != "BF16"}
    offset, blobs, fixed = 0, [], {}
    for name, entry in rest.items():
        if name == "__metadata__":
            fixed[name] = entry
            continue
        start, stop = entry["data_offsets"]
        blobs.append(data[end + start:end + stop])
        fixed[name] = dict(entry, data_offsets=[offset, offset + stop - start])
        offset += stop - start
    text = json.dumps(fixed).encode()
    text += b" " * (-len(text) % 8)
    out.update(load(len(text).to_bytes(8, "little") + text + b"".join(blobs)))
    return out


def _read_metadata(data: bytes) -> dict:
    import struct
    if len(data) < 8:
        return {}
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        return {}
    return header.get("__metadata__") or {}


def load_checkpoint(ckpt_file_name: str, net=None, strict_load: bool = False,
                    filter_prefix=None, dec_key=None, dec_mode="AES-GCM",
                    specify_prefix=None, choice_func=None, **kwargs) -> "ParameterDict":
    """Read a checkpoint into `{name: Parameter}` (loading it into `net` too when given).

    Raises FileNotFoundError for a missing file and CheckpointError (naming the file) for a
    truncated or corrupt one. `filter_prefix` drops names with the given prefix(es);
    `specify_prefix` keeps only names with them; `choice_func(name)` keeps names it accepts.
    """
    from safetensors.numpy import load
    from .tensor_type import Parameter, Tensor
    path = os.fspath(ckpt_file_name)
    if os.path.isdir(path):
        example = os.path.join(path, "net.ckpt")
        raise IsADirectoryError(f"load_checkpoint: '{path}' is a directory; give the path of "
                                f"a checkpoint file in it (e.g. '{example}')")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: checkpoint file '{path}' does not exist")
    with open(path, "rb") as f:
        data = f.read()
    try:
        tensors = _load_with_bfloat16(data, path) if b'"BF16"' in data[:_header_end(data)] \
            else load(data)
    except CheckpointError:
        raise
    except KeyError as exc:             # safetensors.numpy's dtype table has no such entry
        raise CheckpointError(f"load_checkpoint: '{path}' holds a tensor of dtype {exc}, "
                              f"which graphspore cannot read (supported: float64/32/16, "
                              f"bfloat16, int8-64, uint8-64, bool)") from None
    except Exception as exc:
        raise CheckpointError(f"load_checkpoint: '{path}' is not a valid checkpoint (truncated "
                              f"or corrupt safetensors file: {exc})") from None
    metadata = _read_metadata(data)
    digest = metadata.get(_DIGEST_KEY)
    if digest is not None and digest != _digest(tensors):
        raise CheckpointError(f"load_checkpoint: '{path}' is corrupt: its data does not match "
                              f"the checksum written with it")
    filters = _prefixes(filter_prefix)
    keeps = _prefixes(specify_prefix)
    out = ParameterDict()
    out.source = path
    for name in _saved_order(metadata, tensors):
        array = tensors[name]
        if filters and name.startswith(filters):
            continue
        if keeps and not name.startswith(keeps):
            continue
        if choice_func is not None and not choice_func(name):
            continue
        out[name] = Parameter(Tensor(array.copy()), name=name)
    if net is not None:
        load_param_into_net(net, out, strict_load=strict_load)
    return out


def _saved_order(metadata: dict, tensors: dict) -> list[str]:
    """The names in the order they were saved (MindSpore's load_checkpoint keeps the file's
    order); files written elsewhere keep the order of their header."""
    try:
        order = json.loads(metadata.get(_ORDER_KEY, "null"))
    except ValueError:
        order = None
    if isinstance(order, list) and sorted(order) == sorted(tensors):
        return order
    return list(tensors)


def _prefixes(prefix) -> tuple[str, ...]:
    if prefix is None:
        return ()
    return (prefix,) if isinstance(prefix, str) else tuple(prefix)


class ParameterDict(dict):
    """`{name: Parameter}` read from a checkpoint; `source` is the file it came from."""

    source: str | None = None


def load_param_into_net(net, parameter_dict: dict, strict_load: bool = False,
                        remove_redundancy: bool = False) -> tuple[list[str], list[str]]:
    """Copy `parameter_dict` into the Parameters of `net` with the same names.

    Returns `(param_not_load, ckpt_not_load)`: the net's parameters that found no value and the
    dict entries that matched no parameter. A shape mismatch raises CheckpointError naming the
    parameter (and the file). A dtype mismatch raises when `strict_load`; otherwise a float value
    is cast to a float parameter's dtype, as MindSpore does, and other mismatches raise.
    """
    if not getattr(net, "__gs_cell__", False):
        raise TypeError(f"load_param_into_net: net must be a Cell, got {type(net).__name__}")
    if not isinstance(parameter_dict, dict):
        raise TypeError(f"load_param_into_net: parameter_dict must be a dict, "
                        f"got {type(parameter_dict).__name__}")
    source = getattr(parameter_dict, "source", None)
    where = f" from '{source}'" if source else ""
    params = _cell_params(net)
    staged = []
    for name, param in params.items():
        if name not in parameter_dict:
            continue
        value = _host_array(parameter_dict[name])
        target = _host_array(param)
        if value.shape != target.shape:
            raise CheckpointError(f"load_param_into_net: parameter '{name}'{where} has shape "
                                  f"{value.shape}, the network's has shape {target.shape}")
        if value.dtype != target.dtype:
            both_float = (np.issubdtype(value.dtype, np.floating)
                          and np.issubdtype(target.dtype, np.floating))
            if strict_load or not both_float:
                raise CheckpointError(f"load_param_into_net: parameter '{name}'{where} has "
                                      f"dtype {value.dtype}, the network's has dtype "
                                      f"{target.dtype}")
            value = value.astype(target.dtype)
        staged.append((param, value))
    for param, value in staged:       # all checks passed: now write, so a failure loads nothing
        _set_data(param, value)
    param_not_load = [n for n in params if n not in parameter_dict]
    ckpt_not_load = [n for n in parameter_dict if n not in params]
    return param_not_load, ckpt_not_load


def _set_data(param, value: np.ndarray) -> None:
    from .tensor_type import Tensor
    param.set_data(Tensor(np.array(value, copy=True)))


__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net", "CheckpointError"]
