"""End to end: every recipe family trains through the same worker from an experiment file, on
class labels or captions, with and without control metadata; the paper's model samples from a
caption with controls and both guidance scales. Real binaries, embedded coordinator (`ldm-coord
run`), real mpirun. Run by ctest (see CMakeLists.txt here)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ldm_e2e  # noqa: E402
from ldm_e2e import experiment  # noqa: E402

# family, task, controls: each family once, every task and control mode covered.
VARIANTS = [
    ("unet", "class", "sdxl"),
    ("dit", "text", "none"),
    ("mdt", "class", "proposed"),
    ("pixart", "text", "sdxl"),
    ("mmdit", "class", "none"),
]


# Steps of each family's run, long enough that its loss must fall: the mean loss of the last
# quarter of the steps is below LOSS_FALL x the first quarter's.
FAMILY_STEPS = 40
LOSS_FALL = 0.85


def variant_toml(family, task, controls):
    """The proposed-text experiment with another recipe, task and control mode, trained longer."""
    with open(experiment("proposed-text.toml")) as f:
        text = f.read()
    text = text.replace("steps = 10\n", f"steps = {FAMILY_STEPS}\n")
    preset = "tiny" if family == "unet" else "tiny/2"
    text = text.replace('name = "tiny-proposed-text"', f'name = "tiny-{family}-{task}"')
    text = text.replace('task = "text"', f'task = "{task}"')
    text = text.replace('family = "proposed"', f'family = "{family}"')
    text = text.replace('preset = "tiny/2"', f'preset = "{preset}"')
    text = text.replace('controls = "proposed"', f'controls = "{controls}"')
    if family == "dit":  # DiT reads the pooled caption only: padding has no effect and is refused
        text = text.replace('text_padding = "noisy_replicate"', 'text_padding = "zero"')
    return text


class EveryRecipeTrains(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-recipes-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.state, ignore_errors=True)

    def train(self, path, name, steps=10):
        proc = ldm_e2e.run_cli("run", path, "--state", self.state, timeout=600)
        self.assertIn("done", proc.stdout, proc.stdout + proc.stderr)
        run_dir = os.path.join(self.state, "runs", name, "train")
        with open(os.path.join(run_dir, "logs", "rank-0.json")) as f:
            rank0 = json.load(f)
        self.assertEqual(rank0["step"], steps)
        self.assertTrue(0 < rank0["final_loss"] < 10, rank0)
        return run_dir

    def test_each_family_trains_on_its_variant_and_its_loss_falls(self):
        for family, task, controls in VARIANTS:
            with self.subTest(family=family, task=task, controls=controls):
                path = os.path.join(self.state, f"{family}.toml")
                with open(path, "w") as f:
                    f.write(variant_toml(family, task, controls))
                run_dir = self.train(path, f"tiny-{family}-{task}", steps=FAMILY_STEPS)
                # Every loss point the worker sent (sent.jsonl): the mean of the last quarter of the
                # steps is well below the first quarter's.
                losses = {}
                with open(os.path.join(run_dir, "sent.jsonl")) as f:
                    for line in f:
                        p = json.loads(line)
                        if p["metric"] == "loss":
                            losses[p["step"]] = p["value"]
                self.assertEqual(sorted(losses), list(range(1, FAMILY_STEPS + 1)))
                k = FAMILY_STEPS // 4
                first = sum(losses[s] for s in range(1, k + 1)) / k
                last = sum(losses[s] for s in range(FAMILY_STEPS - k + 1, FAMILY_STEPS + 1)) / k
                print(f"{family}: mean loss of the first quarter {first:.4f}, last quarter {last:.4f} "
                      f"(ratio {last / first:.3f})", flush=True)
                self.assertLess(last, LOSS_FALL * first, f"{family}: first quarter {first:.4f}, last {last:.4f}")

    def test_proposed_model_trains_on_captions_and_samples_with_controls_and_two_guidance_scales(self):
        run_dir = self.train(experiment("proposed-text.toml"), "tiny-proposed-text")
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        base = [worker, "sample", "--checkpoint", os.path.join(run_dir, "checkpoints"), "--n", "2",
                "--steps", "4", "--caption", "a red circle on the left"]
        latents = {}
        for key, extra in {"small": ["--controls", "orig_h=64,orig_w=64"],
                           "large": ["--controls", "orig_h=1024,orig_w=1024"]}.items():
            out = os.path.join(self.state, f"{key}.png")
            lat = os.path.join(self.state, f"{key}.safetensors")
            proc = subprocess.run(base + extra + ["--cfg", "3", "--cfg-control", "2", "--out", out, "--latents", lat],
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(lat, "rb") as f:
                latents[key] = f.read()
        # The size control reaches the network: the same noise gives other latents.
        self.assertNotEqual(latents["small"], latents["large"])
        # One forward pass from the bundle on given inputs (numpy writes them, numpy reads the result).
        import numpy as np
        rng = np.random.default_rng(0)
        inputs = os.path.join(self.state, "inputs.npz")
        np.savez(inputs, x=rng.standard_normal((2, 12, 16, 16), dtype=np.float32),
                 t=np.array([100.0, 900.0], dtype=np.float32),
                 ctx=rng.standard_normal((2, 12, 32), dtype=np.float32),
                 pooled=rng.standard_normal((2, 32), dtype=np.float32),
                 controls=np.array([[64, 64, 0, 0, 64, 64, 0, 1]] * 2, dtype=np.float32),
                 noise_level=np.array([0.1, 0.9], dtype=np.float32))
        out = os.path.join(self.state, "out.npy")
        proc = subprocess.run([worker, "forward", "--recipe", "proposed", "--checkpoint",
                               os.path.join(run_dir, "checkpoints"), "--inputs", inputs, "--out", out],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = np.load(out)
        self.assertEqual(result.shape, (2, 12, 16, 16))
        self.assertTrue(np.isfinite(result).all())
        # A class label to a text model, and a control key that does not exist, are usage errors.
        for bad, word in ((["--class", "1"], "--class"), (["--controls", "orig_hh=3"], "orig_h")):
            proc = subprocess.run(base + bad + ["--out", os.path.join(self.state, "x.png")],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(word, proc.stderr)


class TrainOnImportedWebDataset(unittest.TestCase):
    """A WebDataset tar (images + captions, as the common downloaders write them) goes through
    `ldm-data import-wds` and the proposed model trains on the shards it wrote."""

    def test_import_wds_then_train_text_to_image(self):
        state = tempfile.mkdtemp(prefix="ldm-e2e-wds-")
        try:
            ldm_e2e.write_wds_tar(os.path.join(state, "cc-00000.tar"), 12)
            shards = os.path.join(state, "shards")
            proc = ldm_e2e.ldm_data("import-wds", os.path.join(state, "cc-{00000..00000}.tar"), "--out", shards,
                                    "--resolution", "32", "--crop", "center", "--threads", "2")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            text = ldm_e2e.shards_experiment("proposed-text.toml", "tiny-wds", shards,
                                             [("batch_size = 8", "batch_size = 4")])
            path = os.path.join(state, "wds.toml")
            with open(path, "w") as f:
                f.write(text)
            run = ldm_e2e.run_cli("run", path, "--state", state, timeout=600)
            self.assertIn("done", run.stdout, run.stdout + run.stderr)
            # The run read the imported shards: 12 records, ids of tar 0, an epoch of 3 steps.
            with open(os.path.join(state, "runs", "tiny-wds", "train", "logs", "records-rank-0.jsonl")) as f:
                steps = [json.loads(line) for line in f if line.strip()]
            self.assertEqual(len(steps), 10)
            self.assertEqual(sorted(i for s in steps[:3] for i in s["ids"]), list(range(12)))
        finally:
            shutil.rmtree(state, ignore_errors=True)


class DescribeEveryFamily(unittest.TestCase):
    def test_describe_checks_the_built_count_against_the_analytic_one(self):
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        for family, preset in (("unet", "tiny"), ("dit", "tiny/2"), ("mdt", "tiny/2"), ("pixart", "tiny/2"),
                               ("mmdit", "tiny/2"), ("proposed", "tiny/2")):
            for extra in ([], ["--task", "text", "--text-dim", "32", "--text-tokens", "8", "--controls", "proposed"]):
                with self.subTest(family=family, extra=extra):
                    proc = subprocess.run([worker, "describe", family, "--preset", preset, "--resolution", "64",
                                           "--json", *extra], capture_output=True, text=True, timeout=60)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    out = json.loads(proc.stdout)
                    self.assertEqual(out["parameters"], out["analytic_parameters"])
                    self.assertGreater(out["gflops"], 0)

    def test_describe_memory_estimate_grows_with_resolution_and_batch(self):
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        for family, preset in (("unet", "tiny"), ("dit", "tiny/2"), ("mdt", "tiny/2"), ("pixart", "tiny/2"),
                               ("mmdit", "tiny/2"), ("proposed", "tiny/2")):
            with self.subTest(family=family):
                estimates = {}
                for resolution in (64, 128):
                    proc = subprocess.run([worker, "describe", family, "--preset", preset, "--resolution",
                                           str(resolution), "--memory", "--batch", "16", "--gpu-memory", "0.5",
                                           "--json"], capture_output=True, text=True, timeout=120)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    out = json.loads(proc.stdout)
                    estimates[resolution] = m = out["memory"]
                    self.assertAlmostEqual(m["state_gib"] * 2 ** 30, 22 * out["trainable"], delta=1)
                    self.assertGreater(m["activations_gib_per_sample"], 0)
                    self.assertAlmostEqual(m["total_gib"], m["state_gib"] + 1.1 * 16 * m["activations_gib_per_sample"],
                                           places=6)
                    self.assertEqual(m["fits"], m["total_gib"] <= 0.5)
                    self.assertLessEqual(m["state_gib"] + 1.1 * m["largest_batch"] * m["activations_gib_per_sample"],
                                         0.5 + 1e-9)
                # Four times the latent pixels keep at least three times the activations per sample.
                self.assertGreater(estimates[128]["activations_gib_per_sample"],
                                   3 * estimates[64]["activations_gib_per_sample"])

    def test_describe_names_the_source_of_every_default(self):
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        published = {"unet": ("vp-scaled-linear", False), "dit": ("vp-linear", True), "mdt": ("vp-linear", True),
                     "pixart": ("vp-linear", True), "mmdit": ("flow", False), "proposed": ("flow", False)}
        for family, (process, sigma) in published.items():
            with self.subTest(family=family):
                preset = "tiny" if family == "unet" else "tiny/2"
                proc = subprocess.run([worker, "describe", family, "--preset", preset, "--resolution", "64", "--json"],
                                      capture_output=True, text=True, timeout=60)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                out = json.loads(proc.stdout)
                defaults = {d["key"]: d for d in out["defaults"]}
                self.assertEqual(defaults["recipe.diffusion.process"]["value"], process)
                self.assertEqual(defaults["recipe.learn_sigma"]["value"], sigma)
                self.assertEqual(out["learn_sigma"], sigma)  # the model is built with the recipe's output
                for key in ("recipe.learn_sigma", "recipe.optimizer.name", "recipe.sampler.cfg", "stage.lr"):
                    self.assertTrue(defaults[key]["from_card"], key)
                    self.assertTrue(defaults[key]["source"], key)
                self.assertFalse(defaults["recipe.diffusion.shift"]["from_card"])
                text = subprocess.run([worker, "describe", family, "--preset", preset, "--resolution", "64"],
                                      capture_output=True, text=True, timeout=60)
                self.assertEqual(text.returncode, 0, text.stderr)
                line = next(l for l in text.stdout.splitlines() if l.strip().startswith("recipe.learn_sigma"))
                self.assertIn(defaults["recipe.learn_sigma"]["source"], line)
        # The published parameter count of a paper preset is printed with its source.
        proc = subprocess.run([worker, "describe", "dit", "--preset", "XL/2", "--json"], capture_output=True,
                              text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = json.loads(proc.stdout)
        self.assertEqual(out["published"]["parameters_m"], 675)
        self.assertIn("Table 4", out["published"]["source"])
        self.assertLess(abs(out["parameters"] / 1e6 - 675), 0.5)

    def test_describe_defaults_to_the_familys_own_preset_and_lists_them_when_unknown(self):
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        # No --preset: the UNet's card default (LDM-4-G), not another family's XL/2.
        proc = subprocess.run([worker, "describe", "unet", "--json"], capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = json.loads(proc.stdout)
        self.assertEqual(out["preset"], "LDM-4-G")
        self.assertEqual(out["parameters"], out["analytic_parameters"])
        # An unknown preset is a usage error that lists the family's presets; an unknown family too.
        proc = subprocess.run([worker, "describe", "unet", "--preset", "XL/2"], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("known: LDM-4-G, tiny, small", proc.stderr)
        proc = subprocess.run([worker, "describe", "ditt"], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("did you mean 'dit'", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
