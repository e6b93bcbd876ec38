"""The shapes of what lucidnode's calls return: JSON objects of the C ABI
(bindings/c/lucidnode.h says what each field means), as TypedDicts.

Timestamps are RFC 3339 strings; absent values are None.
"""

from typing import Any, List, NotRequired, Optional, TypedDict

__all__ = [
    "JoinResult", "PollResult", "StatsSample", "Node", "NodePage", "Pool", "PoolPage", "ProofResult",
    "PayoutBatch", "Payout", "PayoutPage", "LedgerReport", "TaskRequirements", "Task", "TaskResult",
    "DeviceCapabilities", "Device", "WorkItem", "Work", "User", "Tokens", "TokenClaims", "Service",
    "WorkflowDefinition", "Job", "Execution", "Event",
]

# Any JSON value a caller supplies or a task carries (payloads, results).
JSONValue = Any


class JoinResult(TypedDict):
    request_id: int
    registration_code: str
    already_active: bool
    join_secret: NotRequired[str]  # only when this call created the request


class PollResult(TypedDict):
    status: str
    api_key: NotRequired[str]  # once, to the holder of the join secret


class StatsSample(TypedDict):
    cpu_usage: float
    disk_usage: float
    active_backups: int
    memory_percent: Optional[float]
    uptime_seconds: Optional[int]
    disk_total_gb: Optional[float]
    at: Optional[str]


class Node(TypedDict):
    id: int
    uid: str
    uuid: str
    name: str
    hostname: str
    ip_address: Optional[str]
    status: str
    liveness: str
    lifecycle: str
    node_type: str
    pool_uid: Optional[str]
    storage_quota_gb: float
    created_at: Optional[str]
    approved_at: Optional[str]
    last_seen: Optional[str]
    poot_score: Optional[float]
    latest_stats: Optional[StatsSample]
    recent_stats: NotRequired[List[StatsSample]]  # Cluster.node() only


class NodePage(TypedDict):
    total: int
    nodes: List[Node]


class Pool(TypedDict):
    uid: str
    name: str
    description: str
    node_count: int
    max_nodes: Optional[int]
    max_cpu_cores: Optional[int]
    max_memory_gb: Optional[float]
    max_storage_gb: Optional[float]
    created_at: Optional[str]


class PoolPage(TypedDict):
    total: int
    pools: List[Pool]


class ProofResult(TypedDict):
    node_uid: str
    valid: bool
    status: str
    output_hash: str
    failure: Optional[str]
    reason: str
    validated_at: Optional[str]
    nonce: str


class PayoutBatch(TypedDict):
    batch_id: str
    status: str
    payout_count: int
    pending: int
    processing: int
    completed: int
    failed: int
    created: bool
    created_at: Optional[str]
    estimated_completion: Optional[str]


class Payout(TypedDict):
    payout_id: str
    node_uid: str
    amount: str  # an exact decimal: Decimal(payout["amount"])
    currency: str
    status: str
    failure_reason: Optional[str]
    transaction_hash: Optional[str]
    batch_id: str
    created_at: Optional[str]


class PayoutPage(TypedDict):
    total: int
    payouts: List[Payout]


class LedgerReport(TypedDict):
    ok: bool
    blocks: int
    transactions: int
    pending: int
    broken_height: Optional[int]
    broken_hash: Optional[str]
    problem: Optional[str]


class TaskRequirements(TypedDict, total=False):
    min_cpu_cores: int
    min_memory_gb: float
    min_storage_gb: float
    required_platform: Optional[str]
    required_role: Optional[str]
    required_tags: List[str]
    gpu_required: bool
    internet_required: bool
    timeout_seconds: int
    max_retries: int


class Task(TypedDict):
    task_id: str
    task_type: str
    status: str
    priority: str
    payload: JSONValue
    requirements: TaskRequirements
    metadata: JSONValue
    device_id: Optional[str]
    attempt: int
    retries: int
    progress: Optional[int]
    progress_message: Optional[str]
    status_reason: Optional[str]
    cancel_requested: bool
    result_data: JSONValue
    error: Optional[str]
    exit_code: Optional[int]
    execution_time_seconds: Optional[float]
    created_at: Optional[str]
    assigned_at: Optional[str]
    started_at: Optional[str]
    completed_at: Optional[str]


class TaskResult(TypedDict):
    task_id: str
    status: str
    final: bool
    result_data: JSONValue
    error: Optional[str]
    exit_code: Optional[int]
    execution_time_seconds: Optional[float]
    worker_device_id: Optional[str]
    started_at: Optional[str]
    completed_at: Optional[str]


class DeviceCapabilities(TypedDict, total=False):
    cpu_count: int
    memory_total_gb: float
    storage_total_gb: float
    has_gpu: bool
    internet: bool


class Device(TypedDict):
    device_id: str
    node_id: int
    hostname: str
    ip_address: str
    role: str
    platform: str
    reported: bool
    online: bool
    last_heartbeat: Optional[str]
    capabilities: DeviceCapabilities
    tags: List[str]
    allowed_task_types: List[str]
    max_concurrent: int
    agent_version: str
    active_tasks: int


class WorkItem(TypedDict):
    task_id: str
    task_type: str
    payload: JSONValue
    timeout_seconds: int
    attempt: int


class Work(TypedDict):
    tasks: List[WorkItem]
    cancel: List[str]
    pings: List[str]


class User(TypedDict):
    id: str
    email: str
    username: str
    first_name: str
    last_name: str
    role: str
    hardware_wallet_enabled: bool
    totp_enabled: bool
    created_at: Optional[str]
    updated_at: Optional[str]
    last_login: Optional[str]
    locked_until: Optional[str]


class Tokens(TypedDict):
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user: User


class TokenClaims(TypedDict):
    subject: str
    role: str
    session_id: Optional[str]
    issued_at: Optional[str]
    expires_at: Optional[str]


class Service(TypedDict):
    id: int
    name: str
    service_type: str
    status: str
    executable_path: str
    arguments: List[str]
    timeout_seconds: int


class WorkflowDefinition(TypedDict):
    workflow_id: int
    node_ids: List[int]
    connection_ids: List[int]


class Job(TypedDict):
    id: int
    node_id: int
    service_id: int
    status: str
    exit_code: Optional[int]
    error: Optional[str]
    started_at: Optional[str]
    completed_at: Optional[str]
    stdout: Optional[str]
    stderr: Optional[str]


class Execution(TypedDict):
    id: int
    workflow_id: int
    status: str  # RUNNING, COMPLETED, FAILED
    progress: int
    jobs_total: int
    jobs_done: int
    error: Optional[str]
    started_at: Optional[str]
    completed_at: Optional[str]
    jobs: List[Job]


class Event(TypedDict):
    kind: str  # node_joined, node_approved, node_updated, node_stats, network
    node_id: int
    type: str
    payload: JSONValue
