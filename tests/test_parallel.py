"""Worker processes that set up their state once and take items one at a time."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from unscene3d.errors import InputError
from unscene3d.parallel import map_in_workers


def new_state() -> str:
    return uuid.uuid4().hex


def tag(state: str, item: int) -> tuple[int, str, int]:
    return os.getpid(), state, 2 * item


def fail_on_three(state: str, item: int) -> int:
    if item == 3:
        raise InputError("scan3.ply", "broken")
    return item


def die(state: str, item: int) -> int:
    os._exit(3)


def states_by_process(results: list[tuple[int, str, int]]) -> dict[int, set[str]]:
    states: dict[int, set[str]] = {}
    for pid, state, _ in results:
        states.setdefault(pid, set()).add(state)
    return states


def test_every_item_is_done_and_each_worker_sets_up_once() -> None:
    results = list(map_in_workers(tag, list(range(12)), new_state, workers=3))
    assert sorted(doubled for _, _, doubled in results) == list(range(0, 24, 2))
    states = states_by_process(results)
    assert 1 <= len(states) <= 3 and os.getpid() not in states
    assert all(len(made) == 1 for made in states.values())  # one setup per worker, not per item


def test_one_worker_runs_here_with_one_setup() -> None:
    results = list(map_in_workers(tag, [1, 2, 3], new_state, workers=1))
    assert [doubled for _, _, doubled in results] == [2, 4, 6]
    assert states_by_process(results) == {os.getpid(): {results[0][1]}}


def test_an_error_in_a_worker_reaches_the_caller_as_itself() -> None:
    with pytest.raises(InputError, match="scan3.ply: broken") as caught:
        list(map_in_workers(fail_on_three, list(range(8)), new_state, workers=2))
    assert caught.value.path == Path("scan3.ply") and caught.value.problem == "broken"


def test_a_worker_that_dies_is_reported_not_waited_on() -> None:
    with pytest.raises(RuntimeError, match="exit codes 3, 3"):
        list(map_in_workers(die, [1, 2], new_state, workers=2))
