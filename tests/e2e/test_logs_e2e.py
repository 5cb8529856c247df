"""End to end: `ldm-coord logs --follow` prints a running worker's log as it grows and returns when
the run ends; `ldm-coord delete` refuses a running experiment and removes a finished one's records
and run directories."""
import os
import subprocess
import time
import unittest

import ldm_e2e

SPEC = """name = "follow"
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
steps = 2000
batch_size = 8
lr = 1e-3
ranks = 1
log_every = 100
"""


class LogsAndDelete(unittest.TestCase):
    def test_follow_sees_new_lines_and_delete_waits_for_the_end(self):
        coord = ldm_e2e.Coordinator().start()
        try:
            path = os.path.join(coord.state, "follow.toml")
            with open(path, "w") as f:
                f.write(SPEC)
            coord.cli("submit", path)
            deadline = time.time() + 120
            while not any(r["state"] == "running" for r in coord.experiment("follow")["runs"]):
                self.assertLess(time.time(), deadline, coord.log())
                time.sleep(0.1)
            follow = subprocess.Popen([os.path.join(ldm_e2e.BIN, "ldm-coord"), "logs", "follow", "--follow",
                                       "--state", coord.state], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            # A running experiment cannot be deleted.
            refused = coord.cli("delete", "follow", check=False)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("cancel it first", refused.stderr)
            # The first lines arrive while the run is still going: printed as they are written.
            first = follow.stdout.readline()
            self.assertIn("[worker r0]", first)
            self.assertEqual(coord.experiment("follow")["experiment"]["state"], "running")
            rest = follow.stdout.read()  # the file object's own buffer holds what readline read ahead
            err = follow.stderr.read()
            follow.wait(timeout=60)
            out = first + rest
            self.assertEqual(follow.returncode, 0, err)
            self.assertIn("following follow.train.a1", err)
            state = coord.experiment("follow")["experiment"]["state"]
            self.assertEqual(state, "done", coord.log())
            # Every progress line of the run, the last one included, written while it followed.
            self.assertIn("step 100/2000", out)
            self.assertIn("step 2000/2000", out)
            with open(os.path.join(coord.state, "runs", "follow", "train", "logs", "rank-0.log")) as f:
                self.assertEqual(out, f.read())
            # Without --follow: the same log; --rank mpirun: the launcher's file; a stage that is not there.
            self.assertEqual(coord.cli("logs", "follow.train.a1").stdout, out)
            with open(os.path.join(coord.state, "runs", "follow", "train", "logs", "mpirun.log")) as f:
                self.assertEqual(coord.cli("logs", "follow", "--rank", "mpirun").stdout, f.read())
            nope = coord.cli("logs", "follow", "--stage", "nope", check=False)
            self.assertEqual(nope.returncode, 1)
            self.assertIn("has no stage 'nope' (stages: train)", nope.stderr)
            # Finished: delete removes the records and (with --files) the stage's run directory.
            run_dir = os.path.join(coord.state, "runs", "follow", "train")
            self.assertTrue(os.path.isdir(run_dir))
            coord.cli("delete", "follow", "--files")
            self.assertFalse(os.path.exists(run_dir))
            gone = coord.cli("status", "follow", check=False)
            self.assertNotEqual(gone.returncode, 0)
            self.assertIn("no experiment named 'follow'", gone.stderr)
        finally:
            coord.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
