"""End to end: the real `ldm-data` binary makes a synthetic dataset, then `verify` and `stats`
check it, and `verify` finds a flipped bit by shard and record number. Run by ctest with
LDM_BIN set to the directory holding ldm-data (see CMakeLists.txt here)."""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

BIN = os.environ.get("LDM_BIN", "")
RECORDS, SHARD_RECORDS, CLASSES = 96, 32, 5


def ldm_data(*args):
    return subprocess.run([os.path.join(BIN, "ldm-data"), *args], capture_output=True, text=True,
                          timeout=120)


def record_span(path, k):
    """(first byte of the body, end of the record) of record k, found through the shard's index."""
    with open(path, "rb") as f:
        data = f.read()
    index_offset, count = struct.unpack_from("<QQ", data, len(data) - 28)
    offsets = struct.unpack_from("<%dQ" % count, data, index_offset)
    end = offsets[k + 1] if k + 1 < count else index_offset
    return offsets[k] + 8, end


class LdmDataTools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ldm-data-e2e-")
        cls.clean = os.path.join(cls.tmp, "clean")
        r = ldm_data("synth", "--out", cls.clean, "--records", str(RECORDS), "--classes",
                     str(CLASSES), "--resolution", "16", "--shard-records", str(SHARD_RECORDS))
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_verify_passes_a_clean_dataset(self):
        r = ldm_data("verify", self.clean)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("3 shards, %d records, all checksums match" % RECORDS, r.stdout)
        self.assertIn("3/3 shards", r.stderr)  # progress goes to stderr

    def test_verify_names_the_shard_and_record_of_a_flipped_bit(self):
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(self.clean, bad)
        shard = os.path.join(bad, "synth-00001.ldms")
        body, end = record_span(shard, 17)
        with open(shard, "r+b") as f:
            f.seek(body)
            (record_id,) = struct.unpack("<Q", f.read(8))
            f.seek(end - 1)  # the last payload byte
            byte = f.read(1)[0]
            f.seek(end - 1)
            f.write(bytes([byte ^ 0x20]))
        r = ldm_data("verify", bad)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("synth-00001.ldms: record 17 (id %d): checksum mismatch (stored 0x"
                      % record_id, r.stdout)
        self.assertIn("1 problem (1 corrupt record)", r.stdout)
        # The same report as JSON names the shard, record and id of the problem.
        j = ldm_data("verify", bad, "--json")
        self.assertEqual(j.returncode, 1, j.stderr)
        report = json.loads(j.stdout)
        self.assertFalse(report["clean"])
        self.assertEqual(report["corrupt_records"], 1)
        self.assertEqual([(p["shard"], p["record"], p["id"]) for p in report["problems"]],
                         [("synth-00001.ldms", 17, record_id)])
        clean = json.loads(ldm_data("verify", self.clean, "--json").stdout)
        self.assertTrue(clean["clean"])
        self.assertEqual(clean["records"], RECORDS)

    def test_inspect_json_lists_the_header_counts_and_first_records(self):
        shard = os.path.join(self.clean, "synth-00000.ldms")
        r = ldm_data("inspect", shard, "--json", "--records", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["records"], SHARD_RECORDS)
        self.assertEqual(sum(j["labels"].values()), SHARD_RECORDS)
        self.assertEqual(len(j["first"]), 2)
        self.assertEqual(j["first"][0]["shape"], [16, 16, 3])
        self.assertTrue(j["first"][0]["caption"])
        self.assertIn("orig_h", j["first"][0]["control"])
        self.assertEqual(j["corrupt_records"], 0)

    def test_preview_draws_each_record_with_its_text(self):
        from PIL import Image
        out = os.path.join(self.tmp, "grid.png")
        r = ldm_data("preview", self.clean, "--out", out, "--records", "5", "--columns", "2", "--cell", "64")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("5 records", r.stdout)
        grid = Image.open(out).convert("RGB")
        w, h = grid.size
        self.assertEqual(w % 2, 0)
        self.assertEqual(h % 3, 0)  # 5 records in 2 columns: 3 rows of equal tiles
        tw, th = w // 2, h // 3
        tiles = []
        for i in range(5):
            x0, y0 = (i % 2) * tw, (i // 2) * th
            image = grid.crop((x0 + 6, y0 + 6, x0 + 6 + 64, y0 + 6 + 64))
            text = grid.crop((x0 + 6, y0 + 6 + 64 + 6, x0 + tw - 6, y0 + th))
            self.assertGreater(len(set(image.getdata())), 4, f"tile {i}: the record's image")  # not blank
            dark = sum(1 for p in text.getdata() if max(p) < 100)
            self.assertGreater(dark, 200, f"tile {i}: its id, label, caption and control text")
            tiles.append(image.tobytes())
        self.assertEqual(len(set(tiles)), 5)  # five different records
        # The sixth tile's place is empty (white).
        empty = grid.crop((tw, 2 * th, 2 * tw, 3 * th))
        self.assertEqual(set(empty.getdata()), {(255, 255, 255)})
        bad = ldm_data("preview", os.path.join(self.tmp, "missing"), "--out", out)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("missing", bad.stderr)

    def test_verify_names_a_truncated_shard(self):
        cut = os.path.join(self.tmp, "cut")
        shutil.copytree(self.clean, cut)
        shard = os.path.join(cut, "synth-00002.ldms")
        os.truncate(shard, os.path.getsize(shard) // 2)
        r = ldm_data("verify", cut)
        self.assertEqual(r.returncode, 1)
        self.assertIn("synth-00002.ldms: ", r.stdout)

    def test_stats_json_counts_every_record_once(self):
        r = ldm_data("stats", self.clean, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        stats = json.loads(r.stdout)
        self.assertEqual(stats["records"], RECORDS)
        self.assertEqual(sum(stats["labels"].values()), RECORDS)
        self.assertEqual(len(stats["labels"]), CLASSES)
        self.assertEqual(stats["shapes"], {"16x16x3": RECORDS})
        self.assertEqual(len(stats["channels"]), 3)
        for c in stats["channels"]:
            self.assertTrue(0.0 <= c["mean"] <= 1.0 and 0.0 < c["std"] <= 0.5)

    def test_stats_table_and_usage_errors(self):
        r = ldm_data("stats", self.clean)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("records:    %d" % RECORDS, r.stdout)
        self.assertEqual(ldm_data("stats").returncode, 2)
        r = ldm_data("stats", self.clean, "--jsn")
        self.assertEqual(r.returncode, 2)
        self.assertIn("did you mean '--json'", r.stderr)
        self.assertEqual(ldm_data("verify", os.path.join(self.tmp, "missing")).returncode, 1)


class KilledImport(unittest.TestCase):
    """An import SIGKILLed midway and run again resumes: complete shards are kept, the rest are
    redone, no record is written twice, and the result equals an uninterrupted import byte for
    byte."""

    def test_sigkilled_import_resumes_without_duplicates(self):
        import signal
        from PIL import Image
        tmp = tempfile.mkdtemp(prefix="ldm-data-kill-")
        try:
            root = os.path.join(tmp, "imagenet")
            n = 0
            for c in range(4):
                d = os.path.join(root, "train", "n%08d" % c)
                os.makedirs(d)
                for i in range(60):
                    Image.effect_noise((320, 240), 40 + i).convert("RGB").save(
                        os.path.join(d, "img_%03d.JPEG" % i), quality=90)
                    n += 1
            args = ["import-imagenet", root, "--resolution", "64", "--shard-records", "12", "--threads", "1",
                    "--crop", "random", "--flip", "0.5", "--views", "2"]
            clean = os.path.join(tmp, "clean")
            r = ldm_data(*args, "--out", clean)
            self.assertEqual(r.returncode, 0, r.stderr)
            total = len([f for f in os.listdir(clean) if f.endswith(".ldms")])
            self.assertEqual(total, n // 12)

            out = os.path.join(tmp, "killed")
            # The import SIGKILLs itself right after its third shard (LDM_IMPORT_KILL_AFTER): a known
            # point, where a kill from here would race the import's end.
            killed = subprocess.run([os.path.join(BIN, "ldm-data"), *args, "--out", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                                    env=dict(os.environ, LDM_IMPORT_KILL_AFTER="3"))
            self.assertEqual(killed.returncode, -signal.SIGKILL)
            done = sorted(f for f in os.listdir(out) if f.endswith(".ldms"))
            self.assertEqual(len(done), 3)
            self.assertLess(len(done), total)
            self.assertFalse(os.path.exists(os.path.join(out, "dataset.json")))

            r = ldm_data(*args, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("reused)", r.stdout)
            reused = int(r.stdout.split(" reused)")[0].split()[-1])
            self.assertEqual(reused, len(done))
            self.assertEqual(sorted(os.listdir(out)), sorted(os.listdir(clean)))  # no .tmp left behind
            for f in sorted(os.listdir(clean)):
                if f.endswith(".ldms"):
                    with open(os.path.join(clean, f), "rb") as a, open(os.path.join(out, f), "rb") as b:
                        self.assertEqual(a.read(), b.read(), f)
            v = ldm_data("verify", out)  # unique ids across shards, every checksum
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            stats = json.loads(ldm_data("stats", out, "--json").stdout)
            self.assertEqual(stats["records"], 2 * n)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
