"""End to end: FID with the built-in feature network falls with training.

The tiny DiT of experiments/tiny/dit-fid.toml is trained on the synthetic shapes through the
coordinator and mpirun; its samples (`ldm-worker generate` under `mpirun -n 2`) are compared with
the statistics of one half of the same synthetic dataset (`ldm-eval stats` on its shards):
  - the other half of the dataset is near 0 (data against data),
  - the trained model is at most half of the FID of the model at initialisation (a 1-step run at
    a learning rate of 1e-12: DiT's zero-initialised output layer, so the samples are noise).
Real binaries throughout. Run by ctest (see CMakeLists.txt here).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ldm_e2e  # noqa: E402
from ldm_e2e import experiment, mpirun  # noqa: E402

SAMPLES = 512


def binary(name):
    return os.path.join(ldm_e2e.BIN, name)


def run(args, timeout=600):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def fid(a, b):
    out = json.loads(run([binary("ldm-eval"), "fid", a, b, "--json"]).stdout.strip().splitlines()[-1])
    assert out["features"] is not None and out["comparable_with_published_fid"] is False, out
    return out


class FidFallsWithTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-fid-")
        with open(experiment("dit-fid.toml")) as f:
            cls.toml = f.read()
        # The experiment's synthetic dataset (same parameters, so the same images), split by shard
        # into two disjoint halves of 1,024 images.
        data = os.path.join(cls.state, "data")
        proc = ldm_e2e.ldm_data("synth", "--out", data, "--records", "2048", "--classes", "10",
                                "--shard-records", "256", "--seed", "0")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        shards = sorted(f for f in os.listdir(data) if f.endswith(".ldms"))
        assert len(shards) == 8, shards
        cls.halves = []
        for k, part in enumerate((shards[:4], shards[4:])):
            half = os.path.join(cls.state, f"half{k}")
            os.makedirs(half)
            for s in part:
                os.link(os.path.join(data, s), os.path.join(half, s))
            cls.halves.append(half)
        cls.reference = os.path.join(cls.state, "half0.npz")
        run([binary("ldm-eval"), "stats", cls.halves[0], "--out", cls.reference])

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def train(self, name, replacements=()):
        text = self.toml.replace('name = "tiny-dit-fid"', f'name = "{name}"', 1)
        for old, new in replacements:
            self.assertIn(old, text)
            text = text.replace(old, new)
        path = os.path.join(self.state, name + ".toml")
        with open(path, "w") as f:
            f.write(text)
        proc = ldm_e2e.run_cli("run", path, "--state", os.path.join(self.state, "coord"), timeout=900)
        self.assertIn("done", proc.stdout, proc.stdout + proc.stderr)
        return os.path.join(self.state, "coord", "runs", name, "train", "checkpoints")

    def generate(self, checkpoint, out):
        # the recipe's sampler (DDIM, 50 steps) and guidance; 2 ranks write 256 samples each
        run(mpirun(2) + [binary("ldm-worker"), "generate", "--checkpoint", checkpoint, "--n", str(SAMPLES),
                         "--out", out, "--batch", "64"])
        folder = os.path.join(out, "samples")
        self.assertEqual(len(os.listdir(folder)), SAMPLES)
        return folder

    def test_fid_after_training_is_at_most_half_of_the_fid_at_initialisation(self):
        initial = self.train("tiny-dit-fid-init", [("steps = 800", "steps = 1"), ("lr = 2e-3", "lr = 1e-12")])
        trained = self.train("tiny-dit-fid")
        data_vs_data = fid(self.reference, self.halves[1])
        at_init = fid(self.reference, self.generate(initial, os.path.join(self.state, "gen-init")))
        after = fid(self.reference, self.generate(trained, os.path.join(self.state, "gen-trained")))
        report = (f"built-in FID against half 0 of the data: other half {data_vs_data['fid']:.4f}, "
                  f"initialisation {at_init['fid']:.4f}, after 800 steps {after['fid']:.4f}")
        print(report)
        self.assertEqual((data_vs_data["count_a"], data_vs_data["count_b"]), (1024, 1024))
        self.assertEqual((at_init["count_b"], after["count_b"]), (SAMPLES, SAMPLES))
        # the same network on both sides of every comparison
        self.assertEqual(len({r["extractor_a"] for r in (data_vs_data, at_init, after)}), 1, report)
        self.assertLessEqual(after["fid"], 0.5 * at_init["fid"], report)
        # data against data is near 0: small next to what training has to close
        self.assertLess(data_vs_data["fid"], 0.05 * at_init["fid"], report)
        self.assertLess(data_vs_data["fid"], after["fid"], report)


if __name__ == "__main__":
    unittest.main()
