"""Workflow jobs on fleet nodes, Docker part (issue 17): a job on the
server's node piping its STDOUT into a container job on an agent's node
(`lucidctl agent --allow-docker`), against a real dockerd
(tests/http/dockerharness.py; the module exits 77, skipped, where dockerd
cannot start). Here the server and the agent share that one daemon; the
agent pulls an image its daemon lacks. An agent without the Docker opt-in
(or whose daemon does not answer) gets no container job."""
import time
import unittest

import dockerharness
from test_agent_workflows import FleetCase
from test_network_workflows import job_output

DOCKERD = dockerharness.require_dockerd()
REGISTRY = dockerharness.Registry().start()
DOCKERD.push("lucidbase:1", REGISTRY.address, "base", "1")


def tearDownModule():
    REGISTRY.stop()


class TestFleetContainerJobs(FleetCase):
    server_args = ["--docker-socket", DOCKERD.socket]
    a_flags = ["--allow-workflow-jobs", "--allow-docker", "--docker-socket", DOCKERD.socket]
    # fleet-b asks for Docker, but no daemon answers on its socket: not advertised.
    b_flags = ["--allow-workflow-jobs", "--allow-docker", "--docker-socket", "/nonexistent/docker.sock"]

    def setUp(self):
        super().setUp()
        # (printed before its device report, which start_agent waited for)
        self.assertIn("agent: Docker workflow jobs disabled: no Docker daemon answers on /nonexistent/docker.sock",
                      self.b.seen)
        r = self.req("POST", "/api/services/docker/from-registry",
                     {"service_name": "box", "image_name": REGISTRY.address + "/base", "image_tag": "1"})
        self.assertEqual(r.status, 201, r)
        self.box = r.json()["service"]["id"]

    def tearDown(self):
        self.req("DELETE", "/api/services/%d" % self.box)
        super().tearDown()

    def box_with(self, cmd):
        r = self.req("PUT", "/api/services/docker/%d/config" % self.box, {"cmd": cmd})
        self.assertEqual(r.status, 200, r)
        return self.box

    def assertNoContainers(self):
        deadline = time.time() + 10
        while DOCKERD.containers() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(DOCKERD.containers(), [])

    def test_server_job_pipes_into_container_job_on_agent(self):
        src = self.script("src", "#!/bin/sh\necho hello container fleet\n")
        wid = self.workflow()
        a = self.node(wid, src)
        b = self.node(wid, self.box_with("tr a-z A-Z"), peer_id=self.a_peer)
        self.connect(wid, a, b)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        jobs = self.jobs(st["id"])
        self.assertEqual((jobs[b]["status"], jobs[b]["exit_code"]), ("COMPLETED", 0))
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"], "STDIN"), "hello container fleet\n")
        self.assertEqual(job_output(self.server, self.admin, jobs[b]["id"]), "HELLO CONTAINER FLEET\n")
        [t] = self.fleet_tasks("workflow_docker")
        self.assertEqual((t["status"], t["device_id"]), ("success", self.a_dev), t)
        self.assertNoContainers()

    def test_exit_status_and_network_off(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("sh -c 'ls /sys/class/net; echo oops >&2; exit 3'"), peer_id=self.a_peer)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "FAILED", st)
        job = self.jobs(st["id"])[n]
        self.assertEqual((job["exit_code"], job["error"]), (3, "exited with status 3"))
        self.assertEqual(job_output(self.server, self.admin, job["id"]).split(), ["lo"])
        self.assertEqual(job_output(self.server, self.admin, job["id"], "STDERR"), "oops\n")
        self.assertNoContainers()

    def test_timeout_kills_and_removes(self):
        wid = self.workflow()
        self.node(wid, self.box_with("sleep 60"), peer_id=self.a_peer, config={"timeout": 2})
        t0 = time.time()
        self.failed_with(wid, "timed out after 2 s")
        self.assertLess(time.time() - t0, 30)
        self.assertNoContainers()

    def test_agent_pulls_an_image_its_daemon_lacks(self):
        image = REGISTRY.address + "/base:1"
        status, body = DOCKERD.api("DELETE", "/images/%s?force=1" % image)
        self.assertIn(status, (200, 404), body)
        self.assertFalse(DOCKERD.has_image(image))
        wid = self.workflow()
        n = self.node(wid, self.box_with("echo pulled"), peer_id=self.a_peer)
        st = self.run_wf(wid)
        self.assertEqual(st["status"], "COMPLETED", st)
        self.assertEqual(job_output(self.server, self.admin, self.jobs(st["id"])[n]["id"]), "pulled\n")
        self.assertTrue(DOCKERD.has_image(image))

    def test_agent_without_docker_gets_no_container_job(self):
        wid = self.workflow()
        n = self.node(wid, self.box_with("true"), peer_id=self.b_peer)
        st = self.failed_with(wid, "node %d: fleet node fleet-b.example.com (peer %s) has not opted in to Docker "
                                   "workflow jobs (lucidctl agent --allow-docker)" % (n, self.b_peer))
        self.assertEqual(self.jobs(st["id"]), {})
        self.assertEqual(self.fleet_tasks("workflow_docker"), [])


if __name__ == "__main__":
    unittest.main()
