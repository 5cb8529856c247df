"""Kill anywhere, lose nothing: ranks and mpirun SIGKILLed at random moments.

A 2-rank training run is SIGKILLed LDM_SOAK_KILLS times (CI: 5; tests/soak/run.sh: 20), each
time in one of these ways, in a seeded random order (LDM_SOAK_SEED; the seed is printed):
  rank      a random rank, at a random moment of training
  mpirun    mpirun itself (its ranks must not outlive it), at a random moment
  writing   the rank writing a checkpoint bundle, while the bundle's files are written
  renaming  that rank, after the bundle was renamed into place but before `latest` moved
  mpirun-writing  mpirun, while a bundle is being written
LDM_CHECKPOINT_PAUSE_MS widens each window of a bundle's write so that the last three land in it.
After each kill, the newest complete bundle on disk is the checkpoint the next attempt must resume
from: each attempt's `resume_step` (API) equals it and is > 0, and the worker's log says it resumed
there (only the remaining steps are computed). At the end the final weights, the EMA weights and
the whole per-step loss and gradient-norm curves in the store equal an uninterrupted run's, bit
for bit; keep_checkpoints = 3 held on disk.
"""
import json
import os
import random
import re
import signal
import time
import unittest

import ldm_e2e

KILLS = int(os.environ.get("LDM_SOAK_KILLS", "5"))
STEPS = int(os.environ.get("LDM_SOAK_STEPS", str(max(300, 60 * KILLS))))
SEED = int(os.environ.get("LDM_SOAK_SEED", str(int(time.time()) % 100000)))
MODES = ["rank", "mpirun", "writing", "renaming", "mpirun-writing"]

SPEC = """
name = "{name}"
seed = 21

[dataset]
records = 128
classes = 4
shard_records = 64

[recipe]
family = "dit"
preset = "tiny/4"

[[stage]]
name = "train"
resolution = 32
steps = {steps}
batch_size = 8
lr = 1e-3
ranks = 2
log_every = 1
checkpoint_every = 10
keep_checkpoints = 3
max_attempts = {attempts}
"""


def write_spec(state, name):
    path = os.path.join(state, name + ".toml")
    with open(path, "w") as f:
        f.write(SPEC.format(name=name, steps=STEPS, attempts=KILLS + 3))
    return path


def bundles(ckpts):
    """Steps of the complete bundles (step-NNNNNNN/manifest.json), ascending."""
    try:
        names = os.listdir(ckpts)
    except OSError:
        return []
    return sorted(int(n[5:]) for n in names
                  if re.fullmatch(r"step-\d{7,}", n) and os.path.exists(os.path.join(ckpts, n, "manifest.json")))


def job_processes(run_id):
    """{"mpirun": pid, 0: rank 0's pid, 1: ...} of the job of run_id, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
        except OSError:
            continue
        if run_id.encode() not in argv:
            continue
        name = os.path.basename(argv[0].decode())
        if name in ("mpirun", "orterun", "mpiexec"):
            found["mpirun"] = int(entry)
        elif name == "ldm-worker":
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
                found[int(env.get(b"OMPI_COMM_WORLD_RANK", b"-1"))] = int(entry)
            except OSError:
                continue
    return found


class KillSoak(unittest.TestCase):
    def test_random_kills_of_ranks_and_mpirun_leave_the_run_bitwise_equal_to_an_uninterrupted_one(self):
        print(f"kill soak: {KILLS} kills, {STEPS} steps, seed {SEED}", flush=True)
        rng = random.Random(SEED)
        coord = ldm_e2e.Coordinator(env={"LDM_CHECKPOINT_PAUSE_MS": "25"})
        self.addCleanup(coord.cleanup)
        coord.start()
        coord.cli("submit", write_spec(coord.state, "straight"))
        straight = coord.wait_terminal("straight", timeout=900)
        self.assertEqual(straight["experiment"]["state"], "done", coord.log())

        coord.cli("submit", write_spec(coord.state, "killed"))
        run_dir = os.path.join(coord.state, "runs", "killed", "train")
        ckpts = os.path.join(run_dir, "checkpoints")
        modes = [MODES[k % len(MODES)] for k in range(KILLS)]
        rng.shuffle(modes)
        expected = {}  # attempt -> the step its successor must resume from
        for k, mode in enumerate(modes, start=1):
            run_id = f"killed.train.a{k}"
            deadline = time.time() + 300
            # The attempt is training (both ranks up) and a checkpoint newer than its start exists.
            while True:
                self.assertLess(time.time(), deadline, f"attempt {k} never got going:\n" + coord.log())
                procs = job_processes(run_id)
                start = expected.get(k - 1, 0)
                if {"mpirun", 0, 1} <= procs.keys() and bundles(ckpts) and bundles(ckpts)[-1] > start:
                    break
                time.sleep(0.02)
            target = None
            if mode in ("rank", "mpirun"):
                time.sleep(rng.uniform(0.0, 1.0))
                target = procs["mpirun"] if mode == "mpirun" else procs[rng.choice([0, 1])]
            else:
                # Poll for the window: a bundle's files being written (.tmp-step-*), or renamed into
                # place while `latest` still names the previous one.
                while target is None:
                    self.assertLess(time.time(), deadline, f"no checkpoint write seen for kill {k}")
                    try:
                        names = os.listdir(ckpts)
                        with open(os.path.join(ckpts, "latest")) as f:
                            latest = f.read().strip()
                    except OSError:
                        continue
                    done = sorted(n for n in names if re.fullmatch(r"step-\d+", n))
                    writing = any(n.startswith(".tmp-step-") for n in names)
                    renamed = done and done[-1] != latest and os.path.exists(os.path.join(ckpts, done[-1], "manifest.json"))
                    if (mode in ("writing", "mpirun-writing") and writing) or (mode == "renaming" and renamed):
                        target = procs["mpirun"] if mode == "mpirun-writing" else procs[0]
                    else:
                        time.sleep(0.001)
            os.kill(target, signal.SIGKILL)
            # Every process of the job ends (mpirun's ranks with it); then the newest complete
            # bundle is the one the next attempt must continue from.
            deadline = time.time() + 60
            while job_processes(run_id):
                self.assertLess(time.time(), deadline, f"job of {run_id} outlived kill {k}: {job_processes(run_id)}")
                time.sleep(0.01)
            on_disk = bundles(ckpts)
            expected[k] = on_disk[-1]
            self.assertLessEqual(len(on_disk), 3 + 1, on_disk)  # keep_checkpoints = 3 (+ one being replaced)
            print(f"kill {k}: {mode}, pid {target}; newest complete bundle: step {expected[k]}", flush=True)

        e = coord.wait_terminal("killed", timeout=900)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        runs = sorted(e["runs"], key=lambda r: r["attempt"])
        self.assertEqual(len(runs), KILLS + 1, json.dumps(runs, indent=1))
        self.assertEqual([r["resume_step"] for r in runs[1:]], [expected[k] for k in range(1, KILLS + 1)])
        self.assertTrue(all(expected[k] > 0 for k in expected))
        with open(os.path.join(run_dir, "logs", "rank-0.log")) as f:
            resumed_at = [int(m) for m in re.findall(r"resuming from \S+ at step (\d+)", f.read())]
        self.assertEqual(resumed_at, [expected[k] + 1 for k in range(1, KILLS + 1)])

        # Bit for bit: final weights, EMA, and every step's loss and gradient norm.
        for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
            paths = [os.path.join(coord.state, "runs", exp, "train", "checkpoints", f"step-{STEPS:07d}", name)
                     for exp in ("straight", "killed")]
            with open(paths[0], "rb") as a, open(paths[1], "rb") as b:
                self.assertTrue(a.read() == b.read(), f"{name} differs")
        curves = {}
        for exp in ("straight", "killed"):
            points = coord.get(f"/api/v1/experiments/{exp}/metrics?stage=train")["points"]
            curves[exp] = sorted((p["metric"], p["step"], p["value"]) for p in points
                                 if p["metric"] in ("loss", "grad_norm"))
        self.assertEqual(len(curves["straight"]), 2 * STEPS)
        self.assertEqual(curves["killed"], curves["straight"])
        self.assertLessEqual(len(bundles(os.path.join(run_dir, "checkpoints"))), 3)
        print(f"kill soak: {KILLS} kills survived; weights, EMA, optimiser and {STEPS}-step loss and "
              f"grad-norm curves bitwise equal; resumed at {[expected[k] for k in sorted(expected)]}", flush=True)


if __name__ == "__main__":
    unittest.main()
