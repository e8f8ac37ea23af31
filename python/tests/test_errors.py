"""Errors surface as LibgenError subclasses carrying the status and message."""
import threading

import pytest

import libgen


def test_bad_option_value_raises_invalid_argument_with_message():
    opts = libgen.Options()
    with pytest.raises(libgen.InvalidArgument) as e:
        opts["max_cache_ram"] = "lots"
    assert e.value.status == -1
    assert e.value.status_name == libgen.status_string(-1)
    assert "max_cache_ram" in e.value.message and "lots" in e.value.message
    assert isinstance(e.value, ValueError)
    assert opts["max_cache_ram"] == "auto"  # unchanged on failure


def test_unknown_option_is_not_found():
    with pytest.raises(libgen.NotFound) as e:
        libgen.Options(no_such_option="1")
    assert e.value.status == -5
    assert "no_such_option" in str(e.value)


def test_context_with_bad_devices_names_the_entry(quiet):
    with pytest.raises(libgen.InvalidArgument) as e:
        libgen.Context(generation_devices="cpu:0,gpu:7", **quiet)
    assert "gpu:7" in e.value.message


def test_start_without_queue_is_a_state_error(quiet):
    with libgen.Context(generation_devices="cpu:0", **quiet) as ctx:
        assert ctx.queue is None
        with pytest.raises(libgen.StateError) as e:
            ctx.start()
        assert "db_path" in e.value.message


def test_job_errors(tiny_model):
    job = libgen.Job(model=tiny_model, prompt="a cat")
    with pytest.raises(libgen.InvalidArgument) as e:
        job["steps"] = 0
    assert "steps" in e.value.message
    with pytest.raises(libgen.NotFound):
        job["colour"] = "red"
    with pytest.raises(libgen.FormatError):
        libgen.Job(json="{not json")
    with pytest.raises(libgen.InvalidArgument) as e:
        libgen.Job(prompt="x").validate()
    assert "model" in e.value.message


def test_queue_open_errors(tmp_path):
    with pytest.raises(libgen.LibgenError) as e:
        libgen.Queue(tmp_path / "no" / "such" / "dir" / "q.db")
    assert "q.db" in e.value.message
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(libgen.DatabaseError) as e:
        libgen.Queue(bad)
    assert "not-a-db" in e.value.message


def test_messages_are_per_thread():
    """Two threads failing differently each see their own message."""
    seen = {}
    barrier = threading.Barrier(2)

    def fail(name, value):
        opts = libgen.Options()
        barrier.wait()
        for _ in range(200):
            try:
                opts[name] = value
            except libgen.LibgenError as e:
                if name not in e.message:
                    seen[name] = e.message
                    return
        seen.setdefault(name, "ok")

    threads = [threading.Thread(target=fail, args=("max_cache_ram", "lots")),
               threading.Thread(target=fail, args=("log_level", "loud"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"max_cache_ram": "ok", "log_level": "ok"}


def test_error_for_unknown_status_is_the_base_class():
    e = libgen.error_for(-999, "future error")
    assert type(e) is libgen.LibgenError and e.status == -999 and e.message == "future error"


def test_queue_of_a_closed_context_raises(db):
    ctx = libgen.Context(generation_devices="cpu:0", db_path=db, log_level="error")
    q = ctx.queue
    q.enqueue({"model": "/m", "prompt": "x"})
    ctx.close()
    with pytest.raises(libgen.StateError):
        q.counts()
    with pytest.raises(libgen.StateError):
        ctx.start()
