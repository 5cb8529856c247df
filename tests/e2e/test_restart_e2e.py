"""The coordinator dies and comes back; workers go silent.

1. A two-stage experiment runs under `ldm-coord serve`, which is SIGKILLed LDM_SOAK_COORD_KILLS
   times (CI: 3; tests/soak/run.sh: 5), spread over both stages and the hand-over, and restarted
   each time on the same state directory. The jobs it leaves behind are re-attached: every stage completes in one attempt, and
   the store holds every metric point of each stage's sent.jsonl exactly once.
2. A worker that stops answering (its rank SIGSTOPped) is killed after the heartbeat timeout, its
   run ends lost, and a new attempt finishes the stage from the newest checkpoint.
"""
import json
import os
import re
import signal
import time
import unittest

import ldm_e2e

COORD_KILLS = int(os.environ.get("LDM_SOAK_COORD_KILLS", "3"))
# A tiny DiT trains ~150 steps/s here: each stage outlives its share of the restarts.
STEPS = max(600, 200 * COORD_KILLS)

SPEC = """
name = "{name}"
seed = 5

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
ranks = 1
checkpoint_every = 100

[[stage]]
name = "finetune"
init_from = "pretrain"
resolution = 32
steps = {steps}
batch_size = 8
lr = 1e-3
ranks = 1
checkpoint_every = 100
"""


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_spec(state, name, steps):
    path = os.path.join(state, name + ".toml")
    with open(path, "w") as f:
        f.write(SPEC.format(name=name, steps=steps))
    return path


def running(pid):
    """True while PID exists and is not a zombie waiting for a parent that never reaps."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def progress(coord, name):
    """Steps done over both stages (0 while the coordinator cannot answer)."""
    try:
        e = coord.experiment(name)
    except OSError:
        return 0
    return sum(s["step"] for s in e["stages"])


class CoordinatorRestartTest(unittest.TestCase):
    def test_sigkills_of_serve_lose_no_attempt_and_no_point(self):
        coord = ldm_e2e.Coordinator()
        self.addCleanup(coord.cleanup)
        coord.start()
        coord.cli("submit", write_spec(coord.state, "soak", STEPS))
        total = 2 * STEPS
        fractions = [0.1 + 0.75 * k / max(COORD_KILLS - 1, 1) for k in range(COORD_KILLS)]
        for kill, fraction in enumerate(fractions, start=1):
            deadline = time.time() + 300
            while progress(coord, "soak") < fraction * total:
                self.assertLess(time.time(), deadline, f"no progress before kill {kill}:\n" + coord.log())
                time.sleep(0.2)
            at = progress(coord, "soak")
            coord.proc.send_signal(signal.SIGKILL)
            coord.proc.wait()
            time.sleep(1.0)  # the workers train on and buffer while nobody listens
            coord.start()
            print(f"kill {kill}: SIGKILLed serve at step {at} of {total}; restarted", flush=True)

        e = coord.wait_terminal("soak", timeout=600)
        log = coord.log()
        self.assertEqual(e["experiment"]["state"], "done", log)
        self.assertEqual([s["state"] for s in e["stages"]], ["done", "done"])
        # One attempt per stage, recorded once: the restarts re-attached the running jobs.
        self.assertEqual(sorted((r["stage"], r["attempt"]) for r in e["runs"]),
                         [("finetune", 1), ("pretrain", 1)], json.dumps(e["runs"], indent=1))
        with open(os.path.join(coord.state, "serve.log")) as f:
            whole_log = f.read()
        self.assertIn("re-attached its job", whole_log)
        self.assertIn("message from its worker confirms the re-attached job", whole_log)
        for stage in ("pretrain", "finetune"):
            sent = read_jsonl(os.path.join(coord.state, "runs", "soak", stage, "sent.jsonl"))
            stored = coord.get(f"/api/v1/experiments/soak/metrics?stage={stage}")["points"]
            key = lambda p: (p["metric"], p["step"], p["value"])
            sent_keys = {(p["metric"], p["step"]) for p in sent}
            stored_keys = [(p["metric"], p["step"]) for p in stored]
            lost = len(sent_keys - set(stored_keys))
            duplicated = len(stored_keys) - len(set(stored_keys))
            print(f"{stage}: {COORD_KILLS} coordinator kills; {len(sent)} points sent, {len(stored)} stored, "
                  f"{lost} lost, {duplicated} duplicated", flush=True)
            self.assertEqual((lost, duplicated), (0, 0), stage)
            self.assertEqual(len(stored), len(sent), stage)
            self.assertEqual(sorted(map(key, stored)), sorted(map(key, sent)), stage)
            self.assertEqual(max(p["step"] for p in stored if p["metric"] == "loss"), STEPS)

    def test_a_silent_worker_is_killed_after_the_heartbeat_timeout_and_its_stage_retried(self):
        coord = ldm_e2e.Coordinator(args=["--heartbeat-timeout", "15"])
        self.addCleanup(coord.cleanup)
        coord.start()
        path = write_spec(coord.state, "silent", 1500)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:  # one stage, retried once
            f.write(text.split('[[stage]]\nname = "finetune"')[0] + "max_attempts = 2\n")
        coord.cli("submit", path)
        deadline = time.time() + 300
        pid = None
        while pid is None or progress(coord, "silent") < 150:
            self.assertLess(time.time(), deadline, "no progress:\n" + coord.log())
            m = re.search(r"run silent\.pretrain\.a1: hello from rank 0 of 1 on \S+ \(pid (\d+)\)", coord.log())
            pid = int(m.group(1)) if m else None
            time.sleep(0.2)
        os.kill(pid, signal.SIGSTOP)  # alive, but silent: no heartbeat, no metrics
        stopped_at = time.time()
        e = coord.wait_terminal("silent", timeout=300)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        runs = sorted(e["runs"], key=lambda r: r["attempt"])
        self.assertEqual([r["state"] for r in runs], ["lost", "done"])
        self.assertIn("heartbeat timeout", runs[0]["error"])
        self.assertGreater(runs[1]["resume_step"], 0)  # continued from a checkpoint
        self.assertGreaterEqual(time.time() - stopped_at, 15)
        self.assertFalse(running(pid), "the stopped rank outlived its killed job")


if __name__ == "__main__":
    unittest.main()
