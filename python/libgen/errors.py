"""Exceptions: every failing libgen call raises a LibgenError subclass that
carries the gen_status and the message of gen_last_error_message()."""
from . import _lib


class LibgenError(Exception):
    """A libgen call failed. `status` is the gen_status (negative int),
    `status_name` its static text, `message` the detail from libgen."""
    status = None

    def __init__(self, status, message):
        self.status = status
        self.message = message
        self.status_name = _lib.text(_lib.gen_status_string(status))
        super().__init__(message or self.status_name)


class InvalidArgument(LibgenError, ValueError):
    """GEN_EINVAL: an argument or option value is invalid."""


class OutOfMemory(LibgenError, MemoryError):
    """GEN_ENOMEM."""


class IOFailure(LibgenError):
    """GEN_EIO: reading or writing a file failed."""


class FormatError(LibgenError, ValueError):
    """GEN_EFORMAT: a file or string is malformed."""


class NotFound(LibgenError, LookupError):
    """GEN_ENOTFOUND: a named thing (file, item, key, option) does not exist."""


class Unsupported(LibgenError):
    """GEN_EUNSUPPORTED: valid but not supported by this build or model."""


class VersionMismatch(LibgenError):
    """GEN_EVERSION: a struct, file or database is newer than the library."""


class QueueFull(LibgenError):
    """GEN_EFULL."""


class Busy(LibgenError):
    """GEN_EBUSY."""


class Canceled(LibgenError):
    """GEN_ECANCELED."""


class DeviceError(LibgenError):
    """GEN_EDEVICE."""


class DeviceOutOfMemory(DeviceError):
    """GEN_EDEVICE_OOM."""


class DatabaseError(LibgenError):
    """GEN_EDATABASE: the queue database failed or is corrupt."""


class PermissionDenied(LibgenError):
    """GEN_EPERM: e.g. another user's item."""


class StateError(LibgenError):
    """GEN_ESTATE: the object is in the wrong state for this call."""


class Timeout(LibgenError):
    """GEN_ETIMEOUT."""


class UserAbort(LibgenError):
    """GEN_EUSER: a callback asked to abort."""


class NoSpace(LibgenError):
    """GEN_ENOSPC."""


class InternalError(LibgenError):
    """GEN_EINTERNAL: a bug in libgen."""


_BY_STATUS = {
    -1: InvalidArgument, -2: OutOfMemory, -3: IOFailure, -4: FormatError, -5: NotFound,
    -6: Unsupported, -7: VersionMismatch, -8: QueueFull, -9: Busy, -10: Canceled,
    -11: DeviceError, -12: DeviceOutOfMemory, -13: DatabaseError, -14: PermissionDenied,
    -15: StateError, -16: Timeout, -17: UserAbort, -18: NoSpace, -19: InternalError,
}


def error_for(status, message=None):
    """The exception for a status (an unknown negative one gives LibgenError)."""
    if message is None:
        message = _lib.text(_lib.gen_last_error_message())
    cls = _BY_STATUS.get(status, LibgenError)
    return cls(status, message)


def check(status):
    """Raise for a failing status; the message is read on this thread, right
    after the call, as libgen keeps it per thread."""
    if status != 0:
        raise error_for(status)
    return status
