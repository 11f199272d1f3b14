"""The worker of a batch job: the side that imports the analysis, loads its expensive
part once and analyses the members it is given, in chunks, reporting each chunk's rows
as journal records. Its supervisor (engine/runner.py) never imports the analysis; it
runs this in a process of its own (engine/process.py), or in itself with supervise off.

The exchange, as a generator (``messages``):

1. it yields ``{"kind": "hello", "declaration": ..., "models": [[path, sha256], ...]}``
   once the analysis is imported, and is sent the schedule: ``[[members, alone], ...]``
   in the order to analyse them (``alone``: no other member is read or analysed while
   this one is, so that a crash is this member's);
2. it loads the analysis and yields ``{"kind": "loaded", "setup_s": ..., "versions":
   {module: version}}`` (what it imported, for the provenance header);
3. it yields ``{"kind": "chunk", "records": [...], "read_s": ..., "analyse_s": ...}``
   for each chunk, in schedule order.

A set-up that fails, or an analyse_many that breaks its contract, raises BatchError."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import flags, provenance
from .analysis import Analysis, Declaration, Task, UnusableInput
from .batch_table import Outcome
from .errors import BatchError
from .journal import member_entry

log = logging.getLogger("starbatch")

Registry = Mapping[str, type[Analysis]] | Callable[[], Mapping[str, type[Analysis]]]


def task_params(declaration: Declaration, plan: dict, insignificant: Mapping | None) -> dict:
    """Every task's parameters: the insignificant ones' defaults, the batch's significant
    ones, then the planned insignificant values."""
    return {**declaration.insignificant_defaults(), **plan["params"], **(insignificant or {})}


def tasks_of(plan: dict, root: str | Path, params: Mapping) -> list[Task]:
    """The equivalent of Astra's get_batch_tasks(): one Task per member."""
    return [
        Task(
            line=member["line"],
            keys=member["keys"],
            params=dict(params),
            path=Path(root) / member["path"],
            extra={"source": member.get("source", ""), "relpath": member["path"]},
        )
        for member in plan["members"]
    ]


def messages(
    plan: dict, root: str | Path, insignificant: Mapping | None, registry: Registry
) -> Generator[dict, list, None]:
    """The worker's side of the exchange (module docstring)."""
    if callable(registry):
        registry = registry()
    cls = registry[plan["analysis"]]
    declaration = Declaration.of(cls)
    params = task_params(declaration, plan, insignificant)
    try:
        models = provenance.model_digests(cls.model_files(params))
    except OSError:
        models = []  # a missing model file: load says which, in its own words
    schedule = yield {
        "kind": "hello",
        "declaration": declaration.to_json(),
        "models": [list(m) for m in models],
    }
    if not schedule:
        return
    analysis, model, setup = _load(cls, params, models)
    yield {"kind": "loaded", "setup_s": setup, "versions": provenance.module_versions()}
    tasks = tasks_of(plan, root, params)
    ran_with = {k: params[k] for k in declaration.insignificant_defaults()}
    for out, read_s, analyse_s in _prefetched(cls, analysis, model, tasks, schedule):
        yield {
            "kind": "chunk",
            "records": [member_entry(i, o.task.extra["relpath"], o, ran_with) for i, o in out],
            "read_s": read_s,
            "analyse_s": analyse_s,
        }


def _load(cls: type[Analysis], params: dict, models: list):
    t0 = time.perf_counter()
    try:
        analysis = cls()
        model = analysis.load(params)
    except Exception as exc:
        files = f" (model files: {', '.join(p for p, _ in models)})" if models else ""
        raise BatchError(
            f"set-up of {cls.name} failed{files}: {type(exc).__name__}: {exc}"
        ) from exc
    return analysis, model, time.perf_counter() - t0


def read_task(analysis: type[Analysis], task: Task) -> tuple[int, str, dict]:
    """Read the task's spectrum; on failure the flag and message. Also what the file was
    (size, modification time, FITS checksums), so a result can be matched to its bytes."""
    facts = file_facts(task.path)
    read_params = {p.name: task.params[p.name] for p in analysis.product.read_parameters}
    try:
        task.spectrum = analysis.product.read(task.path, **read_params)
    except FileNotFoundError:
        return flags.READ_ERROR, f"file not found: {task.path}", facts
    except UnusableInput as exc:  # the message names the file
        return exc.flag, str(exc), facts
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        return flags.READ_ERROR, f"cannot read {task.path}: {type(exc).__name__}: {exc}", facts
    meta = getattr(task.spectrum, "meta", {}) or {}
    for key in ("checksum", "datasum"):
        if meta.get(key):
            facts[key] = str(meta[key])
    return 0, "", facts


def file_facts(path: Path) -> dict:
    """The size and modification time of a member's file ({} if it cannot be seen)."""
    try:
        st = path.stat()
    except OSError:
        return {}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_chunk(cls, tasks: list[Task], indices: list[int]) -> tuple[list, float]:
    """Read the members ``indices``: [(index, task, flag, error, facts)], seconds."""
    t0 = time.perf_counter()
    reads = [(i, tasks[i], *read_task(cls, tasks[i])) for i in indices]
    return reads, time.perf_counter() - t0


def _prefetched(cls, analysis, model, tasks: list[Task], schedule: list) -> Iterator:
    """Per scheduled chunk, its [(index, Outcome)], read and analysis seconds; a chunk
    is handed to analyse_many in parts of the analysis's chunk_size. The next chunk is
    read in a second thread while this one is analysed (where reading waits on the file
    system or numpy, which release the GIL, a batch costs max(read, analyse) rather than
    their sum), unless either chunk is to be alone. At most two chunks are in memory."""
    if not schedule:
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    try:
        ahead = pool.submit(_read_chunk, cls, tasks, schedule[0][0])
        for k, (_, alone) in enumerate(schedule):
            reads, read_s = ahead.result()
            together = k + 1 < len(schedule) and not alone and not schedule[k + 1][1]
            if together:
                ahead = pool.submit(_read_chunk, cls, tasks, schedule[k + 1][0])
            t0 = time.perf_counter()
            out = []
            size = max(1, cls.chunk_size)  # what analyse_many is handed at once
            for start in range(0, len(reads), size):
                part = reads[start : start + size]
                out += _analyse_chunk(cls, analysis, model, part, read_s * len(part) / len(reads))
            analyse_s = time.perf_counter() - t0
            yield out, read_s, analyse_s
            # Only once this chunk is reported: a crash in the next read is then the
            # next chunk's, as its being alone requires.
            if not together and k + 1 < len(schedule):
                ahead = pool.submit(_read_chunk, cls, tasks, schedule[k + 1][0])
    finally:
        # On SIGTERM do not wait for the read ahead: the journal's flush comes first.
        pool.shutdown(wait=False, cancel_futures=True)


def _analyse_chunk(cls, analysis, model, reads: list, read_s: float):
    """(member index, Outcome) of one read chunk, analysed together."""
    c0 = time.perf_counter()
    readable = [r for r in reads if not r[2]]
    results = analysis.analyse_many(model, [r[1] for r in readable]) if readable else []
    if len(results) != len(readable):
        raise BatchError(
            f"{cls.name}.analyse_many returned {len(results)} results for {len(readable)} tasks"
        )
    per_task = (time.perf_counter() - c0 + read_s) / len(reads)
    out = []
    for i, task, flag, error, facts in reads:
        if flag:
            out.append((i, Outcome(task, {}, flag, error, per_task, facts)))
    for (i, task, _, _, facts), result in zip(readable, results, strict=True):
        out.append((i, _outcome(task, result, per_task, facts)))
    for _, task, *_ in reads:
        task.spectrum = None  # free memory as we go
    return out


def _outcome(task: Task, result: dict | Exception, seconds: float, facts: dict) -> Outcome:
    if isinstance(result, Exception):
        flag = getattr(result, "flag", flags.ANALYSIS_ERROR)
        message = f"{type(result).__name__}: {result}"
        log.debug("line %s traceback:\n%s", task.line, "".join(traceback.format_exception(result)))
        return Outcome(task, {}, flag, message, seconds, facts)
    result = dict(result)
    flag = int(result.pop("flag", 0))
    error = str(result.pop("error", ""))
    return Outcome(task, result, flag, error, seconds, facts)
