#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<harness>/seed-*) from the
project's own valid files: its experiment files, a bundle's manifest, protocol messages and API
requests as the coordinator and CLI send them, shards rendered by `ldm-data synth`, and small
.npy/.npz/.pt/safetensors/image/tar files written by numpy, torch, PIL and tarfile.

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py BUILD_BIN_DIR   (rerun after a format change;
inputs a fuzzing run added to a corpus are not seeds and are left alone)."""
import glob
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

import numpy as np
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(REPO, "tests", "fuzz", "corpus")


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def clear_seeds():
    for path in glob.glob(os.path.join(CORPUS, "*", "seed-*")):
        os.remove(path)


def experiment_seeds():
    files = sorted(glob.glob(os.path.join(REPO, "experiments", "**", "*.toml"), recursive=True))
    files += sorted(glob.glob(os.path.join(REPO, "tests", "fixtures", "specs", "*.toml")))
    for path in files:
        rel = os.path.relpath(path, REPO).replace("/", "_")
        put("experiment_toml", rel, open(path, "rb").read())


def manifest_seeds():
    m = json.load(open(os.path.join(REPO, "tests", "fixtures", "bundles", "dit-tiny-step2", "manifest.json")))
    put("manifest", "fixture.json", json.dumps(m))
    m2 = dict(m, skipped_batches=[{"index": 3, "step": 2}], nonfinite_rollbacks=1)
    put("manifest", "skipped.json", json.dumps(m2))
    put("manifest", "minimal.json", json.dumps({"step": 0}))


def protocol_seeds():
    def frame(type_, body, run="@RUN@", token="@TOKEN@"):
        return json.dumps({"v": 1, "type": type_, "run": run, "token": token, "body": body}).encode()

    put("protocol", "hello", frame("hello", {"rank": 0, "world_size": 2, "host": "h", "pid": 7}))
    put("protocol", "metrics", frame("metrics", {"attempt": 1, "seq": 1, "points": [
        {"stage": "train", "metric": "loss", "step": 1, "value": 0.5, "time": 1000.0, "rank": 0}]}))
    put("protocol", "heartbeat", frame("heartbeat", {"step": 3, "attempt": 1, "system": {"step": 3, "ranks": [
        {"rank": 0, "step_s": 0.1, "data_wait_s": 0.0, "comm_s": 0.0, "comm_hidden_s": 0.0, "peak_rss_mb": 10}]}}))
    put("protocol", "checkpoint", frame("checkpoint", {"step": 10, "path": "/tmp/x/checkpoints/step-0000010"}))
    put("protocol", "done", frame("done", {"step": 20, "summary": {"loss": 0.1}}))
    put("protocol", "failed", frame("failed", {"step": 5, "rank": 1, "message": "boom", "diverged": True}))
    put("protocol", "preempted", frame("preempted", {"step": 5, "checkpoint": ""}))
    put("protocol", "claim", frame("claim", {"world_size": 1, "host": "h", "pid": 9, "gpus": 0}, run="", token=""))
    zap = [b"1.0", b"req1", b"ldm", b"127.0.0.1", b"", b"CURVE", b"K" * 32]
    put("protocol", "zap-curve", b"\x01" + b"".join(bytes([len(f)]) + f for f in zap))
    zap[5], zap[6] = b"NULL", b""
    put("protocol", "zap-null", b"\x01" + b"".join(bytes([len(f)]) + f for f in zap))


def http_seeds():
    spec = {"name": "exp1", "stages": [{"name": "train", "steps": 20, "ranks": 1, "batch_size": 4}]}

    def request(method, target, body=None, token=None):
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
        if token is not None:
            lines.append("Authorization: Bearer " + token)
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    put("http", "health", request("GET", "/api/v1/health"))
    put("http", "health-token", request("GET", "/api/v1/health", token="fuzz-token-0123456789"))
    put("http", "health-wrong-token", request("GET", "/api/v1/health", token="nope"))
    put("http", "list", request("GET", "/api/v1/experiments"))
    put("http", "submit", request("POST", "/api/v1/experiments", {"source": "/x.toml", "spec": spec}))
    put("http", "submit-named", request("POST", "/api/v1/experiments",
                                        {"source": "/x.toml", "spec": spec, "name": "other"}))
    put("http", "get", request("GET", "/api/v1/experiments/exp1"))
    put("http", "metrics", request("GET", "/api/v1/experiments/exp1/metrics?stage=train&metric=loss&max_points=10"))
    put("http", "cancel", request("POST", "/api/v1/experiments/exp1/cancel", {"stage": "train"}))
    put("http", "resume", request("POST", "/api/v1/experiments/exp1/resume",
                                  {"ranks": 2, "allow_world_size_change": True}))
    put("http", "delete", request("POST", "/api/v1/experiments/exp1/delete", {}))
    put("http", "sweeps", request("GET", "/api/v1/sweeps"))
    put("http", "sweep", request("GET", "/api/v1/sweeps/quick"))
    put("http", "sweep-cancel", request("POST", "/api/v1/sweeps/quick/cancel", {}))
    put("http", "traversal", request("GET", "/api/v1/experiments/..%2F..%2Fetc"))


def record_body(id_, label, shape, payload, caption=b"", view=0):
    out = struct.pack("<QiiiiiiiB", id_, label, 8, 8, 0, 0, 8, 8, 0)
    out += struct.pack("<I", len(caption)) + caption
    out += struct.pack("<HII", view, 0, 0)
    out += struct.pack("<B", len(shape)) + b"".join(struct.pack("<q", d) for d in shape)
    return out + payload


def shard_seeds(bin_dir):
    put("shard", "image-record", b"\x00" + record_body(7, 3, [4, 4, 3], bytes(range(48)), b"a cat"))
    put("shard", "latent-record", b"\x01" + record_body(8, -1, [2, 2, 2], np.arange(8, dtype="<f4").tobytes()))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "synth")
        subprocess.run([os.path.join(bin_dir, "ldm-data"), "synth", "--out", out, "--records", "3",
                        "--classes", "2", "--resolution", "8"], check=True, capture_output=True)
        for i, path in enumerate(sorted(glob.glob(os.path.join(out, "*.ldms")))):
            put("shard", f"synth-{i}", b"\x02" + open(path, "rb").read())


def png_bytes(mode="RGB", size=(5, 3)):
    buf = io.BytesIO()
    img = Image.new(mode, size)
    img.putdata([((i * 37) % 256,) * len(mode) if len(mode) > 1 else (i * 37) % 256 for i in range(size[0] * size[1])])
    img.save(buf, format="PNG")
    return buf.getvalue()


def image_files():
    rgb = Image.new("RGB", (6, 4))
    rgb.putdata([(i * 10 % 256, i * 50 % 256, i * 90 % 256) for i in range(24)])
    files = {}
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")):
        buf = io.BytesIO()
        rgb.save(buf, format=fmt)
        files[ext] = buf.getvalue()
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    rgb.save(buf, format="JPEG", exif=exif.tobytes())
    files["exif.jpg"] = buf.getvalue()
    files["gray.png"] = png_bytes("L")
    files["rgba.png"] = png_bytes("RGBA")
    buf = io.BytesIO()
    rgb.convert("CMYK").save(buf, format="JPEG")
    files["cmyk.jpg"] = buf.getvalue()
    return files


def image_seeds():
    for i, (name, data) in enumerate(sorted(image_files().items())):
        options = bytes([i * 37 % 256, 8 + i, i % 2, 5, 1, 2])
        put("image", name, options + data)


def tar_seeds():
    files = image_files()

    def tar(members, mode="w"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as t:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    members = [("000000.jpg", files["jpg"]), ("000000.txt", b"a small picture"),
               ("000000.json", b'{"caption": "a small picture"}'),
               ("000001.png", files["png"]), ("000001.txt", b"another one")]
    put("tar", "plain.tar", tar(members))
    put("tar", "gzip.tar.gz", tar(members, "w:gz"))
    put("tar", "dirs.tar", tar([("a/b.c/000002.webp", files["webp"]), ("a/b.c/000002.txt", b"x")]))


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_seeds():
    put("npy", "f32", b"\x00" + npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3)))
    put("npy", "f64", b"\x00" + npy_bytes(np.linspace(0, 1, 4)))
    put("npy", "i64", b"\x00" + npy_bytes(np.arange(3, dtype=np.int64)))
    put("npy", "u8", b"\x00" + npy_bytes(np.zeros((2, 2, 3), dtype=np.uint8)))
    put("npy", "bool", b"\x00" + npy_bytes(np.array([True, False])))
    put("npy", "f16-scalar", b"\x00" + npy_bytes(np.array(1.5, dtype=np.float16)))
    put("npy", "unicode", b"\x01" + npy_bytes(np.array(["a cat", "ünï"])))
    put("npy", "bytes", b"\x01" + npy_bytes(np.array([b"ab", b"c"])))
    for compressed in (False, True):
        buf = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(
            buf, mu=np.zeros(4, dtype=np.float64), sigma=np.eye(4), captions=np.array(["x", "yz"]))
        put("npy", "npz-compressed" if compressed else "npz", b"\x02" + buf.getvalue())


def safetensors_bytes(tensors, metadata=None):
    header, data = {}, b""
    names = {"float32": "F32", "float16": "F16", "int64": "I64", "uint8": "U8", "bool": "BOOL", "float64": "F64"}
    for name, array in tensors.items():
        raw = array.tobytes()
        header[name] = {"dtype": names[str(array.dtype)], "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    put("safetensors", "mixed", safetensors_bytes({
        "w": np.arange(6, dtype="<f4").reshape(2, 3), "b": np.zeros(0, dtype="<f4"),
        "step": np.array([3], dtype="<i8"), "mask": np.array([True, False]), "h": np.ones(2, dtype="<f2")},
        {"format": "pt"}))
    gens = os.path.join(REPO, "tests", "fixtures", "bundles", "dit-tiny-step2", "generators.safetensors")
    put("safetensors", "fixture-generators", open(gens, "rb").read())


def pt_seeds():
    torch.manual_seed(0)
    sd = {"x_embedder.proj.weight": torch.randn(4, 2, 2, 2), "x_embedder.proj.bias": torch.zeros(4),
          "pos": torch.arange(6, dtype=torch.int64), "half": torch.ones(3, dtype=torch.float16)}
    shared = torch.randn(4, 4)
    views = {"a": shared, "a_t": shared.t(), "row": shared[1], "bf16": torch.ones(2, dtype=torch.bfloat16)}

    def saved(obj):
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    put("pt", "state-dict", b"\x00" + saved(sd))
    put("pt", "dit-checkpoint", b"\x02" + saved({"model": sd, "ema": sd, "opt": {"lr": 1e-4}, "args": None}))
    put("pt", "views", b"\x00" + saved(views))
    put("pt", "nested", b"\x01" + saved({"state_dict": {"m": torch.zeros(2)}, "epoch": 3}))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    clear_seeds()
    experiment_seeds()
    manifest_seeds()
    protocol_seeds()
    http_seeds()
    shard_seeds(sys.argv[1])
    image_seeds()
    tar_seeds()
    npy_seeds()
    safetensors_seeds()
    pt_seeds()
    for harness in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, harness))
        size = sum(os.path.getsize(os.path.join(CORPUS, harness, f)) for f in files)
        print(f"{harness:16s} {len(files):4d} files {size:8d} bytes")


if __name__ == "__main__":
    main()
