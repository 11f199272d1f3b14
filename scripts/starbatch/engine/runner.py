"""The batch runner: load the analysis's expensive part once, hand it the member
tasks (singly or in chunks), never let one bad spectrum end the batch, and write
one result table per batch atomically."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import flags
from .analysis import Analysis, Task, UnusableInput
from .results import Outcome, write_batch_table

log = logging.getLogger("starbatch")


class BatchError(RuntimeError):
    """The whole batch failed (set-up failed, or too many members failed)."""


def read_plan(path: str | Path) -> dict:
    with open(path) as fh:
        try:
            return json.load(fh)
        except ValueError as exc:  # truncated or edited by hand
            raise ValueError(f"batch plan {path}: not valid JSON ({exc})") from None


def iter_tasks(plan: dict, root: Path, params: Mapping) -> Iterator[Task]:
    """The equivalent of Astra's get_batch_tasks(): one Task per member."""
    for member in plan["members"]:
        yield Task(
            line=member["line"],
            keys=member["keys"],
            params=dict(params),
            path=Path(root) / member["path"],
            extra={"source": member.get("source", ""), "relpath": member["path"]},
        )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]


def _read(analysis: type[Analysis], task: Task) -> tuple[int, str]:
    """Read the task's spectrum; on failure return the flag and message."""
    read_params = {p.name: task.params[p.name] for p in analysis.product.read_parameters}
    try:
        task.spectrum = analysis.product.read(task.path, **read_params)
    except FileNotFoundError:
        return flags.READ_ERROR, f"file not found: {task.path}"
    except UnusableInput as exc:  # the message names the file
        return exc.flag, str(exc)
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        return flags.READ_ERROR, f"cannot read {task.path}: {type(exc).__name__}: {exc}"
    return 0, ""


def run_batch(
    plan: dict,
    root: str | Path,
    output: str | Path,
    registry: Mapping[str, type[Analysis]],
    max_failed_fraction: float = 0.5,
    progress_seconds: float = 30.0,
) -> dict:
    """Run every member of one batch and write the result table to ``output``."""
    cls = registry[plan["analysis"]]
    params = plan["params"]
    tasks = list(iter_tasks(plan, Path(root), params))
    n = len(tasks)
    log.info("batch %s: %s on %d observation(s), params %s", plan["batch"], cls.name, n, params)

    t0 = time.perf_counter()
    try:
        analysis = cls()
        model = analysis.load(params)
    except Exception as exc:
        raise BatchError(f"set-up of {cls.name} failed: {type(exc).__name__}: {exc}") from exc
    setup = time.perf_counter() - t0
    log.info("set-up (load) took %.2f s", setup)

    outcomes: list[Outcome] = []
    last_report = started = time.perf_counter()
    for chunk in _chunks(tasks, cls.chunk_size):
        c0 = time.perf_counter()
        readable, read_failures = [], []
        for task in chunk:
            flag, error = _read(cls, task)
            (read_failures if flag else readable).append((task, flag, error))
        results = analysis.analyse_many(model, [t for t, _, _ in readable]) if readable else []
        if len(results) != len(readable):
            raise BatchError(
                f"{cls.name}.analyse_many returned {len(results)} results for {len(readable)} tasks"
            )
        per_task = (time.perf_counter() - c0) / len(chunk)
        for task, flag, error in read_failures:
            outcomes.append(Outcome(task, {}, flag, error, per_task))
        for (task, _, _), result in zip(readable, results, strict=True):
            outcomes.append(_outcome(task, result, per_task))
        for task in chunk:
            task.spectrum = None  # free memory as we go
        now = time.perf_counter()
        if now - last_report >= progress_seconds or len(outcomes) == n:
            rate = len(outcomes) / max(now - started, 1e-9)
            log.info("progress %d/%d observations (%.1f per s)", len(outcomes), n, rate)
            last_report = now

    position = {id(t): i for i, t in enumerate(tasks)}
    outcomes.sort(key=lambda o: position[id(o.task)])
    failed = [o for o in outcomes if o.flag & flags.FAILED]
    for o in failed:
        log.warning("line %s (%s): %s", o.task.line, o.task.path.name, o.error)
    # Unreadable or unusable files are facts about single observations and stay
    # flagged rows; many analysis errors mean the analysis itself is broken.
    crashed = [o for o in failed if o.flag & flags.ANALYSIS_ERROR]
    if n and len(crashed) / n > max_failed_fraction:
        raise BatchError(
            f"{cls.name} raised errors on {len(crashed)} of {n} observations (more than "
            f"max_failed_fraction={max_failed_fraction}); first: {crashed[0].error}"
        )
    write_batch_table(output, plan, cls, outcomes, setup)
    log.info("wrote %s (%d rows, %d flagged as failed)", output, n, len(failed))
    return {"n": n, "failed": len(failed), "setup_s": setup}


def _outcome(task: Task, result: dict | Exception, seconds: float) -> Outcome:
    if isinstance(result, Exception):
        flag = getattr(result, "flag", flags.ANALYSIS_ERROR)
        message = f"{type(result).__name__}: {result}"
        log.debug("line %s traceback:\n%s", task.line, "".join(traceback.format_exception(result)))
        return Outcome(task, {}, flag, message, seconds)
    result = dict(result)
    flag = int(result.pop("flag", 0))
    error = str(result.pop("error", ""))
    return Outcome(task, result, flag, error, seconds)
