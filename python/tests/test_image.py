"""PNG metadata read-back (gen_image_read_metadata) and the preview helper."""
import json
import struct
import zlib

import pytest

import libgen
from libgen import image


def write_png(path, metadata=None):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    if metadata is not None:
        data += chunk(b"iTXt", b"libgen\x00\x00\x00\x00\x00" + json.dumps(metadata).encode())
    data += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    path.write_bytes(data)


def test_read_metadata(tmp_path):
    meta = {"model": "/m", "prompt": "un café", "seed": 3, "strength": None}
    write_png(tmp_path / "a.png", meta)
    assert libgen.read_image_metadata(tmp_path / "a.png") == meta
    write_png(tmp_path / "b.png")
    with pytest.raises(libgen.NotFound):
        libgen.read_image_metadata(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(libgen.FormatError):
        libgen.read_image_metadata(tmp_path / "c.png")


def test_preview_to_array():
    np = pytest.importorskip("numpy")
    arr = image.preview_to_array(bytes(range(12)), 2, 2)
    assert arr.shape == (2, 2, 3) and arr.dtype == np.uint8 and arr[1, 1, 2] == 11
