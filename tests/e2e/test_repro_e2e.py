"""The repro study's smoke test: one seed of sweep (a) at a fraction of its budget, then the report.

Every file of experiments/repro/ must validate (`ldm-coord show`). Sweep (a) runs for real
(`ldm-coord run`: mpirun workers, RocksDB store) with one seed, three arms (no controls, constant,
w_alpha with alpha = 1) and a few dozen steps; `ldm-coord report --claims` must then write the
verdicts (inconclusive with one seed; claims of sweeps not run say so), a table per metric with
control adherence beside disentanglement, the sample grids it links, and the spec hashes. The full
study is experiments/repro/run.sh.
"""
import json
import os
import re
import shutil
import tempfile
import unittest

import ldm_e2e

REPRO = os.path.join(ldm_e2e.REPO, "experiments", "repro")
SWEEPS = ["a-control-weighting", "b-transfer", "c-pos-embed", "d-text-padding", "e-noise-schedule"]


def smoke_file(directory):
    """Sweep (a) cut down: one seed, three arms, the tiny preset, 60 steps, small evaluations."""
    with open(os.path.join(REPRO, "a-control-weighting.toml")) as f:
        text = f.read()
    for old, new in [("seeds = [1, 2, 3]", "seeds = [1]"),
                     ("records = 2048", "records = 256"),
                     ("shard_records = 512", "shard_records = 256"),
                     ('preset = "small/2"', 'preset = "tiny/2"'),
                     ("steps = 800", "steps = 60"),
                     ("samples = 256", "samples = 16"),
                     ("steps = 20\n", "steps = 8\n"),
                     ("sizes = [16, 24, 32, 48, 64, 96]", "sizes = [16, 32, 96]"),
                     ("draws = 8", "draws = 2"),
                     ('["none", "sdxl", "proposed", "proposed", "proposed", "proposed"]',
                      '["none", "sdxl", "proposed"]'),
                     ("[1.0, 1.0, 0.5, 1.0, 2.0, 4.0]", "[1.0, 1.0, 1.0]")]:
        assert old in text, old
        text = text.replace(old, new)
    path = os.path.join(directory, "a-smoke.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def text_smoke_file(directory):
    """Sweep (d) cut down: one seed, noisy replicate padding only, the tiny preset, 60 steps."""
    with open(os.path.join(REPRO, "d-text-padding.toml")) as f:
        text = f.read()
    for old, new in [("seeds = [1, 2, 3]", "seeds = [1]"),
                     ("records = 2048", "records = 512"),
                     ('preset = "small/2"', 'preset = "tiny/2"'),
                     ("steps = 1200", "steps = 60"),
                     ("samples = 256", "samples = 16"),
                     ("steps = 20\n", "steps = 8\n"),
                     ('["zero", "replicate", "noisy_replicate"]', '["noisy_replicate"]'),
                     ('captions = "captions.txt"', 'captions = "%s"' % os.path.join(REPRO, "captions.txt"))]:
        assert old in text, old
        text = text.replace(old, new)
    path = os.path.join(directory, "d-smoke.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class ReproSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ldm-e2e-repro-")
        cls.state = os.path.join(cls.dir, "state")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.dir, ignore_errors=True)

    def test_every_repro_file_validates(self):
        for name in SWEEPS:
            proc = ldm_e2e.run_cli("show", os.path.join(REPRO, name + ".toml"))
            self.assertIn("seed", proc.stdout, name)
            # three seeds per cell
            self.assertGreaterEqual(proc.stdout.count("-s3"), 1, name)

    def test_one_seed_of_sweep_a_and_its_report(self):
        env_file = smoke_file(self.dir)
        ldm_e2e.run_cli("run", env_file, "--state", self.state, timeout=600)
        out = os.path.join(self.dir, "report")
        proc = ldm_e2e.run_cli("report", "repro-a-control-weighting", "--state", self.state, "--out", out,
                               "--claims", os.path.join(REPRO, "claims.toml"))
        with open(os.path.join(out, "README.md")) as f:
            md = f.read()
        # Verdicts: sweep (a)'s claims are judged (one seed: inconclusive), the others were not run.
        self.assertRegex(proc.stdout, r"a1\s+inconclusive")
        self.assertRegex(proc.stdout, r"b1\s+not run")
        self.assertIn("fewer than two seeds", md)
        # A table per metric, rows by arm; the no-controls arm's size effect is 0 by construction.
        for metric in ("loss", "fid", "disentanglement", "control_adherence", "control_gain"):
            self.assertIn("### " + metric + "\n", md)
        section = md.split("### disentanglement\n")[1].split("###")[0]
        self.assertRegex(section, r"\| alpha=1 controls=none \| \*\*0\*\* \|")
        # Sample grids: one per cell, copied and linked.
        grids = re.findall(r"!\[\]\((repro-a-control-weighting/grids/[^)]+\.png)\)", md)
        self.assertEqual(len(grids), 3)
        for g in grids:
            self.assertGreater(os.path.getsize(os.path.join(out, g)), 100)
        # The command and every cell's spec hash.
        self.assertIn("ldm-coord run " + env_file, md)
        self.assertGreaterEqual(len(re.findall(r"\| `[0-9a-f]{8,}` \|", md)), 3)
        # Bad input: no --out, an unknown sweep, a claim naming a row the sweep does not have.
        proc = ldm_e2e.run_cli("report", "repro-a-control-weighting", "--state", self.state, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--out", proc.stderr)
        proc = ldm_e2e.run_cli("report", "nope", "--state", self.state, "--out", out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("nope", proc.stderr)
        bad_claims = os.path.join(self.dir, "claims.toml")
        with open(bad_claims, "w") as f:
            f.write('[[claim]]\nid = "z"\nsweep = "repro-a-control-weighting"\ntitle = "T"\npaper = "P"\n'
                    'metric = "fid"\nbetter = "lower"\nstage = "eval"\ntreatment_row = "alpha=9 controls=x"\n')
        proc = ldm_e2e.run_cli("report", "repro-a-control-weighting", "--state", self.state, "--out", out,
                               "--claims", bad_claims, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("claim z", proc.stderr)
        self.assertIn("alpha=1 controls=none", proc.stderr)  # the rows it has
        # The worker's measurements behind control_adherence: energy per size for each draw.
        metrics = [os.path.join(root, "metrics.json") for root, _, files in os.walk(self.state)
                   if "metrics.json" in files and "proposed" in root]
        self.assertTrue(metrics)
        with open(metrics[0]) as f:
            m = json.load(f)["metrics"]
        self.assertEqual(len(m["control_energy_by_size"]), 2)
        self.assertEqual(len(m["control_energy_by_size"][0]), 3)
        # The reference: the training data's sharpness at crop sides 16, 32, 96 (blurred below the output side).
        self.assertIn("training data", m["control_reference"])
        curve = m["control_reference_curve"]
        self.assertEqual(len(curve), 3)
        self.assertGreater(curve[1], curve[0] + 0.5)

    def test_caption_adherence_in_an_evaluation_stage(self):
        state = os.path.join(self.dir, "text-state")
        ldm_e2e.run_cli("run", text_smoke_file(self.dir), "--state", state, timeout=600)
        metrics = [os.path.join(root, "metrics.json") for root, _, files in os.walk(state) if "metrics.json" in files]
        self.assertEqual(len(metrics), 1)
        with open(metrics[0]) as f:
            m = json.load(f)["metrics"]
        # The classifier trained on the parent's synthetic records reads them well above chance
        # (colour 1/10, shape 1/8, side 1/3), and each sample is scored against its caption.
        self.assertGreater(m["caption_classifier_accuracy"], 0.6)
        for key in ("caption_adherence", "caption_adherence_colour", "caption_adherence_shape",
                    "caption_adherence_side"):
            self.assertGreaterEqual(m[key], 0.0, key)
            self.assertLessEqual(m[key], 1.0, key)
        # Trained once per data content: the cache holds it for the next stage that needs it.
        cache = [f for root, _, files in os.walk(state) for f in files if f.startswith("caption-classifier-")]
        self.assertEqual(len(cache), 1)


if __name__ == "__main__":
    unittest.main()
