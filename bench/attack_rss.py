#!/usr/bin/env python3
"""bench/attack_rss — server memory and /health latency under one client's
resource attacks (issue 12 item 6). Loopback only, bounded in count and time.

For each phase a fresh lucid-server (the binary given with --bin) starts on a
temporary database; the script prints the server's RSS (VmRSS from
/proc/<pid>/status) before and during the attack and the latency of
GET /health from another client address (127.0.0.2) while it lasts:

  a) --idle N idle sockets from 127.0.0.1 (server --max-connections M, M < N,
     so one address could take every slot)
  b) --heads 300 requests announcing a 1 MiB body, sending only the head
  c) --posts 300 keep-alive connections, each after one 1 MiB POST, left idle
  d) --signups 50 sign-ups (POST /api/v1/users) from 8 threads

(b) and (c) spread their connections over 127.0.0.1..4, so a per-address
connection cap does not hide the buffer behaviour being measured.

It never asserts on timing; it prints `key: value` lines. Usage:

  bench/attack_rss.py --bin build/bin/lucid-server [--idle 1050 --max-connections 1000]
                      [--server-arg=--rate-signup=1000 ...] [--phases abcd]
"""
import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1024 * 1024


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print("machine: %s %s" % (platform.system(), platform.release()))
    print("nproc: %d" % os.cpu_count())
    print("cpu_model: %s" % model)
    print("loadavg: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    print("command: %s" % " ".join(sys.argv))


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, binary, args):
        self.dir = tempfile.mkdtemp(prefix="attack-rss-")
        port_file = os.path.join(self.dir, "port")
        cmd = [binary, "--listen", "127.0.0.1:0", "--db", os.path.join(self.dir, "lucid.db"),
               "--port-file", port_file, "--quiet"] + args
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("server did not start: " + " ".join(cmd))
            time.sleep(0.02)
        time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())

    def rss(self):
        return rss(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(port, source):
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def health(port, source="127.0.0.2", timeout=10):
    """Latency of GET /health in ms, or a failure text."""
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        c.close()
        ms = (time.perf_counter() - t0) * 1000
        return ms if r.status == 200 else "HTTP %d" % r.status
    except (OSError, http.client.HTTPException) as e:
        return "failed (%s)" % type(e).__name__


def report_health(prefix, samples):
    ok = sorted(s for s in samples if isinstance(s, float))
    fails = [s for s in samples if not isinstance(s, float)]
    print("%s_health_ok: %d/%d" % (prefix, len(ok), len(samples)))
    if ok:
        print("%s_health_ms_median: %.1f" % (prefix, ok[len(ok) // 2]))
        print("%s_health_ms_max: %.1f" % (prefix, ok[-1]))
    if fails:
        print("%s_health_failures: %s" % (prefix, ", ".join(sorted(set(fails)))))


def peak_rss(srv, seconds):
    peak = srv.rss()
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.05)
        peak = max(peak, srv.rss())
    return peak


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split()[1])


SOURCES = ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def phase_idle(a, extra):
    srv = Server(a.bin, ["--max-connections", str(a.max_connections)] + extra)
    socks = []
    try:
        before = srv.rss()
        refused = 0
        for _ in range(a.idle):
            try:
                socks.append(connect(srv.port, "127.0.0.1"))
            except OSError:
                refused += 1
        time.sleep(0.5)
        print("a_idle_sockets: %d (from 127.0.0.1; connect errors %d)" % (a.idle, refused))
        print("a_server_max_connections: %d" % a.max_connections)
        print("a_rss_before_mib: %.1f" % (before / MiB))
        print("a_rss_during_mib: %.1f" % (peak_rss(srv, 0.5) / MiB))
        report_health("a", [health(srv.port, timeout=3) for _ in range(5)])
    finally:
        for s in socks:
            s.close()
        srv.stop()


def phase_heads(a, extra):
    srv = Server(a.bin, extra)
    socks = []
    try:
        before = srv.rss()
        for i in range(a.heads):
            s = connect(srv.port, SOURCES[i % len(SOURCES)])
            s.sendall(b"POST /health HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % MiB)
            socks.append(s)
        during = peak_rss(srv, 4.0)
        print("b_header_only_requests: %d (Content-Length 1 MiB, no body sent)" % a.heads)
        print("b_rss_before_mib: %.1f" % (before / MiB))
        print("b_rss_during_mib: %.1f" % (during / MiB))
        print("b_rss_growth_mib: %.1f" % ((during - before) / MiB))
        report_health("b", [health(srv.port) for _ in range(5)])
    finally:
        for s in socks:
            s.close()
        srv.stop()


def phase_posts(a, extra):
    srv = Server(a.bin, extra)
    socks = []
    body = b"x" * MiB
    try:
        before = srv.rss()
        statuses = {}
        for i in range(a.posts):
            s = connect(srv.port, SOURCES[i % len(SOURCES)])
            s.sendall(b"POST /health HTTP/1.1\r\nHost: c\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            st = read_response(s)
            statuses[st] = statuses.get(st, 0) + 1
            socks.append(s)
        idle = peak_rss(srv, 1.0)
        print("c_keepalive_connections: %d (each after one 1 MiB POST; statuses %s)" % (a.posts, statuses))
        print("c_rss_before_mib: %.1f" % (before / MiB))
        print("c_rss_idle_after_mib: %.1f" % (idle / MiB))
        print("c_rss_growth_mib: %.1f" % ((idle - before) / MiB))
        report_health("c", [health(srv.port) for _ in range(5)])
    finally:
        for s in socks:
            s.close()
        srv.stop()


def phase_signups(a, extra):
    srv = Server(a.bin, extra)
    try:
        before = srv.rss()
        statuses = {}
        lock = threading.Lock()
        todo = list(range(a.signups))

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                try:
                    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
                    body = json.dumps({"email": "u%d@example.com" % i, "username": "user%d" % i,
                                       "password": "correct horse 9"})
                    c.request("POST", "/api/v1/users", body=body, headers={"Content-Type": "application/json"})
                    st = c.getresponse().status
                    c.close()
                except OSError as e:
                    st = type(e).__name__
                with lock:
                    statuses[st] = statuses.get(st, 0) + 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        samples, peak = [], before
        while any(t.is_alive() for t in threads):
            samples.append(health(srv.port))
            peak = max(peak, srv.rss())
        for t in threads:
            t.join()
        took = time.perf_counter() - t0
        print("d_signups: %d from 127.0.0.1, 8 threads (statuses %s)" % (a.signups, statuses))
        print("d_signups_seconds: %.2f" % took)
        print("d_rss_before_mib: %.1f" % (before / MiB))
        print("d_rss_peak_mib: %.1f" % (max(peak, srv.rss()) / MiB))
        if not samples:
            samples = [health(srv.port)]
        report_health("d", samples)
    finally:
        srv.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="lucid-server binary")
    p.add_argument("--idle", type=int, default=1050)
    p.add_argument("--max-connections", type=int, default=1000)
    p.add_argument("--heads", type=int, default=300)
    p.add_argument("--posts", type=int, default=300)
    p.add_argument("--signups", type=int, default=50)
    p.add_argument("--phases", default="abcd")
    p.add_argument("--server-arg", action="append", default=[], help="extra server argument (repeatable)")
    a = p.parse_args()
    for name in ("idle", "heads", "posts", "signups"):
        if not 1 <= getattr(a, name) <= 20000:
            p.error("--%s must be 1..20000" % name)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.idle + a.heads + a.posts + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the server inherits it
    machine()
    print("server: %s %s" % (a.bin, " ".join(a.server_arg)))
    print("nofile: %d" % resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    phases = {"a": phase_idle, "b": phase_heads, "c": phase_posts, "d": phase_signups}
    for ph in a.phases:
        phases[ph](a, a.server_arg)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
