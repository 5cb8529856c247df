"""End to end: staged experiments. experiments/tiny/transfer.toml (pre-train at 16 px = 8x8 latents,
continue at 32 px = 16x16 latents from the pre-training stage's EMA weights, and a from-scratch 32 px
stage beside them) runs through `ldm-coord run` for every family, one rank per stage. Then a real
`ldm-coord serve` on the same state directory answers for the store: each stage's lineage (parent
run, bundle, manifest SHA-256, resolved transfer), and the loss curves that show the transferred
network ahead of the from-scratch one over the same steps, seed and data. Run by ctest."""
import hashlib
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

FAMILIES = ["unet", "dit", "mdt", "pixart", "mmdit", "proposed"]


def family_toml(family):
    with open(experiment("transfer.toml")) as f:
        text = f.read()
    preset = "tiny" if family == "unet" else "tiny/2"
    for old, new in (('name = "tiny-transfer"', f'name = "transfer-{family}"'),
                     ('family = "dit"', f'family = "{family}"'),
                     ('preset = "tiny/2"', f'preset = "{preset}"')):
        assert old in text, old
        text = text.replace(old, new)
    return text


class StagedExperiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="ldm-e2e-transfer-")
        cls.outputs = {}
        for family in FAMILIES:
            path = os.path.join(cls.state, f"{family}.toml")
            with open(path, "w") as f:
                f.write(family_toml(family))
            cls.outputs[family] = ldm_e2e.run_cli("run", path, "--state", cls.state, check=False, timeout=600)
        cls.coord = ldm_e2e.Coordinator(state=cls.state).start()

    @classmethod
    def tearDownClass(cls):
        cls.coord.stop()
        if not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(cls.state, ignore_errors=True)

    def losses(self, name, stage):
        points = self.coord.get(f"/api/v1/experiments/{name}/metrics?stage={stage}&metric=loss")
        return [p["value"] for p in sorted(points["points"], key=lambda p: p["step"])]

    def test_every_family_transfers_and_records_its_lineage(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                name = f"transfer-{family}"
                proc = self.outputs[family]
                self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
                status = json.loads(self.coord.cli("status", name, "--json").stdout)
                self.assertEqual(status["experiment"]["state"], "done")
                stages = {s["name"]: s for s in status["stages"]}
                self.assertEqual(stages["pretrain-16"]["lineage"], {})
                self.assertEqual(stages["scratch-32"]["lineage"], {})
                lineage = stages["finetune-32"]["lineage"]
                bundle = os.path.join(self.state, "runs", name, "pretrain-16", "checkpoints", "step-0000060")
                self.assertEqual(lineage["from"], "pretrain-16")
                self.assertEqual(lineage["run"], f"{name}.pretrain-16.a1")
                self.assertEqual(os.path.realpath(lineage["bundle"]), os.path.realpath(bundle))
                self.assertEqual(lineage["step"], 60)
                with open(os.path.join(bundle, "manifest.json"), "rb") as f:
                    self.assertEqual(lineage["manifest_sha256"], hashlib.sha256(f.read()).hexdigest())
                transfer = lineage["transfer"]
                self.assertEqual(transfer["resolution"], {"from": 16, "to": 32})
                self.assertEqual(transfer["weights"], "ema")
                self.assertEqual(transfer["optimizer"], "reset")
                self.assertEqual(transfer["reference_resolution"], 16)
                self.assertEqual(transfer["shift"], 2.0)
                # The run record holds the same lineage, and the worker wrote what it did per tensor.
                runs = {r["stage"]: r for r in status["runs"]}
                self.assertEqual(runs["finetune-32"]["init"], lineage)
                with open(os.path.join(self.state, "runs", name, "finetune-32", "logs", "transfer.json")) as f:
                    report = json.load(f)
                self.assertEqual(report["manifest_sha256"], lineage["manifest_sha256"])
                if family == "unet":
                    self.assertEqual(report["resampled"], [])  # no positional table
                else:
                    self.assertIn("pos_embed", report["resampled"])
                if family == "mdt":
                    self.assertIn("decoder_pos_embed", report["resampled"])
                    self.assertTrue(any(k.endswith("relative_position_bias_table") for k in report["resampled"]))
                # Independent stages ran side by side: scratch-32 started before pretrain-16 ended.
                self.assertLess(runs["scratch-32"]["started_at"], runs["pretrain-16"]["finished_at"])
                self.assertGreater(runs["finetune-32"]["started_at"], runs["pretrain-16"]["finished_at"])

    def test_the_transferred_network_is_ahead_of_the_one_trained_from_scratch(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                name = f"transfer-{family}"
                fine, scratch = self.losses(name, "finetune-32"), self.losses(name, "scratch-32")
                self.assertEqual(len(fine), 12)
                self.assertEqual(len(scratch), 12)
                # Same seed, data order, timesteps and noise at each step: a paired comparison.
                mean_fine, mean_scratch = sum(fine) / 12, sum(scratch) / 12
                print(f"{family}: mean loss over the first 12 steps at 32 px: transferred {mean_fine:.4f}, "
                      f"from scratch {mean_scratch:.4f}", file=sys.stderr)
                self.assertLess(mean_fine, mean_scratch, (fine, scratch))
                self.assertLess(fine[0], scratch[0], (fine, scratch))

    def test_ldm_worker_samples_the_transferred_stage_at_its_own_resolution_and_at_another(self):
        worker = os.path.join(ldm_e2e.BIN, "ldm-worker")
        for family in ("mdt", "pixart"):
            with self.subTest(family=family):
                checkpoints = os.path.join(self.state, "runs", f"transfer-{family}", "finetune-32", "checkpoints")
                for resolution in ("32", "48"):
                    out = os.path.join(self.state, f"{family}-{resolution}.png")
                    proc = subprocess.run(
                        [worker, "sample", "--checkpoint", checkpoints, "--n", "2", "--steps", "3", "--resolution",
                         resolution, "--out", out], capture_output=True, text=True, timeout=300)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    with open(out, "rb") as f:
                        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
