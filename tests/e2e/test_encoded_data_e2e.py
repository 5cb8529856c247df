"""End to end: WebDataset tars imported straight into latent shards with caption features
(`ldm-data import-wds --vae ... --text-encoder ...` through the `ldm-encode` child), or with
precomputed caption features from an .npz; the proposed model trains on them through a real
coordinator and mpirun; shards made by another encoder are refused by training."""
import json
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ldm_e2e  # noqa: E402
from ldm_e2e import Coordinator  # noqa: E402

N = 12


class EncodedShards(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.coord = Coordinator().start()
        cls.state = cls.coord.state
        ldm_e2e.write_wds_tar(os.path.join(cls.state, "cc-00000.tar"), N)
        cls.pattern = os.path.join(cls.state, "cc-{00000..00000}.tar")

    @classmethod
    def tearDownClass(cls):
        cls.coord.cleanup()

    def import_wds(self, out, *extra):
        proc = ldm_e2e.ldm_data("import-wds", self.pattern, "--out", out, "--resolution", "32", "--threads", "2",
                                *extra)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc

    def submit(self, name, shards, replacements=()):
        text = ldm_e2e.shards_experiment("proposed-text.toml", name, shards,
                                         [("batch_size = 8", "batch_size = 4"), ("steps = 10", "steps = 4"),
                                          *replacements])
        path = os.path.join(self.state, name + ".toml")
        with open(path, "w") as f:
            f.write(text)
        self.coord.cli("submit", path)
        return self.coord.wait_terminal(name)

    def test_latents_and_caption_features_made_at_import_train_and_other_encoders_are_refused(self):
        shards = os.path.join(self.state, "latents")
        # The experiment's encoders: the built-in patch autoencoder (factor 2) and the built-in
        # text encoder (dim 32, 12 tokens), as in proposed-text.toml.
        proc = self.import_wds(shards, "--vae", "patch:2", "--text-encoder", "builtin", "--text-dim", "32",
                               "--max-tokens", "12")
        self.assertIn("encoding with patch", proc.stderr)
        with open(os.path.join(shards, "wds-00000.ldms"), "rb") as f:
            head = f.read(4096)
        header = json.loads(head[16:16 + int.from_bytes(head[12:16], "little")])
        self.assertEqual(header["kind"], "latent_f32")
        self.assertTrue(header["encoder"].startswith("patch"))
        self.assertTrue(header["text_encoder"].startswith("builtin"))
        verify = ldm_e2e.ldm_data("verify", shards)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        stats = json.loads(ldm_e2e.ldm_data("stats", shards, "--json").stdout)
        self.assertEqual(stats["records"], N)
        inspect = ldm_e2e.ldm_data("inspect", os.path.join(shards, "wds-00000.ldms"))
        self.assertIn("text encoder:   builtin", inspect.stdout)
        self.assertRegex(inspect.stdout, r"caption features: \d+ tokens x 32")

        done = self.submit("enc-ok", shards)
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))

        # Another autoencoder scale is another encoder: training refuses the shards.
        failed = self.submit("enc-other-vae", shards, [("[text_encoder]", "[autoencoder]\nscale = 0.5\n\n[text_encoder]")])
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertIn("were made by encoder", failed["runs"][-1]["error"])
        # Another text encoder width: refused as well, naming the caption features' encoder.
        failed = self.submit("enc-other-text", shards, [("dim = 32", "dim = 16")])
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertIn("caption features were made by", failed["runs"][-1]["error"])

        # Importing again into the same directory with another encoder is refused; the same one reuses.
        again = ldm_e2e.ldm_data("import-wds", self.pattern, "--out", shards, "--resolution", "32", "--vae", "patch:4")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("another --out directory", again.stderr)
        same = self.import_wds(shards, "--vae", "patch:2", "--text-encoder", "builtin", "--text-dim", "32",
                               "--max-tokens", "12")
        self.assertIn("(0 written, 1 reused)", same.stdout)

    def test_precomputed_caption_features_from_npz_train_as_text_encoder_precomputed(self):
        emb = os.path.join(self.state, "captions.npz")
        rng = np.random.default_rng(0)
        keys = np.array([f"s{i:03d}" for i in range(N)])
        tokens = rng.standard_normal((N, 12, 32)).astype(np.float16)
        lengths = np.array([3 + i % 5 for i in range(N)])
        np.savez_compressed(emb, keys=keys, tokens=tokens, lengths=lengths)
        shards = os.path.join(self.state, "precomputed")
        self.import_wds(shards, "--vae", "patch:2", "--text-embeddings", emb)
        with open(os.path.join(shards, "wds-00000.ldms"), "rb") as f:
            head = f.read(4096)
        header = json.loads(head[16:16 + int.from_bytes(head[12:16], "little")])
        self.assertTrue(header["text_encoder"].startswith("precomputed-text:"))
        done = self.submit("enc-precomputed", shards, [("[text_encoder]", '[text_encoder]\nkind = "precomputed"')])
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))
        # A sample key missing from the embeddings fails the import naming the key.
        np.savez(emb.replace(".npz", "-short.npz"), keys=keys[:-1], tokens=tokens[:-1], lengths=lengths[:-1])
        proc = ldm_e2e.ldm_data("import-wds", self.pattern, "--out", os.path.join(self.state, "short"), "--resolution",
                                "32", "--vae", "patch:2", "--text-embeddings", emb.replace(".npz", "-short.npz"))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("s011", proc.stderr)

    def test_aspect_ratio_buckets_import_and_train_one_shape_per_batch(self):
        shards = os.path.join(self.state, "buckets")
        # 64 px, step 16: buckets 48x80, 64x64, 80x48 (h x w). The tar's images are 40 px high and
        # 48, 56, 64 wide: every third (i % 3 == 0, aspect 1.2) is nearest 64x64, the rest 48x80.
        self.import_wds(shards, "--resolution", "64", "--buckets", "--bucket-step", "16", "--vae", "patch:2",
                        "--text-encoder", "builtin", "--text-dim", "32", "--max-tokens", "12")
        stats = json.loads(ldm_e2e.ldm_data("stats", shards, "--json").stdout)
        self.assertEqual(stats["shapes"], {"12x24x40": 8, "12x32x32": 4})
        done = self.submit("enc-buckets", shards, [("resolution = 32", "resolution = 64"), ("steps = 4", "steps = 6")])
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))
        with open(os.path.join(done["runs"][-1]["run_dir"], "logs", "records-rank-0.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(len(steps), 6)
        for s in steps:
            square = {i % 3 == 0 for i in s["ids"]}
            self.assertEqual(len(square), 1, s)  # one bucket per batch
        # 3 batches per epoch (one square, two wide), each image at most once per epoch
        for epoch in (0, 1):
            ids = [i for s in steps[3 * epoch:3 * epoch + 3] for i in s["ids"]]
            self.assertEqual(sorted(ids), list(range(N)))


if __name__ == "__main__":
    unittest.main()
