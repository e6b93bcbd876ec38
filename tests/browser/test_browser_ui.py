"""Issue 18's browser test: headless Chromium loads a small page of ours
(ui_dialect.html, served here from its own origin, so every API call is
cross-origin) that speaks the network node web UI's dialect against a live
lucid-server: Ed25519 login through WebCrypto without public_key while
several keys (admins' and agents') are registered, a workflow built in the
UI's shapes and executed, and the live WebSocket events of the UI's dialect.
The page posts what it saw to /result; this judges it.

Exit status 77 (ctest SKIP_RETURN_CODE) with the reason when Chromium is not
installed or cannot start; never a silent pass."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from lucidtest import Server
from test_network_auth import add_key, peer_id_of, register_node_key
from test_network_services import standalone, write_script

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


class Skip(Exception):
    pass


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("chromium is not installed (scripts/setup installs Debian's chromium)")


class PageServer(http.server.ThreadingHTTPServer):
    """Serves tests/browser/ and takes the page's POST /result."""

    def __init__(self):
        self.result = None
        self.page_loaded = threading.Event()
        self.got_result = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.split("?")[0] != "/ui_dialect.html":
                    self.send_error(404)
                    return
                with open(os.path.join(HERE, "ui_dialect.html"), "rb") as f:
                    data = f.read()
                outer.page_loaded.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(n, 4 * 1024 * 1024))
                if self.path == "/result":
                    outer.result = json.loads(body)
                    outer.got_result.set()
                self.send_response(204)
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)


class BrowserUiTest(unittest.TestCase):
    def test_ui_dialect_page(self):
        chromium = chromium_binary()
        server = Server().start()
        page = PageServer()
        threading.Thread(target=page.serve_forever, daemon=True).start()
        profile = tempfile.mkdtemp(prefix="lucid-chromium-")
        proc = None
        try:
            admin = server.token("super_admin")
            # Several keys: the page's (admin), another admin's, a viewer's and two agents'.
            page_key = Ed25519PrivateKey.generate()
            add_key(server, Ed25519PrivateKey.generate(), "admin")
            add_key(server, Ed25519PrivateKey.generate(), "viewer")
            add_key(server, page_key, "admin")
            for i in range(2):
                register_node_key(server, admin, "browser-agent-%d" % i, Ed25519PrivateKey.generate())
            producer = standalone(server, admin, "producer", write_script(server, "bin/producer", "#!/bin/sh\necho from-the-producer\n"))
            consumer = standalone(server, admin, "consumer", write_script(server, "bin/consumer", "#!/bin/sh\ntr a-z A-Z\n"))
            cfg = {"api": "http://127.0.0.1:%d" % server.port, "producer": producer, "consumer": consumer,
                   "key": base64.b64encode(page_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())).decode()}
            url = "http://127.0.0.1:%d/ui_dialect.html#%s" % (page.server_address[1],
                                                             base64.b64encode(json.dumps(cfg).encode()).decode())
            args = [chromium, "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--no-default-browser-check", "--user-data-dir=" + profile, url]
            if os.geteuid() == 0:
                args.insert(1, "--no-sandbox")
            log = open(os.path.join(profile, "chromium.log"), "wb")
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while not page.page_loaded.wait(0.2):
                if proc.poll() is not None or time.time() > deadline:
                    with open(os.path.join(profile, "chromium.log"), "rb") as f:
                        tail = f.read()[-1500:].decode("utf-8", "replace")
                    raise Skip("chromium could not start (exit %s): %s" % (proc.poll(), tail))
            self.assertTrue(page.got_result.wait(90), "the page reported nothing within 90 s")
            r = page.result
            self.assertTrue(r["ok"], "page failed: %s\nsteps: %s" % (r.get("error"), r.get("steps")))
            self.assertEqual(r["health"], 200)
            self.assertEqual(r["login"], {"status": 200, "peer_id": peer_id_of(page_key), "role": "admin"})
            types = [e["type"] for e in r["events"]]
            self.assertEqual(types[:3], ["connected", "node.status", "pong"], types)
            for t in types:
                self.assertEqual(t, t.lower(), types)  # the UI's dialect only
            self.assertIn("workflows.updated", types)
            self.assertIn("job.status.updated", types)
            self.assertEqual(r["gui_props"], 200)
            self.assertEqual((r["node"]["service_name"], r["node"]["gui_x"]), ("producer", 100))
            self.assertEqual(sorted(i["interface_type"] for i in r["node"]["interfaces"]), ["STDERR", "STDIN", "STDOUT"])
            by_name = {n["service_name"]: n for n in r["nodes"]["nodes"]}
            self.assertEqual((by_name["consumer"]["gui_x"], by_name["consumer"]["gui_y"]), (320, 90))
            self.assertEqual((r["connection"]["from_interface_type"], r["connection"]["to_interface_type"]), ("STDOUT", "STDIN"))
            self.assertEqual((r["ui_state"]["zoom_level"], r["ui_state"]["snap_to_grid"]), (1.25, True))
            self.assertEqual(r["status"]["execution"]["status"], "COMPLETED", r["status"])
            self.assertEqual(len(r["status"]["jobs"]), 2)
            self.assertEqual(r["output"], "FROM-THE-PRODUCER\n")
        finally:
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            page.shutdown()
            rc = server.stop()
            server.cleanup()
            shutil.rmtree(profile, ignore_errors=True)
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    # unittest has no "skipped" exit status: a missing or broken Chromium ends
    # the process with 77, which ctest reports as Skipped (with this reason).
    try:
        chromium_binary()
    except Skip as e:
        print("SKIPPED: %s" % e)
        sys.exit(SKIP)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(BrowserUiTest)
    outcome = {"skip": None}

    class Result(unittest.TextTestResult):
        def addError(self, test, err):
            if isinstance(err[1], Skip):
                outcome["skip"] = str(err[1])
                return
            super().addError(test, err)

    res = unittest.TextTestRunner(verbosity=2, resultclass=Result).run(suite)
    if outcome["skip"]:
        print("SKIPPED: %s" % outcome["skip"])
        sys.exit(SKIP)
    sys.exit(0 if res.wasSuccessful() else 1)
