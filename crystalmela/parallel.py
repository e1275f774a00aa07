"""Run independent tasks in this process, a local process pool, or on a Dask cluster.

Used by ``dataset build`` (one task per chunk) and ``evaluate`` (one task per fold). Results come
back as they finish, so the caller can write each one at once (a crash loses only running tasks).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterable, Iterator

from crystalmela.plugin_api.errors import CrystalmelaError


def one_blas_thread() -> None:
    """Pool initialiser: one BLAS thread per worker process; several spinning BLAS pools on the same
    cores made a 2-worker build 4× slower than one process (measured)."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def map_unordered(fn: Callable, tasks: Iterable, *args: Any, workers: int | None = None,
                  scheduler: str | None = None) -> Iterator[tuple[Any, Any]]:
    """Yield ``(task, fn(task, *args))`` in completion order. ``scheduler`` is a Dask scheduler
    address; otherwise ``workers`` processes (default: one per core; 1 runs in this process)."""
    tasks = list(tasks)
    if not tasks:
        return
    if scheduler:
        try:
            from dask.distributed import Client, as_completed as dask_completed
        except ImportError:
            raise CrystalmelaError("--scheduler needs dask: pip install 'crystalmela[dask]'") from None
        with Client(scheduler) as client:
            futures = {client.submit(fn, t, *args, pure=False): t for t in tasks}
            for fut in dask_completed(futures):
                yield futures[fut], fut.result()
    elif (workers or os.cpu_count() or 1) <= 1 or len(tasks) == 1:
        for t in tasks:
            yield t, fn(t, *args)
    else:
        import multiprocessing
        # spawn, not fork: forking a process that has started threads (JAX, BLAS) can deadlock
        with ProcessPoolExecutor(max_workers=min(workers or os.cpu_count(), len(tasks)),
                                 initializer=one_blas_thread,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(fn, t, *args): t for t in tasks}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
