"""network-node.md, Docker Services against a real dockerd (dockerharness.py;
skipped, exit 77, where it cannot start): capabilities, from-registry (a
local docker-registry, with and without htpasswd), from-local (confinement,
Dockerfile, compose, build failure), from-git (WebSocket events),
details, interfaces/suggested, delete removing the image, and workflow jobs
of Docker services run as containers (STDIN/STDOUT piping, timeout, network
off, limits, containers removed)."""
import json
import os
import time
import unittest

import dockerharness
from lucidtest import Server, ServerTestCase, WebSocket
from test_network_services import NetworkAssertions, data_dir, git, standalone, write_script
from test_network_workflows import WorkflowHelpers, job_output

DOCKERD = dockerharness.require_dockerd()
REGISTRY = dockerharness.Registry().start()
AUTH_REGISTRY = dockerharness.Registry(users={"alice": "s3cret"}).start()
DOCKERD.push("lucidbase:1", REGISTRY.address, "base", "1")
DOCKERD.push("lucidbase:1", AUTH_REGISTRY.address, "private", "1", "alice", "s3cret")


def tearDownModule():
    REGISTRY.stop()
    AUTH_REGISTRY.stop()


class DockerCase(NetworkAssertions, WorkflowHelpers, ServerTestCase):
    server_args = ["--docker-socket", DOCKERD.socket]

    def write(self, rel, text):
        path = os.path.join(data_dir(self.server), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def image_of(self, sid):
        d = self.req("GET", "/api/services/docker/%d/details" % sid).json()["details"]
        return "%s:%s" % (d["image_name"], d["image_tag"])

    def assertNoServices(self):
        self.assertEqual(self.req("GET", "/api/services").json()["total"], 0)


class TestDockerServices(DockerCase):
    def tearDown(self):
        for s in self.req("GET", "/api/services").json()["services"]:
            self.req("DELETE", "/api/services/%d" % s["id"])

    def test_capabilities(self):
        status, body = DOCKERD.api("GET", "/version")
        version = json.loads(body)["Version"]
        r = self.req("GET", "/api/node/capabilities")
        self.assertEqual(r.status, 200, r)
        c = r.json()
        self.assertEqual((c["docker_available"], c["docker_version"]), (True, version))
        self.assertEqual((c["system"]["has_docker"], c["system"]["docker_version"]), (True, version))

    def test_from_registry_and_delete(self):
        image = REGISTRY.address + "/base"
        r = self.req("POST", "/api/services/docker/from-registry",
                     {"service_name": "reg", "image_name": image, "image_tag": "1", "description": "d"})
        self.assertEqual(r.status, 201, r)
        body = r.json()
        self.assertEqual(set(body), {"success", "service", "suggested_interfaces"})
        s = body["service"]
        self.assertEqual((s["service_type"], s["status"], s["capabilities"]),
                         ("DOCKER", "ACTIVE", {"image_name": image, "image_tag": "1"}))
        self.assertEqual([i["interface_type"] for i in body["suggested_interfaces"]][:2], ["STDIN", "STDOUT"])
        self.assertEqual([i["interface_type"] for i in s["interfaces"]][:2], ["STDIN", "STDOUT"])
        d = self.req("GET", "/api/services/docker/%d/details" % s["id"]).json()["details"]
        self.assertEqual((d["image_name"], d["image_tag"], d["source"], d["compose_path"]), (image, "1", "registry", ""))
        self.assertTrue(DOCKERD.has_image(image + ":1"))
        r = self.req("DELETE", "/api/services/%d" % s["id"])
        self.assertEqual(r.status, 204, r)
        self.assertFalse(DOCKERD.has_image(image + ":1"))  # the document: deleting removes the image

    def test_from_registry_errors(self):
        for body, field in [({"service_name": "n", "image_name": "Upper/Case"}, "image_name"),
                            ({"service_name": "n", "image_name": "a b"}, "image_name"),
                            ({"service_name": "n", "image_name": "-x"}, "image_name"),
                            ({"service_name": "n", "image_name": "x", "image_tag": "bad tag"}, "image_tag"),
                            ({"service_name": "n", "image_name": "x", "image_tag": "x" * 129}, "image_tag"),
                            ({"service_name": "", "image_name": "x"}, "service_name"),
                            ({"service_name": "n", "image_name": "x",
                              "custom_interfaces": [{"interface_type": "NOPE"}]}, "interface_type")]:
            with self.subTest(body=body):
                self.assertError(self.req("POST", "/api/services/docker/from-registry", body), 400)
        # An image the registry does not have; a registry that wants credentials.
        self.assertError(self.req("POST", "/api/services/docker/from-registry",
                                  {"service_name": "n", "image_name": REGISTRY.address + "/absent", "image_tag": "1"}),
                         500, "Failed to create service: image pull failed")
        private = AUTH_REGISTRY.address + "/private"
        for creds in [{}, {"username": "alice", "password": "wrong"}]:
            with self.subTest(creds=creds):
                body = {"service_name": "p", "image_name": private, "image_tag": "1"}
                body.update(creds)
                self.assertError(self.req("POST", "/api/services/docker/from-registry", body), 500,
                                 "Failed to create service: image pull failed")
        self.assertNoServices()
        self.assertFalse(DOCKERD.has_image(private + ":1"))
        r = self.req("POST", "/api/services/docker/from-registry",
                     {"service_name": "p", "image_name": private, "image_tag": "1", "username": "alice",
                      "password": "s3cret"})
        self.assertEqual(r.status, 201, r)
        # Credentials are used for the pull only: nowhere in what is stored.
        self.assertNotIn("s3cret", json.dumps(self.req("GET", "/api/services").json()))

    def test_from_local_and_suggested(self):
        self.write("ctx/Dockerfile", "FROM lucidbase:1\nENV FOO=bar\nEXPOSE 8080/tcp\nVOLUME /data\n"
                                     "CMD [\"tr\", \"a-z\", \"A-Z\"]\n")
        self.write("ctx/sub/file.txt", "x")
        os.symlink("file.txt", os.path.join(data_dir(self.server), "ctx/sub/link"))
        r = self.req("POST", "/api/services/docker/from-local",
                     {"service_name": "Local Svc", "local_path": "ctx", "description": "built"})
        self.assertEqual(r.status, 201, r)
        body = r.json()
        sid = body["service"]["id"]
        sug = [(i["interface_type"], i.get("path", ""), i.get("mount_function", "")) for i in body["suggested_interfaces"]]
        self.assertEqual(sug, [("STDIN", "", ""), ("STDOUT", "", ""), ("ENV", "FOO", ""), ("ENV", "PORT", ""),
                               ("MOUNT", "/data", "INPUT")])
        r = self.req("GET", "/api/services/docker/%d/interfaces/suggested" % sid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["suggested_interfaces"], body["suggested_interfaces"])
        d = self.req("GET", "/api/services/docker/%d/details" % sid).json()["details"]
        self.assertEqual(d["source"], "local")
        self.assertTrue(d["image_name"].startswith("lucidnode/local-svc-"), d)
        self.assertTrue(DOCKERD.has_image(self.image_of(sid)))
        # Custom interfaces replace the suggested ones in the record.
        r = self.req("POST", "/api/services/docker/from-local",
                     {"service_name": "c", "local_path": os.path.join(data_dir(self.server), "ctx"),
                      "custom_interfaces": [{"interface_type": "STDIN", "description": "in"}]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual([i["interface_type"] for i in r.json()["service"]["interfaces"]], ["STDIN"])

    def test_from_local_errors(self):
        outside = os.path.join(self.server.dir, "outside")
        os.makedirs(outside, exist_ok=True)
        with open(os.path.join(outside, "Dockerfile"), "w") as f:
            f.write("FROM lucidbase:1\n")
        os.symlink(outside, os.path.join(data_dir(self.server), "escape"))
        for path in ["../outside", outside, "escape", "/etc", "nothing-here", "ctx/../../outside"]:
            with self.subTest(path=path):
                self.assertError(self.req("POST", "/api/services/docker/from-local",
                                          {"service_name": "n", "local_path": path}), 400, "local_path")
        self.write("nodf/readme", "no dockerfile")
        self.assertError(self.req("POST", "/api/services/docker/from-local", {"service_name": "n", "local_path": "nodf"}),
                         500, "no Dockerfile found")
        self.write("compose/Dockerfile", "FROM lucidbase:1\n")
        self.write("compose/docker-compose.yml", "services: {}\n")
        self.assertError(self.req("POST", "/api/services/docker/from-local", {"service_name": "n", "local_path": "compose"}),
                         500, "docker-compose projects are not supported")
        self.write("broken/Dockerfile", "FROM lucidbase:1\nRUN echo building; false\n")
        err = self.assertError(self.req("POST", "/api/services/docker/from-local",
                                        {"service_name": "n", "local_path": "broken"}), 500, "image build failed")
        self.assertNotIn(data_dir(self.server), err)
        self.write("noimage/Dockerfile", "FROM lucidbase:404\n")
        self.assertError(self.req("POST", "/api/services/docker/from-local",
                                  {"service_name": "n", "local_path": "noimage"}), 500, "image build failed")
        self.assertNoServices()
        status, body = DOCKERD.api("GET", "/images/json")
        names = [t for i in json.loads(body) for t in (i.get("RepoTags") or [])]
        self.assertEqual([n for n in names if n.startswith("lucidnode/")], [], names)

    def test_from_git_events(self):
        repo = os.path.join(data_dir(self.server), "repo")
        os.makedirs(repo)
        with open(os.path.join(repo, "Dockerfile"), "w") as f:
            f.write("FROM lucidbase:1\nENV FROM_GIT=1\n")
        git("init", "-q", cwd=repo)
        git("add", ".", cwd=repo)
        git("commit", "-q", "-m", "x", cwd=repo)
        with WebSocket(self.server, token=self.admin, timeout=120) as ws:
            r = self.req("POST", "/api/services/docker/from-git",
                         {"service_name": "g", "repo_url": "file://" + repo, "branch": "main"})
            self.assertEqual(r.status, 202, r)
            op = r.json()["operation_id"]
            self.assertTrue(op.startswith("docker-git-"), op)
            self.assertEqual(r.json()["message"], "Docker service creation started")
            seen = []
            while True:
                m = ws.recv()
                if not m["type"].startswith("DOCKER_OPERATION_"):
                    continue
                self.assertEqual(m["payload"]["operation_id"], op)
                seen.append(m["type"])
                if m["type"] in ("DOCKER_OPERATION_COMPLETE", "DOCKER_OPERATION_ERROR"):
                    break
            self.assertEqual((seen[0], seen[-1]), ("DOCKER_OPERATION_START", "DOCKER_OPERATION_COMPLETE"), m)
            self.assertIn("DOCKER_OPERATION_PROGRESS", seen)
            sid = m["payload"]["service_id"]
        d = self.req("GET", "/api/services/docker/%d/details" % sid).json()["details"]
        self.assertEqual(d["source"], "git")
        self.assertIn(("ENV", "FROM_GIT"), [(i["interface_type"], i["path"]) for i in
                                            self.req("GET", "/api/services/%d/interfaces" % sid).json()["interfaces"]])
        # A repository whose build fails, one that does not exist: the error event.
        with open(os.path.join(repo, "Dockerfile"), "w") as f:
            f.write("FROM lucidbase:1\nRUN false\n")
        git("commit", "-q", "-am", "broken", cwd=repo)
        for url, want in [("file://" + repo, "image build failed"),
                          ("file://" + os.path.join(data_dir(self.server), "nope"), None)]:
            with self.subTest(url=url), WebSocket(self.server, token=self.admin, timeout=120) as ws:
                r = self.req("POST", "/api/services/docker/from-git", {"service_name": "bad", "repo_url": url})
                if want is None:  # refused before anything runs (the standalone from-git's 422)
                    self.assertEqual(r.status, 422, r)
                    continue
                self.assertEqual(r.status, 202, r)
                m = ws.recv_type("DOCKER_OPERATION_ERROR", limit=200)
                self.assertIn(want, m["payload"]["error"])
        self.assertEqual(self.req("POST", "/api/services/docker/from-git",
                                  {"service_name": "x", "repo_url": "--upload-pack=x"}).status, 400)
        self.assertEqual([s["id"] for s in self.req("GET", "/api/services").json()["services"]], [sid])

    def test_suggested_errors(self):
        sid = self.req("POST", "/api/services", {"type": "docker", "name": "d",
                                                 "capabilities": {"image_name": "never-pulled", "image_tag": "1"}}).json()["service"]["id"]
        self.assertError(self.req("GET", "/api/services/docker/%d/interfaces/suggested" % sid), 500,
                         "Failed to detect interfaces")
        self.assertError(self.req("GET", "/api/services/docker/999999/interfaces/suggested"), 404)
        self.assertError(self.req("GET", "/api/services/docker/x/interfaces/suggested"), 400)


class TestContainerJobs(DockerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.server.request("POST", "/api/services/docker/from-registry",
                               {"service_name": "box", "image_name": REGISTRY.address + "/base", "image_tag": "1"},
                               token=cls.admin)
        assert r.status == 201, r
        cls.box = r.json()["service"]["id"]

    def box_with(self, cmd):
        """The box service with this command (its entrypoint/cmd config)."""
        r = self.req("PUT", "/api/services/docker/%d/config" % self.box, {"cmd": cmd})
        self.assertEqual(r.status, 200, r)
        return self.box

    def assertNoContainers(self):
        deadline = time.time() + 10
        while DOCKERD.containers() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(DOCKERD.containers(), [])

    def test_standalone_pipes_into_container(self):
        src = standalone(self.server, self.admin, "src", write_script(self.server, "bin/src", "#!/bin/sh\necho hello docker\n"))
        wid = self.workflow()
        a = self.node(wid, src)
        b = self.node(wid, self.box_with("tr a-z A-Z"))
        self.connect(wid, a, b)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        jobs = self.jobs(st["id"])
        self.assertEqual((jobs[b]["status"], jobs[b]["exit_code"]), ("COMPLETED", 0))
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"]), "HELLO DOCKER\n")
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"], "STDIN"), "hello docker\n")
        self.assertNoContainers()

    def test_exit_status_stderr_and_env(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("sh -c 'echo $LUCID_JOB_ID; echo oops >&2; exit 3'"))
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED")
        job = self.jobs(st["id"])[n]
        self.assertEqual((job["exit_code"], job["error"]), (3, "exited with status 3"))
        self.assertEqual(job_output(self.server, self.admin, job["id"]), "%d\n" % job["id"])
        self.assertEqual(job_output(self.server, self.admin, job["id"], "STDERR"), "oops\n")
        self.assertNoContainers()

    def test_timeout_kills_and_removes(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("sleep 60"), config={"timeout": 2})
        t0 = time.time()
        st = self.run_wf(wid)
        self.assertLess(time.time() - t0, 30)
        self.assertEqual(st["status"], "FAILED")
        self.assertEqual(self.jobs(st["id"])[n]["error"], "timed out after 2 s")
        self.assertNoContainers()

    def test_network_off_and_limits(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("ls /sys/class/net"))
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        self.assertEqual(job_output(self.server, self.admin, self.jobs(st["id"])[n]["id"]).split(), ["lo"])
        # The pids limit reaches the container: a fork bomb cannot pass it.
        wid = self.workflow()
        n = self.node(wid, self.box_with("sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait'"),
                      config={"pids_limit": 4, "memory_mb": 64, "cpus": 0.5, "timeout": 30})
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED", st)
        self.assertIn("can't fork", job_output(self.server, self.admin, self.jobs(st["id"])[n]["id"], "STDERR"))
        for bad in [{"memory_mb": 0}, {"cpus": "x"}, {"network": "yes"}, {"pids_limit": -1}]:
            with self.subTest(config=bad):
                wid = self.workflow()
                self.node(wid, self.box, config=bad)
                st = self.run_wf(wid)
                self.assertEqual(st["status"], "FAILED")
                self.assertIn("config." + list(bad)[0], st["error"])
        self.assertNoContainers()

    def test_output_bound(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("yes"), config={"timeout": 30})
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED")
        self.assertIn("output exceeds", self.jobs(st["id"])[n]["error"])
        self.assertNoContainers()


    def test_server_stop_kills_and_removes_the_container(self):
        srv = Server(["--docker-socket", DOCKERD.socket]).start()
        try:
            tok = srv.token("super_admin")
            r = srv.request("POST", "/api/services/docker/from-registry",
                            {"service_name": "box", "image_name": REGISTRY.address + "/base", "image_tag": "1"}, token=tok)
            self.assertEqual(r.status, 201, r)
            sid = r.json()["service"]["id"]
            srv.request("PUT", "/api/services/docker/%d/config" % sid, {"cmd": "sleep 60"}, token=tok)
            wid = srv.request("POST", "/api/workflows", {"name": "w"}, token=tok).json()["id"]
            srv.request("POST", "/api/workflows/%d/nodes" % wid, {"service_id": sid}, token=tok)
            exec_id = srv.request("POST", "/api/workflows/%d/execute" % wid, token=tok).json()["execution_id"]
            deadline = time.time() + 30
            while not [c for c in DOCKERD.containers() if c["State"] == "running"]:
                self.assertLess(time.time(), deadline, "the container never ran")
                time.sleep(0.1)
            t0 = time.time()
            self.assertEqual(srv.stop(), 0)
            self.assertLess(time.time() - t0, 20)
            self.assertEqual(DOCKERD.containers(), [])  # killed and removed before the server exited
            srv.start()
            st = srv.request("GET", "/api/workflow-executions/%d/status" % exec_id, token=tok).json()
            self.assertEqual(st["status"], "FAILED")
            self.assertIn("server stopping", st["error"])
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
