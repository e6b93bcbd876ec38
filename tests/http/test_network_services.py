"""network-node.md, Services / Docker Services / Standalone Services: shapes,
status codes, the {"error": ...} body, path confinement to the data directory,
git URL validation, docker endpoints without a daemon (500)."""
import hashlib
import os
import stat
import subprocess
import unittest

from lucidtest import ServerTestCase, db_rows

SERVICE_KEYS = {"id", "name", "description", "service_type", "type", "status", "endpoint", "pricing_amount",
                "pricing_type", "pricing_interval", "pricing_unit", "capabilities", "created_at", "updated_at",
                "interfaces"}
INTERFACE_KEYS = {"id", "service_id", "interface_type", "path", "mount_function", "description"}


class NetworkAssertions:
    def assertError(self, r, status, contains=None):
        """The document's error: {"error": "..."} with this status."""
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertIn("error", body, r)
        if status != 401:  # the surface's 401 may add a "detail" (network_node_common.hpp)
            self.assertEqual(set(body), {"error"}, r)
        self.assertIsInstance(body["error"], str)
        if contains:
            self.assertIn(contains.lower(), body["error"].lower(), r)
        return body["error"]


def data_dir(server):
    d = os.path.join(server.dir, "data")
    os.makedirs(d, exist_ok=True)
    return d


def write_script(server, rel, text, mode=0o755):
    """Writes an executable into the server's data directory; returns its relative path."""
    path = os.path.join(data_dir(server), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return rel


def standalone(server, token, name, rel, **extra):
    body = {"service_name": name, "executable_path": rel}
    body.update(extra)
    r = server.request("POST", "/api/services/standalone/from-local", body, token=token)
    assert r.status == 201, r
    return r.json()["service"]["id"]


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
                   + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class TestGenericServices(NetworkAssertions, ServerTestCase):
    def req(self, method, path, body=None, token=None, **kw):
        return self.server.request(method, path, body, token=token or self.admin, **kw)

    def create(self, **body):
        b = {"type": "docker", "name": "svc"}
        b.update(body)
        r = self.req("POST", "/api/services", b)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def test_auth(self):
        self.assertError(self.server.request("GET", "/api/services"), 401)
        self.assertError(self.server.request("GET", "/api/services", token="not.a.jwt"), 401)
        self.assertError(self.server.request("GET", "/api/services", token=self.server.token("user")), 403)
        user = self.server.token("viewer")
        self.assertEqual(self.server.request("GET", "/api/services", token=user).status, 200)
        self.assertError(self.server.request("POST", "/api/services", {"type": "docker", "name": "x"}, token=user), 403)

    def test_create_get_update_delete(self):
        body = self.create(type="storage", name="data-1", description="d", capabilities={"k": 1})
        self.assertEqual(body["message"], "Service added successfully")
        s = body["service"]
        self.assertTrue(SERVICE_KEYS <= set(s), s)
        self.assertEqual((s["type"], s["service_type"], s["status"]), ("storage", "DATA", "ACTIVE"))
        self.assertEqual(s["capabilities"], {"k": 1})
        r = self.req("GET", "/api/services/%d" % s["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["service"]["name"], "data-1")
        r = self.req("GET", "/api/services")
        self.assertEqual(r.status, 200)
        listed = r.json()
        self.assertEqual(listed["total"], len(listed["services"]))
        self.assertIn(s["id"], [x["id"] for x in listed["services"]])
        r = self.req("PUT", "/api/services/%d" % s["id"], {"name": "renamed", "status": "INACTIVE"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["message"], "Service updated successfully")
        self.assertEqual((r.json()["service"]["name"], r.json()["service"]["status"]), ("renamed", "INACTIVE"))
        r = self.req("DELETE", "/api/services/%d" % s["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertError(self.req("GET", "/api/services/%d" % s["id"]), 404, "not found")
        self.assertError(self.req("DELETE", "/api/services/%d" % s["id"]), 404)

    def test_create_errors(self):
        self.assertError(self.req("POST", "/api/services", {"name": "x"}), 400, "type")
        self.assertError(self.req("POST", "/api/services", {"type": "docker"}), 400, "name")
        self.assertError(self.req("POST", "/api/services", {"type": "ftp", "name": "x"}), 400, "type")
        self.assertError(self.req("POST", "/api/services", {"type": "docker", "name": 5}), 400)
        self.assertError(self.req("POST", "/api/services", {"type": "docker", "name": "x", "capabilities": [1]}), 400)
        self.assertError(self.req("POST", "/api/services", {"type": "docker", "name": "x" * 300}), 400)
        self.assertError(self.req("POST", "/api/services", {"type": "docker", "name": "x", "status": "maybe"}), 400)
        self.assertError(self.server.request("POST", "/api/services", body="{not json", token=self.admin), 400)
        self.assertError(self.req("PATCH", "/api/services"), 405)

    def test_get_update_errors(self):
        self.assertError(self.req("GET", "/api/services/abc"), 400, "invalid service id")
        self.assertError(self.req("GET", "/api/services/0"), 400)
        self.assertError(self.req("GET", "/api/services/999999"), 404)
        self.assertError(self.req("PUT", "/api/services/999999", {"name": "x"}), 404)
        sid = self.create()["service"]["id"]
        self.assertError(self.req("PUT", "/api/services/%d" % sid, {"name": ""}), 400)
        self.assertError(self.req("PUT", "/api/services/%d" % sid, {"status": "gone"}), 400)

    def test_status(self):
        sid = self.create()["service"]["id"]
        r = self.req("PUT", "/api/services/%d/status" % sid, {"status": "INACTIVE"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"message": "Service status updated successfully", "status": "INACTIVE"})
        self.assertEqual(self.req("GET", "/api/services/%d" % sid).json()["service"]["status"], "INACTIVE")
        self.assertError(self.req("PUT", "/api/services/%d/status" % sid, {"status": "PAUSED"}), 400)
        self.assertError(self.req("PUT", "/api/services/%d/status" % sid, {}), 400)
        self.assertError(self.req("PUT", "/api/services/999999/status", {"status": "ACTIVE"}), 404)
        self.assertError(self.req("PUT", "/api/services/x/status", {"status": "ACTIVE"}), 400)

    def test_interfaces(self):
        sid = self.create()["service"]["id"]
        r = self.req("GET", "/api/services/%d/interfaces" % sid)
        self.assertEqual(r.json(), {"interfaces": [], "total": 0})
        self.assertError(self.req("GET", "/api/services/999999/interfaces"), 404)
        self.assertError(self.req("GET", "/api/services/zz/interfaces"), 400)

    def test_passphrase(self):
        with open(os.path.join(data_dir(self.server), "blob.dat"), "wb") as f:
            f.write(b"x" * 5000)
        s = self.create(type="storage", name="with-file", file_path="blob.dat")["service"]
        r = self.req("GET", "/api/services/%d/passphrase" % s["id"])
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertRegex(body["passphrase"], r"^[0-9a-f]{64}$")
        d = body["data_details"]
        self.assertEqual(d["file_size"], 5000)
        self.assertEqual(d["file_hash"], hashlib.sha256(b"x" * 5000).hexdigest())
        self.assertEqual(d["service_id"], s["id"])
        self.assertEqual(self.req("GET", "/api/services/%d/passphrase" % s["id"]).json()["passphrase"],
                         body["passphrase"])
        # Stored sealed, never in clear.
        raw = db_rows(self.server.db, "SELECT passphrase_sealed FROM data_details WHERE service_id = ?", (s["id"],))[0][0]
        self.assertNotIn(body["passphrase"].encode(), raw)
        other = self.create()["service"]["id"]
        self.assertError(self.req("GET", "/api/services/%d/passphrase" % other), 400, "not a data service")
        bare = self.create(type="storage", name="no-file")["service"]["id"]
        self.assertError(self.req("GET", "/api/services/%d/passphrase" % bare), 404)
        self.assertError(self.req("GET", "/api/services/999999/passphrase"), 404)
        before = self.req("GET", "/api/services").json()["total"]
        self.assertError(self.req("POST", "/api/services", {"type": "storage", "name": "x", "file_path": "/etc/passwd"}),
                         400, "data directory")
        self.assertEqual(self.req("GET", "/api/services").json()["total"], before)  # nothing left behind
        self.assertError(self.req("GET", "/api/services/%d/passphrase" % s["id"], token=self.server.token("user")), 403)


class TestStandalone(NetworkAssertions, ServerTestCase):
    def req(self, method, path, body=None, token=None):
        return self.server.request(method, path, body, token=token or self.admin)

    def test_from_local_and_details(self):
        rel = write_script(self.server, "bin/echo.sh", "#!/bin/sh\necho hi\n")
        r = self.req("POST", "/api/services/standalone/from-local", {
            "service_name": "echo", "executable_path": rel, "arguments": ["-u", "x"],
            "environment_variables": {"A_B": "1"}, "timeout_seconds": 60, "description": "d",
            "capabilities": {"platform": "linux"}})
        self.assertEqual(r.status, 201, r)
        body = r.json()
        self.assertTrue(body["success"])
        self.assertEqual((body["service"]["service_type"], body["service"]["status"]), ("STANDALONE", "ACTIVE"))
        self.assertEqual([i["interface_type"] for i in body["suggested_interfaces"]], ["STDIN", "STDOUT"])
        sid = body["service"]["id"]
        r = self.req("GET", "/api/services/standalone/%d/details" % sid)
        self.assertEqual(r.status, 200, r)
        d = r.json()["details"]
        real = os.path.realpath(os.path.join(data_dir(self.server), rel))
        self.assertEqual(d["executable_path"], real)
        self.assertEqual(d["working_directory"], os.path.dirname(real))
        self.assertEqual(d["arguments"], ["-u", "x"])
        self.assertEqual(d["environment_variables"], {"A_B": "1"})
        self.assertEqual((d["timeout_seconds"], d["source"], d["run_as_user"]), (60, "local", ""))
        self.assertTrue(INTERFACE_KEYS <= set(r.json()["service"]["interfaces"][0]))
        types = [i["interface_type"] for i in self.req("GET", "/api/services/%d/interfaces" % sid).json()["interfaces"]]
        self.assertEqual(types, ["STDIN", "STDOUT", "STDERR"])
        # absolute path inside the data directory is fine too
        r = self.req("POST", "/api/services/standalone/from-local", {"service_name": "abs", "executable_path": real})
        self.assertEqual(r.status, 201, r)

    def test_path_confinement(self):
        write_script(self.server, "bin/ok.sh", "#!/bin/sh\n")
        write_script(self.server, "bin/plain.txt", "text", mode=0o644)
        link = os.path.join(data_dir(self.server), "escape")
        if not os.path.islink(link):
            os.symlink("/bin", link)
        cases = [
            ("/bin/cat", "data directory"),
            ("../lucid.db", "'..'"),
            ("bin/../bin/ok.sh", "'..'"),
            ("escape/cat", "data directory"),
            ("bin/missing.sh", "does not exist"),
            ("bin/plain.txt", "not an executable"),
            ("bin", "not an executable"),
        ]
        for path, msg in cases:
            with self.subTest(path=path):
                r = self.req("POST", "/api/services/standalone/from-local", {"service_name": "x", "executable_path": path})
                self.assertError(r, 400, msg)
        for wd in ["/tmp", "escape", "../"]:
            with self.subTest(wd=wd):
                r = self.req("POST", "/api/services/standalone/from-local",
                             {"service_name": "x", "executable_path": "bin/ok.sh", "working_directory": wd})
                self.assertError(r, 400)

    def test_from_local_errors(self):
        write_script(self.server, "bin/ok.sh", "#!/bin/sh\n")
        base = {"service_name": "x", "executable_path": "bin/ok.sh"}
        bad = [
            ({"executable_path": "bin/ok.sh"}, "service_name"),
            ({"service_name": "x"}, "executable_path"),
            (dict(base, timeout_seconds=0), "timeout_seconds"),
            (dict(base, timeout_seconds=86401), "timeout_seconds"),
            (dict(base, arguments="a b"), "arguments"),
            (dict(base, arguments=[1]), "arguments"),
            (dict(base, arguments=["a"] * 300), "arguments"),
            (dict(base, environment_variables={"1BAD": "x"}), "environment_variables"),
            (dict(base, environment_variables={"A": 1}), "environment_variables"),
            (dict(base, run_as_user="root-or-anyone-else"), "run_as_user"),
            (dict(base, custom_interfaces=[{"interface_type": "SOCKET"}]), "interface_type"),
        ]
        for body, msg in bad:
            with self.subTest(body=body):
                self.assertError(self.req("POST", "/api/services/standalone/from-local", body), 400, msg)
        self.assertError(self.req("POST", "/api/services/standalone/from-local", base, token=self.server.token("node_operator")), 403)
        self.assertError(self.req("GET", "/api/services/standalone/from-local"), 405)

    def test_details_finalize_delete(self):
        sid = self.req("POST", "/api/services", {"type": "standalone", "name": "upl"}).json()["service"]["id"]
        self.assertError(self.req("GET", "/api/services/standalone/%d/details" % sid), 400, "standalone")
        self.assertError(self.req("POST", "/api/services/standalone/%d/finalize" % sid, {"executable_path": "run.sh"}),
                         400, "no uploaded files")
        write_script(self.server, "uploads/%d/app/run.sh" % sid, "#!/bin/sh\ncat\n")
        self.assertError(self.req("POST", "/api/services/standalone/%d/finalize" % sid, {}), 400, "executable_path")
        self.assertError(self.req("POST", "/api/services/standalone/%d/finalize" % sid,
                                  {"executable_path": "../../bin/x"}), 400)
        r = self.req("POST", "/api/services/standalone/%d/finalize" % sid,
                     {"executable_path": "app/run.sh", "working_directory": "app", "arguments": ["--mode", "p"]})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["success"])
        d = self.req("GET", "/api/services/standalone/%d/details" % sid).json()["details"]
        self.assertEqual((d["source"], d["arguments"]), ("upload", ["--mode", "p"]))
        other = self.req("POST", "/api/services", {"type": "docker", "name": "d"}).json()["service"]["id"]
        self.assertError(self.req("POST", "/api/services/standalone/%d/finalize" % other, {"executable_path": "a"}), 400)
        self.assertError(self.req("DELETE", "/api/services/standalone/%d" % other), 400, "standalone")
        self.assertError(self.req("POST", "/api/services/standalone/999999/finalize", {"executable_path": "a"}), 404)
        self.assertError(self.req("GET", "/api/services/standalone/999999/details"), 404)
        self.assertError(self.req("GET", "/api/services/standalone/q/details"), 400)
        self.assertEqual(self.req("DELETE", "/api/services/standalone/%d" % sid).status, 204)
        self.assertError(self.req("DELETE", "/api/services/standalone/%d" % sid), 404)
        self.assertTrue(os.path.exists(os.path.join(data_dir(self.server), "uploads/%d/app/run.sh" % sid)))

    def make_repo(self, name):
        repo = os.path.join(data_dir(self.server), "repos", name)
        os.makedirs(repo, exist_ok=True)
        with open(os.path.join(repo, "tool.sh"), "w") as f:
            f.write("#!/bin/sh\necho from-git\n")
        os.chmod(os.path.join(repo, "tool.sh"), 0o755)
        git("init", "-q", cwd=repo)
        git("add", ".", cwd=repo)
        git("commit", "-q", "-m", "init", cwd=repo)
        return repo

    def test_from_git(self):
        repo = self.make_repo("r1")
        r = self.req("POST", "/api/services/standalone/from-git", {
            "service_name": "git-tool", "repo_url": "file://" + repo, "branch": "main",
            "executable_path": "build/out.sh", "build_command": "mkdir -p build && cp tool.sh build/out.sh"})
        self.assertEqual(r.status, 201, r)
        sid = r.json()["service"]["id"]
        d = self.req("GET", "/api/services/standalone/%d/details" % sid).json()["details"]
        self.assertEqual(d["source"], "git")
        self.assertTrue(d["executable_path"].startswith(os.path.realpath(data_dir(self.server)) + "/services/git-"))
        self.assertTrue(os.access(d["executable_path"], os.X_OK))

    def test_from_git_errors(self):
        repo = self.make_repo("r2")
        base = {"service_name": "g", "executable_path": "tool.sh"}
        for url, msg in [("-oProxyCommand=touch /tmp/x", "'-'"), ("ext::sh -c touch% /tmp/pwned", "repo_url"),
                         ("https://-oProxy/x", "'-'"), ("file:///etc", "data directory"), ("ftp://h/x", "repo_url"),
                         ("", "repo_url"), ("https://a b/c", "spaces")]:
            with self.subTest(url=url):
                self.assertError(self.req("POST", "/api/services/standalone/from-git", dict(base, repo_url=url)), 400, msg)
        self.assertError(self.req("POST", "/api/services/standalone/from-git",
                                  dict(base, repo_url="file://" + repo, branch="--upload-pack=x")), 400, "branch")
        self.assertError(self.req("POST", "/api/services/standalone/from-git", {"service_name": "g", "repo_url": "file://" + repo}),
                         400, "executable_path")
        services_dir = os.path.join(data_dir(self.server), "services")
        before = set(os.listdir(services_dir)) if os.path.isdir(services_dir) else set()
        # Issue 12 item 7: a failed clone or build is the request's (422) or the
        # remote's (502) failure, never a 500, and names no server path.
        server_paths = {os.path.realpath(self.server.dir), self.server.dir, os.path.realpath(data_dir(self.server))}
        not_a_repo = os.path.join(data_dir(self.server), "repos", "plain")
        os.makedirs(not_a_repo, exist_ok=True)
        post = lambda **kw: self.req("POST", "/api/services/standalone/from-git", dict(base, **kw))
        for kw, status, msg in [
                # nothing listens on port 1: the remote failed
                (dict(repo_url="http://127.0.0.1:1/none.git"), 502, "connect"),
                # a local path that does not exist / is no repository
                (dict(repo_url="file://" + os.path.join(data_dir(self.server), "repos", "missing")), 422,
                 "does not name a git repository"),
                (dict(repo_url="file://" + not_a_repo), 422, "does not name a git repository"),
                # a branch the repository lacks
                (dict(repo_url="file://" + repo, branch="no-such-branch"), 422, "branch 'no-such-branch'"),
                # the build fails (and prints where it ran)
                (dict(repo_url="file://" + repo, build_command="exit 7"), 422, "build command failed (exit 7)"),
                (dict(repo_url="file://" + repo, build_command="pwd; ls -d \"$PWD\"/..; exit 3"), 422, "exit 3")]:
            with self.subTest(**kw):
                err = self.assertError(post(**kw), status, msg)
                for p in server_paths:
                    self.assertNotIn(p, err)
        # executable missing after the build: 400, clone removed
        self.assertError(self.req("POST", "/api/services/standalone/from-git",
                                  dict(base, repo_url="file://" + repo, executable_path="nope")), 400)
        after = set(os.listdir(services_dir)) if os.path.isdir(services_dir) else set()
        self.assertEqual(after, before)

    def test_validate_git(self):
        repo = self.make_repo("r3")
        r = self.req("POST", "/api/services/docker/validate-git", {"repo_url": "file://" + repo})
        self.assertEqual((r.status, r.json()), (200, {"valid": True}))
        r = self.req("POST", "/api/services/docker/validate-git", {"repo_url": "http://127.0.0.1:1/x.git"})
        self.assertEqual(r.status, 200)
        self.assertFalse(r.json()["valid"])
        self.assertIn("git ls-remote", r.json()["error"])
        self.assertIn("connect", r.json()["error"])
        # A local path that is no repository: git's message would name it; ours does not.
        r = self.req("POST", "/api/services/docker/validate-git", {"repo_url": "file://" + data_dir(self.server)})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"valid": False, "error": "git ls-remote failed: repo_url does not name a git repository"})
        r = self.req("POST", "/api/services/docker/validate-git", {"repo_url": "--upload-pack=touch /tmp/x"})
        self.assertEqual(r.status, 200)
        self.assertFalse(r.json()["valid"])
        self.assertError(self.req("POST", "/api/services/docker/validate-git", {}), 400, "repo_url")


class TestDockerWithoutDaemon(NetworkAssertions, ServerTestCase):
    """No daemon answers on the configured socket: the document's 500
    "Failed to create service" (tests/http/test_docker_services.py has a real one)."""
    server_args = ["--docker-socket", "/nonexistent/lucidtest/docker.sock"]

    def req(self, method, path, body=None):
        return self.server.request(method, path, body, token=self.admin)

    def test_creation_fails(self):
        self.assertError(self.req("POST", "/api/services/docker/from-registry",
                                  {"service_name": "n", "image_name": "nginx"}), 500,
                         "Failed to create service: Docker daemon not available")
        os.makedirs(os.path.join(data_dir(self.server), "ctx"), exist_ok=True)
        with open(os.path.join(data_dir(self.server), "ctx", "Dockerfile"), "w") as f:
            f.write("FROM scratch\n")
        self.assertError(self.req("POST", "/api/services/docker/from-local",
                                  {"service_name": "n", "local_path": "ctx"}), 500, "Docker daemon not available")
        self.assertError(self.req("POST", "/api/services/docker/from-registry", {"service_name": "n"}), 400, "image_name")
        self.assertError(self.req("POST", "/api/services/docker/from-registry",
                                  {"service_name": "n", "image_name": "Bad/Name"}), 400, "image_name")
        self.assertError(self.req("POST", "/api/services/docker/from-git", {"repo_url": "x"}), 400, "service_name")
        self.assertError(self.req("POST", "/api/services/docker/from-local", {"service_name": "n"}), 400, "local_path")
        self.assertEqual(self.req("GET", "/api/services").json()["total"], 0)
        caps = self.req("GET", "/api/node/capabilities").json()
        self.assertEqual((caps["docker_available"], caps["docker_version"], caps["system"]["has_docker"]), (False, "", False))

    def test_from_git_reports_the_missing_daemon_on_the_websocket(self):
        from lucidtest import WebSocket
        repo = os.path.join(data_dir(self.server), "gitrepo")
        os.makedirs(repo, exist_ok=True)
        with open(os.path.join(repo, "Dockerfile"), "w") as f:
            f.write("FROM scratch\n")
        git("init", "-q", cwd=repo)
        git("add", ".", cwd=repo)
        git("commit", "-q", "-m", "x", cwd=repo)
        with WebSocket(self.server, token=self.admin, timeout=60) as ws:
            r = self.req("POST", "/api/services/docker/from-git", {"service_name": "g", "repo_url": "file://" + repo})
            self.assertEqual(r.status, 202, r)
            m = ws.recv_type("DOCKER_OPERATION_ERROR", limit=100)
            self.assertEqual(m["payload"]["operation_id"], r.json()["operation_id"])
            self.assertEqual(m["payload"]["error"], "Failed to create service: Docker daemon not available")
        self.assertNotIn("g", [s["name"] for s in self.req("GET", "/api/services").json()["services"]])
        self.assertEqual([d for d in os.listdir(os.path.join(data_dir(self.server), "services"))
                          if d.startswith("docker-git-")], [])  # the clone is gone

    def test_details_interfaces_config(self):
        sid = self.req("POST", "/api/services", {"type": "docker", "name": "d",
                                                 "capabilities": {"image_name": "nginx", "image_tag": "alpine"}}).json()["service"]["id"]
        r = self.req("GET", "/api/services/docker/%d/details" % sid)
        self.assertEqual(r.status, 200, r)
        d = r.json()["details"]
        self.assertEqual((d["image_name"], d["image_tag"], d["source"], d["service_id"]), ("nginx", "alpine", "registry", sid))
        listed = [s for s in self.req("GET", "/api/services").json()["services"] if s["id"] == sid][0]
        self.assertEqual(listed["docker_details"]["image_name"], "nginx")
        r = self.req("PUT", "/api/services/docker/%d/interfaces" % sid, {"interfaces": [
            {"interface_type": "STDIN", "path": "", "description": "in"},
            {"interface_type": "MOUNT", "path": "/data", "mount_function": "INPUT", "description": "data"}]})
        self.assertEqual((r.status, r.json()), (200, {"success": True, "message": "Interfaces updated successfully"}))
        got = self.req("GET", "/api/services/%d/interfaces" % sid).json()
        self.assertEqual([(i["interface_type"], i["path"], i["mount_function"]) for i in got["interfaces"]],
                         [("STDIN", "", ""), ("MOUNT", "/data", "INPUT")])
        r = self.req("PUT", "/api/services/docker/%d/interfaces" % sid, {"interfaces": [{"interface_type": "STDOUT"}]})
        self.assertEqual(self.req("GET", "/api/services/%d/interfaces" % sid).json()["total"], 1)  # replaced
        self.assertError(self.req("PUT", "/api/services/docker/%d/interfaces" % sid, {}), 400)
        self.assertError(self.req("PUT", "/api/services/docker/%d/interfaces" % sid, {"interfaces": [{"interface_type": "X"}]}), 400)
        r = self.req("PUT", "/api/services/docker/%d/config" % sid, {"entrypoint": "python 'app x.py'", "cmd": "[\"--v\", \"1\"]"})
        self.assertEqual((r.status, r.json()["success"]), (200, True), r)
        d = self.req("GET", "/api/services/docker/%d/details" % sid).json()["details"]
        self.assertEqual((d["entrypoint"], d["cmd"]), ('["python","app x.py"]', '["--v","1"]'))
        self.req("PUT", "/api/services/docker/%d/config" % sid, {"entrypoint": ""})
        d = self.req("GET", "/api/services/docker/%d/details" % sid).json()["details"]
        self.assertEqual((d["entrypoint"], d["cmd"]), ("", '["--v","1"]'))
        self.assertError(self.req("PUT", "/api/services/docker/%d/config" % sid, {"cmd": "a 'unterminated"}), 400, "quote")
        self.assertError(self.req("PUT", "/api/services/docker/%d/config" % sid, {"cmd": "[1, 2]"}), 400)
        self.assertError(self.req("GET", "/api/services/docker/%d/interfaces/suggested" % sid), 500,
                         "Failed to detect interfaces: Docker daemon not available")
        other = self.req("POST", "/api/services", {"type": "storage", "name": "s"}).json()["service"]["id"]
        for method, path, body in [("GET", "/api/services/docker/%d/details", None),
                                   ("GET", "/api/services/docker/%d/interfaces/suggested", None),
                                   ("PUT", "/api/services/docker/%d/interfaces", {"interfaces": []}),
                                   ("PUT", "/api/services/docker/%d/config", {"cmd": "x"})]:
            with self.subTest(path=path):
                self.assertError(self.req(method, path % other, body), 404)
                self.assertError(self.req(method, path.replace("%d", "nan"), body), 400)


if __name__ == "__main__":
    unittest.main()
