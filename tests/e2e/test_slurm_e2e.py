"""The SLURM executor on a real single-machine SLURM (cluster/slurm-local.sh: munged, slurmctld,
slurmd). A two-stage experiment runs through sbatch and ends done; a job preempted with
`scancel --batch --signal=USR1` checkpoints, its run ends preempted, and the next attempt (a new
batch job) resumes from a step > 0 and ends with the final weights of an uninterrupted run; a
pull-mode worker started by sbatch drains a queued experiment.

Skipped, with the reason, where SLURM cannot be started; with LDM_REQUIRE_SLURM=1 (CI) that is a
failure.
"""
import os
import re
import subprocess
import tempfile
import time
import unittest

import ldm_e2e

CONF = os.path.join(os.environ.get("LDM_SLURM_DIR", "/tmp/ldm-slurm"), "slurm.conf")

TWO_STAGES = """
name = "{name}"
seed = 9
[dataset]
records = 64
classes = 4
shard_records = 64
[recipe]
family = "dit"
preset = "tiny/4"
[[stage]]
name = "pretrain"
resolution = 32
steps = {steps}
batch_size = 8
lr = 1e-3
ranks = 2
checkpoint_every = 25
{second}
"""
SECOND = """
[[stage]]
name = "finetune"
init_from = "pretrain"
resolution = 32
steps = 30
batch_size = 8
lr = 1e-3
ranks = 2
"""


def write(state, name, steps=40, second=SECOND):
    path = os.path.join(state, name + ".toml")
    with open(path, "w") as f:
        f.write(TWO_STAGES.format(name=name, steps=steps, second=second))
    return path


class Slurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.script = os.path.join(ldm_e2e.REPO, "cluster", "slurm-local.sh")
        # Leave a SLURM that was already running as it was; stop the one started here.
        cls.started_here = subprocess.run(["bash", cls.script, "status"], capture_output=True).returncode != 0
        proc = subprocess.run(["bash", cls.script, "start"], capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            message = "SLURM could not be started: " + (proc.stderr or proc.stdout).strip()[-1500:]
            if os.environ.get("LDM_REQUIRE_SLURM") == "1":
                raise AssertionError(message)
            raise unittest.SkipTest(message)
        cls.env = {"SLURM_CONF": CONF}

    @classmethod
    def tearDownClass(cls):
        if cls.started_here:
            subprocess.run(["bash", cls.script, "stop"], capture_output=True, timeout=60)

    def coordinator(self, *args):
        coord = ldm_e2e.Coordinator(env=self.env, args=list(args))
        self.addCleanup(coord.cleanup)
        coord.start()
        return coord

    def slurm(self, *args):
        return subprocess.run(list(args), capture_output=True, text=True, timeout=60, env=dict(os.environ, **self.env))

    def test_a_two_stage_experiment_runs_through_sbatch(self):
        coord = self.coordinator("--executor", "slurm")
        coord.cli("submit", write(coord.state, "staged"))
        e = coord.wait_terminal("staged", timeout=300)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        self.assertEqual(sorted((r["stage"], r["state"]) for r in e["runs"]), [("finetune", "done"), ("pretrain", "done")])
        with open(os.path.join(coord.state, "serve.log")) as f:
            log = f.read()
        for stage in ("pretrain", "finetune"):
            job = re.search(rf"run staged\.{stage}\.a1: submitted SLURM job (\d+)", log)
            self.assertIsNotNone(job, log[-3000:])
            run_dir = os.path.join(coord.state, "runs", "staged", stage)
            with open(os.path.join(run_dir, "slurm", f"staged.{stage}.a1.sh")) as f:
                script = f.read()
            self.assertIn(f"#SBATCH --job-name=ldm.staged.{stage}.a1", script)
            self.assertIn("#SBATCH --ntasks=2", script)
            self.assertIn("srun --mpi=pmix", script)
            self.assertNotIn("LDM_RUN_TOKEN=", script)  # the token travels in sbatch's environment
            with open(os.path.join(run_dir, "slurm", job.group(1) + ".exit")) as f:
                self.assertEqual(f.read().strip(), "0")

    def test_a_preempted_job_resumes_in_a_new_attempt_and_ends_as_if_never_interrupted(self):
        coord = self.coordinator("--executor", "slurm")
        steps = 600
        coord.cli("submit", write(coord.state, "straight", steps, second=""))
        straight = coord.wait_terminal("straight", timeout=600)
        self.assertEqual(straight["experiment"]["state"], "done", coord.log())
        coord.cli("submit", write(coord.state, "preempted", steps, second=""))
        deadline = time.time() + 300
        while True:
            self.assertLess(time.time(), deadline, coord.log())
            e = coord.experiment("preempted")
            if e["stages"][0]["step"] >= 100:
                break
            time.sleep(0.2)
        with open(os.path.join(coord.state, "serve.log")) as f:
            job = re.search(r"run preempted\.pretrain\.a1: submitted SLURM job (\d+)", f.read()).group(1)
        signalled = self.slurm("scancel", "--batch", "--signal=USR1", job)
        self.assertEqual(signalled.returncode, 0, signalled.stderr)
        e = coord.wait_terminal("preempted", timeout=600)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        runs = sorted(e["runs"], key=lambda r: r["attempt"])
        self.assertEqual([r["state"] for r in runs], ["preempted", "done"], runs)
        self.assertGreater(runs[1]["resume_step"], 0)
        final = f"step-{steps:07d}"
        paths = [os.path.join(coord.state, "runs", name, "pretrain", "checkpoints", final, "model.safetensors")
                 for name in ("straight", "preempted")]
        with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
            self.assertTrue(a.read() == b.read(), "final weights differ from the uninterrupted run's")

    def test_a_restarted_coordinator_reattaches_its_running_batch_job(self):
        coord = self.coordinator("--executor", "slurm")
        coord.cli("submit", write(coord.state, "kept", 800, second=""))
        deadline = time.time() + 300
        while coord.experiment("kept")["stages"][0]["step"] < 50:
            self.assertLess(time.time(), deadline, coord.log())
            time.sleep(0.2)
        coord.proc.kill()
        coord.proc.wait()
        coord.start()
        e = coord.wait_terminal("kept", timeout=600)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        self.assertEqual([(r["attempt"], r["state"]) for r in e["runs"]], [(1, "done")])
        with open(os.path.join(coord.state, "serve.log")) as f:
            self.assertIn("re-attached its job", f.read())

    def test_an_experiment_file_asks_for_slurm_from_a_local_coordinator(self):
        coord = self.coordinator()  # the local executor by default
        second = '\n[executor]\nkind = "slurm"\ntime = "00:10:00"\nsbatch = ["--comment=ldm-e2e"]\n'
        coord.cli("submit", write(coord.state, "chosen", second=second))
        e = coord.wait_terminal("chosen", timeout=300)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        with open(os.path.join(coord.state, "runs", "chosen", "pretrain", "slurm", "chosen.pretrain.a1.sh")) as f:
            script = f.read()
        self.assertIn("#SBATCH --time=00:10:00\n", script)
        self.assertIn("#SBATCH --comment=ldm-e2e\n", script)

    def test_cancel_is_scancel_and_the_job_checkpoints_first(self):
        coord = self.coordinator("--executor", "slurm")
        coord.cli("submit", write(coord.state, "stopped", 2000, second=""))
        deadline = time.time() + 300
        while coord.experiment("stopped")["stages"][0]["step"] < 60:
            self.assertLess(time.time(), deadline, coord.log())
            time.sleep(0.2)
        coord.cli("cancel", "stopped")
        e = coord.wait_terminal("stopped", timeout=300)
        self.assertEqual(e["experiment"]["state"], "cancelled", coord.log())
        self.assertIsNone(re.search(r"\|RUNNING\|ldm\.stopped\.", self.slurm("squeue", "-h", "-o", "%i|%T|%j").stdout))
        checkpoints = os.listdir(os.path.join(coord.state, "runs", "stopped", "pretrain", "checkpoints"))
        self.assertTrue(any(n.startswith("step-") and n != "step-0002000" for n in checkpoints), checkpoints)

    def test_a_job_slurm_refuses_fails_the_run_with_slurms_own_words(self):
        coord = self.coordinator("--executor", "slurm", "--slurm-partition", "nosuch")
        coord.cli("submit", write(coord.state, "refused", second=""))
        e = coord.wait_terminal("refused", timeout=120)
        self.assertEqual(e["experiment"]["state"], "failed", coord.log())
        self.assertIn("Invalid partition name specified", e["runs"][0]["error"])

    def test_a_pull_worker_started_by_sbatch_drains_the_queue(self):
        coord = self.coordinator("--executor", "pull")
        coord.cli("submit", write(coord.state, "pulled", second=""))
        with open(os.path.join(coord.state, "coord.json")) as f:
            endpoint = __import__("json").load(f)["zmq"]
        work = tempfile.mkdtemp(prefix="ldm-slurm-pull-")
        script = os.path.join(work, "pull.sbatch")
        with open(script, "w") as f:
            f.write("#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --output=" + work + "/out-%j.txt\n"
                    f"srun --mpi=pmix {ldm_e2e.BIN}/ldm-worker train --coord {endpoint}\n")
        submitted = self.slurm("sbatch", "--parsable", "--chdir", work, script)
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        e = coord.wait_terminal("pulled", timeout=300)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        with open(os.path.join(coord.state, "serve.log")) as f:
            self.assertIn("assigned to the pull worker on", f.read())


if __name__ == "__main__":
    unittest.main()
