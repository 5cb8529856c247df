"""Two hosts for real on one machine: three network namespaces on a bridge, each with an address of
its own. The coordinator runs in the third and listens on its non-loopback address, so
authentication is on (bearer token, CURVE). One 2-rank pull worker is started in the first with a
hostfile naming the first and second namespaces' addresses; OpenMPI's launch agent enters the
second through `ip netns exec`, and the ranks talk over TCP on the bridge. The job trains a queued
2-rank experiment to done, each rank in its own namespace.

Skipped, with the reason, where namespaces cannot be made (not root, no CAP_NET_ADMIN, no `ip`);
under CI=true that is a failure.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

import ldm_e2e


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


class Namespaces:
    """ldm<tag>a/b/c on a bridge ldm<tag>br; addresses 10.<net>.0.1-3, the bridge .254."""

    def __init__(self):
        self.tag = f"{os.getpid() % 10000}"
        self.net = random.randint(100, 199)
        self.names = [f"ldm{self.tag}{c}" for c in "abc"]
        self.bridge = f"ldm{self.tag}br"
        self.made = []

    def address(self, i):
        return f"10.{self.net}.0.{i + 1}"

    def up(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.made.append(("link", self.bridge))
        sh("ip", "addr", "add", f"10.{self.net}.0.254/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i, ns in enumerate(self.names):
            sh("ip", "netns", "add", ns)
            self.made.append(("netns", ns))
            inside, outside = f"{ns}i", f"{ns}o"
            sh("ip", "link", "add", inside, "type", "veth", "peer", "name", outside)
            self.made.append(("link", outside))
            sh("ip", "link", "set", outside, "master", self.bridge)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "link", "set", inside, "netns", ns)
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.address(i)}/24", "dev", inside)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def down(self):
        for kind, name in reversed(self.made):
            if kind == "netns":
                sh("ip", "netns", "del", name, check=False)
            else:
                sh("ip", "link", "del", name, check=False)


class TwoHosts(unittest.TestCase):
    def setUp(self):
        self.ns = Namespaces()
        try:
            if shutil.which("ip") is None:
                raise OSError("the `ip` program (iproute2) is not installed")
            self.ns.up()
        except (OSError, subprocess.CalledProcessError) as e:
            self.ns.down()
            why = getattr(e, "stderr", "") or str(e)
            message = f"network namespaces cannot be made here ({why.strip()})"
            if os.environ.get("CI") == "true":
                self.fail(message + "; CI must be able to run this test")
            self.skipTest(message)
        self.addCleanup(self.ns.down)

    def test_one_rank_in_each_namespace_trains_against_an_authenticated_coordinator(self):
        ns = self.ns
        coord = ldm_e2e.Coordinator(args=["--listen", ns.address(2), "--executor", "pull"],
                                    prefix=["ip", "netns", "exec", ns.names[2]])
        self.addCleanup(coord.cleanup)
        coord.start()
        coord.cli("submit", ldm_e2e.experiment("dit-2rank.toml"))  # over 10.x.0.3 through the bridge
        with open(os.path.join(coord.state, "coord.json")) as f:
            endpoint = json.load(f)["zmq"]
        self.assertTrue(endpoint.startswith(f"tcp://{ns.address(2)}:"), endpoint)

        work = tempfile.mkdtemp(prefix="ldm-netns-")
        self.addCleanup(shutil.rmtree, work, True)
        agent = os.path.join(work, "agent.sh")
        with open(agent, "w") as f:  # OpenMPI's launch agent: "host command..." in that host's namespace
            f.write("#!/bin/sh\nhost=$1; shift\ncase \"$host\" in\n")
            for i in (0, 1):
                f.write(f"  {ns.address(i)}) exec ip netns exec {ns.names[i]} /bin/sh -c \"$*\" ;;\n")
            f.write("esac\necho \"agent.sh: unknown host $host\" >&2; exit 1\n")
        os.chmod(agent, 0o755)
        with open(os.path.join(work, "hosts"), "w") as f:
            f.write(f"{ns.address(0)} slots=1\n{ns.address(1)} slots=1\n")
        # Each rank notes its namespace's addresses, then becomes the worker.
        rank_cmd = (f"ip -br -4 addr > {work}/rank-$OMPI_COMM_WORLD_RANK.addr; exec {ldm_e2e.BIN}/ldm-worker train "
                    f"--coord {endpoint} --token-file {coord.state}/auth/client.json --once")
        subnet = f"10.{ns.net}.0.0/24"
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        env.pop("LDM_TOKEN_FILE", None)
        job = subprocess.run(
            ["ip", "netns", "exec", ns.names[0], "mpirun", "--hostfile", os.path.join(work, "hosts"), "-n", "2",
             "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", subnet,
             "--mca", "oob_tcp_if_include", subnet, "/bin/sh", "-c", rank_cmd],
            cwd=work, env=env, capture_output=True, text=True, timeout=600)
        self.assertEqual(job.returncode, 0, job.stdout[-3000:] + job.stderr[-3000:] + coord.log())

        e = coord.wait_terminal("tiny-dit-2rank", timeout=120)
        self.assertEqual(e["experiment"]["state"], "done", coord.log())
        for rank in (0, 1):
            with open(os.path.join(work, f"rank-{rank}.addr")) as f:
                addrs = f.read()
            self.assertIn(ns.address(rank), addrs)
            self.assertNotIn(ns.address(1 - rank), addrs)
        with open(os.path.join(coord.state, "serve.log")) as f:
            log = f.read()
        self.assertIn(f"listening on {ns.address(2)}", log)
        self.assertIn("assigned to the pull worker on", log)


if __name__ == "__main__":
    unittest.main()
