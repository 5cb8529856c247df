#!/usr/bin/env python3
"""Writes the corpus of broken inputs (tests/data/bad/<kind>/...) and cases.json, which says for
each file what its error must name besides the file itself. tests/e2e/test_bad_inputs_e2e.py feeds
each file to the program that reads that kind and checks the error, the exit status and that the
store and run directories are untouched. Every file is made from one of the project's valid
files (or numpy's, torch's, PIL's, tarfile's) and then broken in one named way.

Usage: /usr/bin/python3 tests/data/bad/make_bad.py BUILD_BIN_DIR"""
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "bundles", "dit-tiny-step2")
cases = []


def put(kind, name, data, *expect):
    """expect: fragments the error must contain besides the file's name."""
    d = os.path.join(HERE, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    cases.append({"file": f"{kind}/{name}", "expect": list(expect)})


def flip(data, offset, bit=0):
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


# ---- experiment files (ldm-coord show FILE; ldm-coord run FILE --state S) -------------------------
def toml_cases():
    good = open(os.path.join(REPO, "experiments", "tiny", "dit-1rank-short.toml")).read()
    put("toml", "truncated.toml", good[: good.index("[[stage]]") + 12], ":")
    put("toml", "flipped-bit-key.toml", good.replace("\nsteps", "\nstdps", 1), "unknown key 'stdps'", ":")
    put("toml", "huge-integer.toml", good.replace("steps = ", "steps = 99999999999999999999999 #", 1), ":")
    put("toml", "huge-float.toml", 'name = "x"\nseed = 1\n[recipe]\nfamily = "dit"\n[recipe.optimizer]\nlr = 1e400\n'
        '[[stage]]\nname = "train"\nsteps = 1\n', ":6:")
    put("toml", "wrong-type.toml", good.replace("steps = ", 'steps = "ten" #', 1), "steps")
    put("toml", "deep-nesting.toml", 'name = "x"\nv = ' + "[" * 5000 + "]" * 5000 + "\n", ":")
    put("toml", "deep-tables.toml", 'name = "x"\n[' + ".".join(["a"] * 3000) + "]\n", ":")
    put("toml", "non-utf8.toml", b'name = "caf\xe9"\n', ":1:")
    put("toml", "nul-byte.toml", b'name = "x"\n\x00\n', ":2:")
    put("toml", "traversal-name.toml", good.replace('name = "', 'name = "../../', 1), "name")
    put("toml", "traversal-stage.toml", good.replace('name = "train"', 'name = "../train"', 1), "name")
    put("toml", "traversal-sweep.toml", good + '\n[sweep]\nname = "../up"\nseeds = [1, 2]\n', "sweep")
    put("toml", "empty.toml", "", "")
    put("toml", "binary.toml", bytes(range(256)) * 4, ":")


# ---- shards (ldm-data verify DIR) ------------------------------------------------------------------
def synth_shard(bin_dir):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "synth")
        subprocess.run([os.path.join(bin_dir, "ldm-data"), "synth", "--out", out, "--records", "3", "--classes", "2",
                        "--resolution", "8"], check=True, capture_output=True)
        name = sorted(n for n in os.listdir(out) if n.endswith(".ldms"))[0]
        return open(os.path.join(out, name), "rb").read()


def record_offsets(shard):
    index_offset, count = struct.unpack_from("<QQ", shard, len(shard) - 28)
    return [struct.unpack_from("<Q", shard, index_offset + 8 * i)[0] for i in range(count)]


def shard_cases(bin_dir):
    shard = synth_shard(bin_dir)
    offsets = record_offsets(shard)
    put("shard", "truncated.ldms", shard[: len(shard) // 2], "")
    put("shard", "flipped-payload.ldms", flip(shard, offsets[1] + 60), "record 1", "checksum")
    put("shard", "wrong-magic.ldms", b"LDMSHRD9" + shard[8:], "")
    put("shard", "empty.ldms", b"", "")
    # Record 0 re-written with a shape of 2^21 x 2^21 x 2^22 bytes (wraps 2^64 to 0) and a valid CRC.
    start = offsets[0]
    body_len = struct.unpack_from("<I", shard, start)[0]
    body = bytearray(shard[start + 8: start + 8 + body_len])
    ndim_at = body_len - 192 - 1 - 3 * 8  # u8 ndim, 3 x i64, 192 payload bytes (8x8x3)
    assert body[ndim_at] == 3, "record layout changed: update make_bad.py"
    struct.pack_into("<qqq", body, ndim_at + 1, 1 << 21, 1 << 21, 1 << 22)
    patched = bytearray(shard)
    patched[start + 8: start + 8 + body_len] = body
    struct.pack_into("<I", patched, start + 4, zlib.crc32(bytes(body)))
    put("shard", "overflowing-shape.ldms", bytes(patched), "record 0")
    huge = bytearray(shard)
    struct.pack_into("<I", huge, start, 0xFFFFFFF0)
    put("shard", "huge-record-length.ldms", bytes(huge), "record 0")


# ---- .npz statistics (ldm-eval fid BAD GOOD) ---------------------------------------------------------
def npz_bytes(compress=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npz_cases():
    good = npz_bytes(mu=np.zeros(8), sigma=np.eye(8))
    put("npz", "truncated.npz", good[: len(good) // 2], "")
    put("npz", "flipped-data.npz", flip(good, 200), "")
    put("npz", "not-zip.npz", b"this is text, not a zip archive\n", "")
    put("npz", "wrong-dtype.npz", npz_bytes(mu=np.array(["a", "b"]), sigma=np.eye(8)), "mu")
    put("npz", "complex.npz", npz_bytes(mu=np.zeros(8, dtype=np.complex64), sigma=np.eye(8)), "mu")
    put("npz", "missing-member.npz", npz_bytes(mu=np.zeros(8)), "sigma")
    # A member whose .npy header declares a shape whose byte count passes 2^64.
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mu.npy", npy)
        z.writestr("sigma.npy", npy_bytes(np.eye(8)))
    put("npz", "overflowing-shape.npz", buf.getvalue(), "mu", "too large")
    # The central directory says a member inflates to 4 GiB.
    data = bytearray(good)
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 0xFFFFFFF0)
    put("npz", "huge-declared-size.npz", bytes(data), "")


# ---- safetensors / .pt / bundles (ldm-worker forward --recipe dit --checkpoint BAD) ----------------
def safetensors_bytes(header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def weights_cases():
    good = open(os.path.join(FIXTURE, "model.safetensors"), "rb").read()
    put("safetensors", "truncated.safetensors", good[: len(good) // 3], "")
    put("safetensors", "header-length-huge.safetensors", struct.pack("<Q", 1 << 62) + good[8:1000], "header length")
    put("safetensors", "shape-overflow.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [1 << 31, 1 << 31, 1 << 4], "data_offsets": [0, 0]}}),
        "'w'", "2^64")
    put("safetensors", "offsets-outside.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "'w'")
    put("safetensors", "wrong-dtype.safetensors",
        safetensors_bytes({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4), "F8_E4M3")
    put("safetensors", "negative-dim.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}), "'w'", "negative")
    put("safetensors", "header-not-json.safetensors", safetensors_bytes(b"{not json"), "JSON")
    put("safetensors", "deep-json.safetensors", safetensors_bytes(b'{"w": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
        "'w'")
    put("safetensors", "non-utf8-name.safetensors", safetensors_bytes(b'{"\xff\xfe": 1}'), "JSON")
    put("safetensors", "missing-field.safetensors", safetensors_bytes({"w": {"dtype": "F32", "shape": [1]}}), "'w'")

    def saved(obj):
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    sd = {"w": torch.ones(4), "b": torch.zeros(2)}
    pt = saved(sd)
    put("pt", "truncated.pt", pt[: len(pt) // 2], "")
    put("pt", "not-zip.pt", b"not a torch file at all\n", "not a zip")
    put("pt", "legacy.pt", b"\x80\x02\x8a\x0alZ\xfc\x9cF\xf9 j\xa8P\x19.", "legacy")
    # data.pkl with one bit flipped: the zip's CRC no longer matches.
    with zipfile.ZipFile(io.BytesIO(pt)) as z:
        names = z.namelist()
        members = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))

    def rezip(replace):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
            for n in names:
                z.writestr(n, replace.get(n, members[n]))
        return buf.getvalue()

    raw = bytearray(pt)
    at = raw.find(members[pkl])
    raw[at + 5] ^= 0x40
    put("pt", "flipped-pickle.pt", bytes(raw), "")
    # A pickle that would run code in Python: os.system("echo pwned") via GLOBAL + REDUCE.
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/ldm-bad-input-ran-code",))

    evil = pickle.dumps(RunsCode(), protocol=2)
    put("pt", "runs-code.pt", rezip({pkl: evil}), "posix.system")
    # A view reaching past its storage: the storage of 'w' claims 2^40 elements.
    view = members[pkl].replace(b"K\x04", b"\x8a\x06\x00\x00\x00\x00\x00\x01", 1)
    put("pt", "huge-storage.pt", rezip({pkl: view}), "")
    put("pt", "other-recipe.pt", saved({"model": {"unet.conv_in.weight": torch.zeros(4, 4, 3, 3)}}), "")

    # A bundle case holds only the files that differ from the fixture bundle; the test fills in the rest.
    def bundle(name, manifest_text, *expect):
        d = os.path.join(HERE, "bundle", name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(d, "manifest.json"), "wb") as f:
            f.write(manifest_text if isinstance(manifest_text, bytes) else manifest_text.encode())
        cases.append({"file": f"bundle/{name}", "expect": list(expect)})

    manifest = json.load(open(os.path.join(FIXTURE, "manifest.json")))
    bundle("manifest-not-json", b"{step: 2", "manifest.json", "JSON")
    bundle("manifest-step-string", json.dumps(dict(manifest, step="two")), "manifest.json", "step")
    bundle("manifest-negative-step", json.dumps(dict(manifest, step=-5)), "manifest.json", "step")
    bundle("manifest-world-size-huge", json.dumps(dict(manifest, world_size=4294967297)), "manifest.json",
           "world_size")
    bundle("manifest-bad-spec", json.dumps(dict(manifest, spec={"stages": "no"})), "manifest.json", "spec")
    bundle("manifest-deep", b'{"step": 2, "spec": ' + b"[" * 100000 + b"]" * 100000 + b"}", "manifest.json")
    bundle("manifest-stage-index", json.dumps(dict(manifest, stage_index=7)), "manifest.json", "stage_index")
    # Weights of another shape (the wrong file in a bundle): the load names the key.
    d = os.path.join(HERE, "bundle", "other-model")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(FIXTURE, "generators.safetensors"), os.path.join(d, "model.safetensors"))
    cases.append({"file": "bundle/other-model", "expect": []})


# ---- WebDataset tars (ldm-data import-wds TAR --out DIR) and images (import-imagenet) -------------
def image_bytes(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def tar_bytes(members, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_cases():
    jpg = image_bytes("JPEG")
    good = tar_bytes([("000000.jpg", jpg), ("000000.txt", b"a red square")])
    put("tar", "truncated.tar", good[:700], "")
    put("tar", "traversal.tar", tar_bytes([("../../../escape.jpg", jpg[:20]), ("../../../escape.txt", b"x"),
                                           ("/abs/path.jpg", jpg[:30]), ("/abs/path.txt", b"y")]), "")
    huge = bytearray(good)
    huge[124:136] = b"77777777777\0"  # the first member declares 8 GiB
    struct.pack_into("8s", huge, 148, b"        ")
    huge[148:156] = ("%06o\0 " % sum(huge[:512])).encode()
    put("tar", "huge-member.tar", bytes(huge), "")
    put("tar", "no-images.tar", tar_bytes([("000000.txt", b"caption only"), ("000001.json", b"{}")]), "")
    put("tar", "garbage.tar", bytes((i * 7919) % 251 for i in range(4096)), "")
    gz = tar_bytes([("000000.jpg", jpg), ("000000.txt", b"a red square")], "w:gz")
    put("tar", "corrupt-gzip.tar", gz[:40] + bytes(60) + gz[100:], "")
    put("tar", "bad-image.tar", tar_bytes([("000000.jpg", jpg[: len(jpg) // 2]), ("000000.txt", b"half")]), "")


def image_cases():
    jpg, png, webp = image_bytes("JPEG"), image_bytes("PNG"), image_bytes("WEBP")
    put("image", "truncated.JPEG", jpg[: len(jpg) // 3], "")
    put("image", "empty.JPEG", b"", "")
    put("image", "text.JPEG", b"<html>not an image</html>\n", "")
    put("image", "flipped-crc.png", flip(png, 40), "")
    # A PNG declaring 100000 x 100000 pixels (a decompression bomb's header).
    bomb = bytearray(png)
    struct.pack_into(">II", bomb, 16, 100000, 100000)
    struct.pack_into(">I", bomb, 29, zlib.crc32(bytes(bomb[12:29])))
    put("image", "bomb.png", bytes(bomb), "pixels")
    put("image", "garbage.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), "")
    put("image", "truncated.webp", webp[: len(webp) // 2], "")


# ---- wire messages and HTTP requests (replayed through tests/fuzz's harnesses by ctest) -------------
def raw(kind, name, data):
    d = os.path.join(HERE, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def frame(type_="hello", body=None, v=1, run="@RUN@", token="@TOKEN@"):
    body = {"rank": 0, "world_size": 2} if body is None else body
    return json.dumps({"v": v, "type": type_, "run": run, "token": token, "body": body}).encode()


def protocol_cases():
    raw("protocol", "truncated.json", frame()[:30])
    raw("protocol", "version-wraps-to-1.json", frame(v=4294967297))
    raw("protocol", "version-huge.json", frame(v=18446744073709551615))
    raw("protocol", "deep-body.json", b'{"v": 1, "type": "hello", "run": "@RUN@", "token": "@TOKEN@", "body": {"rank": 0, '
        b'"world_size": 2, "x": ' + b"[" * 200000 + b"]" * 200000 + b"}}")
    raw("protocol", "nul-bytes.json", frame()[:20] + b"\0\0\0" + frame()[20:])
    raw("protocol", "non-utf8.json", frame(body={"rank": 0, "world_size": 2, "host": "x"}).replace(b'"x"', b'"\xff\xfe"'))
    raw("protocol", "wrong-token.json", frame(token="0" * 32))
    raw("protocol", "huge-step.json", frame("heartbeat", {"step": 18446744073709551615, "attempt": 1}))
    raw("protocol", "negative-world.json", frame("hello", {"rank": -3, "world_size": -2147483649}))
    raw("protocol", "float-seq.json", frame("metrics", {"attempt": 1, "seq": 1e300, "points": []}))
    raw("protocol", "points-nested.json", frame("metrics", {"attempt": 1, "seq": 1, "points": [
        {"metric": "loss", "step": 1, "value": 1e308, "stage": {"x": [1, 2]}, "rank": "zero"}]}))
    raw("protocol", "path-traversal-checkpoint.json", frame("checkpoint", {"step": 1, "path": "../../../../etc"}))
    raw("protocol", "claim-huge.json", frame("claim", {"world_size": 4294967296, "host": "h", "pid": -1, "gpus": 1e9},
                                             run="", token=""))


def http_cases():
    def request(method, target, body=b"", headers=()):
        head = [f"{method} {target} HTTP/1.1", "Host: x"] + list(headers)
        if body:
            head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    raw("http", "traversal-experiment", request("GET", "/api/v1/experiments/..%2F..%2Fetc%2Fpasswd"))
    raw("http", "traversal-dotdot", request("GET", "/api/v1/experiments/../../etc/passwd"))
    raw("http", "traversal-sweep", request("POST", "/api/v1/sweeps/..%2Fx/cancel", b"{}"))
    raw("http", "traversal-submit-name", request("POST", "/api/v1/experiments", json.dumps(
        {"source": "/x.toml", "name": "../../x", "spec": {"name": "a", "stages": [{"name": "train"}]}}).encode()))
    raw("http", "traversal-stage", request("POST", "/api/v1/experiments", json.dumps(
        {"source": "/x.toml", "spec": {"name": "a", "stages": [{"name": "../train"}]}}).encode()))
    raw("http", "nul-in-path", request("GET", "/api/v1/experiments/a%00b"))
    raw("http", "deep-body", request("POST", "/api/v1/experiments", b'{"spec": ' + b"[" * 100000 + b"]" * 100000 + b"}"))
    raw("http", "non-utf8-body", request("POST", "/api/v1/experiments", b'{"source": "\xff", "spec": {}}'))
    raw("http", "huge-max-points", request("GET", "/api/v1/experiments/a/metrics?max_points=99999999999999999999"))
    raw("http", "huge-priority", request("POST", "/api/v1/experiments", json.dumps(
        {"source": "/x.toml", "priority": 1e300, "spec": {"name": "a", "stages": [{"name": "train"}]}}).encode()))
    raw("http", "huge-ranks", request("POST", "/api/v1/experiments/a/resume", b'{"ranks": 1e300}'))
    raw("http", "bad-percent", request("GET", "/api/v1/experiments/%zz%"))
    raw("http", "wrong-token", request("GET", "/api/v1/health", headers=["Authorization: Bearer nope"]))
    raw("http", "basic-auth", request("GET", "/api/v1/health", headers=["Authorization: Basic Zm9vOmJhcg=="]))
    raw("http", "content-length-lies", b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n{}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for kind in ("toml", "shard", "npz", "safetensors", "pt", "bundle", "tar", "image", "protocol", "http"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    toml_cases()
    shard_cases(sys.argv[1])
    npz_cases()
    weights_cases()
    tar_cases()
    image_cases()
    protocol_cases()
    http_cases()
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} broken inputs")


if __name__ == "__main__":
    main()
