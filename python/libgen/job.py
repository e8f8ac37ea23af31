"""Job parameters (gen_job): what one image generation needs."""
import ctypes
import json as _json
from ctypes import byref, c_size_t, c_void_p

from . import _lib
from .errors import check
from .options import _value_text


class Job:
    """A job, set field by field (every value checked when set):

        job = Job(model="/models/sd15", prompt="a cat", steps=30, seed=1)
        job["guidance"] = 6
        job.validate()

    Field names and values as in include/gen/job.h; values are converted to
    their text form (True -> "true")."""

    def __init__(self, json=None, **fields):
        self._h = c_void_p()
        if json is not None:
            if not isinstance(json, (str, bytes)):
                json = _json.dumps(json)
            check(_lib.gen_job_from_json(byref(self._h), _lib.cstr(json)))
        else:
            check(_lib.gen_job_create(byref(self._h)))
        for name, value in fields.items():
            self.set(name, value)

    @classmethod
    def from_json(cls, text):
        return cls(json=text)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def close(self):
        if getattr(self, "_h", None):
            _lib.gen_job_destroy(self._h)
            self._h = None

    def set(self, name, value):
        check(_lib.gen_job_set(self._h, _lib.cstr(name), _lib.cstr(_value_text(value))))
        return self

    def get(self, name):
        return _lib.get_text(_lib.gen_job_get, self._h, _lib.cstr(name))

    __getitem__ = get

    def __setitem__(self, name, value):
        self.set(name, value)

    def add_lora(self, path, weight=1.0):
        check(_lib.gen_job_add_lora(self._h, _lib.cstr(path), float(weight)))
        return self

    def validate(self):
        """Cross-field checks; picks a random seed when none is set."""
        check(_lib.gen_job_validate(self._h))
        return self

    def clone(self):
        other = Job.__new__(Job)
        other._h = c_void_p()
        check(_lib.gen_job_clone(byref(other._h), self._h))
        return other

    def to_json(self):
        needed = c_size_t(0)
        _lib.gen_job_to_json(self._h, None, 0, byref(needed))
        buf = ctypes.create_string_buffer(needed.value)
        check(_lib.gen_job_to_json(self._h, buf, needed.value, None))
        return buf.value.decode("utf-8")

    def to_dict(self):
        return _json.loads(self.to_json())

    def __repr__(self):
        return f"Job({self.to_json()})"
