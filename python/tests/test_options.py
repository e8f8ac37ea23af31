"""Options by name, the environment, and the ctypes mirrors against the C
structs (size and every field offset, compiled from the real headers)."""
import ctypes
import os
import shutil
import subprocess

import pytest

import libgen
from libgen import options as o

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_defaults_and_set_get():
    opts = libgen.Options()
    assert opts["generation_devices"] == "auto"
    assert opts["output_dir"] == "outputs"
    opts["generation_devices"] = " cpu:1, cpu:0 ,cpu:1"
    opts["max_cache_ram"] = "8GiB"
    opts.set("log_level", 3)
    assert opts["max_cache_ram"] == "8GiB" or int(opts.struct.max_cache_ram) == 8 << 30
    assert opts.struct.max_cache_ram == 8 << 30
    assert opts.struct.log_level == 3
    assert set(opts.as_dict()) == set(libgen.Options.names())
    assert {"generation_devices", "db_path", "output_dir", "max_cache_ram",
            "device_working_mem", "log_level", "gpu_dtype"} <= set(libgen.Options.names())


def test_context_reports_normalised_options(tmp_path):
    with libgen.Context(generation_devices="cpu:1, cpu:0,cpu:1", log_level="error",
                        db_path=str(tmp_path / "q.db")) as ctx:
        assert ctx.options["generation_devices"] == "cpu:1,cpu:0"
        assert [d.id for d in ctx.devices] == ["cpu:1", "cpu:0"]
        assert all(d.kind == "cpu" and d.cpu_threads >= 1 for d in ctx.devices)


def test_from_env(monkeypatch):
    monkeypatch.setenv("LIBGEN_GENERATION_DEVICES", "cpu:0,cpu:1")
    monkeypatch.setenv("LIBGEN_MAX_CACHE_RAM", "1GiB")
    opts = libgen.Options(from_env=True)
    assert opts["generation_devices"] == "cpu:0,cpu:1"
    assert opts.struct.max_cache_ram == 1 << 30
    monkeypatch.setenv("LIBGEN_LOG_LEVEL", "loud")
    with pytest.raises(libgen.InvalidArgument) as e:
        libgen.Options(from_env=True)
    assert "LIBGEN_LOG_LEVEL" in e.value.message


def test_queue_options():
    q = libgen.QueueOptions(mode="fifo", max_job_bytes="2MiB")
    assert q["mode"] == "fifo"
    assert q["max_job_bytes"] == 2 << 20
    with pytest.raises(libgen.InvalidArgument):
        q.set("mode", "random")


def test_init_writes_exactly_the_struct():
    """gen_context_options_init fills the mirror and nothing after it."""
    size = ctypes.sizeof(o.ContextOptionsStruct)
    buf = (ctypes.c_uint8 * (size + 64))(*([0xAB] * (size + 64)))
    assert libgen._lib.gen_context_options_init(buf, o.GEN_CONTEXT_OPTIONS_VERSION) == 0
    s = o.ContextOptionsStruct.from_buffer_copy(bytes(buf[:size]))
    assert (s.version, s.generation_devices, s.output_dir) == (2, b"auto", b"outputs")
    assert s.device_working_mem == 3 << 30
    assert s.gpu_dtype == b"auto"
    assert bytes(buf[size:]) == b"\xab" * 64
    # version 1 ends where gpu_dtype begins
    v1_size = o.ContextOptionsStruct.gpu_dtype.offset
    buf = (ctypes.c_uint8 * size)(*([0xAB] * size))
    assert libgen._lib.gen_context_options_init(buf, 1) == 0
    assert bytes(buf[v1_size:]) == b"\xab" * (size - v1_size)


def test_gpu_dtype_option():
    opts = libgen.Options(gpu_dtype="bf16")
    assert opts["gpu_dtype"] == "bf16"
    assert opts.struct.gpu_dtype == b"bf16"
    with pytest.raises(libgen.InvalidArgument, match="not a GPU dtype"):
        opts.set("gpu_dtype", "float16")
    assert opts["gpu_dtype"] == "bf16"


STRUCTS = {
    "gen_context_options": o.ContextOptionsStruct,
    "gen_queue_options": o.QueueOptionsStruct,
    "gen_queue_batch": o.QueueBatchStruct,
    "gen_queue_filter": o.QueueFilterStruct,
    "gen_queue_counts": o.QueueCountsStruct,
    "gen_queue_event": o.QueueEventStruct,
}


def _include_dirs():
    """The public headers and a folder holding the generated gen/version.h."""
    libdir = os.path.dirname(os.path.abspath(libgen.library_path))
    dirs = [os.path.join(REPO, "include")]
    for cand in (os.path.join(os.path.dirname(libdir), "include"),
                 os.path.join(os.path.dirname(os.path.dirname(libdir)), "include")):
        if os.path.exists(os.path.join(cand, "gen", "version.h")):
            return dirs + [cand]
    return None


def test_mirrors_match_the_c_layout(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    incs = _include_dirs()
    if not cc or not incs:
        pytest.skip("needs a C compiler and the build's gen/version.h")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <gen/gen.h>",
             "int main(void) {"]
    for cname, py in STRUCTS.items():
        lines.append(f'printf("{cname} size %zu\\n", sizeof({cname}));')
        for field, _ in py._fields_:
            lines.append(f'printf("{cname} {field} %zu\\n", offsetof({cname}, {field}));')
    lines += ["return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", *[f"-I{d}" for d in incs], "-o", str(exe), str(src)],
                   check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    c_side = {}
    for line in out.splitlines():
        name, field, value = line.split()
        c_side[(name, field)] = int(value)
    for cname, py in STRUCTS.items():
        assert c_side[(cname, "size")] == ctypes.sizeof(py), cname
        for field, _ in py._fields_:
            assert c_side[(cname, field)] == getattr(py, field).offset, (cname, field)
    # gen_context_options has no padding: the sum of its fields is its size.
    assert sum(ctypes.sizeof(t) for _, t in o.ContextOptionsStruct._fields_) == \
        ctypes.sizeof(o.ContextOptionsStruct)
