"""End to end: evaluation stages. experiments/tiny/eval.toml trains a tiny DiT and its "fid" stage
samples from the initial weights (step 0) and the final checkpoint; the built-in FID of each goes to
the store as metric points of the evaluation stage. Checked here, with real binaries:
  - `ldm-coord run` prints the results and a final metrics table;
  - the FID after training is lower than at initialisation;
  - each stored FID equals `ldm-eval fid` run by hand on the same sample folder and statistics;
  - a second experiment on the same data reuses the cached reference statistics;
  - the HTTP API (and `ldm-coord status`) shows the results with their checkpoints.
Run by ctest."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ldm_e2e  # noqa: E402
from ldm_e2e import experiment  # noqa: E402


class EvaluationStages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-eval-")
        cls.first = ldm_e2e.run_cli("run", experiment("eval.toml"), "--state", cls.state, check=False, timeout=600)
        cls.second = ldm_e2e.run_cli("run", experiment("eval.toml"), "--state", cls.state, "--name", "tiny-eval-again",
                                     check=False, timeout=600)
        cls.coord = ldm_e2e.Coordinator(state=cls.state).start()

    @classmethod
    def tearDownClass(cls):
        cls.coord.stop()
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def metrics_json(self, name, step):
        with open(os.path.join(self.state, "runs", name, "fid", f"step-{step:07d}", "metrics.json")) as f:
            return json.load(f)

    def test_run_prints_the_results_and_a_final_table(self):
        for proc in (self.first, self.second):
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        out = self.first.stdout
        self.assertIn("evaluation fid done:", out)
        self.assertIn("fid @ step 0: fid ", out)
        self.assertIn("fid @ step 200: fid ", out)
        self.assertIn("final metrics:", out)
        table = out.split("final metrics:")[1]
        self.assertIn("FINAL LOSS", table)
        self.assertIn("@200", table)  # the fid stage's last FID, at its step

    def test_fid_falls_with_training_and_equals_ldm_eval_by_hand(self):
        points = self.coord.get("/api/v1/experiments/tiny-eval/metrics?stage=fid&metric=fid")["points"]
        fid = {p["step"]: p["value"] for p in points}
        self.assertEqual(sorted(fid), [0, 200])
        print(f"built-in FID: initialisation {fid[0]:.3f}, after 200 steps {fid[200]:.3f}", file=sys.stderr)
        self.assertLess(fid[200], fid[0])
        cache = os.path.join(self.state, "runs", "data", "fid-stats")
        cached = [f for f in os.listdir(cache) if f.endswith(".npz")]
        self.assertEqual(len(cached), 1, cached)  # one reference, computed once for both experiments
        # The reference by hand: `ldm-eval stats` on the training data the parent read.
        data = self.metrics_json("tiny-eval", 0)["metrics"]["fid_reference"]
        self.assertTrue(os.path.isdir(data), data)
        stats = [os.path.join(self.state, "by-hand.npz")]
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-eval"), "stats", data, "--out", stats[0]],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for step in (0, 200):
            samples = os.path.join(self.state, "runs", "tiny-eval", "fid", f"step-{step:07d}", "samples")
            self.assertEqual(len(os.listdir(samples)), 128)
            proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-eval"), "fid", samples, stats[0], "--json"],
                                  capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            by_hand = json.loads(proc.stdout.strip().splitlines()[-1])["fid"]
            self.assertAlmostEqual(by_hand, fid[step], delta=1e-9 * max(1.0, abs(by_hand)))

    def test_the_second_experiment_reuses_the_reference_statistics(self):
        self.assertFalse(self.metrics_json("tiny-eval", 0)["metrics"]["fid_reference_cached"])
        self.assertTrue(self.metrics_json("tiny-eval-again", 0)["metrics"]["fid_reference_cached"])
        self.assertTrue(self.metrics_json("tiny-eval-again", 200)["metrics"]["fid_reference_cached"])

    def test_results_are_in_the_api_with_their_checkpoints_and_a_grid(self):
        status = json.loads(self.coord.cli("status", "tiny-eval", "--json").stdout)
        stages = {s["name"]: s for s in status["stages"]}
        self.assertEqual(stages["fid"]["state"], "done")
        results = stages["fid"]["results"]
        self.assertEqual(sorted({(p["metric"], p["step"]) for p in results}), [("fid", 0), ("fid", 200)])
        bundles = stages["fid"]["lineage"]["bundles"]
        self.assertEqual([b["step"] for b in bundles], [0, 200])
        for b in bundles:
            self.assertTrue(os.path.exists(os.path.join(b["bundle"], "manifest.json")), b)
        text = self.coord.cli("status", "tiny-eval").stdout
        self.assertIn("evaluations:", text)
        self.assertIn("fid @ step 200: fid ", text)
        for step in (0, 200):
            grid = os.path.join(self.state, "runs", "tiny-eval", "fid", f"step-{step:07d}", "grid.png")
            with open(grid, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class ClipScoreStage(unittest.TestCase):
    """A clip_score stage on the tiny proposed text-to-image model, with the random-weight CLIP towers
    and BPE merges that tests/worker/reference/clip_reference.py exports."""

    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-clip-")
        ref = os.path.join(cls.state, "clip")
        os.makedirs(ref)
        proc = subprocess.run(["/usr/bin/python3", os.path.join(ldm_e2e.REPO, "tests", "worker", "reference",
                                                                 "clip_reference.py"), ref],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cls.captions = ["a red circle on the left", "a blue square", "a green triangle on the right"]
        with open(os.path.join(cls.state, "captions.txt"), "w") as f:
            f.write("\n".join(cls.captions) + "\n")
        with open(experiment("proposed-text.toml")) as f:
            text = f.read()
        text += f"""
[[stage]]
name = "clip"
kind = "eval"
after = "train"
[stage.eval]
metrics = ["clip_score", "disentanglement"]
samples = 6
steps = 4
sizes = [64, 256]
draws = 2
captions = "captions.txt"            # relative paths: relative to this file
clip_image = "clip/random_image.pt"
clip_text = "clip/random_text.pt"
clip_bpe = "clip/merges.txt.gz"
"""
        cls.path = os.path.join(cls.state, "clip.toml")
        with open(cls.path, "w") as f:
            f.write(text)
        cls.outcome = ldm_e2e.run_cli("run", cls.path, "--state", cls.state, check=False, timeout=600)

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def test_the_stored_clip_score_equals_ldm_eval_clip_score_on_the_same_samples(self):
        self.assertEqual(self.outcome.returncode, 0, self.outcome.stdout + self.outcome.stderr)
        self.assertIn("clip @ step 10: clip_score ", self.outcome.stdout)
        out = os.path.join(self.state, "runs", "tiny-proposed-text", "clip", "step-0000010")
        with open(os.path.join(out, "metrics.json")) as f:
            stored = json.load(f)["metrics"]["clip_score"]
        per_sample = os.path.join(self.state, "per-sample.txt")  # sample i has caption i % 3
        with open(per_sample, "w") as f:
            f.write("\n".join(self.captions[i % 3] for i in range(6)) + "\n")
        ref = os.path.join(self.state, "clip")
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-eval"), "clip-score", os.path.join(out, "samples"),
                               "--captions", per_sample, "--clip-image", os.path.join(ref, "random_image.pt"),
                               "--clip-text", os.path.join(ref, "random_text.pt"),
                               "--bpe", os.path.join(ref, "merges.txt.gz"), "--json"],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        by_hand = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"CLIP score (random towers): stored {stored}, ldm-eval {by_hand['clip_score']}", file=sys.stderr)
        self.assertAlmostEqual(stored, by_hand["clip_score"], delta=1e-9)

    def test_the_stored_disentanglement_equals_ldm_worker_disentanglement(self):
        self.assertEqual(self.outcome.returncode, 0, self.outcome.stdout + self.outcome.stderr)
        out = os.path.join(self.state, "runs", "tiny-proposed-text", "clip", "step-0000010")
        with open(os.path.join(out, "metrics.json")) as f:
            stored = json.load(f)["metrics"]
        checkpoints = os.path.join(self.state, "runs", "tiny-proposed-text", "train", "checkpoints")
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "disentanglement", "--checkpoint", checkpoints,
                               "--sizes", "64,256", "--draws", "2", "--steps", "4", "--captions",
                               os.path.join(self.state, "captions.txt"), "--json"],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        by_hand = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(stored["disentanglement_distance"], by_hand["distance"])
        self.assertAlmostEqual(stored["disentanglement"], by_hand["all_pairs"], delta=1e-9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
