"""End to end: evaluation samples from a trained tiny checkpoint with `ldm-worker generate` under
real mpirun with 1 and 2 ranks (each rank writes its share, the files are byte-identical), and the
disentanglement metric of `ldm-worker disentanglement` on the paper's tiny model. Real binaries,
embedded coordinator (`ldm-coord run`) to train. Run by ctest (see CMakeLists.txt here)."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ldm_e2e  # noqa: E402
from ldm_e2e import experiment, mpirun  # noqa: E402

N = 6


def worker():
    return os.path.join(ldm_e2e.BIN, "ldm-worker")


def run(args, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def train(state, toml, name):
    proc = ldm_e2e.run_cli("run", experiment(toml), "--state", state, timeout=600)
    assert "done" in proc.stdout, proc.stdout + proc.stderr
    return os.path.join(state, "runs", name, "train", "checkpoints")


class GenerateOnOneAndTwoRanks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-generate-")
        cls.checkpoint = train(cls.state, "dit-1rank-short.toml", "tiny-dit-1rank")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def generate(self, out, launcher, extra=()):
        # the recipe's ddpm sampler (stochastic) with fewer steps; batch 4 straddles the ranks' ranges;
        # the raw weights (after 8 steps the EMA is still almost the zero-initialised network)
        proc = run(launcher + [worker(), "generate", "--checkpoint", self.checkpoint, "--n", str(N), "--out", out,
                               "--seed", "5", "--steps", "8", "--cfg", "2", "--batch", "4", "--no-ema", *extra])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        with open(os.path.join(out, "generate.json")) as f:
            return proc, json.load(f)

    def test_each_rank_writes_its_share_and_the_files_are_identical(self):
        one, two = os.path.join(self.state, "one"), os.path.join(self.state, "two")
        proc1, m1 = self.generate(one, mpirun(1))
        proc2, m2 = self.generate(two, mpirun(2))
        self.assertEqual(m1["world_size"], 1)
        self.assertEqual([(r["rank"], r["begin"], r["end"], r["count"]) for r in m1["ranks"]], [(0, 0, N, N)])
        self.assertEqual(m2["world_size"], 2)
        self.assertEqual([(r["rank"], r["begin"], r["end"], r["count"]) for r in m2["ranks"]],
                         [(0, 0, N // 2, N // 2), (1, N // 2, N, N // 2)])
        self.assertIn("rank 1: samples [3, 6)", proc2.stdout)
        self.assertIn("per rank: 3 3", proc2.stdout)
        names = [f"{i:06d}.png" for i in range(N)]
        for out in (one, two):
            self.assertEqual(sorted(os.listdir(os.path.join(out, "samples"))), names)
        for name in names:
            self.assertEqual(read_bytes(os.path.join(one, "samples", name)), read_bytes(os.path.join(two, "samples", name)),
                             name)
        self.assertEqual(read_bytes(os.path.join(one, "grid.png")), read_bytes(os.path.join(two, "grid.png")))
        self.assertNotEqual(read_bytes(os.path.join(one, "samples", names[0])),
                            read_bytes(os.path.join(one, "samples", names[1])))
        # Without mpirun: one process, the same files.
        plain = os.path.join(self.state, "plain")
        self.generate(plain, [])
        for name in names:
            self.assertEqual(read_bytes(os.path.join(one, "samples", name)), read_bytes(os.path.join(plain, "samples", name)),
                             name)

    def test_usage_errors_and_refusals(self):
        proc = run([worker(), "generate", "--checkpoint", self.checkpoint, "--out", os.path.join(self.state, "x")])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--n", proc.stderr)
        # the DiT recipe has no control conditioning: no --controls
        proc = run([worker(), "generate", "--checkpoint", self.checkpoint, "--n", "2", "--out",
                    os.path.join(self.state, "x"), "--controls", "orig_h=64"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("no control conditioning", proc.stderr)
        proc = run([worker(), "generate", "--checkpoint", self.checkpoint, "--n", "2", "--out",
                    os.path.join(self.state, "x"), "--captions", "/nonexistent"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        # the DiT recipe has no control conditioning: no disentanglement metric
        proc = run([worker(), "disentanglement", "--checkpoint", self.checkpoint, "--steps", "2"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("control", proc.stderr)


class DisentanglementOfTheProposedModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-disentangle-")
        cls.checkpoint = train(cls.state, "proposed-text.toml", "tiny-proposed-text")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def metric(self, *extra):
        proc = run([worker(), "disentanglement", "--checkpoint", self.checkpoint, "--caption",
                    "a red circle on the left", "--steps", "4", "--draws", "2", "--json", *extra])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def test_metric_is_finite_and_zero_without_a_size_difference(self):
        r = self.metric()
        self.assertEqual(r["sizes"], [64, 128, 256, 512, 1024])
        self.assertEqual(r["draws"], 2)
        self.assertTrue(r["distance"].startswith("features:"), r["distance"])
        for key in ("all_pairs", "high_res"):
            self.assertTrue(math.isfinite(r[key]) and r[key] >= 0.0, r)
        self.assertEqual(len(r["pair_mean"]), 5)
        # The raw weights after 10 steps (the EMA is still almost the zero-initialised network):
        # the size condition reaches the images.
        raw = self.metric("--no-ema", "--pixel")
        self.assertEqual(raw["distance"], "pixel-mse")
        self.assertGreater(raw["all_pairs"], 0.0)
        self.assertTrue(math.isfinite(raw["high_res"]) and raw["high_res"] >= 0.0, raw)
        # the same size twice, and every generation with its controls dropped: nothing to tell apart
        self.assertEqual(self.metric("--no-ema", "--sizes", "256,256", "--pixel")["all_pairs"], 0.0)
        self.assertEqual(self.metric("--no-ema", "--drop-controls", "--pixel")["all_pairs"], 0.0)

    def test_generate_with_controls_and_another_resolution(self):
        from PIL import Image
        captions = os.path.join(self.state, "captions.txt")
        with open(captions, "w") as f:
            f.write("a red circle on the left\na blue square\n")

        def generate(out, *extra):
            # raw weights: after 10 steps the EMA is still almost the zero-initialised network
            proc = run([worker(), "generate", "--checkpoint", self.checkpoint, "--n", "2", "--out", out,
                        "--captions", captions, "--steps", "3", "--no-ema", *extra])
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            with open(os.path.join(out, "generate.json")) as f:
                return json.load(f)

        base = generate(os.path.join(self.state, "g-default"))
        self.assertEqual(base["resolution"], 32)
        self.assertEqual(base["controls"], {"orig_h": 32, "orig_w": 32, "crop_top": 0, "crop_left": 0, "crop_h": 32,
                                            "crop_w": 32, "flip": False})
        big = generate(os.path.join(self.state, "g-big"), "--controls", "orig_h=1024,orig_w=768,flip=1")
        self.assertEqual((big["controls"]["orig_h"], big["controls"]["orig_w"], big["controls"]["flip"]),
                         (1024, 768, True))
        # the controls reach the images: same noise and captions, other files
        self.assertNotEqual(read_bytes(os.path.join(self.state, "g-default", "samples", "000000.png")),
                            read_bytes(os.path.join(self.state, "g-big", "samples", "000000.png")))
        hi = generate(os.path.join(self.state, "g-48"), "--resolution", "48")
        self.assertEqual(hi["resolution"], 48)
        self.assertEqual(hi["controls"]["orig_h"], 48)  # the default follows the sampled resolution
        with Image.open(os.path.join(self.state, "g-48", "samples", "000001.png")) as im:
            self.assertEqual(im.size, (48, 48))
        bad = run([worker(), "generate", "--checkpoint", self.checkpoint, "--n", "1", "--captions", captions, "--out",
                   os.path.join(self.state, "x"), "--controls", "orig_hh=3"])
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("unknown key 'orig_hh'", bad.stderr)

    def test_text_output_ends_with_the_metric(self):
        proc = run([worker(), "disentanglement", "--checkpoint", self.checkpoint, "--caption", "a blue square",
                    "--steps", "3", "--draws", "1", "--pixel", "--sizes", "64,512,1024"])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        last = proc.stdout.strip().splitlines()[-1].split()
        self.assertEqual(last[:2], ["disentanglement", "all-pairs"])
        self.assertEqual(last[3], "high-res")
        self.assertTrue(float(last[2]) >= 0.0 and float(last[4]) >= 0.0, last)
        # a text checkpoint needs a caption
        proc = run([worker(), "disentanglement", "--checkpoint", self.checkpoint, "--steps", "2"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--caption", proc.stderr)


if __name__ == "__main__":
    unittest.main()
