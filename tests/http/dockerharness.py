"""A private Docker daemon (and registry) for the Docker tests.

Debian's docker.io runs here as root with its own data, exec root and unix
socket under a short temporary directory (unix socket paths are limited to
108 bytes), no iptables, no bridge, the vfs storage driver. Nothing can be
pulled from the internet, so the tests make their own images: a base image
imported from Debian's busybox-static (a tar of /bin/busybox and its applet
links, sent to the Engine API's import), Dockerfiles FROM it, and a local
Debian docker-registry on 127.0.0.1 for pulls (the base image is pushed
there first, optionally behind htpasswd).

A test module that cannot have a daemon calls `require_dockerd()` at import:
it prints why and exits 77, which ctest reports as skipped
(SKIP_RETURN_CODE 77 in tests/CMakeLists.txt) - never passed."""

import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

from lucidtest import skip_module

BUSYBOX = "/usr/bin/busybox"
APPLETS = ["sh", "cat", "echo", "tr", "sleep", "wc", "head", "ls", "id", "env", "true", "false", "yes", "rev"]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dockerd:
    """dockerd under a temporary directory; `socket` is its unix socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dk", dir="/tmp")
        self.socket = os.path.join(self.dir, "d.sock")
        self.proc = None
        self.log_path = os.path.join(self.dir, "log")

    def why_not(self):
        """The reason this machine cannot run the daemon, or None."""
        if os.geteuid() != 0:
            return "dockerd needs root"
        if not shutil.which("dockerd"):
            return "dockerd is not installed (Debian package docker.io; scripts/setup installs it)"
        if not os.path.exists(BUSYBOX):
            return "busybox is not installed (Debian package busybox-static)"
        return None

    def start(self, timeout=90):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver=vfs",
             "--data-root", os.path.join(self.dir, "data"), "--exec-root", os.path.join(self.dir, "x"),
             "-H", "unix://" + self.socket, "--pidfile", os.path.join(self.dir, "pid")],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited: " + self.read_log()[-2000:])
            try:
                status, _ = self.api("GET", "/version", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("dockerd did not answer: " + self.read_log()[-2000:])

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        # vfs layers are plain directories; a container's leftover mounts
        # (none when every container was removed) would make rmtree fail.
        subprocess.run(["umount", "-R", os.path.join(self.dir, "x")], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, method, path, body=None, headers=None, timeout=120):
        c = UnixHTTPConnection(self.socket, timeout=timeout)
        try:
            c.request(method, "/v1.41" + path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def import_base(self, repo="lucidbase", tag="1"):
        """Imports the busybox base image as repo:tag."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            d = tarfile.TarInfo("bin")
            d.type = tarfile.DIRTYPE
            d.mode = 0o755
            t.addfile(d)
            for name in ("tmp", "etc"):
                d = tarfile.TarInfo(name)
                d.type = tarfile.DIRTYPE
                d.mode = 0o1777 if name == "tmp" else 0o755
                t.addfile(d)
            t.add(BUSYBOX, "bin/busybox")
            for a in APPLETS:
                link = tarfile.TarInfo("bin/" + a)
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                t.addfile(link)
        status, body = self.api("POST", "/images/create?fromSrc=-&repo=%s&tag=%s" % (repo, tag), body=buf.getvalue(),
                                headers={"Content-Type": "application/x-tar"})
        if status != 200:
            raise RuntimeError("import failed: %d %r" % (status, body))
        return "%s:%s" % (repo, tag)

    def has_image(self, ref):
        return self.api("GET", "/images/%s/json" % ref)[0] == 200

    def containers(self):
        status, body = self.api("GET", "/containers/json?all=1")
        return json.loads(body)

    def push(self, ref, registry, repo, tag, user="", password=""):
        """Tags ref as registry/repo:tag and pushes it there."""
        status, body = self.api("POST", "/images/%s/tag?repo=%s/%s&tag=%s" % (ref, registry, repo, tag))
        if status != 201:
            raise RuntimeError("tag failed: %d %r" % (status, body))
        auth = base64.urlsafe_b64encode(json.dumps({"username": user, "password": password,
                                                    "serveraddress": registry}).encode()).decode()
        status, body = self.api("POST", "/images/%s/%s/push?tag=%s" % (registry, repo, tag),
                                headers={"X-Registry-Auth": auth}, timeout=300)
        if status != 200 or b'"error"' in body:
            raise RuntimeError("push failed: %d %r" % (status, body[-500:]))
        self.api("DELETE", "/images/%s/%s:%s" % (registry, repo, tag))


class Registry:
    """Debian's docker-registry on 127.0.0.1 (a free port), optionally with
    htpasswd users {user: password}."""

    def __init__(self, users=None):
        self.dir = tempfile.mkdtemp(prefix="rg", dir="/tmp")
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.users = users or {}
        self.proc = None

    def start(self, timeout=30):
        auth = ""
        if self.users:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import crypt
            lines = ["%s:%s" % (u, crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH))) for u, p in self.users.items()]
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.write("\n".join(lines) + "\n")
            auth = "auth:\n  htpasswd:\n    realm: lucidtest\n    path: %s\n" % os.path.join(self.dir, "htpasswd")
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                    "  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s" % (os.path.join(self.dir, "data"), self.address, auth))
        self.log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", config], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v2/")
                if c.getresponse().status in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("docker-registry did not answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def require_dockerd():
    """A started Dockerd with the base image imported, stopped at exit; or
    the process ends as skipped, saying why."""
    d = Dockerd()
    reason = d.why_not()
    if reason:
        shutil.rmtree(d.dir, ignore_errors=True)
        skip_module(reason)
    try:
        d.start()
        d.import_base()
    except Exception as e:  # noqa: BLE001 - any failure to start is a reason to skip, reported
        log = d.read_log()[-1500:]
        d.stop()
        skip_module("dockerd could not start here: %s\n%s" % (e, log))
    import atexit
    atexit.register(d.stop)
    return d
