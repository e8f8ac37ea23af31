"""Events: callbacks on libgen threads (here: Python threads changing items
through the context's queue, and worker threads once an item runner exists),
the pollable event queue as an iterator, and callback lifetime safety."""
import os
import threading
import time

import pytest

import libgen
from libgen import EventType, Status


def make_ctx(db):
    # images (when workers run) go next to the queue file, in the test's temp dir
    out = os.path.join(os.path.dirname(db), "images")
    return libgen.Context(generation_devices="cpu:0,cpu:1", db_path=db, log_level="error",
                          output_dir=out)


def test_callbacks_run_on_the_changing_thread(db):
    with make_ctx(db) as ctx:
        seen, lock = [], threading.Lock()

        def on_event(ev):
            with lock:
                seen.append((threading.get_ident(), ev.type, ev.item_id, ev.old_status,
                             ev.new_status))

        ctx.set_event_callback(on_event)
        ctx.enable_events()
        ids = ctx.queue.enqueue({"model": "/m", "prompt": "x"}, runs=40, user="u").item_ids
        owner = {}

        def cancel(chunk):
            for item in chunk:
                owner[item] = threading.get_ident()
                assert ctx.queue.cancel(item) == 1

        threads = [threading.Thread(target=cancel, args=(ids[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ctx.callback_errors == []
        assert sorted(s[2] for s in seen) == ids
        for thread, etype, item, old, new in seen:
            assert etype == EventType.ITEM_STATUS
            assert (old, new) == (Status.PENDING, Status.CANCELED)
            assert thread == owner[item]  # the callback ran on the thread that canceled
        polled = list(ctx.events(timeout=0.5))
        assert sorted(e.item_id for e in polled) == ids
        assert all(e.new_status == Status.CANCELED for e in polled)


def test_exceptions_in_callbacks_are_kept(db):
    with make_ctx(db) as ctx:
        def boom(ev):
            raise RuntimeError(f"boom {ev.item_id}")

        ctx.set_event_callback(boom)
        item = ctx.queue.enqueue({"model": "/m", "prompt": "x"}).item_ids[0]
        ctx.queue.cancel(item)
        assert [str(e) for e in ctx.callback_errors] == [f"boom {item}"]


def test_swapping_callbacks_while_events_flow(db):
    """Unregistering or replacing a callback while another thread triggers
    events must not free a callback that may still be called."""
    with make_ctx(db) as ctx:
        ids = ctx.queue.enqueue({"model": "/m", "prompt": "x"}, runs=300).item_ids
        counts = [0, 0]
        done = threading.Event()

        def worker():
            for item in ids:
                ctx.queue.cancel(item)
            done.set()

        t = threading.Thread(target=worker)
        t.start()
        i = 0
        while not done.is_set():
            which = i % 3
            if which == 2:
                ctx.set_event_callback(None)
            else:
                ctx.set_event_callback(
                    lambda ev, w=which: counts.__setitem__(w, counts[w] + 1))
            i += 1
        t.join()
        assert ctx.callback_errors == []
        assert ctx.queue.counts()["canceled"] == 300
        assert counts[0] + counts[1] <= 300


def test_queue_handle_callback(db):
    with libgen.Queue(db) as q:
        seen = []
        q.set_event_callback(seen.append)
        item = q.enqueue({"model": "/m", "prompt": "x"}, user="ann").item_ids[0]
        claimed = q.claim(device="cpu:0")
        q.set_status(claimed.id, "completed")
        assert [(e.item_id, e.old_status, e.new_status, e.user_id) for e in seen] == [
            (item, Status.PENDING, Status.IN_PROGRESS, "ann"),
            (item, Status.IN_PROGRESS, Status.COMPLETED, "ann")]
        assert seen[0].device == "cpu:0"
        q.set_event_callback(None)
        q.enqueue({"model": "/m", "prompt": "y"})
        q.cancel(all=True)
        assert len(seen) == 2


def test_next_event_times_out(db):
    with make_ctx(db) as ctx:
        start = time.monotonic()
        assert ctx.next_event(timeout=0.05) is None
        assert list(ctx.events(timeout=0.05)) == []
        assert time.monotonic() - start < 30


def test_workers_on_two_cpu_devices(db, tiny_model):
    """Workers start on two CPU devices and call back from their own threads.
    Until the item runner (the pipeline) is merged, start reports that clearly."""
    with make_ctx(db) as ctx:
        worker_threads, lock = set(), threading.Lock()

        def on_event(ev):
            if ev.type == EventType.PROGRESS:
                with lock:
                    worker_threads.add((threading.get_ident(), ev.device_index))

        ctx.set_event_callback(on_event)
        try:
            ctx.start()
        except libgen.Unsupported as e:
            assert "runner" in e.message
            assert ctx.queue.counts()["total"] == 0
            pytest.skip(f"no item runner in this build yet: {e.message}")
        ids = ctx.queue.enqueue({"model": tiny_model, "prompt": "a cat", "steps": 2,
                                 "width": 64, "height": 64, "seed": 1}, runs=2,
                                user="u").item_ids
        ctx.wake()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if all(ctx.queue.get_status(i) in (Status.COMPLETED, Status.FAILED) for i in ids):
                break
            time.sleep(0.1)
        ctx.stop("drain")
        items = [ctx.queue.get(i) for i in ids]
        assert [i.status for i in items] == [Status.COMPLETED] * 2, items
        assert ctx.callback_errors == []
        main = threading.get_ident()
        assert worker_threads and all(t != main for t, _ in worker_threads)


def test_log_callback(db):
    lines = []
    with libgen.Context(generation_devices="cpu:0,cpu:1", db_path=db, log_level="info",
                        log=lambda level, msg: lines.append((level, msg))) as ctx:
        assert ctx.callback_errors == []
    assert any("context created" in m for _, m in lines), lines
    assert any("CPU #2" in m for _, m in lines), lines
    assert all(0 <= level <= 4 for level, _ in lines)
