"""Finding and loading liblucidnode (the C ABI) for the binding.

Loaded on first use, not at import: `import lucidnode` works without the
library, and the first call that needs it raises LibraryError saying where
it looked and how to point at it.
"""

import ctypes
import ctypes.util
import os
import threading
from typing import Dict, List, Optional, Tuple

from .errors import LibraryError

# The C ABI version this binding speaks (LUCID_C_ABI_VERSION).
ABI_VERSION = 3

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None

# The C callback types (lucid_mail_fn, lucid_event_fn).
MAIL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p)
EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


def library_path() -> str:
    """The path (or file name) the binding loads: $LUCIDNODE_LIBRARY, else the
    installed liblucidnode.so.0 found by the dynamic loader."""
    env = os.environ.get("LUCIDNODE_LIBRARY")
    if env:
        return env
    return "liblucidnode.so.0"


def _candidates() -> List[str]:
    first = library_path()
    if os.environ.get("LUCIDNODE_LIBRARY"):
        return [first]
    found = ctypes.util.find_library("lucidnode")
    return [first] + ([found] if found and found != first else [])


def _signatures() -> Dict[str, Tuple[object, List[object]]]:
    c_int, c_int64, c_size_t = ctypes.c_int, ctypes.c_int64, ctypes.c_size_t
    c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
    out = ctypes.POINTER(c_void_p)  # char** (a void* keeps the pointer for lucid_free)
    p_i64, p_size = ctypes.POINTER(c_int64), ctypes.POINTER(c_size_t)
    return {
        "lucid_version": (c_char_p, []),
        "lucid_abi_version": (c_int, []),
        "lucid_status_name": (c_char_p, [c_int]),
        "lucid_last_error_message": (c_char_p, []),
        "lucid_last_error_field": (c_char_p, []),
        "lucid_free": (None, [c_void_p]),
        "lucid_cluster_open": (c_int, [c_char_p, out]),
        "lucid_cluster_open_with_mailer": (c_int, [c_char_p, MAIL_FN, c_void_p, out]),
        "lucid_cluster_close": (None, [c_void_p]),
        "lucid_cluster_start": (c_int, [c_void_p]),
        "lucid_cluster_stop": (c_int, [c_void_p]),
        "lucid_node_join": (c_int, [c_void_p, c_char_p, out]),
        "lucid_node_poll": (c_int, [c_void_p, c_char_p, c_char_p, out]),
        "lucid_node_approve": (c_int, [c_void_p, c_int64, out]),
        "lucid_node_approve_code": (c_int, [c_void_p, c_char_p, out]),
        "lucid_node_authenticate": (c_int, [c_void_p, c_char_p, p_i64]),
        "lucid_node_report_stats": (c_int, [c_void_p, c_int64, c_char_p]),
        "lucid_nodes_list": (c_int, [c_void_p, c_int64, c_int64, out]),
        "lucid_node_get": (c_int, [c_void_p, c_int64, out]),
        "lucid_pool_create": (c_int, [c_void_p, c_char_p, out]),
        "lucid_pool_add_node": (c_int, [c_void_p, c_char_p, c_char_p, c_int64, out]),
        "lucid_pools_list": (c_int, [c_void_p, c_int64, c_int64, out]),
        "lucid_poot_validate": (c_int, [c_void_p, c_char_p, out]),
        "lucid_payout_submit": (c_int, [c_void_p, c_char_p, out]),
        "lucid_payout_batch": (c_int, [c_void_p, c_char_p, out]),
        "lucid_payouts_for_node": (c_int, [c_void_p, c_char_p, c_int64, c_int64, out]),
        "lucid_payouts_process": (c_int, [c_void_p, p_size]),
        "lucid_ledger_seal": (c_int, [c_void_p, p_i64]),
        "lucid_ledger_verify": (c_int, [c_void_p, out]),
        "lucid_task_submit": (c_int, [c_void_p, c_char_p, out]),
        "lucid_task_get": (c_int, [c_void_p, c_char_p, out]),
        "lucid_task_result": (c_int, [c_void_p, c_char_p, out]),
        "lucid_tasks_schedule": (c_int, [c_void_p]),
        "lucid_device_report": (c_int, [c_void_p, c_int64, c_char_p, out]),
        "lucid_agent_take_work": (c_int, [c_void_p, c_int64, out]),
        "lucid_task_start": (c_int, [c_void_p, c_int64, c_char_p, out]),
        "lucid_task_report_result": (c_int, [c_void_p, c_int64, c_char_p, c_char_p, out]),
        "lucid_user_create": (c_int, [c_void_p, c_char_p, out]),
        "lucid_user_get": (c_int, [c_void_p, c_char_p, out]),
        "lucid_login_start": (c_int, [c_void_p, c_char_p, p_i64]),
        "lucid_login_verify": (c_int, [c_void_p, c_char_p, c_char_p, out]),
        "lucid_session_refresh": (c_int, [c_void_p, c_char_p, out]),
        "lucid_session_logout": (c_int, [c_void_p, c_char_p]),
        "lucid_token_verify": (c_int, [c_void_p, c_char_p, out]),
        "lucid_service_create_standalone": (c_int, [c_void_p, c_char_p, out]),
        "lucid_workflow_define": (c_int, [c_void_p, c_char_p, out]),
        "lucid_workflow_execute": (c_int, [c_void_p, c_int64, out]),
        "lucid_workflow_execution": (c_int, [c_void_p, c_int64, out]),
        "lucid_events_subscribe": (c_int, [c_void_p, EVENT_FN, c_void_p, out]),
        "lucid_subscription_close": (None, [c_void_p]),
    }


def lib() -> ctypes.CDLL:
    """The loaded library, its functions typed. Raises LibraryError when it
    cannot be found or speaks another C ABI version. Thread-safe."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        errors = []
        loaded: Optional[ctypes.CDLL] = None
        for name in _candidates():
            try:
                loaded = ctypes.CDLL(name)
                break
            except OSError as e:
                errors.append(str(e))
        if loaded is None:
            raise LibraryError(
                "lucidnode: cannot load liblucidnode (" + "; ".join(errors) + "). Install the lucidnode package "
                "(it ships liblucidnode.so.0), or set LUCIDNODE_LIBRARY to the library's path "
                "(a build tree: build/lib/liblucidnode.so)")
        try:
            abi = ctypes.CFUNCTYPE(ctypes.c_int)(("lucid_abi_version", loaded))()
        except AttributeError as e:
            raise LibraryError(f"lucidnode: {library_path()} is not liblucidnode ({e})") from e
        if abi != ABI_VERSION:
            raise LibraryError(f"lucidnode: {library_path()} has C ABI version {abi}, this binding needs "
                               f"{ABI_VERSION}: install matching versions of the library and the binding")
        for name, (restype, argtypes) in _signatures().items():
            fn = getattr(loaded, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = loaded
        return loaded
