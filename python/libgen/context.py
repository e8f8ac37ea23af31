"""The library instance (gen_context): devices, queue, workers, events."""
import time
from ctypes import byref, c_void_p

from . import _lib
from .devices import _read_pool
from .errors import StateError, check, error_for
from .events import Event
from .options import Options
from .queue import Queue

STOP_MODES = {"drain": 0, "cancel": 1, "requeue": 2}
GEN_ETIMEOUT = -16


class Context:
    """A libgen context. Use it as a context manager:

        with libgen.Context(generation_devices="cpu:0,cpu:1", db_path="q.db") as ctx:
            ctx.queue.enqueue(job, runs=4, user="alice")
            ctx.start()
            for event in ctx.events(timeout=1.0):
                print(event)

    `options` is an Options (or None for the defaults); keyword settings are
    applied on top by name. `log` is an optional callable(level:int, message:str)
    called from any libgen thread (worker threads included)."""

    def __init__(self, options=None, *, log=None, from_env=False, **settings):
        self._h = None
        self._callbacks = []      # every trampoline ever registered stays alive
        self.callback_errors = []
        if options is None:
            options = Options(from_env=from_env)
        options = options.copy()
        for name, value in settings.items():
            options.set(name, value)
        opts = options.struct
        if log is not None:
            def log_trampoline(level, message, _user):
                try:
                    log(level, _lib.text(message))
                except BaseException as exc:
                    self.callback_errors.append(exc)
            cb = _lib.LOG_FN(log_trampoline)
            self._callbacks.append(cb)
            opts.log_fn = cb
        h = c_void_p()
        check(_lib.gen_context_create(byref(h), byref(opts)))
        self._h = h
        self._queue = None
        self._events_enabled = False

    # --- lifetime -------------------------------------------------------------------------
    def close(self):
        """Stop the workers (requeueing running items) and free the context."""
        if self._h:
            _lib.gen_context_destroy(self._h)
            self._h = None
        self._queue = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def _handle(self):
        if not self._h:
            raise StateError(-15, "the context is closed")
        return self._h

    # --- what it runs with ----------------------------------------------------------------
    @property
    def options(self):
        """The options after validation, as {name: text}."""
        p = _lib.gen_context_get_options(self._handle())
        return {n: _lib.get_text(_lib.gen_context_options_get, p, _lib.cstr(n))
                for n in Options.names()}

    @property
    def devices(self):
        return _read_pool(_lib.gen_context_device_pool(self._handle()))

    @property
    def queue(self):
        """The context's queue (db_path), or None. Changes made through it are
        routed to the workers (cancels) and reported as events."""
        if self._queue is None:
            q = _lib.gen_context_queue(self._handle())
            if q:
                self._queue = Queue(_borrowed=q, _owner=self)
        return self._queue

    # --- workers --------------------------------------------------------------------------
    def start(self):
        check(_lib.gen_context_start(self._handle()))

    def stop(self, mode="drain"):
        """mode: "drain" (let running items finish), "cancel", or "requeue"."""
        check(_lib.gen_context_stop(self._handle(), STOP_MODES[mode]))

    def pause(self):
        check(_lib.gen_context_pause(self._handle()))

    def resume(self):
        check(_lib.gen_context_resume(self._handle()))

    def wake(self):
        _lib.gen_context_wake(self._handle())

    # --- synchronous generation -------------------------------------------------------------
    def generate(self, job, device_index=0, progress=None):
        """Make one image now on device `device_index`, on this thread; returns
        an Image. `job` is a Job or a dict of fields. `progress(stage, step,
        total)` is called on this thread; returning True cancels (Canceled)."""
        from .image import Image
        from .job import Job
        if not isinstance(job, Job):
            job = Job(**job)
        errors = []

        def trampoline(stage, step, total, _user):
            try:
                return 1 if (progress and progress(stage, step, total)) else 0
            except BaseException as exc:  # cancel and re-raise after the call
                errors.append(exc)
                return 1

        cb = _lib.PROGRESS_FN(trampoline)
        out = c_void_p()
        st = _lib.gen_generate(byref(out), self._handle(), device_index, job._h, cb, None)
        if errors:
            raise errors[0]
        if st != 0:
            raise error_for(st)
        return Image(out)

    # --- events ---------------------------------------------------------------------------
    def set_event_callback(self, fn):
        """Call fn(Event) for every event, on the libgen thread that produced
        it (worker threads, or the thread that changed an item). fn must be
        quick; it may use the queue but must not start/stop/close the context.
        Exceptions raised by fn are collected in `callback_errors`. None
        unregisters; callbacks stay referenced until the context is closed
        (an event racing with the unregistration may still reach the old one)."""
        if fn is None:
            check(_lib.gen_context_set_event_callback(self._handle(), _lib.EVENT_FN(), None))
            return

        def trampoline(ev, _user):
            try:
                fn(Event.from_c(ev))
            except BaseException as exc:  # never let an exception unwind into C
                self.callback_errors.append(exc)

        cb = _lib.EVENT_FN(trampoline)
        self._callbacks.append(cb)
        check(_lib.gen_context_set_event_callback(self._handle(), cb, None))

    def enable_events(self, capacity=0):
        """Keep events in a bounded queue (capacity 0 = 4096) for next_event()."""
        check(_lib.gen_context_enable_event_queue(self._handle(), capacity))
        self._events_enabled = True

    def next_event(self, timeout=None):
        """The next event, waiting up to `timeout` seconds (None = forever,
        0 = do not wait); None when none came in time."""
        if not self._events_enabled:
            self.enable_events()
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        ev = c_void_p()
        st = _lib.gen_context_next_event(self._handle(), byref(ev), ms)
        if st == GEN_ETIMEOUT:
            return None
        if st != 0:
            raise error_for(st)
        try:
            return Event.from_c(ev)
        finally:
            _lib.gen_event_destroy(ev)

    def events(self, timeout=None):
        """Iterate over events; stops after `timeout` seconds without one
        (None: never stops by itself). The C call waits in slices of at most
        200 ms so that Ctrl-C reaches Python."""
        if not self._events_enabled:
            self.enable_events()
        while True:
            deadline = None if timeout is None else time.monotonic() + timeout
            ev = None
            while ev is None:
                left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if left <= 0:
                    return
                ev = self.next_event(left)
            yield ev
