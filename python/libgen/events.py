"""Events as plain Python objects (copied out of the C event, so they stay
valid after the callback returns or the event is destroyed)."""
import ctypes
import enum
from dataclasses import dataclass
from typing import Optional

from . import _lib


class EventType(enum.IntEnum):
    ITEM_STATUS = 1
    MODEL_LOAD = 2
    PROGRESS = 3
    IMAGE_READY = 4
    WORKER_ERROR = 5


class Stage(enum.IntEnum):
    LOAD = 0
    ENCODE = 1
    DENOISE = 2
    DECODE = 3


class Status(enum.IntEnum):
    """gen_queue_status."""
    PENDING = 0
    IN_PROGRESS = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4

    @property
    def label(self):
        return _lib.text(_lib.gen_queue_status_name(int(self)))

    @classmethod
    def parse(cls, value):
        """A Status from a Status, an int or a name ("pending", "in_progress", ...)."""
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown status {value!r}") from None
        return cls(value)


def _enum_or_int(cls, value):
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass
class Event:
    type: object
    item_id: int = 0
    batch_id: Optional[str] = None
    user_id: Optional[str] = None
    device_index: int = -1
    device_label: Optional[str] = None
    old_status: Optional[object] = None
    new_status: Optional[object] = None
    error_type: Optional[str] = None
    message: Optional[str] = None
    stage: Optional[object] = None
    step: int = 0
    total_steps: int = 0
    preview: Optional[bytes] = None
    preview_size: tuple = (0, 0)
    model_key: Optional[str] = None
    model_loaded: bool = False
    seconds: float = 0.0
    image_path: Optional[str] = None
    image_size: tuple = (0, 0)

    @classmethod
    def from_c(cls, ev):
        """Copy a `const gen_event *` (an int address or c_void_p)."""
        L = _lib
        t = _enum_or_int(EventType, L.gen_event_type_of(ev))
        e = cls(type=t, item_id=L.gen_event_item_id(ev),
                batch_id=L.text(L.gen_event_batch_id(ev)),
                user_id=L.text(L.gen_event_user_id(ev)),
                device_index=L.gen_event_device_index(ev),
                device_label=L.text(L.gen_event_device_label(ev)),
                message=L.text(L.gen_event_message(ev)))
        if t == EventType.ITEM_STATUS:
            e.old_status = _enum_or_int(Status, L.gen_event_old_status(ev))
            e.new_status = _enum_or_int(Status, L.gen_event_new_status(ev))
            e.error_type = L.text(L.gen_event_error_type(ev))
        elif t == EventType.PROGRESS:
            e.stage = _enum_or_int(Stage, L.gen_event_stage(ev))
            e.step = L.gen_event_step(ev)
            e.total_steps = L.gen_event_total_steps(ev)
            w, h = ctypes.c_int32(0), ctypes.c_int32(0)
            p = L.gen_event_preview(ev, ctypes.byref(w), ctypes.byref(h))
            if p and w.value > 0 and h.value > 0:
                e.preview = ctypes.string_at(p, w.value * h.value * 3)
                e.preview_size = (w.value, h.value)
        elif t == EventType.MODEL_LOAD:
            e.model_key = L.text(L.gen_event_model_key(ev))
            e.model_loaded = bool(L.gen_event_model_loaded(ev))
            e.seconds = L.gen_event_seconds(ev)
        elif t == EventType.IMAGE_READY:
            e.image_path = L.text(L.gen_event_image_path(ev))
            e.image_size = (L.gen_event_image_width(ev), L.gen_event_image_height(ev))
        return e

    def preview_array(self):
        """The preview as a numpy uint8 array of shape (height, width, 3), or
        None. numpy is optional: imported only here."""
        if self.preview is None:
            return None
        import numpy as np
        w, h = self.preview_size
        return np.frombuffer(self.preview, dtype=np.uint8).reshape(h, w, 3)
