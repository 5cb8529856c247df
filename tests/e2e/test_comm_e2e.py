"""End to end: the gradient all-reduce overlapped with backward, on real MPI ranks.

- 2 ranks with small buckets (many of them, started during backward) train bit for bit like 2 ranks
  with one bucket per flat buffer (no overlap), and `ldm-coord status EXP` shows the running stage's
  per-rank system figures; the stored sys_* points hold their aggregates.
- The quickstart model trained by `ldm-worker` started without mpirun (the single-process
  communicator, no MPI at all) has the same losses as under `mpirun -n 1`.
Run by ctest (see CMakeLists.txt here)."""
import glob
import json
import os
import stat
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from ldm_e2e import Coordinator, experiment  # noqa: E402

SYSTEM_METRICS = ("sys_step_s", "sys_data_wait_s", "sys_comm_s", "sys_comm_hidden_frac", "sys_peak_rss_mb",
                  "sys_forward_s", "sys_backward_s", "sys_update_s")

# The DiT cell of experiments/quickstart.toml (its pre-training stage, shortened), one rank.
QUICKSTART_DIT = """
name = "{name}"
seed = 0
task = "class"
[dataset]
kind = "synthetic"
records = 512
classes = 10
shard_records = 256
[autoencoder]
kind = "patch"
factor = 2
[recipe]
family = "dit"
preset = "tiny/2"
learn_sigma = false
[recipe.diffusion]
objective = "v"
[recipe.ema]
warmup = true
[[stage]]
name = "pretrain-16"
resolution = 16
steps = 20
batch_size = 32
lr = 2e-3
ranks = 1
"""

# A launcher that drops mpirun's options and starts the worker as a plain process.
NO_MPIRUN = """#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in */ldm-worker) break ;; esac
  shift
done
[ $# -gt 0 ] || { echo "no ldm-worker in the command line" >&2; exit 2; }
exec "$@"
"""


STEPS = 300  # long enough (a few seconds) to be watched while it runs


def two_rank_variant(name, bucket_mb):
    with open(experiment("dit-2rank.toml")) as f:
        text = f.read()
    text = text.replace('name = "tiny-dit-2rank"', f'name = "{name}"', 1).replace("steps = 60\n", f"steps = {STEPS}\n")
    assert "threads_per_rank = 1\n" in text
    return text.replace("threads_per_rank = 1\n", f"threads_per_rank = 1\ncomm_bucket_mb = {bucket_mb}\n", 1)


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def rank_summaries(run):
    out = []
    for path in sorted(glob.glob(os.path.join(run["run_dir"], "logs", "rank-*.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def read_log(run, rank=0):
    with open(os.path.join(run["run_dir"], "logs", f"rank-{rank}.log")) as f:
        return f.read()


class OverlappedAllReduce(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ldm-comm-e2e-")
        cls.coord = Coordinator().start()
        # Small buckets (~10 KB: dozens of them) first, watched while it runs.
        cls.coord.cli("submit", write(cls.tmp, "small.toml", two_rank_variant("comm-small", 0.01)))
        cls.status_seen = None
        deadline = time.time() + 600
        while time.time() < deadline and cls.status_seen is None:
            view = cls.coord.experiment("comm-small")
            if view["experiment"]["state"] not in ("pending", "running"):
                break
            if any("system" in run for run in view["runs"]):  # then ask the CLI, as a user would
                text = cls.coord.cli("status", "comm-small").stdout
                if "system (per rank" in text:
                    cls.status_seen = text
            time.sleep(0.1)
        cls.small = cls.coord.wait_terminal("comm-small")
        cls.coord.cli("submit", write(cls.tmp, "flat.toml", two_rank_variant("comm-flat", 0)))
        cls.flat = cls.coord.wait_terminal("comm-flat")

    @classmethod
    def tearDownClass(cls):
        cls.coord.cleanup()

    def points(self, exp, metric):
        pts = self.coord.get(f"/api/v1/experiments/{exp}/metrics?stage=train&metric={metric}")["points"]
        return [p["value"] for p in sorted(pts, key=lambda p: p["step"])]

    def test_both_done_and_bucketing_changes_no_bit(self):
        for result in (self.small, self.flat):
            self.assertEqual(result["experiment"]["state"], "done", json.dumps(result, indent=1))
        small, flat = rank_summaries(self.small["runs"][-1]), rank_summaries(self.flat["runs"][-1])
        self.assertEqual(len(small), 2)
        self.assertEqual(small[0]["param_checksum"], small[1]["param_checksum"])
        self.assertEqual(small[0]["param_checksum"], flat[0]["param_checksum"])
        losses = self.points("comm-small", "loss")
        self.assertEqual(len(losses), STEPS)
        self.assertEqual(losses, self.points("comm-flat", "loss"))

    def test_workers_say_how_they_communicate(self):
        small, flat = read_log(self.small["runs"][-1]), read_log(self.flat["runs"][-1])
        self.assertIn("2 rank(s) over mpi, gradients all-reduced in", small)
        buckets = int(small.split("gradients all-reduced in ")[1].split(" ")[0])
        self.assertGreater(buckets, 10)
        self.assertIn("bucket(s) of at most 0.01 MiB overlapped with backward", small)
        self.assertIn("in 2 bucket(s) of at most one flat buffer each", flat)

    def test_status_showed_both_ranks_while_running(self):
        self.assertIsNotNone(self.status_seen, "status never showed the system figures while the stage ran")
        table = self.status_seen.split("system (per rank")[1]
        header, *rows = [line for line in table.splitlines()[1:] if line.strip()]
        self.assertTrue(header.startswith("RUN"), header)
        ranks = [row.split()[-6] for row in rows[:2]]
        self.assertEqual(ranks, ["0", "1"], table)
        for row in rows[:2]:
            self.assertGreater(float(row.split()[-1]), 10.0, row)  # peak RSS in MiB
            self.assertGreater(float(row.split()[-5]), 0.0, row)  # step seconds

    def test_aggregates_are_stored_per_logged_step(self):
        for metric in SYSTEM_METRICS:
            values = self.points("comm-small", metric)
            self.assertEqual(len(values), STEPS, metric)
        self.assertTrue(all(0.0 <= v <= 1.0 for v in self.points("comm-small", "sys_comm_hidden_frac")))
        self.assertTrue(all(v > 0 for v in self.points("comm-small", "sys_comm_s")))
        step = self.points("comm-small", "sys_step_s")
        comm = self.points("comm-small", "sys_comm_s")
        self.assertTrue(all(c < s for c, s in zip(comm[1:], step[1:])))


class WatchdogTearsDownAStoppedJob(unittest.TestCase):
    """Rank 1 stops itself (SIGSTOP) at step 25 of attempt 1; rank 0 waits for it in a collective
    until its watchdog (3 s here) ends the job; attempt 2 resumes from the step-20 checkpoint."""

    def test_stopped_rank_is_torn_down_and_the_attempt_retried(self):
        tmp = tempfile.mkdtemp(prefix="ldm-comm-e2e-")
        with open(experiment("dit-2rank.toml")) as f:
            text = f.read()
        text = text.replace('name = "tiny-dit-2rank"', 'name = "wd"', 1).replace("steps = 60\n", "steps = 40\n")
        text = text.replace("threads_per_rank = 1\n", "threads_per_rank = 1\ncheckpoint_every = 10\nwatchdog_s = 3\n")
        coord = Coordinator(env={"LDM_FAULT": "stop@step:25,rank:1,attempt:1,experiment:wd"}).start()
        try:
            coord.cli("submit", write(tmp, "wd.toml", text))
            result = coord.wait_terminal("wd", timeout=300)
            log = read_log(result["runs"][-1])
        finally:
            coord.cleanup()
        self.assertEqual(result["experiment"]["state"], "done", json.dumps(result, indent=1))
        first, last = result["runs"][0], result["runs"][-1]
        self.assertEqual(len(result["runs"]), 2)
        self.assertEqual(first["state"], "failed")
        self.assertIn("rank 0: watchdog: no progress for 3.", first["error"])
        self.assertIn("at step 25", first["error"])
        self.assertIn("its communication thread has been in allreduce", first["error"])
        self.assertEqual(last["step"], 40)
        resumed = [line for line in log.splitlines() if "resuming from" in line]
        self.assertEqual(len(resumed), 1, log[-3000:])
        self.assertIn("at step 21", resumed[0])


class SingleProcessCommunicator(unittest.TestCase):
    def test_without_mpirun_the_quickstart_model_trains_to_the_same_losses_as_mpirun_1_rank(self):
        tmp = tempfile.mkdtemp(prefix="ldm-comm-e2e-")
        launcher = write(tmp, "no-mpirun.sh", NO_MPIRUN)
        os.chmod(launcher, os.stat(launcher).st_mode | stat.S_IXUSR)
        losses, logs = {}, {}
        for name, env in (("qs-mpi", None), ("qs-single", {"LDM_MPIRUN": launcher})):
            coord = Coordinator(env=env).start()
            try:
                coord.cli("submit", write(tmp, name + ".toml", QUICKSTART_DIT.format(name=name)))
                result = coord.wait_terminal(name)
                self.assertEqual(result["experiment"]["state"], "done", json.dumps(result, indent=1))
                pts = coord.get(f"/api/v1/experiments/{name}/metrics?stage=pretrain-16&metric=loss")["points"]
                losses[name] = [p["value"] for p in sorted(pts, key=lambda p: p["step"])]
                logs[name] = read_log(result["runs"][-1])
                # A world of one communicates nothing: no comm figures, but the rest.
                query = f"/api/v1/experiments/{name}/metrics?stage=pretrain-16&metric="
                self.assertEqual(coord.get(query + "sys_comm_s")["points"], [])
                self.assertEqual(len(coord.get(query + "sys_step_s")["points"]), 20)
            finally:
                coord.cleanup()
        self.assertIn("1 rank(s) over mpi", logs["qs-mpi"])
        self.assertIn("1 rank(s) over single-process", logs["qs-single"])
        self.assertEqual(len(losses["qs-mpi"]), 20)
        self.assertEqual(losses["qs-mpi"], losses["qs-single"])


if __name__ == "__main__":
    unittest.main()
