"""Loading libgen.so and declaring the C functions (argtypes/restype).

The library is looked for, in order:
  1. the LIBGEN_LIBRARY environment variable (a file, or a folder holding
     libgen.so.0); when it is set it must work, there is no fallback;
  2. `pkg-config --variable=libdir libgen` (an installed libgen);
  3. the meson build folders of the source tree this package sits in
     (<repo>/build*/lib/libgen.so.0), newest first;
  4. the system's search path (libgen.so.0).
"""
import ctypes
import glob
import os
import shutil
import subprocess
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_int, c_int32, c_int64,
                    c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)

SONAME = "libgen.so.0"


class LibraryNotFound(OSError):
    """libgen could not be loaded; the message lists where it was looked for."""


def _pkg_config_libdir():
    if not shutil.which("pkg-config"):
        return None
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "libgen"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    out = r.stdout.strip()
    return out if r.returncode == 0 and out else None


def _candidates():
    libdir = _pkg_config_libdir()
    if libdir:
        yield os.path.join(libdir, SONAME)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    builds = glob.glob(os.path.join(repo, "build*", "lib", SONAME))
    builds.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    # Sanitizer builds need their runtime preloaded: prefer plain ones.
    builds.sort(key=lambda p: "-asan" in p or "-tsan" in p)
    yield from builds
    yield SONAME


def find_library():
    """Path (or name) of the libgen shared library that load() would use."""
    env = os.environ.get("LIBGEN_LIBRARY")
    if env:
        return os.path.join(env, SONAME) if os.path.isdir(env) else env
    for c in _candidates():
        if c == SONAME or os.path.exists(c):
            return c
    return SONAME


def _load():
    env = os.environ.get("LIBGEN_LIBRARY")
    if env:
        path = os.path.join(env, SONAME) if os.path.isdir(env) else env
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            raise LibraryNotFound(f"LIBGEN_LIBRARY={env}: cannot load {path}: {e}") from None
    tried = []
    for c in _candidates():
        if c != SONAME and not os.path.exists(c):
            continue
        try:
            return ctypes.CDLL(c), c
        except OSError as e:
            tried.append(f"{c} ({e})")
    raise LibraryNotFound("cannot find libgen: set LIBGEN_LIBRARY to libgen.so.0, install it "
                          "where pkg-config finds it, or build it (meson setup build && ninja -C "
                          "build); tried: " + "; ".join(tried))


lib, path = _load()

# --- types shared with the structures ---------------------------------------------------------
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
EVENT_FN = CFUNCTYPE(None, c_void_p, c_void_p)
QUEUE_EVENT_FN = CFUNCTYPE(None, c_void_p, c_void_p)


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    globals()[name] = f


P = c_void_p
S = c_char_p
status = c_int32

# common.h
_fn("gen_status_string", S, status)
_fn("gen_last_error_message", S)
_fn("gen_last_error_status", status)
_fn("gen_clear_last_error", None)
_fn("gen_version_number", c_uint32)
_fn("gen_version_string", S)
_fn("gen_log_level_name", S, c_int)

# context.h (options structs are passed as void*: see options.py)
_fn("gen_context_options_init", status, P, c_uint32)
_fn("gen_context_options_set", status, P, S, S)
_fn("gen_context_options_set_from_env", status, P)
_fn("gen_context_options_get", status, P, S, P, c_size_t)
_fn("gen_context_option_count", c_size_t)
_fn("gen_context_option_name", S, c_size_t)
_fn("gen_context_create", status, POINTER(P), P)
_fn("gen_context_destroy", None, P)
_fn("gen_context_get_options", P, P)
_fn("gen_context_device_pool", P, P)
_fn("gen_context_queue", P, P)
_fn("gen_context_start", status, P)
_fn("gen_context_stop", status, P, c_int32)
_fn("gen_context_pause", status, P)
_fn("gen_context_resume", status, P)
_fn("gen_context_wake", None, P)
_fn("gen_context_set_event_callback", status, P, EVENT_FN, P)
_fn("gen_context_enable_event_queue", status, P, c_size_t)
_fn("gen_context_next_event", status, P, POINTER(P), c_int32)

# device.h
_fn("gen_device_pool_create", status, POINTER(P), S)
_fn("gen_device_pool_destroy", None, P)
_fn("gen_device_pool_count", c_size_t, P)
_fn("gen_device_pool_kind", c_int, P, c_size_t)
_fn("gen_device_pool_ordinal", c_int, P, c_size_t)
_fn("gen_device_pool_id", S, P, c_size_t)
_fn("gen_device_pool_name", S, P, c_size_t)
_fn("gen_device_pool_label", S, P, c_size_t)
_fn("gen_device_pool_cpu_threads", c_int, P, c_size_t)
_fn("gen_device_pool_compute_capability", c_int, P, c_size_t)
_fn("gen_device_pool_memory", status, P, c_size_t, POINTER(c_uint64), POINTER(c_uint64))

# event.h
_fn("gen_event_type_of", c_int32, P)
_fn("gen_event_type_name", S, c_int32)
_fn("gen_stage_name", S, c_int32)
_fn("gen_event_item_id", c_int64, P)
_fn("gen_event_batch_id", S, P)
_fn("gen_event_user_id", S, P)
_fn("gen_event_device_index", c_int32, P)
_fn("gen_event_device_label", S, P)
_fn("gen_event_old_status", c_int32, P)
_fn("gen_event_new_status", c_int32, P)
_fn("gen_event_error_type", S, P)
_fn("gen_event_message", S, P)
_fn("gen_event_stage", c_int32, P)
_fn("gen_event_step", c_int32, P)
_fn("gen_event_total_steps", c_int32, P)
_fn("gen_event_preview", POINTER(c_uint8), P, POINTER(c_int32), POINTER(c_int32))
_fn("gen_event_model_key", S, P)
_fn("gen_event_model_loaded", c_int32, P)
_fn("gen_event_seconds", c_double, P)
_fn("gen_event_image_path", S, P)
_fn("gen_event_image_width", c_int32, P)
_fn("gen_event_image_height", c_int32, P)
_fn("gen_event_destroy", None, P)

# job.h
_fn("gen_job_create", status, POINTER(P))
_fn("gen_job_destroy", None, P)
_fn("gen_job_clone", status, POINTER(P), P)
_fn("gen_job_set", status, P, S, S)
_fn("gen_job_get", status, P, S, P, c_size_t)
_fn("gen_job_add_lora", status, P, S, c_double)
_fn("gen_job_validate", status, P)
_fn("gen_job_from_json", status, POINTER(P), S)
_fn("gen_job_to_json", status, P, P, c_size_t, POINTER(c_size_t))

# queue.h
_fn("gen_queue_status_name", S, c_int32)
_fn("gen_queue_options_init", status, P, c_uint32)
_fn("gen_queue_options_set", status, P, S, S)
_fn("gen_queue_open", status, POINTER(P), S, P)
_fn("gen_queue_close", None, P)
_fn("gen_queue_heartbeat", status, P)
_fn("gen_queue_recover", status, POINTER(c_uint64), P)
_fn("gen_queue_set_event_callback", status, P, QUEUE_EVENT_FN, P)
_fn("gen_queue_enqueue", status, POINTER(P), P, P)
_fn("gen_queue_enqueued_count", c_size_t, P)
_fn("gen_queue_enqueued_requested", c_size_t, P)
_fn("gen_queue_enqueued_item_id", c_int64, P, c_size_t)
_fn("gen_queue_enqueued_batch_id", S, P)
_fn("gen_queue_enqueued_destroy", None, P)
_fn("gen_queue_claim", status, POINTER(P), P, S, POINTER(c_char_p), c_size_t)
_fn("gen_queue_set_status", status, POINTER(c_int), P, c_int64, c_int32, S, S)
_fn("gen_queue_get_status", status, POINTER(c_int32), P, c_int64)
_fn("gen_queue_cancel_item", status, POINTER(c_uint64), P, c_int64, S, c_int)
_fn("gen_queue_cancel_by_batch", status, POINTER(c_uint64), P, S, POINTER(c_char_p), c_size_t,
    S, c_int)
_fn("gen_queue_cancel_by_destination", status, POINTER(c_uint64), P, S, S, S, c_int)
_fn("gen_queue_cancel_by_queue", status, POINTER(c_uint64), P, S, S, c_int)
_fn("gen_queue_delete_by_destination", status, POINTER(c_uint64), P, S, S, S, c_int)
_fn("gen_queue_clear", status, POINTER(c_uint64), P, S, S, c_int)
_fn("gen_queue_prune", status, POINTER(c_uint64), P, S, S, c_int)
_fn("gen_queue_retry", status, POINTER(P), P, POINTER(c_int64), c_size_t, S, c_int)
_fn("gen_queue_get_counts", status, P, P, S, S)
_fn("gen_queue_get_batch_counts", status, P, P, S)
_fn("gen_queue_get", status, POINTER(P), P, c_int64)
_fn("gen_queue_filter_init", status, P, c_uint32)
_fn("gen_queue_list", status, POINTER(P), P, P)
_fn("gen_queue_item_list_count", c_size_t, P)
_fn("gen_queue_item_list_at", P, P, c_size_t)
_fn("gen_queue_item_list_destroy", None, P)
for _name in ("queue_id", "batch_id", "user_id", "job", "model", "origin", "destination",
              "device", "error_type", "error_message"):
    _fn("gen_queue_item_" + _name, S, P)
for _name in ("status", "priority", "attempts"):
    _fn("gen_queue_item_" + _name, c_int32, P)
for _name in ("id", "retried_from", "created_at", "updated_at", "started_at", "completed_at"):
    _fn("gen_queue_item_" + _name, c_int64, P)
_fn("gen_queue_item_destroy", None, P)

# model.h
_fn("gen_model_inspect", status, POINTER(P), S)
_fn("gen_model_info_destroy", None, P)
_fn("gen_model_info_path", S, P)
_fn("gen_model_info_family", c_int, P)
_fn("gen_model_info_layout", c_int, P)
_fn("gen_model_info_prediction", c_int, P)
_fn("gen_model_info_supported", c_int, P)
_fn("gen_model_info_part_count", c_size_t, P)
_fn("gen_model_info_part_name", S, P, c_size_t)
_fn("gen_model_info_part_dtype", S, P, c_size_t)
_fn("gen_model_info_part_parameters", c_uint64, P, c_size_t)
_fn("gen_model_info_part_tensors", c_uint64, P, c_size_t)
_fn("gen_model_info_part_bytes", c_uint64, P, c_size_t)
_fn("gen_model_family_name", S, c_int)
_fn("gen_model_layout_name", S, c_int)
_fn("gen_model_prediction_name", S, c_int)


def text(b):
    """C string (bytes or None) to str (or None)."""
    return None if b is None else b.decode("utf-8", "replace")


def cstr(s):
    """str (or None) to a C string argument."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8")


def get_text(getter, *args, size=256):
    """Call a getter that writes text into a buffer, growing it when too small."""
    from .errors import check
    while True:
        buf = ctypes.create_string_buffer(size)
        st = getter(*args, buf, size)
        if st == 0:
            return buf.value.decode("utf-8", "replace")
        if st != -1 or size >= (1 << 24):  # GEN_EINVAL also means "buffer too small"
            check(st)
        size *= 4

# generate.h
PROGRESS_FN = CFUNCTYPE(c_int32, c_int32, c_int32, c_int32, c_void_p)
_fn("gen_generate", status, POINTER(P), P, c_size_t, P, PROGRESS_FN, P)
_fn("gen_image_width", c_int32, P)
_fn("gen_image_height", c_int32, P)
_fn("gen_image_pixels", POINTER(c_uint8), P)
_fn("gen_image_metadata", S, P)
_fn("gen_image_save_png", status, P, S)
_fn("gen_image_destroy", None, P)
