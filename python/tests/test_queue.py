"""The queue through the binding: a round trip on a temp file."""
import pytest

import libgen
from libgen import Status


def job(prompt="a cat", **kw):
    return {"model": "/models/sd15", "prompt": prompt, **kw}


def test_round_trip(db):
    with libgen.Queue(db) as q:
        a = q.enqueue(job(seed=10), runs=3, user="alice", destination="gallery")
        b = q.enqueue(libgen.Job(model="/m", prompt="a dog"), user="bob", priority=5)
        assert a.requested == 3 and len(a.item_ids) == 3 and len(b.item_ids) == 1
        assert [i.job["seed"] for i in q.list(batch=a.batch_id)] == [10, 11, 12]
        assert q.counts() == {"pending": 4, "in_progress": 0, "completed": 0, "failed": 0,
                              "canceled": 0, "total": 4}
        # round robin: alice (first enqueued) then bob, then alice again
        first = q.claim(device="cpu:0")
        second = q.claim(device="cpu:1")
        assert (first.user_id, second.user_id) == ("alice", "bob")
        assert first.status == Status.IN_PROGRESS and first.device == "cpu:0"
        assert q.set_status(first.id, "completed")
        assert not q.set_status(first.id, Status.FAILED)  # terminal: no change
        assert q.set_status(second.id, Status.FAILED, "IOError", "disk on fire")
        failed = q.get(second.id)
        assert (failed.error_type, failed.error_message) == ("IOError", "disk on fire")
        assert q.cancel(destination="gallery") == 2
        assert q.counts(user="alice")["canceled"] == 2
        new_ids = q.retry([second.id, a.item_ids[1]])
        assert len(new_ids) == 2
        assert q.get(new_ids[0]).retried_from == second.id
        assert q.prune() == 4  # 1 completed, 1 failed, 2 canceled
        assert [i.id for i in q] == new_ids
        assert q.cancel(all=True) == 2
        assert q.claim() is None


def test_two_handles_share_the_file(db):
    with libgen.Queue(db) as producer, libgen.Queue(db) as consumer:
        ids = producer.enqueue(job(), runs=2, user="u").item_ids
        got = consumer.claim(device="cpu:0")
        assert got.id == ids[0]
        assert producer.get_status(got.id) == Status.IN_PROGRESS


def test_scope_and_paging(db):
    with libgen.Queue(db) as q:
        alice = q.enqueue(job(), runs=5, user="alice").item_ids
        with pytest.raises(libgen.PermissionDenied):
            q.cancel(alice[0], user="bob")
        assert q.cancel(alice[0], user="alice") == 1
        page1 = q.list(limit=2)
        page2 = q.list(limit=2, after=page1[-1].id)
        assert [i.id for i in page1 + page2] == alice[:4]
        assert [i.id for i in q.list(descending=True, limit=1)] == [alice[-1]]
        assert [i.id for i in q.list(status="canceled")] == [alice[0]]
        with pytest.raises(ValueError):
            q.list(status="sleeping")
        with pytest.raises(libgen.NotFound):
            q.get(999)


def test_jobs_list_and_bad_jobs(db):
    with libgen.Queue(db, max_queue_size=3) as q:
        r = q.enqueue(jobs=[job("one"), job("two")], user="u")
        assert [q.get(i).job["prompt"] for i in r.item_ids] == ["one", "two"]
        with pytest.raises(libgen.FormatError):
            q.enqueue("[1, 2]")
        partial = q.enqueue(job(), runs=5)
        assert (len(partial.item_ids), partial.requested) == (1, 5)
        with pytest.raises(libgen.QueueFull):
            q.enqueue(job())


def test_closed_queue_raises(db):
    q = libgen.Queue(db)
    q.close()
    with pytest.raises(libgen.StateError):
        q.counts()
