"""lucidctl and the agent against an HTTPS lucid-server: --ca-file /
LUCID_CA_FILE, verification failures (untrusted CA, wrong host name, a
server that does not speak TLS) end with exit code 5 and a clear message,
never a fallback to plain HTTP; an agent joins and reports over TLS."""
import os
import subprocess
import unittest

from lucidtest import CTL_BIN, Server, ServerTestCase

from test_agent import Agent


def ctl(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("LUCID_SERVER", "LUCID_TOKEN", "LUCID_CA_FILE")}
    e.update(env or {})
    return subprocess.run([CTL_BIN] + list(args), capture_output=True, text=True, timeout=60, env=e)


class LucidctlTls(ServerTestCase):
    server_tls = True

    def test_ca_file_flag_and_env(self):
        self.server.join_and_approve("ctl-tls.example.com", self.admin)
        out = ctl("--server", self.server.url, "--token", self.admin, "--ca-file", self.server.ca_file, "nodes", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ctl-tls.example.com", out.stdout)
        out = ctl("nodes", "list", "--json", env={"LUCID_SERVER": self.server.url, "LUCID_TOKEN": self.admin,
                                                  "LUCID_CA_FILE": self.server.ca_file})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ctl-tls.example.com", out.stdout)
        # localhost is in the certificate too
        url = "https://localhost:%d" % self.server.port
        out = ctl("--server", url, "--token", self.admin, "--ca-file", self.server.ca_file, "nodes", "list")
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_untrusted_certificate_is_exit_5(self):
        # the system store does not hold the test CA
        out = ctl("--server", self.server.url, "--token", self.admin, "nodes", "list")
        self.assertEqual(out.returncode, 5, out.stdout + out.stderr)
        self.assertIn("TLS: cannot verify the certificate of 127.0.0.1:%d" % self.server.port, out.stderr)
        self.assertIn("--ca-file", out.stderr)
        self.assertEqual(out.stdout, "")
        # another CA is no better
        other = Server(tls=True)  # only for its PKI: never started
        try:
            out = ctl("--server", self.server.url, "--token", self.admin, "--ca-file", other.ca_file,
                      "payouts", "list", "node_1")
            self.assertEqual(out.returncode, 5, out.stdout + out.stderr)
            self.assertIn("TLS: cannot verify", out.stderr)
            self.assertIn(other.ca_file, out.stderr)
        finally:
            other.cleanup()

    def test_plain_http_url_to_the_tls_port_is_not_served(self):
        url = "http://127.0.0.1:%d" % self.server.port
        out = ctl("--server", url, "--token", self.admin, "nodes", "list")
        self.assertEqual(out.returncode, 3, out.stdout + out.stderr)
        self.assertIn("cannot reach server", out.stderr)

    def test_unreadable_ca_file_is_usage_error(self):
        missing = os.path.join(self.server.dir, "no-such-ca.pem")
        out = ctl("--server", self.server.url, "--token", self.admin, "--ca-file", missing, "nodes", "list")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("cannot read the CA file " + missing, out.stderr)


class LucidctlTlsMismatch(unittest.TestCase):
    def test_wrong_host_name_is_exit_5(self):
        s = Server(tls=True, tls_names=("other.example",)).start()
        try:
            token = s.token()
            out = ctl("--server", s.url, "--token", token, "--ca-file", s.ca_file, "nodes", "list")
            self.assertEqual(out.returncode, 5, out.stdout + out.stderr)
            self.assertIn("TLS: the certificate of 127.0.0.1:%d is not valid for that host name" % s.port, out.stderr)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()

    def test_https_url_to_a_plain_server_is_exit_5(self):
        s = Server().start()
        try:
            token = s.token()
            url = "https://127.0.0.1:%d" % s.port
            out = ctl("--server", url, "--token", token, "nodes", "list")
            self.assertEqual(out.returncode, 5, out.stdout + out.stderr)
            self.assertIn("TLS: handshake with 127.0.0.1:%d failed" % s.port, out.stderr)
            # the agent gives up at once too, instead of retrying a misconfiguration
            a = subprocess.run([CTL_BIN, "agent", "--server", url, "--hostname", "x.example.com", "--key-file",
                                os.path.join(s.dir, "x.key")], capture_output=True, text=True, timeout=60)
            self.assertEqual(a.returncode, 5, a.stdout + a.stderr)
            self.assertIn("TLS: handshake", a.stderr)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


class AgentTls(unittest.TestCase):
    def setUp(self):
        self.server = Server(tls=True).start()
        self.admin = self.server.token()
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.kill()
            a.proc.wait()
            a.pump.join(timeout=5)
            a.proc.stdout.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log()[-3000:])
        self.server.cleanup()

    def agent(self, hostname, *extra):
        a = Agent(self.server.url, hostname, os.path.join(self.server.dir, hostname + ".key"), *extra)
        self.agents.append(a)
        return a

    def test_agent_joins_and_reports_over_tls(self):
        a = self.agent("tls-agent.example.com", "--ca-file", self.server.ca_file)
        code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
        out = ctl("--server", self.server.url, "--token", self.admin, "--ca-file", self.server.ca_file,
                  "nodes", "approve-code", code)
        self.assertEqual(out.returncode, 0, out.stderr)
        a.wait_for(r"approved; API key saved")
        a.wait_for(r"reported cpu=")
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin).json()
        node = [n for n in nodes if n["hostname"] == "tls-agent.example.com"][0]
        self.assertEqual(node["health"], "online")
        self.assertTrue(node["stats"], node)
        self.assertEqual(a.stop(), 0)

    def test_agent_without_the_ca_stops_with_exit_5(self):
        a = self.agent("untrusting.example.com")
        a.wait_for(r"TLS: cannot verify the certificate")
        self.assertEqual(a.proc.wait(timeout=30), 5)
        # nothing reached the server
        nodes = self.server.request("GET", "/api/v1/nodes/", token=self.admin)  # pending included
        self.assertEqual(nodes.status, 200, nodes)
        self.assertNotIn("untrusting.example.com", nodes.text)


class ClientCertificates(ServerTestCase):
    """--tls-client-ca: only clients with a certificate from that CA get in."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tls=True)
        cls.server.extra_args = ["--tls-client-ca", cls.server.ca_file]
        cls.server.start()
        cls.admin = cls.server.token()
        cls.cert = os.path.join(cls.server.dir, "client.pem")
        cls.key = os.path.join(cls.server.dir, "client.key")

    def base(self, *args):
        return ["--server", self.server.url, "--token", self.admin, "--ca-file", self.server.ca_file] + list(args)

    def test_with_and_without_a_client_certificate(self):
        out = ctl(*self.base("--client-cert", self.cert, "--client-key", self.key, "nodes", "list"))
        self.assertEqual(out.returncode, 0, out.stderr)
        out = ctl(*self.base("nodes", "list"), env={"LUCID_CLIENT_CERT": self.cert, "LUCID_CLIENT_KEY": self.key})
        self.assertEqual(out.returncode, 0, out.stderr)
        out = ctl(*self.base("nodes", "list"))
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn(out.returncode, (3, 5), out.stderr)
        self.assertEqual(out.stdout, "")
        self.assertIn("client certificate", out.stderr)
        # a certificate from another CA is refused too
        other = Server(tls=True)
        try:
            out = ctl(*self.base("--client-cert", os.path.join(other.dir, "client.pem"), "--client-key",
                                 os.path.join(other.dir, "client.key"), "nodes", "list"))
            self.assertIn(out.returncode, (3, 5), out.stdout + out.stderr)
        finally:
            other.cleanup()
        # a plain Python client without a certificate gets no answer
        import ssl, socket
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, OSError)):
                s = self.server.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if not s.recv(100):
                    raise OSError("closed")

    def test_client_key_refusals(self):
        out = ctl(*self.base("--client-cert", self.cert, "nodes", "list"))
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--client-cert and --client-key go together", out.stderr)
        loose = os.path.join(self.server.dir, "loose.key")
        with open(self.key) as f, open(loose, "w") as g:
            g.write(f.read())
        os.chmod(loose, 0o644)
        out = ctl(*self.base("--client-cert", self.cert, "--client-key", loose, "nodes", "list"))
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("must not be readable by others", out.stderr)

    def test_agent_with_a_client_certificate(self):
        key_file = os.path.join(self.server.dir, "mtls-agent.key")
        a = Agent(self.server.url, "mtls-agent.example.com", key_file, "--ca-file", self.server.ca_file,
                  "--client-cert", self.cert, "--client-key", self.key, "--max-reports", "1")
        try:
            code = a.wait_for(r"registration code ([A-Z0-9]{5})").group(1)
            out = ctl(*self.base("--client-cert", self.cert, "--client-key", self.key, "nodes", "approve-code", code))
            self.assertEqual(out.returncode, 0, out.stderr)
            a.wait_for(r"reported cpu=")
            self.assertEqual(a.proc.wait(timeout=30), 0)
        finally:
            if a.proc.poll() is None:
                a.proc.kill()
            a.proc.wait()
            a.pump.join(timeout=5)
            a.proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
