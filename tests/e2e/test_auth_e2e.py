"""A coordinator listening off loopback (`serve --listen 0.0.0.0`): its credentials are private
files in <state>/auth, the CLI without the bearer token is refused (and the coordinator logs it),
the CLI with it is served, and the workers it starts authenticate with CURVE and train to done."""
import json
import os
import stat
import subprocess
import unittest

import ldm_e2e


class OffLoopback(unittest.TestCase):
    def test_credentials_refusals_and_a_job_that_authenticates(self):
        coord = ldm_e2e.Coordinator(args=["--listen", "0.0.0.0"])
        self.addCleanup(coord.cleanup)
        coord.start()
        auth = os.path.join(coord.state, "auth")
        for name in ("server.json", "client.json"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(auth, name)).st_mode), 0o600, name)
        with open(os.path.join(coord.state, "coord.json")) as f:
            url = json.load(f)["http"]

        env = dict(os.environ)
        env.pop("LDM_TOKEN_FILE", None)
        refused = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-coord"), "status", "--coord", url],
                                 capture_output=True, text=True, env=env, timeout=60)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("requires a bearer token", refused.stderr)
        with open(os.path.join(coord.state, "serve.log")) as f:
            self.assertIn("HTTP: refused GET /api/v1/experiments", f.read())
        served = subprocess.run([os.path.join(ldm_e2e.BIN, "ldm-coord"), "status", "--coord", url, "--token-file",
                                 os.path.join(auth, "client.json")], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(served.returncode, 0, served.stderr)

        coord.cli("submit", ldm_e2e.experiment("dit-2rank.toml"))  # --state finds auth/client.json
        e = coord.wait_terminal("tiny-dit-2rank", timeout=600)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())


if __name__ == "__main__":
    unittest.main()
