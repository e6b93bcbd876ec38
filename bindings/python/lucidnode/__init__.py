"""lucidnode for Python: the control plane library through its C ABI (ctypes).

    import lucidnode
    with lucidnode.Cluster("fleet.db") as cluster:
        join = cluster.join("worker-1.example.com")
        cluster.approve_code(join["registration_code"])
        key = cluster.poll(join["registration_code"], join["join_secret"])["api_key"]
        cluster.report_stats(cluster.authenticate(key), cpu_usage=12.5, disk_usage=40)
        for node in cluster.iter_nodes():
            print(node["hostname"], node["liveness"])
        task = cluster.submit_task("echo", payload={"message": "hi"})
        cluster.task_result(task["task_id"])   # {"status", "final", "result_data", ...}

The shared library is found through the LUCIDNODE_LIBRARY environment
variable (a path to liblucidnode.so*), else through the system's library
search path (an installed package). Every failure raises a subclass of
LucidError; results are plain dicts decoded from the C ABI's JSON.

Thread-safety: a Cluster may be used from many threads at once; close()
waits for calls in flight and makes later calls raise ClusterClosed.
"""

import ctypes
import ctypes.util
import json
import os
import threading
from decimal import Decimal

__all__ = [
    "Cluster", "LucidError", "InvalidArgument", "NotFound", "Conflict", "Unauthenticated",
    "PermissionDenied", "ResourceExhausted", "Unavailable", "StorageError", "InternalError",
    "ClusterClosed", "version", "library_path",
]


# ---- errors: one class per lucid_status family ----

class LucidError(Exception):
    """A lucidnode call failed. `status` is the lucid_status value, `code` its
    stable name ("not_found", ...), `field` the input field concerned or ""."""

    status = None
    code = "unknown"

    def __init__(self, message, field="", status=None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def __str__(self):
        return f"{self.message} (field {self.field})" if self.field else self.message


class InvalidArgument(LucidError, ValueError):
    status, code = 1, "invalid_argument"


class NotFound(LucidError, LookupError):
    status, code = 2, "not_found"


class Conflict(LucidError):
    status, code = 3, "conflict"


class Unauthenticated(LucidError):
    status, code = 4, "unauthenticated"


class PermissionDenied(LucidError, PermissionError):
    status, code = 5, "permission_denied"


class ResourceExhausted(LucidError):
    status, code = 6, "resource_exhausted"


class Unavailable(LucidError):
    status, code = 7, "unavailable"


class StorageError(LucidError, OSError):
    status, code = 8, "storage"


class InternalError(LucidError):
    status, code = 9, "internal"


class ClusterClosed(LucidError, ValueError):
    """A call on a Cluster after close() (no C call is made)."""
    code = "closed"


_ERRORS = {cls.status: cls for cls in (InvalidArgument, NotFound, Conflict, Unauthenticated, PermissionDenied,
                                       ResourceExhausted, Unavailable, StorageError, InternalError)}
_OK = 0
_BUFFER_TOO_SMALL = 10
_OUT_OF_MEMORY = 11


# ---- the library ----

def library_path():
    """The path (or soname) the binding loads."""
    env = os.environ.get("LUCIDNODE_LIBRARY")
    if env:
        return env
    # An installed package: the dynamic loader's own search (ld.so.cache, /usr/lib).
    return ctypes.util.find_library("lucidnode") or "liblucidnode.so.0"


def _load():
    try:
        lib = ctypes.CDLL(library_path())
    except OSError as e:
        raise ImportError(f"lucidnode: cannot load the library ({e}); set LUCIDNODE_LIBRARY to the path of "
                          "liblucidnode.so (build tree: build/lib/liblucidnode.so), or install lucidnode") from e
    c_int64, c_size_t, c_char_p, c_void_p = ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p
    out_str = ctypes.POINTER(ctypes.c_void_p)  # char** (a void* keeps the pointer for lucid_free)
    p_size, p_i64 = ctypes.POINTER(c_size_t), ctypes.POINTER(c_int64)
    signatures = {
        "lucid_version": (c_char_p, []),
        "lucid_abi_version": (ctypes.c_int, []),
        "lucid_status_name": (c_char_p, [ctypes.c_int]),
        "lucid_last_error_message": (c_char_p, []),
        "lucid_last_error_field": (c_char_p, []),
        "lucid_free": (None, [c_void_p]),
        "lucid_cluster_open": (ctypes.c_int, [c_char_p, ctypes.POINTER(c_void_p)]),
        "lucid_cluster_close": (None, [c_void_p]),
        "lucid_cluster_start": (ctypes.c_int, [c_void_p]),
        "lucid_cluster_stop": (ctypes.c_int, [c_void_p]),
        "lucid_node_join": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_node_poll": (ctypes.c_int, [c_void_p, c_char_p, c_char_p, out_str]),
        "lucid_node_approve": (ctypes.c_int, [c_void_p, c_int64, out_str]),
        "lucid_node_approve_code": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_node_authenticate": (ctypes.c_int, [c_void_p, c_char_p, p_i64]),
        "lucid_node_report_stats": (ctypes.c_int, [c_void_p, c_int64, c_char_p]),
        "lucid_nodes_list": (ctypes.c_int, [c_void_p, c_int64, c_int64, c_char_p, c_size_t, p_size]),
        "lucid_node_get": (ctypes.c_int, [c_void_p, c_int64, c_char_p, c_size_t, p_size]),
        "lucid_pool_create": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_pool_add_node": (ctypes.c_int, [c_void_p, c_char_p, c_char_p, c_int64, out_str]),
        "lucid_pools_list": (ctypes.c_int, [c_void_p, c_int64, c_int64, c_char_p, c_size_t, p_size]),
        "lucid_poot_validate": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_payout_submit": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_payout_batch": (ctypes.c_int, [c_void_p, c_char_p, c_char_p, c_size_t, p_size]),
        "lucid_payouts_for_node": (ctypes.c_int, [c_void_p, c_char_p, c_int64, c_int64, c_char_p, c_size_t, p_size]),
        "lucid_payouts_process": (ctypes.c_int, [c_void_p, p_size]),
        "lucid_ledger_seal": (ctypes.c_int, [c_void_p, p_i64]),
        "lucid_ledger_verify": (ctypes.c_int, [c_void_p, c_char_p, c_size_t, p_size]),
        "lucid_task_submit": (ctypes.c_int, [c_void_p, c_char_p, out_str]),
        "lucid_task_get": (ctypes.c_int, [c_void_p, c_char_p, c_char_p, c_size_t, p_size]),
        "lucid_task_result": (ctypes.c_int, [c_void_p, c_char_p, c_char_p, c_size_t, p_size]),
        "lucid_tasks_schedule": (ctypes.c_int, [c_void_p]),
        "lucid_device_report": (ctypes.c_int, [c_void_p, c_int64, c_char_p, out_str]),
        "lucid_agent_take_work": (ctypes.c_int, [c_void_p, c_int64, out_str]),
        "lucid_task_start": (ctypes.c_int, [c_void_p, c_int64, c_char_p, out_str]),
        "lucid_task_report_result": (ctypes.c_int, [c_void_p, c_int64, c_char_p, c_char_p, out_str]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_lib = _load()
ABI_VERSION = 2
if _lib.lucid_abi_version() != ABI_VERSION:
    raise ImportError(f"lucidnode: {library_path()} has C ABI version {_lib.lucid_abi_version()}, "
                      f"this binding needs {ABI_VERSION}")


def version():
    """The version of the loaded library, e.g. "0.1.0"."""
    return _lib.lucid_version().decode()


def _raise(status):
    # The message and field are thread-local in the library: read them on the
    # thread that made the failed call, before any other lucid_* call.
    message = (_lib.lucid_last_error_message() or b"").decode("utf-8", "replace")
    field = (_lib.lucid_last_error_field() or b"").decode("utf-8", "replace")
    if status == _OUT_OF_MEMORY:
        raise MemoryError(message or "lucidnode: out of memory")
    cls = _ERRORS.get(status)
    if cls is None:
        raise LucidError(message or _lib.lucid_status_name(status).decode(), field, status)
    raise cls(message, field)


def _check(status):
    if status != _OK:
        _raise(status)


def _text(value, name):
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a str", name)
    return value.encode("utf-8")


def _json(obj):
    return json.dumps({k: v for k, v in obj.items() if v is not None}).encode("utf-8")


def _amount(value):
    if isinstance(value, float):
        # A binary float is not an exact amount: say so rather than round.
        raise InvalidArgument("amount must be a str, int or Decimal, not float", "amount")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


class Cluster:
    """An open lucidnode cluster: a database file, its key, and the
    background executor. A context manager: `with Cluster(path) as c:`
    starts it (unless read_only) and closes it on exit.

    Options are those of lucid_cluster_open (bindings/c/lucidnode.h):
    key_file, read_only, executor_threads, stats_flush_interval_ms,
    block_time_ms, payout_interval_ms, poot_freshness_s, poot_window_s.
    Raises InvalidArgument for a bad option, StorageError when the database
    or key file cannot be used."""

    def __init__(self, database_path, **options):
        self._lock = threading.Condition()
        self._in_flight = 0
        self._handle = None
        self.read_only = bool(options.get("read_only", False))
        opts = {"database_path": os.fspath(database_path)}
        opts.update(options)
        handle = ctypes.c_void_p()
        _check(_lib.lucid_cluster_open(_json(opts), ctypes.byref(handle)))
        self._handle = handle

    # -- lifetime --

    def __enter__(self):
        if not self.read_only:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def close(self):
        """Flushes, stops and frees the cluster; waits for calls in flight.
        Idempotent."""
        with self._lock:
            handle, self._handle = self._handle, None
            while self._in_flight:
                self._lock.wait()
        if handle is not None:
            _lib.lucid_cluster_close(handle)

    @property
    def closed(self):
        return self._handle is None

    def _call(self, fn, *args):
        with self._lock:
            if self._handle is None:
                raise ClusterClosed("the cluster is closed")
            handle = self._handle
            self._in_flight += 1
        try:
            return fn(handle, *args)
        finally:
            with self._lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self._lock.notify_all()

    def _mutate(self, fn, *args):
        """A state-changing call returning a library-allocated JSON string."""
        out = ctypes.c_void_p()

        def call(handle, *a):
            status = fn(handle, *a, ctypes.byref(out))
            if status != _OK:
                _raise(status)
            try:
                return json.loads(ctypes.string_at(out.value).decode("utf-8"))
            finally:
                _lib.lucid_free(out)
        return self._call(call, *args)

    def _read(self, fn, *args):
        """A read filling a caller buffer; grows the buffer as told."""
        def call(handle, *a):
            cap = 16384
            for _ in range(8):
                buf = ctypes.create_string_buffer(cap)
                needed = ctypes.c_size_t(0)
                status = fn(handle, *a, buf, cap, ctypes.byref(needed))
                if status == _BUFFER_TOO_SMALL:
                    cap = max(needed.value, cap * 2)  # the data may grow between calls
                    continue
                if status != _OK:
                    _raise(status)
                return json.loads(buf.value.decode("utf-8"))
            raise InternalError("lucidnode: result kept outgrowing the buffer")
        return self._call(call, *args)

    def start(self):
        """Starts the background executor. Idempotent."""
        self._call(lambda h: _check(_lib.lucid_cluster_start(h)))

    def stop(self):
        """Flushes buffered writes and stops the executor. Idempotent."""
        self._call(lambda h: _check(_lib.lucid_cluster_stop(h)))

    # -- nodes --

    def join(self, hostname, ip_address=None, system_info=None, join_secret=None):
        """{"request_id", "registration_code", "already_active"[, "join_secret"]}.

        join_secret comes only when this call created the request; a re-join
        of a pending hostname must pass it back (else Conflict)."""
        return self._mutate(_lib.lucid_node_join,
                            _json({"hostname": hostname, "ip_address": ip_address, "system_info": system_info,
                                   "join_secret": join_secret}))

    def poll(self, code, join_secret=None):
        """{"status"[, "api_key"]}: the key comes once, after approval, and
        only to a poll that passes the join secret (PermissionDenied if wrong)."""
        secret = None if join_secret is None else _text(join_secret, "join_secret")
        return self._mutate(_lib.lucid_node_poll, _text(code, "code"), secret)

    def approve(self, node_id):
        return self._mutate(_lib.lucid_node_approve, int(node_id))

    def approve_code(self, code):
        return self._mutate(_lib.lucid_node_approve_code, _text(code, "code"))

    def authenticate(self, api_key):
        """The node id an API key belongs to; Unauthenticated otherwise."""
        key = _text(api_key, "api_key")
        node_id = ctypes.c_int64()
        self._call(lambda h: _check(_lib.lucid_node_authenticate(h, key, ctypes.byref(node_id))))
        return node_id.value

    def report_stats(self, node_id, cpu_usage, disk_usage, **extra):
        """extra: active_backups, memory_percent, uptime_seconds, disk_total_gb."""
        body = _json(dict(cpu_usage=cpu_usage, disk_usage=disk_usage, **extra))
        self._call(lambda h: _check(_lib.lucid_node_report_stats(h, int(node_id), body)))

    def nodes(self, skip=0, limit=100):
        """{"total", "nodes": [...]}: one page, by id."""
        return self._read(_lib.lucid_nodes_list, int(skip), int(limit))

    def iter_nodes(self, page_size=500):
        skip = 0
        while True:
            page = self.nodes(skip, page_size)["nodes"]
            yield from page
            if len(page) < page_size:
                return
            skip += len(page)

    def node(self, node_id):
        """One node with "recent_stats" (newest first)."""
        return self._read(_lib.lucid_node_get, int(node_id))

    # -- pools --

    def create_pool(self, name, description=None, max_nodes=None, max_cpu_cores=None, max_memory_gb=None,
                    max_storage_gb=None):
        return self._mutate(_lib.lucid_pool_create, _json({
            "name": name, "description": description, "max_nodes": max_nodes, "max_cpu_cores": max_cpu_cores,
            "max_memory_gb": max_memory_gb, "max_storage_gb": max_storage_gb}))

    def add_to_pool(self, pool_uid, node_uid, priority=50):
        return self._mutate(_lib.lucid_pool_add_node, _text(pool_uid, "pool_uid"), _text(node_uid, "node_uid"),
                            int(priority))

    def pools(self, page=1, limit=100):
        return self._read(_lib.lucid_pools_list, int(page), int(limit))

    def iter_pools(self):
        page = 1
        while True:
            batch = self.pools(page, 100)["pools"]
            yield from batch
            if len(batch) < 100:
                return
            page += 1

    # -- PoOT --

    def validate_proof(self, node_uid, output_data, timestamp, nonce, signature=None):
        """Validates and stores one proof; an invalid proof is a result with
        "valid": False, a malformed one raises InvalidArgument. output_data:
        base64 text, or bytes (encoded here)."""
        if isinstance(output_data, (bytes, bytearray)):
            import base64
            output_data = base64.b64encode(output_data).decode("ascii")
        return self._mutate(_lib.lucid_poot_validate, _json({
            "node_uid": node_uid, "output_data": output_data, "timestamp": timestamp, "nonce": nonce,
            "signature": signature}))

    # -- payouts and ledger --

    def submit_payouts(self, requests, batch_id=None):
        """requests: dicts {"node_id" ("node_..."), "amount" (str, int or
        Decimal; never float), "currency"?, "wallet_address"?}. Idempotent per
        batch_id."""
        reqs = [dict(r, amount=_amount(r.get("amount"))) for r in requests]
        return self._mutate(_lib.lucid_payout_submit, _json({"batch_id": batch_id, "payout_requests": reqs}))

    def payout_batch(self, batch_id):
        return self._read(_lib.lucid_payout_batch, _text(batch_id, "batch_id"))

    def payouts_for_node(self, node_uid, page=1, limit=100):
        return self._read(_lib.lucid_payouts_for_node, _text(node_uid, "node_uid"), int(page), int(limit))

    def iter_payouts(self, node_uid):
        page = 1
        while True:
            batch = self.payouts_for_node(node_uid, page, 100)["payouts"]
            yield from batch
            if len(batch) < 100:
                return
            page += 1

    def process_payouts(self):
        """One processing round now; returns how many payouts it settled."""
        n = ctypes.c_size_t()
        self._call(lambda h: _check(_lib.lucid_payouts_process(h, ctypes.byref(n))))
        return n.value

    def seal_ledger(self):
        """Seals pending ledger transactions now; returns the new block count."""
        n = ctypes.c_int64()
        self._call(lambda h: _check(_lib.lucid_ledger_seal(h, ctypes.byref(n))))
        return n.value

    def verify_ledger(self):
        """{"ok", "blocks", "transactions", "pending", "broken_height", ...}."""
        return self._read(_lib.lucid_ledger_verify)

    # -- tasks --

    def submit_task(self, task_type, payload=None, priority=None, requirements=None, metadata=None):
        """Queues a task; returns it as a dict (status "queued"). requirements:
        a dict of the cluster API's names (min_cpu_cores, required_tags, ...)."""
        body = {"task_type": task_type, "payload": payload, "priority": priority,
                "requirements": requirements, "metadata": metadata}
        return self._mutate(_lib.lucid_task_submit, _json(body))

    def task(self, task_id):
        """The task as a dict; NotFound for an unknown id."""
        return self._read(_lib.lucid_task_get, _text(task_id, "task_id"))

    def task_result(self, task_id):
        """{"task_id", "status", "final", "result_data", "error", "exit_code",
        "execution_time_seconds", "worker_device_id", "started_at", "completed_at"}."""
        return self._read(_lib.lucid_task_result, _text(task_id, "task_id"))

    def schedule_tasks(self):
        """One scheduling pass now (normally the executor's job)."""
        self._call(lambda h: _check(_lib.lucid_tasks_schedule(h)))

    # -- agent side, in-process --

    def report_device(self, node_id, platform, capabilities, allowed_task_types, max_concurrent=1,
                      role=None, tags=None, agent_version=None):
        """The node's agent describes its device; returns the device dict.
        capabilities: {"cpu_count", "memory_total_gb", "storage_total_gb", "has_gpu"?, "internet"?}."""
        body = {"platform": platform, "capabilities": capabilities, "allowed_task_types": list(allowed_task_types),
                "max_concurrent": max_concurrent, "role": role,
                "tags": list(tags) if tags is not None else None, "agent_version": agent_version}
        return self._mutate(_lib.lucid_device_report, int(node_id), _json(body))

    def take_work(self, node_id):
        """What waits for the device now, without blocking (taken: not given
        twice): {"tasks": [{"task_id", "task_type", "payload", "timeout_seconds",
        "attempt"}], "cancel": [...], "pings": [...]}."""
        return self._mutate(_lib.lucid_agent_take_work, int(node_id))

    def start_task(self, node_id, task_id):
        """assigned -> running; Conflict when not assigned to this node."""
        return self._mutate(_lib.lucid_task_start, int(node_id), _text(task_id, "task_id"))

    def report_result(self, node_id, task_id, status, result=None, error=None, exit_code=None, duration_ms=0):
        """status: "completed" | "failed" | "timeout" | "cancelled". Stores the
        result once; returns the task."""
        body = {"status": status, "result": result, "error": error, "exit_code": exit_code,
                "duration_ms": duration_ms}
        return self._mutate(_lib.lucid_task_report_result, int(node_id), _text(task_id, "task_id"), _json(body))
