"""lucidnode's exceptions: one class per lucid_status family."""

from typing import Dict, Optional, Type

__all__ = [
    "LucidError", "InvalidArgument", "NotFound", "Conflict", "Unauthenticated", "PermissionDenied",
    "ResourceExhausted", "Unavailable", "StorageError", "InternalError", "ClusterClosed", "LibraryError",
]


class LucidError(Exception):
    """A lucidnode call failed. `status` is the lucid_status value, `code` its
    stable name ("not_found", ...), `field` the input field concerned or ""."""

    status: Optional[int] = None
    code: str = "unknown"

    def __init__(self, message: str, field: str = "", status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def __str__(self) -> str:
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


class LibraryError(LucidError, OSError):
    """liblucidnode could not be loaded (not installed, LUCIDNODE_LIBRARY
    wrong) or speaks another C ABI version. Raised by the first call that
    needs the library, not by `import lucidnode`."""
    code = "library"


BY_STATUS: Dict[int, Type[LucidError]] = {
    cls.status: cls
    for cls in (InvalidArgument, NotFound, Conflict, Unauthenticated, PermissionDenied, ResourceExhausted,
                Unavailable, StorageError, InternalError)
    if cls.status is not None
}
