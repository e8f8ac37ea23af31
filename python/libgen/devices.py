"""The device pool: the devices generation_devices resolves to."""
import ctypes
from ctypes import byref, c_uint64, c_void_p
from dataclasses import dataclass

from . import _lib
from .errors import check


@dataclass(frozen=True)
class Device:
    index: int
    id: str
    name: str
    label: str
    kind: str            # "cpu" or "cuda"
    ordinal: int
    cpu_threads: int
    compute_capability: int
    free_bytes: int
    total_bytes: int


def _read_pool(pool):
    out = []
    for i in range(_lib.gen_device_pool_count(pool)):
        free_b, total_b = c_uint64(0), c_uint64(0)
        _lib.gen_device_pool_memory(pool, i, byref(free_b), byref(total_b))
        out.append(Device(
            index=i,
            id=_lib.text(_lib.gen_device_pool_id(pool, i)),
            name=_lib.text(_lib.gen_device_pool_name(pool, i)),
            label=_lib.text(_lib.gen_device_pool_label(pool, i)),
            kind="cuda" if _lib.gen_device_pool_kind(pool, i) == 1 else "cpu",
            ordinal=_lib.gen_device_pool_ordinal(pool, i),
            cpu_threads=_lib.gen_device_pool_cpu_threads(pool, i),
            compute_capability=_lib.gen_device_pool_compute_capability(pool, i),
            free_bytes=free_b.value, total_bytes=total_b.value))
    return out


def resolve_devices(generation_devices="auto"):
    """Resolve a generation_devices text against this machine (list of Device)."""
    pool = c_void_p()
    check(_lib.gen_device_pool_create(byref(pool), _lib.cstr(generation_devices)))
    try:
        return _read_pool(pool)
    finally:
        _lib.gen_device_pool_destroy(pool)
