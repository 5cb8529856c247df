"""Pull mode: `ldm-coord serve --executor pull` starts no job; a worker started by hand with
`mpirun -n 2 ldm-worker train --coord ENDPOINT` (no run id) claims the ready stages that fit its
2 ranks, trains both queued 2-rank experiments one after the other, leaves the 1-rank one alone and
exits 0 once nothing is left for it."""
import json
import os
import subprocess
import time
import unittest

import ldm_e2e

ONE_RANK = """
name = "{name}"
seed = 3
[dataset]
records = 64
classes = 4
shard_records = 64
[recipe]
family = "dit"
preset = "tiny/4"
[[stage]]
name = "train"
resolution = 32
steps = 20
batch_size = 8
ranks = 1
"""


class PullMode(unittest.TestCase):
    def test_a_pull_worker_drains_the_stages_of_its_size(self):
        coord = ldm_e2e.Coordinator(args=["--executor", "pull"])
        self.addCleanup(coord.cleanup)
        coord.start()
        for name in ("first", "second"):
            coord.cli("submit", ldm_e2e.experiment("dit-2rank.toml"), "--name", name)
        path = os.path.join(coord.state, "single.toml")
        with open(path, "w") as f:
            f.write(ONE_RANK.format(name="single"))
        coord.cli("submit", path)
        time.sleep(1.0)
        self.assertEqual(coord.experiment("first")["stages"][0]["state"], "pending", "the coordinator launched a job")

        with open(os.path.join(coord.state, "coord.json")) as f:
            endpoint = json.load(f)["zmq"]
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        work = os.path.join(coord.state, "batch-job")
        os.makedirs(work)
        worker = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-n", "2",
                                 os.path.join(ldm_e2e.BIN, "ldm-worker"), "train", "--coord", endpoint],
                                cwd=work, env=env, capture_output=True, text=True, timeout=600)
        self.assertEqual(worker.returncode, 0, worker.stdout[-3000:] + worker.stderr[-3000:])
        self.assertIn("nothing left to train for 2 rank(s); 2 run(s) trained", worker.stdout + worker.stderr)

        for name in ("first", "second"):
            e = coord.wait_terminal(name, timeout=60)
            self.assertEqual(e["experiment"]["state"], "done", coord.log())
            self.assertEqual([(r["attempt"], r["state"]) for r in e["runs"]], [(1, "done")])
            points = coord.get(f"/api/v1/experiments/{name}/metrics?stage=train&metric=loss")["points"]
            self.assertEqual(max(p["step"] for p in points), 60)
            self.assertTrue(os.path.exists(os.path.join(e["runs"][0]["run_dir"], "logs", "rank-1.log")))
        self.assertEqual(coord.experiment("single")["experiment"]["state"], "pending")
        with open(os.path.join(coord.state, "serve.log")) as f:
            log = f.read()
        self.assertIn("assigned to the pull worker on", log)
        self.assertNotIn("started mpirun", log)


if __name__ == "__main__":
    unittest.main()
