"""Where independent tasks run: in this process, in local worker processes, or on a Dask
distributed cluster, behind one small interface so that the caller does not care which.

    backend = make_backend(jobs=2)                       # or scheduler="tcp://host:8786"
    for index, result in backend.run(fn, tasks, payload):
        ...                                              # completion order

``fn(task, payload)`` must be a module-level function (it is pickled by reference).
``payload`` (the data) is shipped to each worker once: as the initializer's argument of
a local process, by ``client.scatter(..., broadcast=True)`` on Dask; tasks stay small.
Results come back in completion order, so a caller that wants reproducible output keys
them by index and never by arrival.

Failures of the machinery, not of a task:

- a local worker process that dies (killed, out of memory) breaks its pool; the tasks in
  flight are run again in a fresh pool (``retries`` times at most per task);
- on Dask the scheduler reschedules the tasks of a dead worker itself; a task that kept
  killing workers (``KilledWorker``) and one that raised are submitted again as well.

``backend.retried`` counts the tasks that had to run more than once. An exception leaving
:meth:`Backend.run` (Ctrl-C included) cancels every outstanding task and stops the local
workers before it propagates. Dask is imported only inside :class:`DaskBackend`.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import pickle
import signal
import threading
import time
from concurrent import futures as cf

from .errors import MfcoreError

__all__ = ["Backend", "InProcess", "LocalProcesses", "DaskBackend", "make_backend",
           "default_jobs", "DASK_MISSING"]

#: the one line a user gets when asking for Dask without the extra installed
DASK_MISSING = ("a Dask scheduler needs the optional extra: pip install 'mfcore[dask]' "
                "(dask[distributed])")

#: modules the local workers' fork server imports once, so that a new worker starts warm
PRELOAD = ["numpy", "numba", "mfcore.models", "mfcore.tune"]


def default_jobs() -> int:
    """The cores this process may run on (``--jobs`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Backend:
    """Runs ``fn(task, payload)`` for every task; see the module docstring."""

    name = "?"

    def __init__(self, retries: int = 2):
        from .bounds import MAX_RETRIES
        if isinstance(retries, bool) or not isinstance(retries, int) \
                or not 0 <= retries <= MAX_RETRIES:
            raise MfcoreError(f"retries must be an integer from 0 to {MAX_RETRIES}, got "
                              f"{retries!r}")
        self.retries = retries
        #: tasks that had to run more than once (a worker died under them, or they raised
        #: and were retried)
        self.retried = 0
        #: how many workers ran the tasks (known once run started)
        self.workers = 1

    def run(self, fn, tasks, payload):
        """Yield ``(index, fn(tasks[index], payload))`` as the tasks finish."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class InProcess(Backend):
    """Every task in this process, one after the other (``jobs=1``): no pickling at all."""

    name = "in-process"

    def run(self, fn, tasks, payload):
        for i, task in enumerate(tasks):
            yield i, fn(task, payload)

    def describe(self):
        return "1 job (this process)"


# ---- local processes ----------------------------------------------------------------------
_PAYLOAD = None


def _init_worker(blob):
    """Initializer of a local worker: receives the payload once, and leaves Ctrl-C to the
    main process (which stops the workers itself)."""
    global _PAYLOAD
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker never starts processes. Under a start method named "fork" Numba guards
    # the start of its thread pool with a multiprocessing lock, a named semaphore that a
    # terminated worker would leave registered: Ctrl-C would then end with a "leaked
    # semaphore" warning from the resource tracker.
    import multiprocessing
    multiprocessing.set_start_method("spawn", force=True)
    _PAYLOAD = pickle.loads(blob)


def _call_in_worker(fn, task):
    return fn(task, _PAYLOAD)


def _mp_context():
    """The ``forkserver`` context (``spawn`` where there is none), its server started."""
    import multiprocessing as mp
    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # pragma: no cover - no fork server on this platform
        return mp.get_context("spawn")
    from multiprocessing import forkserver
    if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
        # imported once by the fork server, so a new worker is a fork of a warm process;
        # only before the server starts (afterwards the call would have no effect)
        ctx.set_forkserver_preload(PRELOAD)
        # Started with SIGINT ignored, the server (and the resource tracker beside it)
        # keeps ignoring it through its imports, and so do the workers it forks: a
        # Ctrl-C is the main process's to handle, which then stops the workers.
        main = threading.current_thread() is threading.main_thread()
        before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            forkserver.ensure_running()
        finally:
            if main:
                signal.signal(signal.SIGINT, before)
    return ctx


def prestart():
    """Start the local fork server now (in the background of whatever the caller does
    next, e.g. loading data), so that the first worker forks from a process that has
    already imported NumPy, Numba and mfcore. Optional: the pool starts it otherwise."""
    _mp_context()


class LocalProcesses(Backend):
    """``jobs`` worker processes on this machine (``concurrent.futures`` with a
    ``forkserver`` context). Each worker receives the payload once, in its initializer,
    and is kept for every task; at most ``jobs`` tasks are in flight, one per worker, so
    that a dead worker costs only the tasks that were running."""

    name = "local"

    def __init__(self, jobs: int, retries: int = 2):
        super().__init__(retries)
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise MfcoreError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs = self.workers = jobs

    def describe(self):
        return f"{self.jobs} local processes"

    def _pool(self, blob, n):
        return cf.ProcessPoolExecutor(max_workers=n, mp_context=_mp_context(),
                                      initializer=_init_worker, initargs=(blob,))

    def run(self, fn, tasks, payload):
        tasks = list(tasks)
        n = min(self.jobs, max(1, len(tasks)))
        self.workers = n
        blob = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        pending = collections.deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        inflight = {}
        pool = self._pool(blob, n)
        try:
            while pending or inflight:
                while pending and len(inflight) < n:
                    i = pending.popleft()
                    with _signals_deferred():
                        inflight[pool.submit(_call_in_worker, fn, tasks[i])] = i
                done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                lost = []
                for fut in sorted(done, key=inflight.get):
                    i = inflight.pop(fut)
                    try:
                        result = fut.result()
                    except cf.process.BrokenProcessPool:
                        lost.append(i)
                        continue
                    yield i, result
                if lost:
                    # the pool is broken: every task still in flight died with it
                    lost += list(inflight.values())
                    inflight.clear()
                    _stop(pool)
                    for i in sorted(lost, reverse=True):
                        attempts[i] += 1
                        if attempts[i] > self.retries:
                            raise MfcoreError(f"a worker process died {attempts[i]} times "
                                              f"while running task {i}; giving up")
                        pending.appendleft(i)
                    self.retried += len(set(lost))
                    pool = self._pool(blob, n)
        finally:
            _stop(pool, terminate=bool(inflight))


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C and termination signals back until the block is done, then act on
    them: a submit may start a worker, and an interrupt half-way would leave a worker
    that the pool does not know of yet, and so would not stop. (Python runs signal
    handlers in the main thread only, whichever thread the signal reached.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    held = [getattr(signal, n) for n in names if hasattr(signal, n)]
    before = {}
    try:
        for signum in held:
            before[signum] = signal.signal(signum, lambda signum, frame: caught.append(signum))
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if caught:
            handler = before[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # KeyboardInterrupt, or the CLI's Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def _stop(pool, terminate=True):
    """Shut a pool down without waiting for running tasks: its workers are terminated."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    if terminate:
        for p in processes:
            try:
                p.terminate()
            except (OSError, AttributeError):  # pragma: no cover - already gone
                pass
    # with its workers gone the pool's manager thread ends at once; waiting for it lets
    # the pool release its queues (no "leaked semaphore" warnings at exit)
    pool.shutdown(wait=True, cancel_futures=True)
    for p in processes:
        p.join(timeout=5)


# ---- Dask ---------------------------------------------------------------------------------
def _dask_call(topic, index, fn, task, payload):
    """A task on a Dask worker: tell the scheduler it started (so that a second start,
    after its worker died, is counted as a retry), then run it."""
    try:
        from distributed import get_worker
        get_worker().log_event(topic, {"task": index})
    except Exception:  # noqa: BLE001 - counting retries must never fail a task
        pass
    return fn(task, payload)


def _fingerprint(fn, tasks, payload) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{fn.__module__}.{fn.__qualname__}".encode())
    h.update(pickle.dumps(tasks, protocol=4))
    own = getattr(payload, "fingerprint", None)
    h.update(own().encode() if callable(own) else pickle.dumps(payload, protocol=4))
    return h.hexdigest()


class DaskBackend(Backend):
    """Tasks on a Dask distributed cluster (``dask scheduler`` + ``dask worker``).

    ``scheduler``: its address (``tcp://host:8786``) or a connected
    ``distributed.Client`` (left open). The payload is scattered to every worker once;
    each task is submitted with a deterministic key (a hash of the function, the tasks
    and the payload, plus the task's index), ``pure=False`` and ``retries``.
    ``timeout``: for connecting (None: Dask's ``distributed.comm.timeouts.connect``, 30 s
    unless configured).
    """

    name = "dask"

    def __init__(self, scheduler, retries: int = 2, timeout=None):
        super().__init__(retries)
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise MfcoreError(DASK_MISSING) from None
        self.scheduler = scheduler
        self.timeout = timeout
        self.address = scheduler if isinstance(scheduler, str) else \
            getattr(scheduler, "scheduler", None) and scheduler.scheduler.address

    def describe(self):
        return f"Dask at {self.address} ({self.workers} workers)"

    def _client(self):
        from distributed import Client
        if not isinstance(self.scheduler, str):
            return self.scheduler, False
        _check_address(self.scheduler)
        try:
            kw = {} if self.timeout is None else {"timeout": self.timeout}
            return Client(self.scheduler, set_as_default=False, **kw), True
        except (OSError, TimeoutError, ValueError) as exc:
            raise MfcoreError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                              f"{exc}") from None

    def run(self, fn, tasks, payload):
        from distributed import KilledWorker, as_completed
        tasks = list(tasks)
        client, owned = self._client()
        outstanding = {}
        try:
            self.workers = len(client.nthreads())
            prefix = "mfcore-" + _fingerprint(fn, tasks, payload)
            # the scheduler keeps events across clients: a topic of this run's own
            topic = f"{prefix}-{os.getpid()}-{time.time_ns()}"
            data = client.scatter(payload, broadcast=True, hash=False)
            attempts = [0] * len(tasks)

            def submit(i):
                key = f"{prefix}-{i}" + (f"-again{attempts[i]}" if attempts[i] else "")
                fut = client.submit(_dask_call, topic, i, fn, tasks[i], data, key=key,
                                    pure=False, retries=self.retries)
                outstanding[fut.key] = (i, fut)
                return fut

            ac = as_completed([submit(i) for i in range(len(tasks))], loop=client.loop,
                              with_results=True, raise_errors=False)
            resubmitted = set()
            for fut, result in ac:
                i, _ = outstanding.pop(fut.key)
                if fut.status == "error":
                    _, exc, tb = result
                    if isinstance(exc, KilledWorker) and attempts[i] < self.retries:
                        attempts[i] += 1
                        resubmitted.add(i)
                        ac.add(submit(i))
                        continue
                    raise exc.with_traceback(tb)
                fut.release()  # a worker that dies later must not make us recompute it
                yield i, result
            starts = collections.Counter(e[1]["task"] for e in client.get_events(topic)
                                         if isinstance(e[1], dict) and "task" in e[1])
            self.retried += len({i for i, c in starts.items() if c > 1} | resubmitted)
        finally:
            if outstanding:
                client.cancel([f for _, f in outstanding.values()], force=True)
            if owned:
                client.close()


def _check_address(address):
    """MfcoreError unless ``address`` reads as a scheduler address (``tcp://host:port``,
    ``host:port``...). Checked before making a Client: one given a malformed address fails
    half-built, and its finaliser then waits a minute to close a connection it never had."""
    from distributed.comm.addressing import parse_address, parse_host_port
    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss", "ucx"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise MfcoreError(f"{address!r} is not a Dask scheduler address such as "
                          f"tcp://host:8786 ({exc})") from None
    if scheme == "inproc" and not _inproc_listening(location):
        # a scheduler inside another process: unreachable, and the Client's finaliser
        # would wait a minute at exit
        raise MfcoreError(f"{address!r} is an inproc:// address, and no scheduler of this "
                          f"process listens there; give one that does, such as "
                          f"tcp://host:8786")


def _inproc_listening(location) -> bool:
    """Whether an inproc:// scheduler of this process listens at ``location``."""
    try:
        from distributed.comm.inproc import global_manager
        return global_manager.get_listener_for(location) is not None
    except ValueError:     # not this process's host and pid
        return False
    except Exception:  # noqa: BLE001 - any other doubt: let the Client try
        return True


def make_backend(jobs=None, scheduler=None, retries: int = 2) -> Backend:
    """The backend for ``jobs`` local processes (None: one per core; 1: this process) or,
    when ``scheduler`` is given, a Dask cluster."""
    if scheduler:
        return DaskBackend(scheduler, retries=retries)
    from .bounds import MAX_JOBS
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise MfcoreError(f"jobs must be an integer from 1 to {MAX_JOBS:,}, got {jobs!r}")
    if jobs == 1:
        return InProcess(retries)
    return LocalProcesses(jobs, retries)
