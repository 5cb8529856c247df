"""Helpers for the end-to-end tests: run the real ldm-coord / ldm-worker binaries.

Each test gets a fresh state directory, starts `ldm-coord serve` on ephemeral ports, talks to it
through the CLI and the HTTP API, and stops it at the end. Nothing here fakes a component.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

BIN = os.environ.get("LDM_BIN", "")
REPO = os.environ.get("LDM_REPO", "")


def experiment(name):
    return os.path.join(REPO, "experiments", "tiny", name)


def write_wds_tar(path, n, sizes=((48, 40), (56, 40), (64, 40))):
    """A WebDataset tar as the common downloaders write it: s000.jpg|png + s000.txt, ... (PIL)."""
    import io
    import tarfile
    from PIL import Image
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            img = Image.new("RGB", sizes[i % len(sizes)], ((40 * i) % 255, 100, (200 - 10 * i) % 255))
            buf = io.BytesIO()
            img.save(buf, format="JPEG" if i % 2 else "PNG")
            ext = "jpg" if i % 2 else "png"
            for name, data in ((f"s{i:03d}.{ext}", buf.getvalue()),
                               (f"s{i:03d}.txt", f"a colour field number {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def mpirun(ranks):
    """The mpirun prefix for RANKS local ranks (root needs --allow-run-as-root; 2 cores: oversubscribe)."""
    args = ["mpirun"]
    if os.geteuid() == 0:
        args.append("--allow-run-as-root")
    return args + ["--oversubscribe", "--bind-to", "none", "-n", str(ranks)]


def ldm_data(*args, timeout=300):
    """Runs ldm-data with args; returns the CompletedProcess (text)."""
    return subprocess.run([os.path.join(BIN, "ldm-data"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def shards_experiment(base, name, shards, replacements=()):
    """The text of experiments/tiny/BASE renamed to NAME and reading the shard directory SHARDS."""
    with open(experiment(base)) as f:
        text = f.read()
    text = text.replace('name = "%s"' % text.split('name = "')[1].split('"')[0], f'name = "{name}"', 1)
    text = text.replace("[dataset]\nrecords = 64", f'[dataset]\nkind = "shards"\npath = "{shards}"')
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    assert 'kind = "shards"' in text
    return text


def run_cli(*args, check=True, timeout=120):
    """Runs ldm-coord with args; returns the CompletedProcess (text)."""
    proc = subprocess.run([os.path.join(BIN, "ldm-coord"), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"ldm-coord {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class Coordinator:
    """A real `ldm-coord serve` in a temporary state directory. `env`: variables added to its
    environment (LDM_FAULT: the faults its workers inject)."""

    def __init__(self, state=None, env=None, args=(), prefix=()):
        self.env = dict(os.environ, **(env or {}))
        self.args = list(args)  # more `ldm-coord serve` options
        self.prefix = list(prefix)  # runs serve through this (e.g. ip netns exec NS), which must exec it
        self.owns_state = state is None
        self.state = state or tempfile.mkdtemp(prefix="ldm-e2e-")
        self.proc = None
        self.info = None

    def start(self, timeout=30):
        with open(os.path.join(self.state, "serve.log"), "a") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, os.path.join(BIN, "ldm-coord"), "serve", "--state", self.state, "--http-port", "0",
                 "--zmq-port", "0", *self.args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        info_path = os.path.join(self.state, "coord.json")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("ldm-coord serve exited early:\n" + self.log())
            if os.path.exists(info_path):
                try:
                    with open(info_path) as f:
                        self.info = json.load(f)
                    if self.info.get("pid") == self.proc.pid:
                        return self
                except ValueError:
                    pass
            time.sleep(0.1)
        raise AssertionError("ldm-coord serve did not write coord.json:\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(self.state, "serve.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        if self.owns_state and not os.environ.get("LDM_KEEP_STATE"):
            shutil.rmtree(self.state, ignore_errors=True)

    def cli(self, *args, check=True, timeout=120):
        return run_cli(*args, "--state", self.state, check=check, timeout=timeout)

    def get(self, path):
        request = urllib.request.Request(self.info["http"] + path)
        client = os.path.join(self.state, "auth", "client.json")
        if os.path.exists(client):  # a coordinator listening off loopback wants its bearer token
            with open(client) as f:
                request.add_header("Authorization", "Bearer " + json.load(f)["token"])
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def experiment(self, name):
        return self.get(f"/api/v1/experiments/{name}")

    def wait_terminal(self, name, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.experiment(name)
            if e["experiment"]["state"] in ("done", "failed", "cancelled", "diverged"):
                return e
            if self.proc.poll() is not None:
                raise AssertionError("coordinator died while waiting:\n" + self.log())
            time.sleep(0.5)
        raise AssertionError(f"experiment {name} did not finish in {timeout} s:\n" + self.log())
