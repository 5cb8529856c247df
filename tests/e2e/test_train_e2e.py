"""End to end: submit a tiny experiment to a real coordinator, train it with 2 real MPI ranks,
and check what reached the RocksDB store. Run by ctest (see CMakeLists.txt here)."""
import glob
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import ldm_e2e  # noqa: E402
from ldm_e2e import Coordinator, experiment  # noqa: E402

METRICS = ("loss", "lr", "grad_norm", "samples_per_s")
# The ranks' system figures, aggregated (the comm ones only with more than one rank).
SYSTEM_METRICS = ("sys_step_s", "sys_data_wait_s", "sys_comm_s", "sys_comm_hidden_frac", "sys_peak_rss_mb",
                  "sys_forward_s", "sys_backward_s", "sys_update_s")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class TrainTwoRanks(unittest.TestCase):
    """One training run shared by the checks below (it is the expensive part)."""

    @classmethod
    def setUpClass(cls):
        # The workers start through a wrapper that keeps the run's token (LDM_RUN_TOKEN), so that the
        # test knows the secret the API must not show.
        import tempfile
        cls.scratch = tempfile.mkdtemp(prefix="ldm-e2e-token-")
        cls.token_file = os.path.join(cls.scratch, "tokens.txt")
        wrapper = os.path.join(cls.scratch, "worker.sh")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\necho "$LDM_RUN_TOKEN" >> {cls.token_file}\n'
                    f'exec {os.path.join(ldm_e2e.BIN, "ldm-worker")} "$@"\n')
        os.chmod(wrapper, 0o755)
        cls.coord = Coordinator(args=["--worker", wrapper]).start()
        cls.coord.cli("submit", experiment("dit-2rank.toml"))
        cls.result = cls.coord.wait_terminal("tiny-dit-2rank")
        cls.the_run = cls.result["runs"][-1]
        cls.run_dir = cls.the_run["run_dir"]

    @classmethod
    def tearDownClass(cls):
        cls.coord.cleanup()
        import shutil
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def test_run_ends_done(self):
        self.assertEqual(self.result["experiment"]["state"], "done", json.dumps(self.result, indent=1))
        self.assertEqual(self.the_run["step"], 60)

    def test_loss_falls_by_a_fifth(self):
        pts = self.coord.get("/api/v1/experiments/tiny-dit-2rank/metrics?stage=train&metric=loss")["points"]
        losses = [p["value"] for p in sorted(pts, key=lambda p: p["step"])]
        self.assertEqual(len(losses), 60)
        k = len(losses) // 5
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        self.assertLessEqual(last, 0.8 * first, f"first 20%: {first:.4f}, last 20%: {last:.4f}")

    def test_ranks_end_with_identical_parameters(self):
        summaries = [read_json(p) for p in sorted(glob.glob(os.path.join(self.run_dir, "logs", "rank-*.json")))]
        self.assertEqual(len(summaries), 2)
        self.assertEqual({s["step"] for s in summaries}, {60})
        self.assertEqual(summaries[0]["param_checksum"], summaries[1]["param_checksum"])

    def test_ranks_read_disjoint_records_covering_the_epoch(self):
        per_rank = []
        for r in range(2):
            ids = set()
            for line in read_jsonl(os.path.join(self.run_dir, "logs", f"records-rank-{r}.jsonl")):
                ids.update(i for i, e in zip(line["ids"], line["epochs"]) if e == 0)
            per_rank.append(ids)
        self.assertFalse(per_rank[0] & per_rank[1], "ranks read the same records")
        self.assertEqual(per_rank[0] | per_rank[1], set(range(256)))

    def test_store_holds_exactly_the_points_the_worker_sent(self):
        sent = {(p["metric"], p["step"], p["value"]) for p in read_jsonl(os.path.join(self.run_dir, "sent.jsonl"))}
        stored_pts = self.coord.get("/api/v1/experiments/tiny-dit-2rank/metrics?stage=train")["points"]
        stored = {(p["metric"], p["step"], p["value"]) for p in stored_pts}
        # + the model's params and gflops at step 0
        self.assertEqual(len(stored_pts), 60 * (len(METRICS) + len(SYSTEM_METRICS)) + 2)
        self.assertEqual(sent, stored)
        self.assertEqual({p["attempt"] for p in stored_pts}, {1})

    def test_final_checkpoint_bundle_is_complete(self):
        ckpts = os.path.join(self.run_dir, "checkpoints")
        with open(os.path.join(ckpts, "latest")) as f:
            name = f.read().strip()
        self.assertEqual(name, "step-0000060")
        bundle = os.path.join(ckpts, name)
        for file in ("model.safetensors", "ema.safetensors", "optimizer.safetensors", "generators.safetensors",
                     "manifest.json"):
            self.assertTrue(os.path.exists(os.path.join(bundle, file)), file)
        manifest = read_json(os.path.join(bundle, "manifest.json"))
        self.assertEqual(manifest["step"], 60)
        self.assertEqual(manifest["world_size"], 2)
        self.assertEqual(manifest["data_cursor"], 60 * 16)
        self.assertEqual(manifest["spec"]["name"], "tiny-dit-2rank")

    def test_sample_command_writes_a_png_grid_from_the_checkpoint(self):
        out = os.path.join(self.coord.state, "grid.png")
        latents = os.path.join(self.coord.state, "latents.safetensors")
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "sample", "--checkpoint",
                               os.path.join(self.run_dir, "checkpoints"), "--n", "6", "--columns", "3",
                               "--sampler", "ddim", "--steps", "10", "--cfg", "2", "--out", out,
                               "--latents", latents], capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        self.assertEqual((width, height), (3 * 32 + 4 * 2, 2 * 32 + 3 * 2))
        with open(latents, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        self.assertEqual(header["latents"]["shape"], [6, 12, 16, 16])

    def test_sample_command_samples_at_another_resolution_with_resampled_positions(self):
        latents = os.path.join(self.coord.state, "latents-64.safetensors")
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "sample", "--checkpoint",
                               os.path.join(self.run_dir, "checkpoints"), "--n", "2", "--resolution", "64",
                               "--sampler", "ddim", "--steps", "5", "--out",
                               os.path.join(self.coord.state, "grid-64.png"), "--latents", latents],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(latents, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        self.assertEqual(header["latents"]["shape"], [2, 12, 32, 32])
        bad = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "sample", "--checkpoint",
                              os.path.join(self.run_dir, "checkpoints"), "--resolution", "34", "--out",
                              os.path.join(self.coord.state, "x.png")], capture_output=True, text=True, timeout=60)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("resolution", bad.stderr)

    def test_sample_command_rejects_a_class_out_of_range(self):
        proc = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-worker"), "sample", "--checkpoint",
                               os.path.join(self.run_dir, "checkpoints"), "--class", "11", "--out",
                               os.path.join(self.coord.state, "x.png")], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--class", proc.stderr)

    def test_status_json_reports_the_run_and_no_api_answer_shows_its_token(self):
        out = json.loads(self.coord.cli("status", "tiny-dit-2rank", "--json").stdout)
        text = json.dumps(out)
        self.assertIn("done", text)
        with open(self.token_file) as f:
            tokens = {line.strip() for line in f if line.strip()}
        self.assertEqual(len(tokens), 1, tokens)  # both ranks were given the run's one token
        token = tokens.pop()
        self.assertGreaterEqual(len(token), 32)
        for answer in (text, json.dumps(self.coord.get("/api/v1/experiments/tiny-dit-2rank")),
                       json.dumps(self.coord.get("/api/v1/experiments")),
                       self.coord.cli("status", "tiny-dit-2rank").stdout):
            self.assertNotIn(token, answer)


class Failures(unittest.TestCase):
    # One coordinator serves every test's fault: each plan selects its experiment by name.
    FAULTS = ";".join([
        "abort@experiment:faulty,step:5,rank:1",
        "exit@experiment:silent,step:1,rank:0",
        "abort@experiment:retried,step:25,rank:1,attempt:1",
        "exit@experiment:resumable,step:30,rank:0,attempt:1",
        "exit@experiment:reshaped,step:30,rank:0,attempt:1",
        "diverge@experiment:diverging,step:5,rank:1",
        "nan@experiment:skipping,step:7,rank:1",
    ])

    def setUp(self):
        self.coord = Coordinator(env={"LDM_FAULT": self.FAULTS}).start()

    def tearDown(self):
        self.coord.cleanup()

    def test_injected_abort_names_rank_and_step_and_the_next_submit_succeeds(self):
        self.coord.cli("submit", experiment("dit-2rank.toml"), "--name", "faulty")
        failed = self.coord.wait_terminal("faulty")
        self.assertEqual(failed["experiment"]["state"], "failed")
        # the fault fires in every attempt: the stage's 3 attempts (max_attempts) all crash
        self.assertEqual([r["attempt"] for r in failed["runs"]], [1, 2, 3], json.dumps(failed, indent=1))
        error = failed["runs"][-1]["error"]
        self.assertIn("rank 1", error)
        self.assertIn("step 5", error)
        status = self.coord.cli("status", "faulty").stdout
        self.assertIn("rank 1", status)
        self.coord.cli("submit", experiment("dit-1rank-short.toml"))
        ok = self.coord.wait_terminal("tiny-dit-1rank")
        self.assertEqual(ok["experiment"]["state"], "done", json.dumps(ok, indent=1))

    def test_worker_dying_silently_at_start_is_reported(self):
        self.coord.cli("submit", experiment("dit-1rank-short.toml"), "--name", "silent")
        failed = self.coord.wait_terminal("silent")
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertEqual(len(failed["runs"]), 3)
        self.assertIn("exit", failed["runs"][-1]["error"].lower())
        self.assertTrue(self.coord.get("/api/v1/health")["ok"])

    def _checkpointed(self, name, extra=""):
        toml = os.path.join(self.coord.state, name + ".toml")
        with open(experiment("dit-2rank.toml")) as f:
            text = f.read().replace('name = "tiny-dit-2rank"', f'name = "{name}"')
        assert "log_every = 1\n" in text
        with open(toml, "w") as f:
            f.write(text.replace("log_every = 1\n", "log_every = 1\ncheckpoint_every = 20\n" + extra))
        return toml

    def test_a_crashed_attempt_is_retried_from_its_checkpoint_and_ends_as_if_never_interrupted(self):
        self.coord.cli("submit", self._checkpointed("straight"))
        straight = self.coord.wait_terminal("straight")
        self.assertEqual(straight["experiment"]["state"], "done", json.dumps(straight, indent=1))
        # rank 1 aborts at step 25 of the first attempt only; the checkpoint of step 20 survives
        self.coord.cli("submit", self._checkpointed("retried"))
        retried = self.coord.wait_terminal("retried")
        self.assertEqual(retried["experiment"]["state"], "done", json.dumps(retried, indent=1))
        first, second = retried["runs"]
        self.assertEqual((first["attempt"], first["state"]), (1, "failed"))
        self.assertIn("rank 1", first["error"])
        self.assertIn("step 25", first["error"])
        self.assertEqual((second["attempt"], second["state"], second["step"]), (2, "done", 60))
        self.assertEqual(second["resume_step"], 20)
        self.assertTrue(second["resume_from"].endswith("checkpoints/step-0000020"), second["resume_from"])

        def points(name):
            pts = self.coord.get(f"/api/v1/experiments/{name}/metrics?stage=train&metric=loss")["points"]
            return sorted(pts, key=lambda p: p["step"])

        got, want = points("retried"), points("straight")
        # one point per step, steps after the checkpoint from attempt 2: no duplicates, no stale tail
        self.assertEqual([p["step"] for p in got], list(range(1, 61)))
        self.assertEqual({p["attempt"] for p in got if p["step"] <= 20}, {1})
        self.assertEqual({p["attempt"] for p in got if p["step"] > 20}, {2})
        # the resume is bit-exact: the same losses and the same final parameters as the straight run
        self.assertEqual([p["value"] for p in got], [p["value"] for p in want])
        sums = {}
        for name, view in (("straight", straight), ("retried", retried)):
            files = sorted(glob.glob(os.path.join(view["runs"][-1]["run_dir"], "logs", "rank-*.json")))
            self.assertEqual(len(files), 2, name)
            sums[name] = {read_json(p)["param_checksum"] for p in files}
            self.assertEqual(len(sums[name]), 1, name)
        self.assertEqual(sums["retried"], sums["straight"])

    def test_resume_restarts_a_failed_experiment_from_its_checkpoint(self):
        self.coord.cli("submit", self._checkpointed("resumable", "max_attempts = 1\n"))
        failed = self.coord.wait_terminal("resumable")
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertEqual(len(failed["runs"]), 1)  # max_attempts = 1: no automatic retry
        out = self.coord.cli("resume", "resumable").stdout
        self.assertIn("resumable.train.a2", out)
        done = self.coord.wait_terminal("resumable")
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))
        self.assertEqual(done["runs"][-1]["resume_step"], 20)
        # a done experiment has nothing to resume
        proc = self.coord.cli("resume", "resumable", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("done", proc.stderr)

    def test_resume_at_another_world_size_goes_on_with_the_next_records(self):
        # 2 ranks fail at step 30 (checkpoint at 20); `resume --ranks 1` goes on alone.
        self.coord.cli("submit", self._checkpointed("reshaped", "max_attempts = 1\n"))
        self.assertEqual(self.coord.wait_terminal("reshaped")["experiment"]["state"], "failed")
        refused = self.coord.cli("resume", "reshaped", "--ranks", "1", check=False)
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("--allow-world-size-change", refused.stderr)
        self.coord.cli("resume", "reshaped", "--ranks", "1", "--allow-world-size-change")
        done = self.coord.wait_terminal("reshaped")
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))
        last = done["runs"][-1]
        self.assertEqual((last["attempt"], last["ranks"], last["resume_step"], last["step"]), (2, 1, 20, 60))
        self.assertEqual(done["stages"][0]["ranks"], 1)
        run_dir = last["run_dir"]
        with open(os.path.join(run_dir, "logs", "rank-0.log")) as f:
            log = f.read()
        self.assertIn("written by 2 ranks, resuming with 1 (--allow-world-size-change)", log)
        self.assertIn("not bit-exact", log)
        # Which attempt trained each step last, and the records of those steps: epoch 1 (steps 17-32)
        # was begun by 2 ranks and finished by 1, and still holds every record exactly once.
        entries = [e for r in (0, 1) for e in read_jsonl(os.path.join(run_dir, "logs", f"records-rank-{r}.jsonl"))]
        owner = {}
        for e in entries:
            owner[e["step"]] = max(owner.get(e["step"], 0), e["attempt"])
        self.assertEqual(sorted(owner), list(range(1, 61)))
        self.assertEqual({s for s, a in owner.items() if a == 2}, set(range(21, 61)))
        seen = {0: [], 1: [], 2: []}
        for e in entries:
            if e["attempt"] == owner[e["step"]]:
                for i, epoch in zip(e["ids"], e["epochs"]):
                    seen.setdefault(epoch, []).append(i)
        for epoch in (0, 1, 2):
            self.assertEqual(sorted(seen[epoch]), list(range(256)), f"epoch {epoch}")
        self.assertEqual(len(seen[3]), (60 - 48) * 16)  # steps 49-60 of epoch 3, 16 records each

    def test_a_loss_that_is_not_finite_ends_the_run_diverged_without_a_retry(self):
        self.coord.cli("submit", experiment("dit-2rank.toml"), "--name", "diverging")
        ended = self.coord.wait_terminal("diverging")
        self.assertEqual(ended["experiment"]["state"], "diverged", json.dumps(ended, indent=1))
        self.assertEqual([(r["attempt"], r["state"]) for r in ended["runs"]], [(1, "diverged")])
        self.assertIn("diverged", ended["runs"][0]["error"])
        # skipped, rolled back twice (nonfinite_*_limit defaults), then ended: naming steps and rank
        self.assertIn("steps 5-7", ended["runs"][0]["error"])
        self.assertIn("after 2 rollback(s)", ended["runs"][0]["error"])
        self.assertIn("not finite on rank 1", ended["runs"][0]["error"])
        self.assertIn("diverged", self.coord.cli("status", "diverging").stdout)

    def test_one_nan_loss_skips_its_step_and_the_run_ends_done(self):
        self.coord.cli("submit", experiment("dit-2rank.toml"), "--name", "skipping")
        ended = self.coord.wait_terminal("skipping")
        self.assertEqual(ended["experiment"]["state"], "done", json.dumps(ended, indent=1))
        self.assertEqual([(r["attempt"], r["state"]) for r in ended["runs"]], [(1, "done")])
        with open(os.path.join(ended["runs"][0]["run_dir"], "logs", "nonfinite.jsonl")) as f:
            events = [json.loads(line) for line in f]
        self.assertEqual([(e["step"], e["action"]) for e in events], [(7, "skipped")])
        self.assertIn("not finite on rank 1", events[0]["fault"])
        metrics = self.coord.get("/api/v1/experiments/skipping/metrics?stage=train")["points"]
        loss_steps = sorted(p["step"] for p in metrics if p["metric"] == "loss")
        self.assertNotIn(7, loss_steps)  # a skipped step has no loss point
        self.assertIn(8, loss_steps)

    def test_cancel_checkpoints_and_stops_the_workers_and_resume_continues(self):
        toml = self._checkpointed("cancelled")
        with open(toml) as f:
            text = f.read()
        with open(toml, "w") as f:  # long enough to be cancelled mid-run
            f.write(text.replace("steps = 60\n", "steps = 2000\n"))
        self.coord.cli("submit", toml)
        deadline = time.time() + 120
        while time.time() < deadline:
            runs = self.coord.experiment("cancelled")["runs"]
            if runs and runs[-1]["step"] >= 10:
                break
            time.sleep(0.2)
        out = self.coord.cli("cancel", "cancelled").stdout
        self.assertIn("SIGUSR1 to cancelled.train.a1", out)
        stopped = self.coord.wait_terminal("cancelled")
        self.assertEqual(stopped["experiment"]["state"], "cancelled", json.dumps(stopped, indent=1))
        run = stopped["runs"][-1]
        self.assertEqual((run["attempt"], run["state"]), (1, "cancelled"))
        self.assertLess(run["step"], 2000)
        self.assertTrue(run["checkpoint"].endswith(f"step-{run['step']:07d}"), run)  # checkpointed where it stopped
        self.assertIn("resumed", self.coord.cli("resume", "cancelled").stdout)
        deadline = time.time() + 120
        while self.coord.experiment("cancelled")["runs"][-1]["step"] <= run["step"] + 5 and time.time() < deadline:
            time.sleep(0.2)
        self.coord.cli("cancel", "cancelled")  # not wait for 2000 steps: the resume is what counts
        again = self.coord.wait_terminal("cancelled")
        second = again["runs"][-1]
        self.assertEqual(second["attempt"], 2)
        self.assertEqual(second["resume_step"], run["step"])

    def test_bad_spec_is_refused_with_its_location_and_the_coordinator_keeps_serving(self):
        bad = os.path.join(self.coord.state, "bad.toml")
        with open(experiment("dit-1rank-short.toml")) as f:
            text = f.read().replace('preset = "tiny/4"', 'preset = "tiny/3"')
        with open(bad, "w") as f:
            f.write(text)
        proc = self.coord.cli("submit", bad, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("bad.toml:", proc.stderr)
        self.assertIn("tiny/3", proc.stderr)
        self.assertTrue(self.coord.get("/api/v1/health")["ok"])

    def _shards_experiment(self, name, path):
        toml = os.path.join(self.coord.state, name + ".toml")
        with open(experiment("dit-1rank-short.toml")) as f:
            text = f.read().replace('name = "tiny-dit-1rank"', f'name = "{name}"')
        text = text.replace("[dataset]\n", f'[dataset]\nkind = "shards"\npath = "{path}"\n')
        with open(toml, "w") as f:
            f.write(text)
        return toml

    def test_missing_dataset_path_fails_the_run_naming_the_path(self):
        self.coord.cli("submit", self._shards_experiment("nodata", "/nonexistent/shards"))
        failed = self.coord.wait_terminal("nodata")
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertIn("/nonexistent/shards", failed["runs"][-1]["error"])
        self.assertIn("/nonexistent/shards", self.coord.cli("status", "nodata").stdout)

    def test_trains_from_shards_made_by_ldm_data(self):
        shards = os.path.join(self.coord.state, "shapes")
        subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-data"), "synth", "--out", shards, "--records", "64",
                        "--classes", "4", "--resolution", "32"], check=True, capture_output=True)
        self.coord.cli("submit", self._shards_experiment("fromshards", shards))
        done = self.coord.wait_terminal("fromshards")
        self.assertEqual(done["experiment"]["state"], "done", json.dumps(done, indent=1))

    def test_labels_outside_the_declared_classes_fail_the_run_naming_a_record(self):
        shards = os.path.join(self.coord.state, "ten-classes")
        subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-data"), "synth", "--out", shards, "--records", "64",
                        "--classes", "10", "--resolution", "32"], check=True, capture_output=True)
        self.coord.cli("submit", self._shards_experiment("badlabels", shards))  # declares 4 classes
        failed = self.coord.wait_terminal("badlabels")
        self.assertEqual(failed["experiment"]["state"], "failed")
        self.assertRegex(failed["runs"][-1]["error"], r"record \d+ has label \d+ outside \[0, dataset.classes = 4\)")

    def test_state_survives_a_coordinator_restart(self):
        self.coord.cli("submit", experiment("dit-1rank-short.toml"))
        self.coord.wait_terminal("tiny-dit-1rank")
        before = self.coord.experiment("tiny-dit-1rank")
        self.coord.stop()
        again = Coordinator(self.coord.state).start()
        try:
            after = again.experiment("tiny-dit-1rank")
            self.assertEqual(after["experiment"]["state"], "done")
            self.assertEqual(after["runs"][-1]["step"], before["runs"][-1]["step"])
            pts = again.get("/api/v1/experiments/tiny-dit-1rank/metrics?stage=train&metric=loss")["points"]
            self.assertEqual(len(pts), 8)
        finally:
            again.stop()


class EmbeddedRun(unittest.TestCase):
    def test_run_command_trains_and_prints_a_summary(self):
        import tempfile
        import shutil
        state = tempfile.mkdtemp(prefix="ldm-e2e-run-")
        try:
            proc = ldm_e2e.run_cli("run", experiment("dit-1rank-short.toml"), "--state", state, timeout=300)
            self.assertIn("done", proc.stdout)
            self.assertIn("tiny-dit-1rank", proc.stdout)
        finally:
            shutil.rmtree(state, ignore_errors=True)

    def test_resume_without_a_serving_coordinator_runs_in_process_and_continues(self):
        import tempfile
        import shutil
        state = tempfile.mkdtemp(prefix="ldm-e2e-resume-")
        try:
            with open(experiment("dit-2rank.toml")) as f:
                text = f.read().replace("log_every = 1\n", "log_every = 1\ncheckpoint_every = 20\nmax_attempts = 1\n")
            toml = os.path.join(state, "stops.toml")
            with open(toml, "w") as f:
                f.write(text)
            coord = [os.path.join(ldm_e2e.BIN, "ldm-coord")]
            env = dict(os.environ, LDM_FAULT="exit@step:30,rank:0,attempt:1")
            first = subprocess.run(coord + ["run", toml, "--state", state], capture_output=True, text=True,
                                   timeout=300, env=env, stdin=subprocess.DEVNULL)
            self.assertEqual(first.returncode, 1, first.stdout + first.stderr)
            self.assertIn("experiment tiny-dit-2rank: failed", first.stdout)
            # No coordinator serves `state` now: resume starts one in-process and follows the run.
            second = ldm_e2e.run_cli("resume", "tiny-dit-2rank", "--state", state, timeout=300)
            self.assertIn("in-process", second.stdout)
            self.assertIn("experiment tiny-dit-2rank: done", second.stdout)
            self.assertIn("attempt 2, resumed from step 20", second.stdout)
        finally:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
