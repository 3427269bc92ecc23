"""Apply a function to many items in worker processes that each set up their state once: models are loaded
once per worker, not once per item (an executor's task per item would load them again for every item).

Items are handed out one at a time, so fast workers take more of them; results come back in the order they
finish. An error in one item stops the run: the other workers finish the item they hold and take no other,
and the error is raised in the caller. A worker that dies (killed, out of memory) is reported, not waited on;
workers whose caller died (killed) stop after their item.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

State = TypeVar("State")
Item = TypeVar("Item")
Result = TypeVar("Result")

_POLL_SECONDS = 1.0  # how often a waiting caller checks that its workers are alive


def map_in_workers(
    function: Callable[[State, Item], Result],
    items: Sequence[Item],
    setup: Callable[[], State],
    workers: int,
) -> Iterator[Result]:
    """Yield ``function(state, item)`` for every item, ``state = setup()`` made once per worker process.

    ``workers`` <= 1 runs in this process. Items are not None (the workers' end mark);
    ``function`` and ``setup`` must be picklable (module-level functions or :func:`functools.partial` of them)
    where processes are spawned.
    """
    if workers <= 1:
        state = setup()
        for item in items:
            yield function(state, item)
        return
    context = multiprocessing.get_context()
    tasks, results, stop = context.Queue(), context.Queue(), context.Event()
    tasks.cancel_join_thread()  # items left over after an error must not hold up this process's exit
    count = min(workers, len(items))
    for item in [*items, *[None] * count]:  # None: the end mark, one per worker
        tasks.put(item)
    processes = [context.Process(target=_work, args=(function, setup, tasks, results, stop, os.getpid()))
                 for _ in range(count)]
    for process in processes:
        process.start()
    try:
        for _ in items:
            ok, value = _next_result(results, processes)
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        for process in processes:
            process.join()


def _work(function: Callable[[Any, Any], Any], setup: Callable[[], Any], tasks: Any, results: Any, stop: Any,
          caller: int) -> None:
    try:
        state = setup()
        while not stop.is_set() and os.getppid() == caller and (item := tasks.get()) is not None:
            results.put((True, function(state, item)))
    except BaseException as error:  # KeyboardInterrupt too: the caller decides
        results.put((False, error))


def _next_result(results: Any, processes: list[Any]) -> tuple[bool, Any]:
    while True:
        try:
            return results.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not any(process.is_alive() for process in processes):
                codes = ", ".join(str(process.exitcode) for process in processes)
                raise RuntimeError(f"worker processes ended before all items were done (exit codes {codes})") from None
