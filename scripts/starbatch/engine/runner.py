"""The batch runner: load the analysis's expensive part once, hand it the member
tasks (singly or in chunks), never let one bad spectrum end the batch, journal what is
finished (so a killed batch resumes), and write one result table per batch atomically."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from . import flags, provenance
from .analysis import Analysis, Task, UnusableInput
from .batch_table import Outcome, write_batch_table
from .errors import BatchError
from .journal import Journal, journal_path, plan_digest
from .manifest import legacy_settings_dir, settings_file
from .planfile import members

log = logging.getLogger("starbatch")


class Terminated(BaseException):
    """SIGTERM (SLURM's time limit, scancel, a node drain). A BaseException, so that an
    analysis's ``except Exception`` cannot swallow it."""


@contextmanager
def _sigterm_raises():
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        # SLURM repeats the signal while the step winds down: once is enough, and a
        # second one must not interrupt the journal's flush.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def read_plan(path: str | Path) -> dict:
    """The batch plan, its members a dict each (planfile.members), whatever its format."""
    with open(path) as fh:
        try:
            plan = json.load(fh)
        except ValueError as exc:  # truncated or edited by hand
            raise ValueError(f"batch plan {path}: not valid JSON ({exc})") from None
    if isinstance(plan, dict) and "members" in plan:
        plan["members"] = members(plan, f"batch plan {path}")
    return plan


def read_settings(plan_path: str | Path) -> dict:
    """The batch's insignificant parameters, written by planning into the plan
    directory's settings.json ({} if none: the analysis's defaults)."""
    plan_path = Path(plan_path)
    plan_dir = plan_path.parent.parent
    path = settings_file(plan_dir)
    legacy = not path.exists()
    if legacy:  # planned by an older starbatch: a file per batch
        path = legacy_settings_dir(plan_dir) / plan_path.name
    try:
        settings = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"batch settings {path}: not valid JSON ({exc})") from None
    if not legacy:  # {batch: settings}
        settings = settings.get(plan_path.stem, {}) if isinstance(settings, dict) else None
    if not isinstance(settings, dict):
        raise ValueError(f"batch settings {path}: not a mapping of names to values")
    return settings


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


def _read(analysis: type[Analysis], task: Task) -> tuple[int, str, dict]:
    """Read the task's spectrum; on failure the flag and message. Also what the file was
    (size, modification time, FITS checksums), so a result can be matched to its bytes."""
    facts = {}
    try:
        st = task.path.stat()
        facts = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:
        pass
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


def _load(cls: type[Analysis], params: dict):
    t0 = time.perf_counter()
    try:
        analysis = cls()
        model = analysis.load(params)
    except Exception as exc:
        raise BatchError(f"set-up of {cls.name} failed: {type(exc).__name__}: {exc}") from exc
    setup = time.perf_counter() - t0
    log.info("set-up (load) took %.2f s", setup)
    return analysis, model, setup


def run_batch(
    plan: dict,
    root: str | Path,
    output: str | Path,
    registry: Mapping[str, type[Analysis]],
    max_failed_fraction: float = 0.5,
    progress_seconds: float = 30.0,
    settings: Mapping | None = None,
    checkpoint_every: int = 100,
    checkpoint_seconds: float = 300.0,
) -> dict:
    """Run every member of one batch and write the result table to ``output``.

    ``plan`` holds the members and the significant parameters; ``settings`` the
    insignificant ones (kept apart so that changing them never reruns a finished batch).
    Finished members go to a journal every ``checkpoint_every`` members or
    ``checkpoint_seconds``, and on SIGTERM; a rerun skips them."""
    cls = registry[plan["analysis"]]
    defaults = {p.name: p.default for p in cls.all_parameters() if not p.significant}
    params = {**defaults, **plan["params"], **(settings or {})}
    insignificant = {k: params[k] for k in defaults}
    tasks = list(iter_tasks(plan, Path(root), params))
    n = len(tasks)
    log.info("batch %s: %s on %d observation(s), params %s", plan["batch"], cls.name, n, params)
    started = provenance.utc_now()

    # The model files' digests, taken before load reads them (what the rows record).
    try:
        models = provenance.model_digests(cls.model_files(params))
    except OSError:
        models = []  # a missing model file: load says which, in its own words
    # A journal of another plan, analysis version or model file is not trusted.
    key = ":".join([plan_digest(plan), cls.version, *(sha for _, sha in models)])
    journal = Journal(journal_path(output), key)
    kept, outcomes = {}, {}
    for i, record in journal.read().items():
        try:
            if _still_valid(tasks[i], record):
                outcomes[i] = _from_record(tasks[i], record)
                kept[i] = record
        except (KeyError, IndexError, TypeError, ValueError):
            log.warning("journal %s: entry for member %s is malformed; redone", journal.path, i)
    journal.start(kept)
    if outcomes:
        log.info("resumed: %d of %d members already done (%s)", len(outcomes), n, journal.path)
    todo = [i for i in range(n) if i not in outcomes]

    setup, analysis, model = 0.0, None, None
    shares = {"read_s": 0.0, "analyse_s": 0.0}
    t_start = time.perf_counter()
    with _sigterm_raises():
        try:
            if todo:
                analysis, model, setup = _load(cls, params)
            last_flush = last_report = t_start = time.perf_counter()
            for chunk_outcomes in _prefetched(cls, analysis, model, tasks, todo, shares):
                for i, outcome in chunk_outcomes:
                    outcomes[i] = outcome
                    journal.add(i, tasks[i].extra["relpath"], outcome, insignificant)
                now = time.perf_counter()
                if (
                    len(journal.pending) >= checkpoint_every
                    or now - last_flush >= checkpoint_seconds
                ):
                    journal.flush()
                    last_flush = now
                if now - last_report >= progress_seconds or len(outcomes) == n:
                    rate = (len(outcomes) - (n - len(todo))) / max(now - t_start, 1e-9)
                    log.info(
                        "progress %d/%d observations (%.1f per s; read %.1f s, analysed %.1f s)",
                        len(outcomes),
                        n,
                        rate,
                        shares["read_s"],
                        shares["analyse_s"],
                    )
                    last_report = now
        except Terminated:
            journal.flush()
            log.error(
                "stopped by SIGTERM after %d of %d members; the journal keeps them for the rerun",
                len(outcomes),
                n,
            )
            raise SystemExit(143) from None
        finally:
            journal.flush()
    loop_s = time.perf_counter() - t_start

    ordered = [outcomes[i] for i in range(n)]
    failed = [o for o in ordered if o.flag & flags.FAILED]
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
    header = provenance.header_cards(cls, plan["params"], models, started, provenance.utc_now())
    header["READ_S"] = (round(shares["read_s"], 3), "seconds reading (overlapped)")
    header["ANAL_S"] = (round(shares["analyse_s"], 3), "seconds analysing")
    # What batch sizing needs (engine/sizing.py): the loop's wall time over the members
    # this run analysed; the job's wall time minus it is the per-batch fixed cost.
    header["LOOP_S"] = (round(loop_s, 3), "seconds in the member loop (after set-up)")
    header["NRUN"] = (len(todo), "members analysed in this run (not resumed)")
    with _sigterm_raises():
        try:
            write_batch_table(output, plan, cls, ordered, setup, header, models)
        except Terminated:
            log.error("stopped by SIGTERM while writing %s; the journal keeps every member", output)
            raise SystemExit(143) from None
    journal.remove()
    log.info("wrote %s (%d rows, %d flagged as failed)", output, n, len(failed))
    return {"n": n, "failed": len(failed), "setup_s": setup, "resumed": n - len(todo)}


def _read_chunk(cls, tasks: list[Task], indices: list[int]) -> tuple[list, float]:
    """Read the members ``indices``: [(index, task, flag, error, facts)], seconds."""
    t0 = time.perf_counter()
    reads = [(i, tasks[i], *_read(cls, tasks[i])) for i in indices]
    return reads, time.perf_counter() - t0


def _prefetched(cls, analysis, model, tasks: list[Task], todo: list[int], shares: dict):
    """Per chunk, its (index, Outcome)s. The next chunk is read in a second thread while
    this one is analysed: FITS reading is mostly I/O and releases the GIL, so a batch
    costs max(read, analyse) rather than their sum. At most two chunks are in memory."""
    chunks = list(_chunks(todo, cls.chunk_size))
    if not chunks:
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    try:
        ahead = pool.submit(_read_chunk, cls, tasks, chunks[0])
        for k in range(len(chunks)):
            reads, read_s = ahead.result()
            if k + 1 < len(chunks):
                ahead = pool.submit(_read_chunk, cls, tasks, chunks[k + 1])
            t0 = time.perf_counter()
            out = _analyse_chunk(cls, analysis, model, reads, read_s)
            shares["read_s"] += read_s
            shares["analyse_s"] += time.perf_counter() - t0
            yield out
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


# Redone on resume: the analysis may have been fixed, the file may be back.
_RETRIED = flags.ANALYSIS_ERROR | flags.READ_ERROR


def _still_valid(task: Task, record: dict) -> bool:
    """A journaled member counts as done if it is this member, did not fail in a way
    worth retrying, and its file is the one it read (same size and mtime)."""
    if record["path"] != task.extra["relpath"] or record["flag"] & _RETRIED:
        return False
    facts = record.get("input", {})
    try:
        st = task.path.stat()
    except OSError:
        return False
    return facts.get("size") == st.st_size and facts.get("mtime_ns") == st.st_mtime_ns


def _from_record(task: Task, record: dict) -> Outcome:
    # The row says what it ran with: the settings of the run that made it.
    task.params = {**task.params, **record.get("settings", {})}
    return Outcome(
        task,
        dict(record["result"]),
        int(record["flag"]),
        str(record["error"]),
        float(record["seconds"]),
        dict(record.get("input", {})),
    )


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
