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
variable (a path to liblucidnode.so*), else the installed liblucidnode.so.0.
It is loaded on first use: importing works without it, and the first call
raises LibraryError saying what to do. Every failure raises a subclass of
LucidError; results are dicts decoded from the C ABI's JSON, typed by the
TypedDicts of lucidnode.types.

Thread-safety: a Cluster may be used from many threads at once; close()
waits for calls in flight and makes later calls raise ClusterClosed.
"""

import base64
import ctypes
import json
import os
import threading
from decimal import Decimal
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union,
                    cast)

from . import _library
from ._library import library_path
from .errors import (ClusterClosed, Conflict, InternalError, InvalidArgument, LibraryError, LucidError, NotFound,
                     PermissionDenied, ResourceExhausted, StorageError, Unauthenticated, Unavailable)
from .errors import BY_STATUS as _ERRORS
from .types import (Device, DeviceCapabilities, Event, Execution, JoinResult, JSONValue, LedgerReport, Node,
                    NodePage, Payout, PayoutBatch, PayoutPage, PollResult, Pool, PoolPage, ProofResult, Service,
                    Task, TaskRequirements, TaskResult, TokenClaims, Tokens, User, Work, WorkflowDefinition)

# The binding's own version; the library's is version(). They are released together.
__version__ = "0.1.0"

__all__ = [
    "Cluster", "Subscription", "LucidError", "InvalidArgument", "NotFound", "Conflict", "Unauthenticated",
    "PermissionDenied", "ResourceExhausted", "Unavailable", "StorageError", "InternalError", "ClusterClosed",
    "LibraryError", "version", "library_path", "MailHandler", "EventHandler", "__version__",
]

_OK = 0
_OUT_OF_MEMORY = 11

T = TypeVar("T")

# Receives login mail: (to, subject, body) -> delivered.
MailHandler = Callable[[str, str, str], bool]
# Receives every event of the cluster (see Cluster.subscribe).
EventHandler = Callable[[Event], None]


def version() -> str:
    """The version of the loaded library, e.g. "0.1.0". Raises LibraryError
    when the library cannot be loaded."""
    return cast(bytes, _library.lib().lucid_version()).decode()


def _raise(status: int) -> None:
    # The message and field are thread-local in the library: read them on the
    # thread that made the failed call, before any other lucid_* call.
    lib = _library.lib()
    message = cast(Optional[bytes], lib.lucid_last_error_message()) or b""
    field = cast(Optional[bytes], lib.lucid_last_error_field()) or b""
    text, name = message.decode("utf-8", "replace"), field.decode("utf-8", "replace")
    if status == _OUT_OF_MEMORY:
        raise MemoryError(text or "lucidnode: out of memory")
    cls = _ERRORS.get(status)
    if cls is None:
        raise LucidError(text or cast(bytes, lib.lucid_status_name(status)).decode(), name, status)
    raise cls(text, name)


def _check(status: int) -> None:
    if status != _OK:
        _raise(status)


def _text(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a str", name)
    return value.encode("utf-8")


def _json(obj: Mapping[str, object]) -> bytes:
    return json.dumps({k: v for k, v in obj.items() if v is not None}).encode("utf-8")


def _amount(value: object) -> object:
    if isinstance(value, float):
        # A binary float is not an exact amount: say so rather than round.
        raise InvalidArgument("amount must be a str, int or Decimal, not float", "amount")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


def _decode(text: Optional[bytes]) -> Any:
    return json.loads((text or b"null").decode("utf-8"))


class Subscription:
    """An event subscription (Cluster.subscribe); close() ends it: when close
    returns, the handler is not running and will not run again. A context
    manager."""

    def __init__(self, handle: ctypes.c_void_p, callback: Any) -> None:
        self._handle: Optional[ctypes.c_void_p] = handle
        self._callback = callback  # the ctypes thunk must outlive the subscription
        self._lock = threading.Lock()

    def close(self) -> None:
        """Ends the subscription. Idempotent; must not be called from the handler."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            _library.lib().lucid_subscription_close(handle)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass


class Cluster:
    """An open lucidnode cluster: a database file, its key, and the
    background executor. A context manager: `with Cluster(path) as c:`
    starts it (unless read_only) and closes it on exit.

    Options are those of lucid_cluster_open (bindings/c/lucidnode.h):
    key_file, read_only, executor_threads, stats_flush_interval_ms,
    block_time_ms, payout_interval_ms, poot_freshness_s, poot_window_s,
    outbox_dir, public_url, data_dir; or grouped by capability as
    lucid::Options groups them, e.g. poot={"window_s": 600},
    login={"public_url": "https://fleet.example"} (nodes, ledger, payouts,
    poot, login; one option given both ways is an InvalidArgument). A bad
    option's error field is the key as given ("poot_window_s" or
    "poot.window_s"). `mailer`, when given, receives login
    mail as mailer(to, subject, body) -> delivered, on the cluster's
    background threads (it must be thread-safe and must not call back into
    the cluster); without it mail goes to the outbox directory.
    Raises InvalidArgument for a bad option, StorageError when the database
    or key file cannot be used, LibraryError when the library cannot be
    loaded."""

    def __init__(self, database_path: Union[str, "os.PathLike[str]"], *, mailer: Optional[MailHandler] = None,
                 **options: Union[str, int, bool, Mapping[str, Union[str, int]]]) -> None:
        self._lock = threading.Condition()
        self._in_flight = 0
        self._handle: Optional[ctypes.c_void_p] = None
        self._mail_thunk: Any = None
        self.read_only = bool(options.get("read_only", False))
        lib = _library.lib()
        opts: Dict[str, object] = {"database_path": os.fspath(database_path)}
        opts.update(options)
        handle = ctypes.c_void_p()
        if mailer is None:
            _check(lib.lucid_cluster_open(_json(opts), ctypes.byref(handle)))
        else:
            deliver = mailer

            def on_mail(_user: Optional[int], to: Optional[bytes], subject: Optional[bytes],
                        body: Optional[bytes]) -> int:
                try:
                    return 1 if deliver((to or b"").decode(), (subject or b"").decode(), (body or b"").decode()) else 0
                except Exception:  # nothing may unwind into the library; undelivered
                    return 0
            self._mail_thunk = _library.MAIL_FN(on_mail)
            _check(lib.lucid_cluster_open_with_mailer(_json(opts), self._mail_thunk, None, ctypes.byref(handle)))
        self._handle = handle

    # -- lifetime --

    def __enter__(self) -> "Cluster":
        if not self.read_only:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def close(self) -> None:
        """Flushes, stops and frees the cluster; waits for calls in flight.
        Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the lock existed
            return
        with lock:
            handle, self._handle = self._handle, None
            while self._in_flight:
                lock.wait()
        if handle is not None:
            _library.lib().lucid_cluster_close(handle)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _call(self, fn: Callable[[ctypes.c_void_p], T]) -> T:
        with self._lock:
            if self._handle is None:
                raise ClusterClosed("the cluster is closed")
            handle = self._handle
            self._in_flight += 1
        try:
            return fn(handle)
        finally:
            with self._lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self._lock.notify_all()

    def _result(self, name: str, *args: object) -> Any:
        """Calls lucid_<name>(handle, *args, &out_json) and decodes the
        library-allocated JSON (the C ABI's one output convention)."""
        fn = getattr(_library.lib(), name)

        def call(handle: ctypes.c_void_p) -> Any:
            out = ctypes.c_void_p()
            status = fn(handle, *args, ctypes.byref(out))
            try:
                _check(status)
                return _decode(ctypes.string_at(out.value) if out.value else None)
            finally:
                _library.lib().lucid_free(out)
        return self._call(call)

    def _status(self, name: str, *args: object) -> None:
        fn = getattr(_library.lib(), name)
        self._call(lambda h: _check(fn(h, *args)))

    def start(self) -> None:
        """Starts the background executor. Idempotent."""
        self._status("lucid_cluster_start")

    def stop(self) -> None:
        """Flushes buffered writes and stops the executor. Idempotent."""
        self._status("lucid_cluster_stop")

    # -- nodes --

    def join(self, hostname: str, ip_address: Optional[str] = None, system_info: Optional[str] = None,
             join_secret: Optional[str] = None) -> JoinResult:
        """join_secret comes only when this call created the request; a re-join
        of a pending hostname must pass it back (else Conflict)."""
        return cast(JoinResult, self._result("lucid_node_join", _json(
            {"hostname": hostname, "ip_address": ip_address, "system_info": system_info,
             "join_secret": join_secret})))

    def poll(self, code: str, join_secret: Optional[str] = None) -> PollResult:
        """The key comes once, after approval, and only to a poll that passes
        the join secret (PermissionDenied if wrong)."""
        secret = None if join_secret is None else _text(join_secret, "join_secret")
        return cast(PollResult, self._result("lucid_node_poll", _text(code, "code"), secret))

    def approve(self, node_id: int) -> Node:
        return cast(Node, self._result("lucid_node_approve", int(node_id)))

    def approve_code(self, code: str) -> Node:
        return cast(Node, self._result("lucid_node_approve_code", _text(code, "code")))

    def authenticate(self, api_key: str) -> int:
        """The node id an API key belongs to; Unauthenticated otherwise."""
        key = _text(api_key, "api_key")
        node_id = ctypes.c_int64()
        self._status("lucid_node_authenticate", key, ctypes.byref(node_id))
        return node_id.value

    def report_stats(self, node_id: int, cpu_usage: float, disk_usage: float, **extra: Union[int, float]) -> None:
        """extra: active_backups, memory_percent, uptime_seconds, disk_total_gb."""
        body = _json(dict(cpu_usage=cpu_usage, disk_usage=disk_usage, **extra))
        self._status("lucid_node_report_stats", int(node_id), body)

    def nodes(self, skip: int = 0, limit: int = 100) -> NodePage:
        """One page, by id."""
        return cast(NodePage, self._result("lucid_nodes_list", int(skip), int(limit)))

    def iter_nodes(self, page_size: int = 500) -> Iterator[Node]:
        skip = 0
        while True:
            page = self.nodes(skip, page_size)["nodes"]
            yield from page
            if len(page) < page_size:
                return
            skip += len(page)

    def node(self, node_id: int) -> Node:
        """One node with "recent_stats" (newest first)."""
        return cast(Node, self._result("lucid_node_get", int(node_id)))

    # -- pools --

    def create_pool(self, name: str, description: Optional[str] = None, max_nodes: Optional[int] = None,
                    max_cpu_cores: Optional[int] = None, max_memory_gb: Optional[float] = None,
                    max_storage_gb: Optional[float] = None) -> Pool:
        return cast(Pool, self._result("lucid_pool_create", _json({
            "name": name, "description": description, "max_nodes": max_nodes, "max_cpu_cores": max_cpu_cores,
            "max_memory_gb": max_memory_gb, "max_storage_gb": max_storage_gb})))

    def add_to_pool(self, pool_uid: str, node_uid: str, priority: int = 50) -> Pool:
        return cast(Pool, self._result("lucid_pool_add_node", _text(pool_uid, "pool_uid"),
                                       _text(node_uid, "node_uid"), int(priority)))

    def pools(self, page: int = 1, limit: int = 100) -> PoolPage:
        return cast(PoolPage, self._result("lucid_pools_list", int(page), int(limit)))

    def iter_pools(self) -> Iterator[Pool]:
        page = 1
        while True:
            batch = self.pools(page, 100)["pools"]
            yield from batch
            if len(batch) < 100:
                return
            page += 1

    # -- PoOT --

    def validate_proof(self, node_uid: str, output_data: Union[str, bytes, bytearray], timestamp: str, nonce: str,
                       signature: Optional[str] = None) -> ProofResult:
        """Validates and stores one proof; an invalid proof is a result with
        "valid": False, a malformed one raises InvalidArgument. output_data:
        base64 text, or bytes (encoded here)."""
        if isinstance(output_data, (bytes, bytearray)):
            output_data = base64.b64encode(bytes(output_data)).decode("ascii")
        return cast(ProofResult, self._result("lucid_poot_validate", _json({
            "node_uid": node_uid, "output_data": output_data, "timestamp": timestamp, "nonce": nonce,
            "signature": signature})))

    # -- payouts and ledger --

    def submit_payouts(self, requests: Iterable[Mapping[str, object]], batch_id: Optional[str] = None) -> PayoutBatch:
        """requests: dicts {"node_id" ("node_..."), "amount" (str, int or
        Decimal; never float), "currency"?, "wallet_address"?}. Idempotent per
        batch_id."""
        reqs = [dict(r, amount=_amount(r.get("amount"))) for r in requests]
        return cast(PayoutBatch, self._result("lucid_payout_submit",
                                              _json({"batch_id": batch_id, "payout_requests": reqs})))

    def payout_batch(self, batch_id: str) -> PayoutBatch:
        return cast(PayoutBatch, self._result("lucid_payout_batch", _text(batch_id, "batch_id")))

    def payouts_for_node(self, node_uid: str, page: int = 1, limit: int = 100) -> PayoutPage:
        return cast(PayoutPage, self._result("lucid_payouts_for_node", _text(node_uid, "node_uid"), int(page),
                                             int(limit)))

    def iter_payouts(self, node_uid: str) -> Iterator[Payout]:
        page = 1
        while True:
            batch = self.payouts_for_node(node_uid, page, 100)["payouts"]
            yield from batch
            if len(batch) < 100:
                return
            page += 1

    def process_payouts(self) -> int:
        """One processing round now; returns how many payouts it settled."""
        n = ctypes.c_size_t()
        self._status("lucid_payouts_process", ctypes.byref(n))
        return n.value

    def seal_ledger(self) -> int:
        """Seals pending ledger transactions now; returns the new block count."""
        n = ctypes.c_int64()
        self._status("lucid_ledger_seal", ctypes.byref(n))
        return n.value

    def verify_ledger(self) -> LedgerReport:
        return cast(LedgerReport, self._result("lucid_ledger_verify"))

    # -- tasks --

    def submit_task(self, task_type: str, payload: JSONValue = None, priority: Optional[str] = None,
                    requirements: Optional[TaskRequirements] = None,
                    metadata: Optional[Mapping[str, JSONValue]] = None) -> Task:
        """Queues a task (status "queued"). requirements: the cluster API's
        names (min_cpu_cores, required_tags, ...)."""
        body = {"task_type": task_type, "payload": payload, "priority": priority,
                "requirements": requirements, "metadata": metadata}
        return cast(Task, self._result("lucid_task_submit", _json(body)))

    def task(self, task_id: str) -> Task:
        """NotFound for an unknown id."""
        return cast(Task, self._result("lucid_task_get", _text(task_id, "task_id")))

    def task_result(self, task_id: str) -> TaskResult:
        return cast(TaskResult, self._result("lucid_task_result", _text(task_id, "task_id")))

    def schedule_tasks(self) -> None:
        """One scheduling pass now (normally the executor's job)."""
        self._status("lucid_tasks_schedule")

    # -- agent side, in-process --

    def report_device(self, node_id: int, platform: str, capabilities: DeviceCapabilities,
                      allowed_task_types: Iterable[str], max_concurrent: int = 1, role: Optional[str] = None,
                      tags: Optional[Iterable[str]] = None, agent_version: Optional[str] = None) -> Device:
        """The node's agent describes its device."""
        body = {"platform": platform, "capabilities": capabilities, "allowed_task_types": list(allowed_task_types),
                "max_concurrent": max_concurrent, "role": role,
                "tags": list(tags) if tags is not None else None, "agent_version": agent_version}
        return cast(Device, self._result("lucid_device_report", int(node_id), _json(body)))

    def take_work(self, node_id: int) -> Work:
        """What waits for the device now, without blocking (taken: not given twice)."""
        return cast(Work, self._result("lucid_agent_take_work", int(node_id)))

    def start_task(self, node_id: int, task_id: str) -> Task:
        """assigned -> running; Conflict when not assigned to this node."""
        return cast(Task, self._result("lucid_task_start", int(node_id), _text(task_id, "task_id")))

    def report_result(self, node_id: int, task_id: str, status: str, result: JSONValue = None,
                      error: Optional[str] = None, exit_code: Optional[int] = None, duration_ms: int = 0) -> Task:
        """status: "completed" | "failed" | "timeout" | "cancelled". Stores the
        result once; returns the task."""
        body = {"status": status, "result": result, "error": error, "exit_code": exit_code,
                "duration_ms": duration_ms}
        return cast(Task, self._result("lucid_task_report_result", int(node_id), _text(task_id, "task_id"),
                                       _json(body)))

    # -- users and sessions --

    def create_user(self, email: str, username: str, password: str, first_name: Optional[str] = None,
                    last_name: Optional[str] = None, role: Optional[str] = None) -> User:
        """The password is checked, never stored (login is passwordless).
        Conflict when the email or username is taken."""
        return cast(User, self._result("lucid_user_create", _json({
            "email": email, "username": username, "password": password, "first_name": first_name,
            "last_name": last_name, "role": role})))

    def user(self, user_id: str) -> User:
        return cast(User, self._result("lucid_user_get", _text(user_id, "user_id")))

    def start_login(self, email: str) -> int:
        """Mails a one-time code (to the mailer, or the outbox); returns its
        validity in seconds. An unknown address gets the same answer, no mail."""
        ttl = ctypes.c_int64()
        self._status("lucid_login_start", _text(email, "email"), ctypes.byref(ttl))
        return ttl.value

    def verify_login(self, email: str, code: str) -> Tokens:
        """Opens a session; Unauthenticated for a wrong, used or expired code."""
        return cast(Tokens, self._result("lucid_login_verify", _text(email, "email"), _text(code, "code")))

    def refresh_session(self, refresh_token: str) -> Tokens:
        """Rotates the refresh token; reusing a rotated one revokes the session."""
        return cast(Tokens, self._result("lucid_session_refresh", _text(refresh_token, "refresh_token")))

    def logout(self, session_id: str) -> None:
        """Revokes the session at once (idempotent)."""
        self._status("lucid_session_logout", _text(session_id, "session_id"))

    def verify_token(self, access_token: str) -> TokenClaims:
        """Unauthenticated for a bad, expired or revoked token."""
        return cast(TokenClaims, self._result("lucid_token_verify", _text(access_token, "access_token")))

    # -- workflows --

    def create_standalone_service(self, name: str, executable_path: str, arguments: Sequence[str] = (),
                                  description: Optional[str] = None, working_directory: Optional[str] = None,
                                  environment: Optional[Mapping[str, str]] = None,
                                  timeout_seconds: Optional[int] = None) -> Service:
        """An executable inside the data directory, as a workflow step."""
        return cast(Service, self._result("lucid_service_create_standalone", _json({
            "name": name, "executable_path": executable_path, "arguments": list(arguments),
            "description": description, "working_directory": working_directory,
            "environment": dict(environment) if environment is not None else None,
            "timeout_seconds": timeout_seconds})))

    def define_workflow(self, name: str, nodes: Sequence[Mapping[str, object]],
                        connections: Sequence[Mapping[str, int]] = (),
                        description: Optional[str] = None) -> WorkflowDefinition:
        """nodes: [{"service_id", "config"?}]; connections: [{"source": i,
        "target": j}] by index into nodes (the source's stdout feeds the
        target's stdin). All or nothing."""
        return cast(WorkflowDefinition, self._result("lucid_workflow_define", _json({
            "name": name, "description": description, "nodes": [dict(n) for n in nodes],
            "connections": [dict(c) for c in connections]})))

    def execute_workflow(self, workflow_id: int) -> Execution:
        """Starts an execution and returns at once (status RUNNING)."""
        return cast(Execution, self._result("lucid_workflow_execute", int(workflow_id)))

    def execution(self, execution_id: int) -> Execution:
        """An execution's status, with its jobs and their output."""
        return cast(Execution, self._result("lucid_workflow_execution", int(execution_id)))

    # -- events --

    def subscribe(self, handler: EventHandler) -> Subscription:
        """Calls handler(event) for every event of the cluster until the
        subscription is closed. It runs on the thread that caused the event,
        synchronously: it must be quick, thread-safe, and must not call the
        cluster. An exception it raises is swallowed."""
        def on_event(_user: Optional[int], text: Optional[bytes]) -> None:
            try:
                handler(cast(Event, _decode(text)))
            except Exception:  # nothing may unwind into the library
                pass
        thunk = _library.EVENT_FN(on_event)
        out = ctypes.c_void_p()
        self._status("lucid_events_subscribe", thunk, None, ctypes.byref(out))
        return Subscription(out, thunk)

