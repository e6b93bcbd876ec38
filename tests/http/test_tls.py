"""HTTPS (--tls-cert/--tls-key): REST, SSE and WebSocket over TLS on the same
port, the protocol settings (TLS 1.2+, no compression, close_notify), clients
that do not speak TLS or do not trust the server, and the start-up refusals
(unreadable, mismatched or exposed certificate/key files; plain HTTP on a
non-loopback address without --insecure-http)."""
import os
import socket
import ssl
import subprocess
import tempfile
import shutil
import time
import unittest

from lucidtest import SERVER_BIN, OpenStream, Server, ServerTestCase, WebSocket, make_test_pki, raw_exchange


class TlsServing(ServerTestCase):
    server_tls = True

    def test_rest_over_tls_verified_against_the_test_ca(self):
        r = self.server.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        r = self.server.request("GET", "/api/v1/nodes/", token=self.admin)
        self.assertEqual(r.status, 200, r)
        # an authenticated POST with a body, then the read-back
        j = self.server.join("tls-node.example.com")
        self.assertTrue(j["registration_code"])
        self.assertIn("https://127.0.0.1:", self.server.url)

    def test_keep_alive_and_pipelined_requests_on_one_tls_connection(self):
        conn = self.server.connection()
        try:
            for _ in range(3):
                conn.request("GET", "/health")
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            conn.close()
        s = self.server.open_socket()
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 "), 2, data[:500])

    def test_protocol_settings(self):
        s = self.server.open_socket()
        try:
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            self.assertIsNone(s.compression())
        finally:
            s.close()
        # TLS 1.1 and older are refused
        ctx = self.server.ssl_context()
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, OSError)):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        # TLS 1.2 exactly works, with an ECDHE AEAD suite
        ctx = self.server.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.version(), "TLSv1.2")
                name = s.cipher()[0]
                self.assertTrue(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name)
        # a TLS 1.2 client offering only a CBC suite finds nothing in common
        ctx = self.server.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, OSError)):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def test_connection_close_ends_with_close_notify(self):
        # suppress_ragged_eofs=False: an EOF without close_notify would raise
        ctx = self.server.ssl_context()
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)  # raises SSLEOFError on a truncated close
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
        finally:
            s.close()

    def test_sse_over_tls(self):
        nid, key = self.server.join_and_approve("sse-tls.example.com", self.admin)
        self.assertEqual(self.server.report(key, cpu_usage=33.5).status, 200)
        events = self.server.read_sse_events("/api/v1/metrics/nodes/%d/stats/stream?interval=1" % nid, count=2,
                                             token=self.admin)
        self.assertEqual(len(events), 2, events)  # the first event and a paced second one
        self.assertEqual(events[0]["node"]["id"], nid)
        self.assertEqual(events[0]["node"]["cpu_percent"], 33.5)
        with OpenStream(self.server, "/api/v1/metrics/nodes/stats/stream?token=" + self.admin) as st:
            self.assertEqual(st.status, 200)
            ev = st.next_event()
            self.assertIn(nid, [n["id"] for n in ev["nodes"]])

    def test_websocket_over_tls(self):
        w = WebSocket(self.server, "/api/ws", token=self.admin)
        self.addCleanup(w.close)
        self.assertEqual(w.status, 101)
        r = self.server.request("POST", "/api/blacklist", {"peer_id": "12D3KooWtls"}, token=self.admin)
        self.assertEqual(r.status, 201, r)
        m = w.recv_type("BLACKLIST_UPDATED")
        self.assertEqual(m["payload"]["peer_id"], "12D3KooWtls")
        self.server.request("DELETE", "/api/blacklist/12D3KooWtls", token=self.admin)
        # a message from the client crosses TLS too (an unknown type is answered)
        w.send({"type": "NO_SUCH_TYPE", "payload": {}})
        m = w.recv()
        self.assertIsNotNone(m)
        w.close()

    def test_plain_http_on_the_tls_port_is_dropped_without_harm(self):
        for junk in (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05garbage-hello",
                     os.urandom(4096), b"\x00" * 10):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                try:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
            # never a plain-text HTTP answer (nothing readable leaks), at most a TLS alert
            self.assertFalse(data.startswith(b"HTTP/"), data[:100])
        self.assertEqual(self.server.request("GET", "/health").status, 200)

    def test_client_stuck_before_its_handshake_does_not_block_others(self):
        idle = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        self.addCleanup(idle.close)
        self.assertEqual(self.server.request("GET", "/health").status, 200)

    def test_client_without_the_ca_refuses_the_server(self):
        ctx = ssl.create_default_context()  # system store: the test CA is not in it
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        # and a name the certificate does not carry fails host name verification
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                self.server.ssl_context().wrap_socket(raw, server_hostname="other.example")


class TlsStartup(unittest.TestCase):
    """lucid-server refuses to start, with a message naming the problem."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lucidtls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ca, self.cert, self.key = make_test_pki(self.dir)
        _, self.other_cert, self.other_key = make_test_pki(self.dir, prefix="other-")

    def run_server(self, *args, listen="127.0.0.1:0"):
        return subprocess.run([SERVER_BIN, "--listen", listen, "--db", os.path.join(self.dir, "db", "lucid.db")]
                              + list(args), capture_output=True, text=True, timeout=30)

    def assertRefused(self, out, *needles):
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        for n in needles:
            self.assertIn(n, out.stderr)
        self.assertNotIn("listening", out.stdout)

    def test_unreadable_or_missing_files(self):
        missing = os.path.join(self.dir, "nope.pem")
        self.assertRefused(self.run_server("--tls-cert", missing, "--tls-key", self.key),
                           "cannot read the TLS certificate file " + missing, "No such file")
        self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", missing),
                           "cannot read the TLS key file " + missing)
        self.assertRefused(self.run_server("--tls-cert", self.dir, "--tls-key", self.key), "not a regular file")
        if os.geteuid() != 0:  # root reads anything
            locked = os.path.join(self.dir, "locked.key")
            shutil.copy(self.key, locked)
            os.chmod(locked, 0)
            self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", locked),
                               "cannot read the TLS key file", "Permission denied")

    def test_only_one_of_cert_and_key(self):
        self.assertRefused(self.run_server("--tls-cert", self.cert), "--tls-cert and --tls-key go together")
        self.assertRefused(self.run_server("--tls-key", self.key), "--tls-cert and --tls-key go together")

    def test_client_ca_refusals(self):
        self.assertRefused(self.run_server("--tls-client-ca", self.ca), "--tls-client-ca needs --tls-cert and --tls-key")
        missing = os.path.join(self.dir, "no-ca.pem")
        self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", self.key, "--tls-client-ca", missing),
                           "cannot read the TLS client CA file " + missing)
        junk = os.path.join(self.dir, "junk-ca.pem")
        with open(junk, "w") as f:
            f.write("no certificate here\n")
        self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", self.key, "--tls-client-ca", junk),
                           "the TLS client CA file " + junk + " holds no usable PEM certificate")

    def test_not_pem(self):
        junk = os.path.join(self.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("this is not a certificate\n")
        os.chmod(junk, 0o600)
        self.assertRefused(self.run_server("--tls-cert", junk, "--tls-key", self.key),
                           "the TLS certificate file " + junk + " holds no usable PEM certificate")
        self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", junk),
                           "the TLS key file " + junk + " holds no usable (unencrypted) PEM private key")
        # a certificate given as the key, the key as the certificate
        self.assertRefused(self.run_server("--tls-cert", self.key, "--tls-key", self.key), "holds no usable PEM")

    def test_key_of_another_certificate(self):
        self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", self.other_key),
                           "the TLS key file %s does not match the certificate in %s" % (self.other_key, self.cert))

    def test_key_file_exposed_to_others(self):
        for mode in (0o644, 0o604, 0o660, 0o602):
            os.chmod(self.key, mode)
            self.assertRefused(self.run_server("--tls-cert", self.cert, "--tls-key", self.key),
                               "the TLS key file " + self.key + " must not be accessible by others")
        # 0640 (a group such as ssl-cert may read it) and 0400 are accepted
        for mode in (0o640, 0o400):
            os.chmod(self.key, mode)
            s = Server(tls=True)
            s.cert_file, s.key_file, s.ca_file = self.cert, self.key, self.ca
            try:
                s.start()
                self.assertEqual(s.request("GET", "/health").status, 200)
                self.assertEqual(s.stop(), 0)
            finally:
                s.cleanup()

    def test_encrypted_key_is_refused_without_prompting(self):
        from cryptography.hazmat.primitives import serialization
        with open(self.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        enc = os.path.join(self.dir, "enc.key")
        fd = os.open(enc, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"secret")))
        out = subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:0", "--db", os.path.join(self.dir, "e.db"),
                              "--tls-cert", self.cert, "--tls-key", enc],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertRefused(out, "holds no usable (unencrypted) PEM private key")

    def test_plain_http_needs_loopback_or_insecure_http(self):
        for listen in ("0.0.0.0:0", "[::]:0", "example.invalid:0"):
            out = self.run_server(listen=listen)
            self.assertRefused(out, "refusing plain HTTP on " + listen, "--tls-cert", "--insecure-http")
        # with TLS, or the explicit flag, a wildcard address is served
        for args in ([], ["--insecure-http"]):
            s = Server(args, tls=not args, host="0.0.0.0")
            try:
                s.start()
                self.assertEqual(s.request("GET", "/health").status, 200)
                self.assertEqual(s.stop(), 0)
            finally:
                s.cleanup()
        # loopback stays plain by default (scripts/serve): 127.0.0.1 (the harness), ::1, localhost
        for host in ("localhost", "::1", "127.0.0.2"):
            try:
                socket.getaddrinfo(host, 0)
            except OSError:
                continue
            s = Server(host=host)
            try:
                s.start()
            except RuntimeError as e:
                if any(m in str(e) for m in ("Cannot assign requested address", "not available", "not supported")):
                    continue  # no IPv6 loopback in this container
                raise
            try:
                self.assertEqual(s.stop(), 0)
            finally:
                s.cleanup()


if __name__ == "__main__":
    unittest.main()
