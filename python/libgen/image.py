"""Images: the generation parameters libgen stores in the PNGs it writes
(gen_image_read_metadata, include/gen/image.h). numpy is optional and only
needed by the array helpers."""
import ctypes
import json as _json
from ctypes import byref, c_size_t

from . import _lib
from .errors import check

_lib._fn("gen_image_read_metadata", _lib.status, _lib.S, ctypes.c_char_p, c_size_t,
         ctypes.POINTER(c_size_t))


def read_image_metadata(path):
    """The parameters stored in a PNG written by libgen, as a dict (model,
    prompt, seed, steps, scheduler, ...). Raises NotFound when the file or the
    metadata is missing, FormatError for a file that is not a valid PNG."""
    needed = c_size_t(0)
    check(_lib.gen_image_read_metadata(_lib.cstr(str(path)), None, 0, byref(needed)))
    buf = ctypes.create_string_buffer(needed.value)
    check(_lib.gen_image_read_metadata(_lib.cstr(str(path)), buf, needed.value, None))
    return _json.loads(buf.value.decode("utf-8"))


def preview_to_array(data, width, height):
    """8-bit RGB bytes (rows top to bottom) as a numpy array (height, width, 3)."""
    import numpy as np
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


class Image:
    """A generated image (gen_image): 8-bit RGB, rows top to bottom."""

    def __init__(self, handle):
        self._h = handle
        self.width = _lib.gen_image_width(handle)
        self.height = _lib.gen_image_height(handle)
        self.metadata = _json.loads(_lib.text(_lib.gen_image_metadata(handle)) or "{}")

    @property
    def pixels(self):
        """width * height * 3 bytes (a copy)."""
        return ctypes.string_at(_lib.gen_image_pixels(self._h), self.width * self.height * 3)

    def to_numpy(self):
        """The pixels as a numpy uint8 array (height, width, 3); needs numpy."""
        return preview_to_array(self.pixels, self.width, self.height)

    def save_png(self, path):
        """Write a PNG with the metadata, atomically."""
        check(_lib.gen_image_save_png(self._h, _lib.cstr(str(path))))

    def close(self):
        if getattr(self, "_h", None):
            _lib.gen_image_destroy(self._h)
            self._h = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
