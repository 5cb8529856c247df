"""End to end: every broken file of tests/data/bad/ (written by make_bad.py, listed in cases.json)
given to the real program that reads its kind. Each must fail with an error that names the file,
and the line, key, record or offset where cases.json lists one; exit non-zero, never by a signal
or an uncaught exception; and leave the experiment store and the run directories as they were.

  toml/         ldm-coord show FILE, and ldm-coord run FILE --state S (S holds a finished experiment)
  shard/        ldm-data verify DIR (DIR holds only that shard)
  npz/          ldm-eval fid BAD.npz GOOD.npz
  safetensors/, pt/, bundle/   ldm-worker forward --recipe dit --checkpoint BAD
  tar/          ldm-data import-wds BAD.tar --out DIR (nothing may appear outside DIR)
  image/        ldm-data import-imagenet ROOT --out DIR (ROOT/train/n00000001/ holds only that image)
Wire messages and HTTP requests (protocol/, http/) are replayed by ctest through tests/fuzz's
harnesses. Run by ctest with LDM_BIN and LDM_REPO set (tests/e2e/CMakeLists.txt)."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import ldm_e2e

BAD = os.path.join(ldm_e2e.REPO, "tests", "data", "bad")
FIXTURE = os.path.join(ldm_e2e.REPO, "tests", "fixtures", "bundles", "dit-tiny-step2")
# What only a crash or an escaped exception prints.
CRASH_MARKS = ("terminate called", "Segmentation fault", "AddressSanitizer", "runtime error:", "Aborted",
               "what():", "[json.exception", "c10::Error", "Traceback")


def run(args, cwd=None, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def tree(root):
    """{relative path: (size, bytes)} of every file under root, RocksDB's own files left out."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)
            if rel.startswith("db" + os.sep) or rel.startswith("logs" + os.sep) or f.endswith(".lock"):
                continue
            with open(path, "rb") as fh:
                out[rel] = fh.read()
    return out


def npz(path, **arrays):
    import io
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for name, (descr, shape, data) in arrays.items():
            header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
            header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
            z.writestr(name + ".npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


class BadInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(BAD, "cases.json")) as f:
            cls.cases = json.load(f)
        cls.tmp = tempfile.mkdtemp(prefix="ldm-bad-e2e-")
        # A store with one finished experiment, to check that refused files leave it as it was.
        cls.state = os.path.join(cls.tmp, "state")
        proc = ldm_e2e.run_cli("run", ldm_e2e.experiment("dit-1rank-short.toml"), "--state", cls.state,
                               timeout=600)
        assert proc.returncode == 0, proc.stderr
        # Inputs for `forward`: the fixture's latent layout (channels from its patch embedding).
        with open(os.path.join(FIXTURE, "model.safetensors"), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        channels = header["x_embedder.proj.weight"]["shape"][1]
        cls.inputs = os.path.join(cls.tmp, "inputs.npz")
        npz(cls.inputs, x=("<f4", (1, channels, 8, 8), b"\0" * (4 * channels * 64)), t=("<i8", (1,), b"\0" * 8),
            y=("<i8", (1,), b"\0" * 8))
        cls.good_stats = os.path.join(cls.tmp, "good.npz")
        eye = b"".join(struct.pack("<8d", *[1.0 if i == j else 0.0 for j in range(8)]) for i in range(8))
        npz(cls.good_stats, mu=("<f8", (8,), b"\0" * 64), sigma=("<f8", (8, 8), eye))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def status(self):
        """The store's experiments and every metric point of the finished one."""
        return ldm_e2e.run_cli("export", "tiny-dit-1rank", "--format", "jsonl", "--state", self.state).stdout

    def check_refused(self, case, proc, what):
        name = os.path.basename(case["file"])
        output = proc.stdout + proc.stderr
        context = f"{what}\nexit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        self.assertGreater(proc.returncode, 0, "must exit non-zero, not by a signal: " + context)
        for mark in CRASH_MARKS:
            self.assertNotIn(mark, output, context)
        self.assertIn(name, output, "the error must name the file: " + context)
        for fragment in case["expect"]:
            self.assertIn(fragment, output, context)

    def cases_of(self, kind):
        found = [c for c in self.cases if c["file"].startswith(kind + "/")]
        self.assertTrue(found, f"cases.json lists no {kind}/ case")
        return found

    def test_experiment_files(self):
        before_status, before_runs = self.status(), tree(self.state)
        for case in self.cases_of("toml"):
            with self.subTest(case=case["file"]):
                path = os.path.join(BAD, case["file"])
                self.check_refused(case, ldm_e2e.run_cli("show", path, check=False), "ldm-coord show")
                proc = ldm_e2e.run_cli("run", path, "--state", self.state, check=False, timeout=300)
                self.check_refused(case, proc, "ldm-coord run")
                self.assertEqual(self.status(), before_status, "the store changed")
                self.assertEqual(tree(self.state).keys(), before_runs.keys(), "the state directory changed")

    def test_shards(self):
        for case in self.cases_of("shard"):
            with self.subTest(case=case["file"]):
                d = tempfile.mkdtemp(dir=self.tmp)
                shutil.copy(os.path.join(BAD, case["file"]), d)
                before = tree(d)
                self.check_refused(case, ldm_e2e.ldm_data("verify", d), "ldm-data verify")
                self.assertEqual(tree(d), before, "verify changed the directory")

    def test_statistics_npz(self):
        for case in self.cases_of("npz"):
            with self.subTest(case=case["file"]):
                proc = run([os.path.join(ldm_e2e.BIN, "ldm-eval"), "fid", os.path.join(BAD, case["file"]),
                            self.good_stats])
                self.check_refused(case, proc, "ldm-eval fid")

    def test_weights_and_bundles(self):
        for kind in ("safetensors", "pt", "bundle"):
            for case in self.cases_of(kind):
                with self.subTest(case=case["file"]):
                    out = os.path.join(self.tmp, "out.npy")
                    path = os.path.join(BAD, case["file"])
                    if kind == "bundle":  # the case's files over a copy of the fixture bundle
                        path = os.path.join(tempfile.mkdtemp(dir=self.tmp), os.path.basename(case["file"]))
                        shutil.copytree(FIXTURE, path)
                        shutil.copytree(os.path.join(BAD, case["file"]), path, dirs_exist_ok=True)
                    proc = run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "forward", "--recipe", "dit", "--preset",
                                "tiny/2", "--checkpoint", path, "--inputs", self.inputs,
                                "--out", out, "--threads", "1"])
                    self.check_refused(case, proc, "ldm-worker forward")
                    self.assertFalse(os.path.exists(out), "an output was written")
                    self.assertFalse(os.path.exists("/tmp/ldm-bad-input-ran-code"), "a pickle ran code")

    def test_webdataset_tars(self):
        for case in self.cases_of("tar"):
            with self.subTest(case=case["file"]):
                work = tempfile.mkdtemp(dir=self.tmp)
                tar = os.path.join(work, "in", "shard", os.path.basename(case["file"]))
                os.makedirs(os.path.dirname(tar))
                shutil.copy(os.path.join(BAD, case["file"]), tar)
                out = os.path.join(work, "out")
                proc = ldm_e2e.ldm_data("import-wds", tar, "--out", out, "--resolution", "8", "--threads", "1")
                self.check_refused(case, proc, "ldm-data import-wds")
                outside = sorted(os.path.relpath(os.path.join(d, f), work) for d, _, files in os.walk(work)
                                 for f in files if not os.path.join(d, f).startswith(out + os.sep))
                self.assertEqual(outside, [os.path.relpath(tar, work)], "files appeared outside --out")
                self.assertFalse(os.path.exists("/abs/path.jpg"))

    def test_images(self):
        for case in self.cases_of("image"):
            with self.subTest(case=case["file"]):
                work = tempfile.mkdtemp(dir=self.tmp)
                folder = os.path.join(work, "root", "train", "n00000001")
                os.makedirs(folder)
                shutil.copy(os.path.join(BAD, case["file"]), folder)
                proc = ldm_e2e.ldm_data("import-imagenet", os.path.join(work, "root"), "--out",
                                        os.path.join(work, "out"), "--resolution", "8", "--threads", "1")
                self.check_refused(case, proc, "ldm-data import-imagenet")


if __name__ == "__main__":
    unittest.main()
