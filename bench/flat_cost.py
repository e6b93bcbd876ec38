#!/usr/bin/env python3
"""bench/flat_cost — what one operation costs as the fleet grows (issue 19,
"costs that stay flat"). Never asserts on timing.

For each size NODES:TASKS of --sizes (default 1000:10000 and 100000:1000000)
it fills a fresh SQLite database through the library (the Python binding over
the C ABI: joins approved with one stats report each; echo tasks submitted
from --seed-threads threads, so the library's group commit batches them),
then starts lucid-server on it and measures:

- start-up: from exec to /health answering 200 (the task engine loads every
  queued task, the nodes cache every node);
- `GET /api/v1/nodes?page&limit=100` at the first, middle and last page;
- `GET /api/v1/tasks?page&page_size=100` at the first and last page, and
  `GET /api/v1/tasks/statistics`;
- the all-nodes SSE snapshot (`/api/v1/metrics/nodes/stats/stream`): time to
  the first event and its size;
- `POST /api/v1/tasks` one at a time (each also posts a scheduling pass);
- the idle server's CPU per second of wall time over --idle-seconds: the
  periodic work (liveness sweep, task sweep, stats flush, scheduling passes
  with nothing to place) that would grow per tick if it were linear;
- the server's RSS.

Prints `key: value` lines: the machine and the command first, then each
figure prefixed with the size (`n100000_nodes_page_last_p50_ms: ...`).

  bench/flat_cost.py                               (both sizes; the large one seeds for minutes)
  bench/flat_cost.py --sizes 1000:10000,20000:200000
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def kv(key, value):
    print("%s: %s" % (key, value), flush=True)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    kv("machine", "%s %s, %d cores, %s" % (platform.system(), platform.release(), os.cpu_count(), model))
    kv("loadavg_before", " ".join("%.2f" % x for x in os.getloadavg()))
    kv("command", " ".join(sys.argv))


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def seed(db, nodes, tasks, threads, lib):
    os.environ["LUCIDNODE_LIBRARY"] = lib
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import lucidnode
    t0 = time.time()
    with lucidnode.Cluster(db) as c:
        for i in range(nodes):
            j = c.join("flat-%06d.example" % i, ip_address="10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))
            node = c.approve(int(j["request_id"]))
            c.report_stats(int(node["id"]), cpu_usage=float(i % 100), disk_usage=float((i * 7) % 100))
        t1 = time.time()
        priorities = ("low", "normal", "high", "urgent")

        def submit(part):
            for i in range(part, tasks, threads):
                c.submit_task("echo", {"i": i}, priority=priorities[i % 4])

        workers = [threading.Thread(target=submit, args=(p,)) for p in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        t2 = time.time()
    return t1 - t0, t2 - t1


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        ms = (time.perf_counter() - t0) * 1000
        if r.status >= 300:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, payload[:300]))
        return ms, payload

    def timed(self, method, path, n, body=None):
        return [self.request(method, path, body)[0] for _ in range(n)]


def sse_snapshot(port, token):
    """Milliseconds to the first complete event of the all-nodes stream, and its bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        t0 = time.perf_counter()
        s.sendall(("GET /api/v1/metrics/nodes/stats/stream?token=%s&interval=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   % token).encode())
        buf = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("stream closed before its first event: %r" % buf[:300])
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep and not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError("stream answered %r" % head[:200])
            at = body.find(b"data:")
            if at >= 0 and body.find(b"\n\n", at) >= 0:
                return (time.perf_counter() - t0) * 1000, len(body)
    finally:
        s.close()


def measure(size, nodes, tasks, args):
    bin_dir = os.path.abspath(args.bin_dir)
    lib = os.path.join(os.path.dirname(bin_dir), "lib", "liblucidnode.so.0")
    work = tempfile.mkdtemp(prefix="lucid-flat-cost-")
    p = "n%d" % nodes
    proc = None
    try:
        db = os.path.join(work, "lucid.db")
        nodes_s, tasks_s = seed(db, nodes, tasks, args.seed_threads, lib)
        kv(p + "_size", "%d nodes, %d queued tasks" % (nodes, tasks))
        kv(p + "_seed_seconds", "nodes %.1f, tasks %.1f (%.0f tasks/s through lucid::Tasks)"
           % (nodes_s, tasks_s, tasks / tasks_s if tasks_s else 0))
        port_file = os.path.join(work, "port")
        t0 = time.perf_counter()
        proc = subprocess.Popen([os.path.join(bin_dir, "lucid-server"), "--listen", "127.0.0.1:0", "--db", db,
                                 "--port-file", port_file, "--quiet", "--rate-cluster-minute", "100000000",
                                 "--rate-cluster-burst", "100000000", "--rate-admin", "100000000"],
                                stdout=open(os.path.join(work, "server.log"), "wb"), stderr=subprocess.STDOUT)
        port = None
        while time.perf_counter() - t0 < 600:
            if proc.poll() is not None:
                raise RuntimeError("lucid-server exited: " + open(os.path.join(work, "server.log")).read()[-2000:])
            if port is None and os.path.exists(port_file):
                text = open(port_file).read().strip()
                port = int(text) if text else None
            if port is not None:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.01)
        kv(p + "_startup_ms", "%.0f" % ((time.perf_counter() - t0) * 1000))
        token = subprocess.run([os.path.join(bin_dir, "lucidctl"), "--db", db, "admin", "create-token", "--role",
                                "super_admin", "--ttl", "2h"], capture_output=True, text=True,
                               check=True).stdout.strip().splitlines()[-1]
        cl = Client(port, token)
        last = (nodes + 99) // 100
        for name, page in (("first", 1), ("middle", max(1, last // 2)), ("last", last)):
            ms = cl.timed("GET", "/api/v1/nodes?page=%d&limit=100" % page, args.repeat)
            kv(p + "_nodes_page_%s_p50_ms" % name, "%.2f (p99 %.2f)" % (pct(ms, 0.5), pct(ms, 0.99)))
        tasks_last = (tasks + 99) // 100
        for name, page in (("first", 1), ("last", tasks_last)):
            ms = cl.timed("GET", "/api/v1/tasks?page=%d&page_size=100" % page, max(3, args.repeat // 5))
            kv(p + "_tasks_page_%s_p50_ms" % name, "%.2f (p99 %.2f)" % (pct(ms, 0.5), pct(ms, 0.99)))
        ms = cl.timed("GET", "/api/v1/tasks/statistics", max(3, args.repeat // 5))
        kv(p + "_tasks_statistics_p50_ms", "%.2f (p99 %.2f)" % (pct(ms, 0.5), pct(ms, 0.99)))
        snaps = [sse_snapshot(port, token) for _ in range(3)]
        kv(p + "_sse_all_nodes_first_event_ms", "%.1f (median of 3; %d bytes)"
           % (sorted(s[0] for s in snaps)[1], snaps[0][1]))
        ms = cl.timed("POST", "/api/v1/tasks", args.repeat, {"task_type": "echo", "payload": {"m": 1}})
        kv(p + "_submit_one_p50_ms", "%.2f (p99 %.2f)" % (pct(ms, 0.5), pct(ms, 0.99)))
        time.sleep(1)
        c0, w0 = proc_cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(args.idle_seconds)
        idle = (proc_cpu_seconds(proc.pid) - c0) / (time.perf_counter() - w0)
        kv(p + "_idle_cpu_ms_per_s", "%.1f (sweeps, flushes and passes with nothing to do)" % (idle * 1000))
        kv(p + "_server_rss_mb", "%.0f" % proc_rss_mb(proc.pid))
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--sizes", default="1000:10000,100000:1000000", help="NODES:TASKS,... (default %(default)s)")
    ap.add_argument("--seed-threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=50, help="requests per timed figure (default %(default)s)")
    ap.add_argument("--idle-seconds", type=float, default=10)
    args = ap.parse_args()
    sizes = []
    for item in args.sizes.split(","):
        n, t = item.split(":")
        sizes.append((int(n), int(t)))
    machine()
    for i, (n, t) in enumerate(sizes):
        measure(i, n, t, args)
    kv("loadavg_after", " ".join("%.2f" % x for x in os.getloadavg()))


if __name__ == "__main__":
    main()
