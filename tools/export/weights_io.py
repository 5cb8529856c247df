"""Loading PyTorch state dicts for the export scripts: .safetensors (parsed here when the
`safetensors` package is missing), .safetensors.index.json / .bin.index.json (sharded Hugging Face
checkpoints), and torch.save files (.pt, .pth, .bin, .ckpt; a Lightning checkpoint's "state_dict").

Every tensor comes back as a CPU float32 tensor (integer tensors are kept as they are).
"""

import json
import os
import struct

import torch

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _read_safetensors(path):
    try:
        from safetensors.torch import load_file  # type: ignore

        return dict(load_file(path, device="cpu"))
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a .safetensors file")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > 100 * 1024 * 1024:
            raise ValueError(f"{path}: implausible .safetensors header length {header_len}")
        header = json.loads(f.read(header_len))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: tensor {name!r} lies outside the file")
        shape = list(info["shape"])
        count = 1
        for s in shape:
            count *= s
        if count == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            itemsize = torch.empty((), dtype=dtype).element_size()
            if end - begin != count * itemsize:
                raise ValueError(f"{path}: tensor {name!r}: {end - begin} bytes for shape {shape}")
            t = torch.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape).clone()
        out[name] = t
    return out


def _read_torch(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) and not any(
        torch.is_tensor(v) for v in obj.values()
    ):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict (a dict of tensors), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def load_state_dict(path):
    """Reads a checkpoint into {name: tensor}; floating tensors are converted to float32."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.endswith(".index.json"):
        with open(path) as f:
            index = json.load(f)
        shards = sorted(set(index["weight_map"].values()))
        sd = {}
        for shard in shards:
            sd.update(load_state_dict(os.path.join(os.path.dirname(path), shard)))
        return sd
    if path.endswith(".safetensors"):
        sd = _read_safetensors(path)
    else:
        sd = _read_torch(path)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def assign(model, tensors, source):
    """Copies `tensors` (already in the model's naming) into `model`, requiring exactly the model's
    keys with the model's shapes; errors list every unknown, missing or mis-shaped key."""
    own = model.state_dict()
    unknown = sorted(set(tensors) - set(own))
    missing = sorted(set(own) - set(tensors))
    bad = sorted(
        f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(tensors)
        if tuple(tensors[k].shape) != tuple(own[k].shape)
    )
    problems = []
    if unknown:
        problems.append("unknown keys (%d):\n  %s" % (len(unknown), "\n  ".join(unknown)))
    if missing:
        problems.append("missing keys (%d):\n  %s" % (len(missing), "\n  ".join(missing)))
    if bad:
        problems.append("shape mismatches (%d):\n  %s" % (len(bad), "\n  ".join(bad)))
    if problems:
        raise ValueError(f"{source}: the checkpoint does not fit the configured model:\n" + "\n".join(problems))
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(tensors[k].to(v.dtype))
