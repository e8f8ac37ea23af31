"""libgen: Python binding (ctypes) of the libgen text-to-image service library.

    import libgen
    with libgen.Context(generation_devices="cpu:0,cpu:1", db_path="queue.db") as ctx:
        ctx.queue.enqueue({"model": "/models/sd15", "prompt": "a cat"}, runs=2, user="alice")
        ctx.start()
        for ev in ctx.events(timeout=5):
            print(ev.type.name, ev.item_id, ev.step, ev.total_steps)

The shared library is found through LIBGEN_LIBRARY, pkg-config or the source
tree's build folder (see libgen._lib). Errors raise LibgenError subclasses
carrying `status` and `message`.
"""
from . import _lib
from ._lib import LibraryNotFound, find_library
from .context import Context
from .devices import Device, resolve_devices
from .errors import (Busy, Canceled, DatabaseError, DeviceError, DeviceOutOfMemory, FormatError,
                     InternalError, InvalidArgument, IOFailure, LibgenError, NoSpace, NotFound,
                     OutOfMemory, PermissionDenied, QueueFull, StateError, Timeout, Unsupported,
                     UserAbort, VersionMismatch, error_for)
from .events import Event, EventType, Stage, Status
from .image import Image, read_image_metadata
from .job import Job
from .model import ModelInfo, ModelPart, inspect_model
from .options import Options, QueueOptions
from .queue import Enqueued, Item, Queue, QueueEvent

library_path = _lib.path


def version():
    """Version text of the loaded library ("0.1.0")."""
    return _lib.text(_lib.gen_version_string())


def version_number():
    return _lib.gen_version_number()


def status_string(status):
    return _lib.text(_lib.gen_status_string(status))


__all__ = [
    "Busy", "Canceled", "Context", "DatabaseError", "Device", "DeviceError", "DeviceOutOfMemory",
    "Enqueued", "Event", "EventType", "FormatError", "IOFailure", "Image", "InternalError",
    "InvalidArgument", "Item", "Job", "LibgenError", "LibraryNotFound", "ModelInfo", "ModelPart",
    "NoSpace", "NotFound", "Options", "OutOfMemory", "PermissionDenied", "Queue", "QueueEvent",
    "QueueFull", "QueueOptions", "Stage", "StateError", "Status", "Timeout", "Unsupported",
    "UserAbort", "VersionMismatch", "error_for", "find_library", "inspect_model",
    "library_path", "read_image_metadata", "resolve_devices", "status_string", "version", "version_number",
]
