"""The persistent SQLite queue (gen_queue)."""
import ctypes
import json as _json
from ctypes import byref, c_char_p, c_int, c_int32, c_int64, c_uint64, c_void_p
from dataclasses import dataclass
from typing import List, Optional

from . import _lib
from .errors import check
from .events import Status
from .job import Job
from .options import (QueueBatchStruct, QueueCountsStruct, QueueEventStruct, QueueFilterStruct,
                      QueueOptions)


@dataclass
class Item:
    """A snapshot of one queue item. `job` is the job as a dict."""
    id: int
    status: Status
    queue_id: str
    batch_id: str
    user_id: str
    job: dict
    model: Optional[str]
    priority: int
    origin: Optional[str]
    destination: Optional[str]
    device: Optional[str]
    error_type: Optional[str]
    error_message: Optional[str]
    attempts: int
    retried_from: int
    created_at: int
    updated_at: int
    started_at: int
    completed_at: int

    @classmethod
    def from_c(cls, it):
        L = _lib
        raw = L.text(L.gen_queue_item_job(it))
        try:
            job = _json.loads(raw) if raw else {}
        except ValueError:
            job = {"_raw": raw}
        status = L.gen_queue_item_status(it)
        try:
            status = Status(status)
        except ValueError:
            pass
        return cls(id=L.gen_queue_item_id(it), status=status,
                   queue_id=L.text(L.gen_queue_item_queue_id(it)),
                   batch_id=L.text(L.gen_queue_item_batch_id(it)),
                   user_id=L.text(L.gen_queue_item_user_id(it)), job=job,
                   model=L.text(L.gen_queue_item_model(it)),
                   priority=L.gen_queue_item_priority(it),
                   origin=L.text(L.gen_queue_item_origin(it)),
                   destination=L.text(L.gen_queue_item_destination(it)),
                   device=L.text(L.gen_queue_item_device(it)),
                   error_type=L.text(L.gen_queue_item_error_type(it)),
                   error_message=L.text(L.gen_queue_item_error_message(it)),
                   attempts=L.gen_queue_item_attempts(it),
                   retried_from=L.gen_queue_item_retried_from(it),
                   created_at=L.gen_queue_item_created_at(it),
                   updated_at=L.gen_queue_item_updated_at(it),
                   started_at=L.gen_queue_item_started_at(it),
                   completed_at=L.gen_queue_item_completed_at(it))


@dataclass
class Enqueued:
    batch_id: str
    item_ids: List[int]
    requested: int


@dataclass
class QueueEvent:
    """One status change reported by a queue handle's callback."""
    item_id: int
    old_status: Status
    new_status: Status
    queue_id: Optional[str]
    batch_id: Optional[str]
    user_id: Optional[str]
    device: Optional[str]
    error_message: Optional[str]


def _job_text(job):
    if isinstance(job, Job):
        return job.to_json()
    if isinstance(job, (dict, list)):
        return _json.dumps(job)
    return str(job)


def _enqueued(r):
    try:
        n = _lib.gen_queue_enqueued_count(r)
        return Enqueued(batch_id=_lib.text(_lib.gen_queue_enqueued_batch_id(r)),
                        item_ids=[_lib.gen_queue_enqueued_item_id(r, i) for i in range(n)],
                        requested=_lib.gen_queue_enqueued_requested(r))
    finally:
        _lib.gen_queue_enqueued_destroy(r)


class Queue:
    """A queue file. Thread-safe: one handle may be used from many threads.

        with Queue("/tmp/q.db") as q:
            q.enqueue({"model": ..., "prompt": "a cat"}, runs=4, user="alice")
            for item in q.list(status="pending"):
                ...

    Methods that act on other users' items take `user`: None acts as the
    administrator (every user); a user id narrows to that user's items and
    refuses another user's explicit item (PermissionDenied)."""

    def __init__(self, path=None, options=None, _borrowed=None, _owner=None, **settings):
        self._callbacks = []  # every trampoline ever registered: see set_event_callback
        self.callback_errors = []
        if _borrowed is not None:
            self._h = c_void_p(_borrowed)
            self._owned = False
            self._owner = _owner  # keeps the context alive while the queue is used
            return
        if options is None:
            options = QueueOptions(**settings)
        elif settings:
            raise TypeError("pass either options or keyword settings")
        self._h = c_void_p()
        self._owned = True
        check(_lib.gen_queue_open(byref(self._h), _lib.cstr(str(path)),
                                  byref(options.struct)))

    def close(self):
        if self._owned and self._h:
            _lib.gen_queue_close(self._h)
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_owned", False):
                self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def _handle(self):
        owner = getattr(self, "_owner", None)
        if not self._h or (owner is not None and not owner._h):
            from .errors import StateError
            raise StateError(-15, "the queue is closed (or its context is)")
        return self._h

    # --- enqueue / claim / status ---------------------------------------------------------
    def enqueue(self, job=None, runs=1, *, jobs=None, user=None, queue=None, batch=None,
                origin=None, destination=None, priority=0, prepend=False):
        """Enqueue `job` x `runs` (run i gets seed + i when the job has a seed)
        or the list `jobs` (each once), in one transaction. A job is a Job, a
        dict or JSON text. Returns Enqueued(batch_id, item_ids, requested)."""
        b = QueueBatchStruct()
        b.version = 1
        b.runs = runs
        keep = []
        if jobs is not None:
            texts = [_lib.cstr(_job_text(j)) for j in jobs]
            arr = (c_char_p * len(texts))(*texts)
            keep += [texts, arr]
            b.jobs = ctypes.cast(arr, ctypes.POINTER(c_char_p))
            b.job_count = len(texts)
        else:
            b.job = _lib.cstr(_job_text(job))
        b.queue_id = _lib.cstr(queue)
        b.user_id = _lib.cstr(user)
        b.batch_id = _lib.cstr(batch)
        b.origin = _lib.cstr(origin)
        b.destination = _lib.cstr(destination)
        b.priority = priority
        b.prepend = 1 if prepend else 0
        r = c_void_p()
        check(_lib.gen_queue_enqueue(byref(r), self._handle(), byref(b)))
        return _enqueued(r)

    def claim(self, device=None, resident_models=()):
        """Take the next pending item (marked in_progress); None when none."""
        models = [_lib.cstr(m) for m in resident_models]
        arr = (c_char_p * len(models))(*models) if models else None
        it = c_void_p()
        check(_lib.gen_queue_claim(byref(it), self._handle(), _lib.cstr(device), arr,
                                   len(models)))
        if not it:
            return None
        try:
            return Item.from_c(it)
        finally:
            _lib.gen_queue_item_destroy(it)

    def set_status(self, item_id, status, error_type=None, error_message=None):
        """Change an item's status; returns whether the row changed."""
        changed = c_int(0)
        check(_lib.gen_queue_set_status(byref(changed), self._handle(), int(item_id),
                                        int(Status.parse(status)), _lib.cstr(error_type),
                                        _lib.cstr(error_message)))
        return bool(changed.value)

    def get_status(self, item_id):
        out = c_int32(-1)
        check(_lib.gen_queue_get_status(byref(out), self._handle(), int(item_id)))
        return Status(out.value)

    def get(self, item_id):
        it = c_void_p()
        check(_lib.gen_queue_get(byref(it), self._handle(), int(item_id)))
        try:
            return Item.from_c(it)
        finally:
            _lib.gen_queue_item_destroy(it)

    # --- cancel / delete / retry ----------------------------------------------------------
    def cancel(self, item_id=None, *, batch=None, destination=None, all=False, user=None,
               queue=None):
        """Cancel pending and in-progress items: one item, the batch(es)
        `batch` (an id or a list), a destination, or `all` of the queue.
        Returns how many items changed."""
        n = c_uint64(0)
        admin = 1 if user is None else 0
        kinds = sum(x is not None for x in (item_id, batch, destination)) + bool(all)
        if kinds != 1:
            raise TypeError("cancel: give exactly one of item_id, batch, destination, all")
        h, u, qid = self._handle(), _lib.cstr(user), _lib.cstr(queue)
        if item_id is not None:
            check(_lib.gen_queue_cancel_item(byref(n), h, int(item_id), u, admin))
        elif batch is not None:
            ids = [batch] if isinstance(batch, (str, bytes)) else list(batch)
            arr = (c_char_p * len(ids))(*[_lib.cstr(b) for b in ids])
            check(_lib.gen_queue_cancel_by_batch(byref(n), h, qid, arr, len(ids), u, admin))
        elif destination is not None:
            check(_lib.gen_queue_cancel_by_destination(byref(n), h, qid,
                                                       _lib.cstr(destination), u, admin))
        else:
            check(_lib.gen_queue_cancel_by_queue(byref(n), h, qid, u, admin))
        return n.value

    def delete_by_destination(self, destination, *, user=None, queue=None):
        n = c_uint64(0)
        check(_lib.gen_queue_delete_by_destination(byref(n), self._handle(), _lib.cstr(queue),
                                                   _lib.cstr(destination), _lib.cstr(user),
                                                   1 if user is None else 0))
        return n.value

    def clear(self, *, user=None, queue=None):
        n = c_uint64(0)
        check(_lib.gen_queue_clear(byref(n), self._handle(), _lib.cstr(queue), _lib.cstr(user),
                                   1 if user is None else 0))
        return n.value

    def prune(self, *, user=None, queue=None):
        """Delete finished items; returns how many."""
        n = c_uint64(0)
        check(_lib.gen_queue_prune(byref(n), self._handle(), _lib.cstr(queue), _lib.cstr(user),
                                   1 if user is None else 0))
        return n.value

    def retry(self, item_ids, *, user=None):
        """Enqueue failed/canceled items again; returns the new ids."""
        ids = [int(i) for i in item_ids]
        arr = (c_int64 * len(ids))(*ids)
        r = c_void_p()
        check(_lib.gen_queue_retry(byref(r), self._handle(), arr, len(ids), _lib.cstr(user),
                                   1 if user is None else 0))
        return _enqueued(r).item_ids

    def recover(self):
        n = c_uint64(0)
        check(_lib.gen_queue_recover(byref(n), self._handle()))
        return n.value

    def heartbeat(self):
        check(_lib.gen_queue_heartbeat(self._handle()))

    # --- queries --------------------------------------------------------------------------
    def counts(self, *, queue=None, user=None, batch=None):
        """Item counts by status: {"pending": n, ..., "total": n}."""
        k = QueueCountsStruct()
        k.version = 1
        if batch is not None:
            check(_lib.gen_queue_get_batch_counts(byref(k), self._handle(), _lib.cstr(batch)))
        else:
            check(_lib.gen_queue_get_counts(byref(k), self._handle(), _lib.cstr(queue),
                                            _lib.cstr(user)))
        return {n: getattr(k, n) for n in ("pending", "in_progress", "completed", "failed",
                                           "canceled", "total")}

    def list(self, *, status=None, user=None, queue=None, batch=None, destination=None,
             after=0, limit=100, descending=False):
        """One page of items (ordered by id; pass the last id as `after` for
        the next page)."""
        f = QueueFilterStruct()
        check(_lib.gen_queue_filter_init(byref(f), 1))
        f.status = -1 if status is None else int(Status.parse(status))
        f.user_id, f.queue_id = _lib.cstr(user), _lib.cstr(queue)
        f.batch_id, f.destination = _lib.cstr(batch), _lib.cstr(destination)
        f.after_item_id = after
        f.limit = limit
        f.descending = 1 if descending else 0
        lst = c_void_p()
        check(_lib.gen_queue_list(byref(lst), self._handle(), byref(f)))
        try:
            return [Item.from_c(_lib.gen_queue_item_list_at(lst, i))
                    for i in range(_lib.gen_queue_item_list_count(lst))]
        finally:
            _lib.gen_queue_item_list_destroy(lst)

    def __iter__(self):
        """Every item, page by page."""
        after = 0
        while True:
            page = self.list(after=after, limit=500)
            yield from page
            if len(page) < 500:
                return
            after = page[-1].id

    # --- events ---------------------------------------------------------------------------
    def set_event_callback(self, fn):
        """Call fn(QueueEvent) after every status change made through this
        handle, on the thread that made it. None unregisters. Exceptions
        raised by fn are kept in `callback_errors` (they cannot cross C).
        Every callback stays referenced until the queue object is gone: a
        change racing with the unregistration may still call the old one."""
        if fn is None:
            check(_lib.gen_queue_set_event_callback(self._handle(), _lib.QUEUE_EVENT_FN(), None))
            return

        def trampoline(ev_ptr, _user):
            try:
                e = QueueEventStruct.from_address(ev_ptr)
                fn(QueueEvent(item_id=e.item_id, old_status=Status(e.old_status),
                              new_status=Status(e.new_status), queue_id=_lib.text(e.queue_id),
                              batch_id=_lib.text(e.batch_id), user_id=_lib.text(e.user_id),
                              device=_lib.text(e.device),
                              error_message=_lib.text(e.error_message)))
            except BaseException as exc:  # never let an exception unwind into C
                self.callback_errors.append(exc)

        cb = _lib.QUEUE_EVENT_FN(trampoline)
        self._callbacks.append(cb)
        check(_lib.gen_queue_set_event_callback(self._handle(), cb, None))
