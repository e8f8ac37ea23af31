"""Options: exact ctypes mirrors of the C options structs, and Pythonic
wrappers that set and read them by name (the same names and text values as
config files, LIBGEN_<NAME> environment variables and `gen --set`)."""
import ctypes
from ctypes import byref, c_char, c_char_p, c_int32, c_size_t, c_uint32, c_uint64, c_void_p

from . import _lib
from .errors import check

GEN_CONTEXT_OPTIONS_VERSION = 2
GEN_QUEUE_OPTIONS_VERSION = 1
GEN_DEVICES_TEXT_MAX = 512
GEN_PATH_TEXT_MAX = 4096
GEN_DTYPE_TEXT_MAX = 8


class ContextOptionsStruct(ctypes.Structure):
    """gen_context_options, version 2 (include/gen/context.h). No padding."""
    _fields_ = [
        ("version", c_uint32),
        ("log_level", c_int32),
        ("max_cache_ram", c_uint64),
        ("device_working_mem", c_uint64),
        ("log_fn", _lib.LOG_FN),
        ("log_user_data", c_void_p),
        ("generation_devices", c_char * GEN_DEVICES_TEXT_MAX),
        ("db_path", c_char * GEN_PATH_TEXT_MAX),
        ("output_dir", c_char * GEN_PATH_TEXT_MAX),
        ("gpu_dtype", c_char * GEN_DTYPE_TEXT_MAX),  # version 2
    ]


class QueueOptionsStruct(ctypes.Structure):
    """gen_queue_options (include/gen/queue.h). Note: log_level/log_fn/
    log_user_data were appended without a version bump; the mirror follows
    the header (checked by tests/test_options.py)."""
    _fields_ = [
        ("version", c_uint32),
        ("mode", c_int32),
        ("max_queue_size", c_uint32),
        ("max_queue_history", c_uint32),
        ("max_attempts", c_uint32),
        ("busy_timeout_ms", c_uint32),
        ("lease_ms", c_uint32),
        ("heartbeat_ms", c_uint32),
        ("max_job_bytes", c_uint32),
        ("log_level", c_int32),
        ("log_fn", _lib.LOG_FN),
        ("log_user_data", c_void_p),
    ]


class QueueBatchStruct(ctypes.Structure):
    """gen_queue_batch, version 1."""
    _fields_ = [
        ("version", c_uint32),
        ("runs", c_uint32),
        ("job", c_char_p),
        ("jobs", ctypes.POINTER(c_char_p)),
        ("job_count", c_size_t),
        ("queue_id", c_char_p),
        ("user_id", c_char_p),
        ("batch_id", c_char_p),
        ("origin", c_char_p),
        ("destination", c_char_p),
        ("priority", c_int32),
        ("prepend", c_int32),
    ]


class QueueFilterStruct(ctypes.Structure):
    """gen_queue_filter, version 1."""
    _fields_ = [
        ("version", c_uint32),
        ("status", c_int32),
        ("queue_id", c_char_p),
        ("user_id", c_char_p),
        ("batch_id", c_char_p),
        ("destination", c_char_p),
        ("after_item_id", ctypes.c_int64),
        ("limit", c_uint32),
        ("descending", c_int32),
    ]


class QueueCountsStruct(ctypes.Structure):
    """gen_queue_counts, version 1."""
    _fields_ = [
        ("version", c_uint32),
        ("reserved", c_uint32),
        ("pending", c_uint64),
        ("in_progress", c_uint64),
        ("completed", c_uint64),
        ("failed", c_uint64),
        ("canceled", c_uint64),
        ("total", c_uint64),
    ]


class QueueEventStruct(ctypes.Structure):
    """gen_queue_event, version 1 (filled by the library)."""
    _fields_ = [
        ("version", c_uint32),
        ("old_status", c_int32),
        ("new_status", c_int32),
        ("reserved", c_int32),
        ("item_id", ctypes.c_int64),
        ("queue_id", c_char_p),
        ("batch_id", c_char_p),
        ("user_id", c_char_p),
        ("device", c_char_p),
        ("error_message", c_char_p),
    ]


def _value_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Options:
    """Context options. `Options(generation_devices="cpu:0,cpu:1", db_path=...)`;
    read and write by name: `opts["max_cache_ram"] = "8GiB"`, `opts["log_level"]`.
    Values are the option texts (see docs/configuration.md)."""

    def __init__(self, from_env=False, **settings):
        self._struct = ContextOptionsStruct()
        check(_lib.gen_context_options_init(byref(self._struct), GEN_CONTEXT_OPTIONS_VERSION))
        if from_env:
            self.update_from_env()
        for name, value in settings.items():
            self.set(name, value)

    def copy(self):
        other = Options.__new__(Options)
        other._struct = ContextOptionsStruct.from_buffer_copy(self._struct)
        return other

    @staticmethod
    def names():
        """Every option name this library knows."""
        return [_lib.text(_lib.gen_context_option_name(i))
                for i in range(_lib.gen_context_option_count())]

    def set(self, name, value):
        """Set one option from text (numbers and bools are converted). Raises
        NotFound for an unknown name, InvalidArgument for a bad value (the
        options are then unchanged)."""
        check(_lib.gen_context_options_set(byref(self._struct), _lib.cstr(name),
                                           _lib.cstr(_value_text(value))))
        return self

    def get(self, name):
        return _lib.get_text(_lib.gen_context_options_get, byref(self._struct), _lib.cstr(name))

    def update_from_env(self):
        """Apply every LIBGEN_<NAME> environment variable that is set."""
        check(_lib.gen_context_options_set_from_env(byref(self._struct)))
        return self

    __getitem__ = get

    def __setitem__(self, name, value):
        self.set(name, value)

    def as_dict(self):
        return {n: self.get(n) for n in self.names()}

    def __repr__(self):
        return f"Options({self.as_dict()!r})"

    @property
    def struct(self):
        """The ctypes mirror (for fields that have no text form, e.g. log_fn)."""
        return self._struct


class QueueOptions:
    """Queue options, by name: mode, max_queue_size, max_queue_history,
    max_attempts, busy_timeout_ms, lease_ms, heartbeat_ms, max_job_bytes."""

    NAMES = ("mode", "max_queue_size", "max_queue_history", "max_attempts", "busy_timeout_ms",
             "lease_ms", "heartbeat_ms", "max_job_bytes", "log_level")

    def __init__(self, **settings):
        self._struct = QueueOptionsStruct()
        check(_lib.gen_queue_options_init(byref(self._struct), GEN_QUEUE_OPTIONS_VERSION))
        for name, value in settings.items():
            self.set(name, value)

    def set(self, name, value):
        check(_lib.gen_queue_options_set(byref(self._struct), _lib.cstr(name),
                                         _lib.cstr(_value_text(value))))
        return self

    __setitem__ = set

    def __getitem__(self, name):
        if name not in self.NAMES:
            raise KeyError(name)
        value = getattr(self._struct, name)
        if name == "mode":
            return "fifo" if value == 1 else "round_robin"
        return value

    @property
    def struct(self):
        return self._struct
