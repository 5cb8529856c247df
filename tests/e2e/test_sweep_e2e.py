"""A real sweep: two families x two seeds, two stages each, under `ldm-coord serve`.

The coordinator is SIGKILLed once mid-sweep and restarted: every cell completes, each stage in one
attempt. One cell diverges (LDM_FAULT diverge): its row shows ✗. Then `compare` (json, csv, md, table,
--relative-to) is checked against the stored metric points, a lone experiment with one stage gives a
— cell, and `export` (jsonl and csv) holds every stored point exactly once.
"""
import csv
import io
import json
import os
import signal
import statistics
import time
import unittest
import xml.etree.ElementTree as ET

import ldm_e2e

SWEEP = """
name = "sw"
seed = 1

[dataset]
records = 64
classes = 4
shard_records = 64

[recipe]
family = "dit"
preset = "tiny/4"

[[stage]]
name = "pre"
resolution = 32
steps = 300
batch_size = 8
lr = 1e-3
ranks = 1
checkpoint_every = 100
max_attempts = 1

[[stage]]
name = "fine"
init_from = "pre"
resolution = 32
steps = 100
batch_size = 8
lr = 1e-3
ranks = 1
max_attempts = 1

[sweep]
seeds = [1, 2]
[sweep.zip]
"recipe.family" = ["dit", "pixart"]
"recipe.preset" = ["tiny/4", "tiny/2"]
"""

LONE = """
name = "lone"
seed = 3
[dataset]
records = 64
classes = 4
shard_records = 64
[recipe]
family = "dit"
preset = "tiny/4"
[[stage]]
name = "pre"
resolution = 32
steps = 20
batch_size = 8
ranks = 1
"""

CELLS = ["sw-dit-tiny_4-s1", "sw-dit-tiny_4-s2", "sw-pixart-tiny_2-s1", "sw-pixart-tiny_2-s2"]
DIVERGING = "sw-pixart-tiny_2-s2"


def write(state, name, text):
    path = os.path.join(state, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class SweepTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.coord = ldm_e2e.Coordinator(env={"LDM_FAULT": f"diverge@experiment:{DIVERGING},stage:pre,step:50,rank:0"},
                                        args=["--slots", "2"])
        cls.coord.start()
        state = cls.coord.state
        shown = ldm_e2e.run_cli("show", write(state, "sw.toml", SWEEP)).stdout
        assert "sweep sw: 4 cells over recipe.family, recipe.preset, seed" in shown, shown
        out = cls.coord.cli("submit", os.path.join(state, "sw.toml")).stdout
        assert "submitted sweep sw: 4 experiments" in out, out
        cls.coord.cli("submit", write(state, "lone.toml", LONE))
        # SIGKILL the coordinator once some cell has trained a little; restart it.
        deadline = time.time() + 300
        while True:
            cells = cls.coord.get("/api/v1/sweeps/sw")["cells"]
            if any(s["step"] >= 50 for c in cells for s in c["stages"]):
                break
            assert time.time() < deadline, cls.coord.log()
            time.sleep(0.2)
        cls.coord.proc.send_signal(signal.SIGKILL)
        cls.coord.proc.wait()
        cls.coord.start()
        deadline = time.time() + 600
        while True:
            cells = cls.coord.get("/api/v1/sweeps/sw")["cells"]
            if all(c["state"] not in ("pending", "running") for c in cells):
                break
            assert time.time() < deadline, cls.coord.log()
            time.sleep(0.5)
        cls.coord.wait_terminal("lone")
        cls.cells = {c["name"]: c for c in cells}

    @classmethod
    def tearDownClass(cls):
        cls.coord.cleanup()

    def points(self, experiment, stage):
        return self.coord.get(f"/api/v1/experiments/{experiment}/metrics?stage={stage}")["points"]

    def final_loss(self, experiment, stage):
        loss = [p for p in self.points(experiment, stage) if p["metric"] == "loss"]
        return max(loss, key=lambda p: p["step"])["value"]

    def test_every_cell_ran_once_through_the_restart_and_one_diverged(self):
        self.assertEqual(sorted(self.cells), sorted(CELLS))
        for name, cell in self.cells.items():
            expected = "diverged" if name == DIVERGING else "done"
            self.assertEqual(cell["state"], expected, name)
            self.assertEqual(sorted((r["stage"], r["attempt"]) for r in cell["runs"]),
                             [("pre", 1)] if name == DIVERGING else [("fine", 1), ("pre", 1)], name)
            self.assertEqual(cell["values"]["seed"], int(name[-1]))
        status = self.coord.cli("status", "sw").stdout
        self.assertIn("4 cells: 1 diverged, 3 done", status)

    def test_compare_json_equals_the_stored_points_with_mean_and_std_over_seeds(self):
        j = json.loads(self.coord.cli("compare", "sw", "--format", "json").stdout)
        self.assertEqual(j["metric"], "loss")
        self.assertEqual(j["rows_key"], "recipe.family")
        self.assertEqual(j["columns"], ["pre", "fine"])
        rows = {r["row"]: r for r in j["rows"]}
        for stage in ("pre", "fine"):
            dit = [self.final_loss(c, stage) for c in CELLS[:2]]
            cell = rows["dit"]["cells"][stage]
            self.assertEqual(cell["values"], dit)
            self.assertAlmostEqual(cell["mean"], statistics.mean(dit), places=12)
            self.assertAlmostEqual(cell["std"], statistics.stdev(dit), places=12)
            self.assertTrue(rows["pixart"]["cells"][stage]["diverged"])  # one seed diverged: ✗
        pre_params = [p["value"] for p in self.points(CELLS[0], "pre") if p["metric"] == "params"]
        self.assertEqual(rows["dit"]["params"], pre_params[0])
        self.assertGreater(rows["dit"]["rank_seconds"], 0)
        self.assertEqual(rows["dit"]["images"], (300 + 100) * 8)

    def test_plot_and_compare_plot_write_valid_svg_one_line_per_cell(self):
        out = os.path.join(self.coord.state, "plots")
        listing = self.coord.cli("plot", "sw", "--out", out).stdout
        self.assertIn("loss.svg (4 lines)", listing)
        svg = ET.parse(os.path.join(out, "loss.svg")).getroot()  # valid XML, or this raises
        ns = "{http://www.w3.org/2000/svg}"
        lines = [p for p in svg.iter(ns + "path") if p.get("class") == "series"]
        self.assertEqual(sorted(p.get("data-label") for p in lines),
                         sorted(f"family={f} preset={p} seed={s}" for f, p in (("dit", "tiny/4"), ("pixart", "tiny/2"))
                                for s in (1, 2)))
        labels = {t.get("class"): t.text for t in svg.iter(ns + "text") if t.get("class") in ("x-label", "y-label")}
        self.assertTrue(labels["x-label"].startswith("optimiser steps"), labels)
        self.assertTrue(labels["y-label"].startswith("loss"), labels)
        # The store thins long curves: a 2-point cap gives each line at most 3 points per stage.
        thin = os.path.join(self.coord.state, "thin")
        self.coord.cli("plot", CELLS[0], "--out", thin, "--max-points", "2", "--metric", "loss", "--smoothing", "0")
        d = next(p for p in ET.parse(os.path.join(thin, "loss.svg")).getroot().iter(ns + "path")).get("d")
        self.assertLessEqual(d.count("L") + 1, 6)
        # compare --plot: one bar per row and stage present, both rows in the legend.
        table = self.coord.cli("compare", "sw", "--plot", out).stdout
        self.assertIn("loss-compare.svg", table)
        bars = ET.parse(os.path.join(out, "loss-compare.svg")).getroot()
        rects = [r for r in bars.iter(ns + "rect") if r.get("class") == "bar"]
        self.assertEqual(sorted({r.get("data-label") for r in rects}), ["dit"])  # pixart: ✗ diverged, no bar
        self.assertEqual(len(rects), 2)  # dit at pre and fine
        self.assertEqual(len([e for e in bars.iter(ns + "line") if e.get("class") == "error"]), 2)  # two seeds

    def test_table_md_csv_and_relative_outputs(self):
        table = self.coord.cli("compare", "sw").stdout
        self.assertIn("✗", table)
        self.assertRegex(table, r"dit\s+\d\.\d+ ± \d")
        md = self.coord.cli("compare", "sw", "--format", "md").stdout
        self.assertTrue(md.startswith("| recipe.family | pre | fine | PARAMS |"), md)
        rows = list(csv.DictReader(io.StringIO(self.coord.cli("compare", "sw", "--format", "csv").stdout)))
        self.assertEqual([r["recipe.family"] for r in rows], ["dit", "pixart"])
        self.assertAlmostEqual(float(rows[0]["fine"]), statistics.mean(self.final_loss(c, "fine") for c in CELLS[:2]))
        self.assertEqual(rows[1]["pre"], "x")
        rel = json.loads(self.coord.cli("compare", "sw", "--rows", "experiment", "--relative-to", CELLS[0],
                                        "--format", "json").stdout)
        self.assertEqual(rel["relative_to"], CELLS[0])
        by_name = {r["row"]: r for r in rel["rows"]}
        v1, v2 = self.final_loss(CELLS[0], "fine"), self.final_loss(CELLS[1], "fine")
        self.assertAlmostEqual(by_name[CELLS[1]]["cells"]["fine"]["relative_pct"], (v2 - v1) / abs(v1) * 100, places=9)
        self.assertNotIn("relative_pct", by_name[CELLS[0]]["cells"]["fine"])
        lone = json.loads(self.coord.cli("compare", "sw", "lone", "--rows", "experiment", "--format",
                                         "json").stdout)
        lone_row = next(r for r in lone["rows"] if r["row"] == "lone")
        self.assertIsNotNone(lone_row["cells"]["pre"])
        self.assertIsNone(lone_row["cells"]["fine"])  # — : lone has no stage "fine"
        self.assertIn("—", self.coord.cli("compare", "sw", "lone", "--rows", "experiment").stdout)
        bad = self.coord.cli("compare", "sw", "--relative-to", "dti", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("did you mean 'dit'", bad.stderr)

    def test_export_holds_every_stored_point_once(self):
        stored = []
        for name in CELLS:
            for stage in ("pre", "fine"):
                stored += [(name, stage, p["metric"], p["step"], p["value"]) for p in self.points(name, stage)]
        jsonl = self.coord.cli("export", "sw", "--format", "jsonl").stdout.splitlines()
        exported = [json.loads(line) for line in jsonl]
        self.assertEqual(sorted((p["experiment"], p["stage"], p["metric"], p["step"], p["value"]) for p in exported),
                         sorted(stored))
        self.assertTrue(all("seed" in p["values"] for p in exported))
        out = os.path.join(self.coord.state, "sw.csv")
        self.coord.cli("export", "sw", "--out", out)
        with open(out) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), len(stored))
        self.assertLessEqual({"experiment", "recipe.family", "seed", "stage", "metric", "step"}, set(rows[0]))
        self.assertEqual(sorted((r["experiment"], r["stage"], r["metric"], int(r["step"]), float(r["value"]))
                                for r in rows), sorted(stored))


if __name__ == "__main__":
    unittest.main()
