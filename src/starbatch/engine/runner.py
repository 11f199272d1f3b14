"""The batch runner: one batch job, as its supervisor runs it. The analysis itself runs in
a worker process (engine/worker.py, engine/process.py) that loads the expensive part once
and reports each chunk of members; the supervisor never imports the analysis. It
journals what is finished (so a killed batch resumes), holds each member to a time
limit and the job's memory (engine/limits.py), and writes one result table per batch
atomically.

A member that crashes the worker (a segfault in C code, an abort, os._exit), runs past
its time limit or past the job's memory costs one flagged row (CRASHED, TIMEOUT,
OUT_OF_MEMORY): the supervisor starts a fresh worker that goes on after it, so set-up
is paid again only after such a member. When a chunk of several members (a vectorised
analysis, or a member and the next one being read ahead) is lost, each of them is
tried again alone to find the one at fault. A member on which the whole batch job was
killed twice (kill -9, a lost node, SLURM's kill) is flagged, not analysed a third time
(engine/journal.py)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from . import flags, provenance
from .analysis import Declaration, Task
from .batch_table import Outcome, write_batch_table
from .errors import BatchError
from .journal import Journal, Past, journal_path, member_entry, plan_digest
from .limits import TimeLimit, chunk_members, configured_time_limit, time_limit
from .plan.sizing import Costs, recorded_costs
from .process import ENDED, MESSAGE, ForkedWorker, InProcessWorker, oom_kills, own_peak_mb
from .worker import Registry, file_facts, messages, task_params, tasks_of

log = logging.getLogger("starbatch")
# How often the supervisor looks at the worker's memory while it waits (seconds).
WATCH_S = 0.25
# The share of the job's mem_mb the supervisor and its worker may hold together.
MEMORY_SHARE = 0.9


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


# RunSettings fields that are config keys of the same name.
CONFIG_KEYS = (
    "max_failed_fraction",
    "progress_seconds",
    "journal_every",
    "journal_seconds",
    "supervise",
)


@dataclass(frozen=True)
class RunSettings:
    """How a batch job runs, never what it computes (changing these reruns nothing).
    The defaults are the config schema's (a test checks)."""

    max_failed_fraction: float = 0.5
    progress_seconds: float = 10.0
    journal_every: int = 100  # members between journal flushes
    journal_seconds: float = 300.0  # ... or seconds, whichever comes first
    supervise: bool = True  # the analysis in a worker process, held to the limits
    time_limit_per_obs_s: float | None = None  # None: derived (engine/limits.py)
    time_limit_where: str = ""  # the config key that set it
    runtime_per_obs_s: float | None = None  # the config's declaration, if any
    mem_mb: float | None = None  # the job's memory: the worker's limit
    measured: Costs | None = None  # the analysis's measured costs

    @classmethod
    def from_config(
        cls, config: Mapping, analysis: str, plan_dir: str | Path, mem_mb: float | None = None
    ) -> RunSettings:
        """The settings of a batch of ``analysis`` from the workflow's config."""
        given = {k: config[k] for k in CONFIG_KEYS if config.get(k) is not None}
        limit, where = configured_time_limit(config, analysis)
        own = config.get("analyses", {}).get(analysis, {})
        return cls(
            **given,
            time_limit_per_obs_s=limit,
            time_limit_where=where,
            runtime_per_obs_s=own.get("runtime_per_obs_s"),
            mem_mb=mem_mb,
            measured=recorded_costs(plan_dir).get(analysis),
        )

    def per_obs(self, declaration: Declaration) -> tuple[float, str]:
        """(seconds an observation is expected to take, where that comes from): measured
        on earlier batches, else declared by the config, else by the analysis."""
        if self.measured is not None and self.measured.per_obs_s > 0:
            return self.measured.per_obs_s, self.measured.source
        if self.runtime_per_obs_s is not None:
            return self.runtime_per_obs_s, f"config analyses.{declaration.name}.runtime_per_obs_s"
        return declaration.resources["runtime_per_obs_s"], f"{declaration.name}'s runtime_per_obs_s"

    def time_limit(self, declaration: Declaration) -> TimeLimit:
        return time_limit(
            self.time_limit_per_obs_s, self.time_limit_where, *self.per_obs(declaration)
        )

    def chunk_members(self, declaration: Declaration) -> int:
        """How many members the worker is handed at once (limits.chunk_members)."""
        return chunk_members(declaration.chunk_size, self.per_obs(declaration)[0])


def run_batch(
    plan: dict,
    root: str | Path,
    output: str | Path,
    registry: Registry,
    insignificant: Mapping | None = None,
    run: RunSettings = RunSettings(),
) -> dict:
    """Run every member of one batch and write the result table to ``output``.

    ``plan`` holds the members and the significant parameters; ``insignificant`` the
    others (kept apart so that changing them never reruns a finished batch).
    ``registry``: {name: Analysis subclass}, or a function returning it, which only the
    worker calls (so that the supervisor never imports the analyses)."""
    started = provenance.utc_now()
    start = ForkedWorker if run.supervise else InProcessWorker
    new_worker = partial(start, partial(messages, plan, root, insignificant, registry))
    batch = Supervised(plan, root, output, insignificant, run, new_worker)
    with _sigterm_raises():
        try:
            batch.analyse()
        except Terminated:
            batch.stop()
            log.error(
                "stopped by SIGTERM after %d of %d members; the journal keeps them for the rerun",
                len(batch.outcomes),
                batch.n,
            )
            raise SystemExit(143) from None
        except BatchError:
            batch.stop()
            raise
        finally:
            batch.close()
    ordered = [batch.outcomes[i] for i in range(batch.n)]
    failed = check_failures(batch.declaration, ordered, run.max_failed_fraction)
    header = batch.header(started)
    with _sigterm_raises():
        try:
            write_batch_table(
                output, plan, batch.declaration, ordered, batch.setup_s, header, batch.models
            )
        except Terminated:
            log.error("stopped by SIGTERM while writing %s; the journal keeps every member", output)
            raise SystemExit(143) from None
    batch.journal.remove()
    log.info("wrote %s (%d rows, %d flagged as failed)", output, batch.n, len(failed))
    return {
        "n": batch.n,
        "failed": len(failed),
        "setup_s": batch.setup_s,
        "resumed": batch.n - len(batch.todo),
        "workers": batch.workers,
    }


def check_failures(declaration: Declaration, ordered: list[Outcome], most: float) -> list:
    """The failed rows, each logged. Unreadable or unusable files are facts about single
    observations and stay flagged rows; the analysis failing on more than ``most`` of
    the members means the analysis itself is broken: BatchError."""
    failed = [o for o in ordered if o.flag & flags.FAILED]
    for o in failed:
        log.warning("line %s (%s): %s", o.task.line, o.task.path.name, o.error)
    broken = [o for o in failed if o.flag & flags.ANALYSIS_FAILED]
    n = len(ordered)
    if n and len(broken) / n > most:
        raise BatchError(
            f"{declaration.name} failed on {len(broken)} of {n} observations (more than "
            f"max_failed_fraction={most}); first: {broken[0].error}"
        )
    return failed


class Supervised:
    """One batch under supervision: resume from the journal, hand the rest to workers
    chunk by chunk, flag the members that stop a worker, journal as it goes."""

    def __init__(self, plan: dict, root, output, insignificant, run: RunSettings, new_worker):
        self.plan, self.run, self.new_worker = plan, run, new_worker
        self.began, self.first = time.perf_counter(), None
        self.worker, self.oom_kills = new_worker(), oom_kills()
        self.hello = self._expect("hello", "import of the analysis")
        self.declaration = Declaration.from_json(self.hello["declaration"])
        self.models = [tuple(m) for m in self.hello["models"]]
        self.versions: dict[str, str] = {}
        params = task_params(self.declaration, plan, insignificant)
        self.ran_with = {k: params[k] for k in self.declaration.insignificant_defaults()}
        self.tasks = tasks_of(plan, root, params)
        self.n = len(self.tasks)
        self.limit = run.time_limit(self.declaration)
        self.setup_s, self.workers, self.peak_mb, self.setup_wall_s = 0.0, 0, 0.0, 0.0
        self.shares = {"read_s": 0.0, "analyse_s": 0.0, "loop_s": 0.0}
        log.info(
            "batch %s: %s on %d observation(s), params %s",
            plan["batch"],
            self.declaration.name,
            self.n,
            params,
        )
        self.outcomes, past = self._resume(output)
        self.todo = [i for i in range(self.n) if i not in self.outcomes]
        died = {i: n for i, n in past.died.items() if n and i in self.todo}
        kept = {i: r for i, r in past.records.items() if i in self.outcomes}
        self.journal.start(kept, died, past.attempts + 1)
        self.alone = set(died)
        for i in sorted(died):
            if died[i] >= 2:
                self._flag(i, flags.CRASHED, f"the batch job was killed {died[i]} times on it")
        self.todo = [i for i in self.todo if i not in self.outcomes]
        if self.alone - set(self.outcomes):
            log.info(
                "member(s) %s were in hand when an earlier run of this batch was killed: "
                "each is analysed alone",
                sorted(self.alone - set(self.outcomes)),
            )
        if run.supervise:
            log.info("time limit: %s", self.limit)

    # -- resume -------------------------------------------------------------------------

    def _resume(self, output) -> tuple[dict[int, Outcome], Past]:
        """The members an earlier run finished, still valid, and what that run left."""
        key = ":".join(
            [plan_digest(self.plan), self.declaration.version, *(s for _, s in self.models)]
        )
        self.journal = Journal(journal_path(output), key)
        past = self.journal.read()
        outcomes = {}
        for i, entry in past.records.items():
            try:
                if _still_valid(self.tasks[i], entry):
                    outcomes[i] = _from_entry(self.tasks[i], entry)
            except (KeyError, IndexError, TypeError, ValueError):
                log.warning("journal %s: entry for member %s is malformed; redone", output, i)
        if outcomes:
            log.info(
                "resumed: %d of %d members already done (%s)",
                len(outcomes),
                self.n,
                self.journal.path,
            )
        return outcomes, past

    # -- the member loop ----------------------------------------------------------------

    def schedule(self) -> deque:
        """[members, alone] chunks of what is left: a member to be tried alone is a
        chunk of its own; the others are cut into chunks of RunSettings.chunk_members."""
        chunks, stretch = deque(), []
        size = self.run.chunk_members(self.declaration)
        for i in self.todo:
            if i in self.alone:
                chunks.extend(
                    [[stretch[k : k + size], False] for k in range(0, len(stretch), size)]
                )
                chunks.append([[i], True])
                stretch = []
            else:
                stretch.append(i)
        chunks.extend([[stretch[k : k + size], False] for k in range(0, len(stretch), size)])
        return chunks

    def analyse(self) -> None:
        chunks = self.schedule()
        self.last_flush = self.last_report = self.t_start = time.perf_counter()
        while chunks:
            began = time.perf_counter()
            if self.worker is None:
                self.worker, self.oom_kills = self.new_worker(), oom_kills()
                self._same_analysis(self._expect("hello", "import of the analysis"))
            self.worker.send([list(c) for c in chunks])
            loaded = self._expect("loaded", f"set-up of {self.declaration.name}")
            self.setup_s += loaded["setup_s"]
            self.versions = loaded["versions"]
            self.workers += 1
            self.setup_wall_s += time.perf_counter() - began
            log.info("set-up (load) took %.2f s", loaded["setup_s"])
            self._supervise(chunks)
        # The member loop alone (sizing's time per observation): the set-up is a
        # batch's fixed cost, however often a lost worker made it be paid.
        self.shares["loop_s"] = time.perf_counter() - self.t_start - self.setup_wall_s

    def _same_analysis(self, hello: dict) -> None:
        """A fresh worker must run what the first one ran: a results table is one
        analysis version with one set of model files."""
        if hello != self.hello:
            self._end_worker()
            raise BatchError(
                f"{self.declaration.name} changed while batch {self.plan['batch']} ran (its "
                f"code or model files: {self.hello['models']} then {hello['models']}); "
                "rerun the batch"
            )

    def _supervise(self, chunks: deque) -> None:
        """Hand ``chunks`` to the current worker until they are done or it is lost."""
        opened = self._open(chunks)
        while chunks:
            members = chunks[0][0]
            deadline = opened + self.limit.window(len(members))
            wait = max(0.0, deadline - time.perf_counter())
            if self.run.supervise:
                wait = min(wait, WATCH_S)
            kind, what = self.worker.receive(wait if self.run.supervise else None)
            if kind == MESSAGE:
                if what.get("kind") != "chunk":
                    self._worker_error(what)
                self._done(chunks.popleft(), what)
                opened = self._open(chunks)
            elif kind == ENDED:
                if what.stopped_from_outside:
                    raise Terminated(str(what))
                if self._killed_for_memory(what):
                    self._lost(
                        chunks,
                        flags.OUT_OF_MEMORY,
                        f"the analysis's process {what}: the kernel's OOM killer, at the "
                        "job's memory limit",
                    )
                else:
                    self._lost(chunks, flags.CRASHED, f"the analysis's process {what}")
                return
            elif time.perf_counter() >= deadline:
                self._end_worker()
                waited = time.perf_counter() - opened
                self._lost(
                    chunks,
                    flags.TIMEOUT,
                    f"still running after {waited:.1f} s: time limit {self.limit}",
                )
                return
            elif (budget := self._memory_budget_mb()) and (
                used := self.worker.anonymous_mb()
            ) > budget:
                self._end_worker()
                self._lost(
                    chunks,
                    flags.OUT_OF_MEMORY,
                    f"the analysis's process held {used:.0f} MB, more than its "
                    f"{budget:.0f} MB share of the job's mem_mb={self.run.mem_mb:g}",
                )
                return
        self._end_worker()  # done: reap it (it has ended or is about to)

    def _memory_budget_mb(self) -> float | None:
        """What the worker may hold: the job's mem_mb (its cgroup's limit on SLURM) less
        a margin and what the supervisor itself holds, so that the worker is stopped
        here, with a message, before the kernel stops the job."""
        if not self.run.mem_mb or not self.run.supervise:
            return None
        return max(MEMORY_SHARE * self.run.mem_mb - own_peak_mb(), 1.0)

    def _killed_for_memory(self, ending) -> bool:
        """Whether the worker's SIGKILL was the kernel's OOM killer (the job's cgroup
        counts a kill more than when the worker started)."""
        if ending.signal != signal.SIGKILL or self.oom_kills is None:
            return False
        now = oom_kills()
        return now is not None and now > self.oom_kills

    def _open(self, chunks: deque) -> float:
        """Note the chunk now in hand (the journal's in_hand); when its clock starts."""
        if chunks:
            self.journal.in_hand(chunks[0][0])
        return time.perf_counter()

    def _done(self, chunk: list, message: dict) -> None:
        if self.first is None:  # how soon a job gets to work (a cluster's job start)
            self.first = time.perf_counter() - self.began
            log.info("first observation(s) done %.2f s after the batch job began", self.first)
        for entry in message["records"]:
            i = int(entry["i"])
            self.outcomes[i] = _from_entry(self.tasks[i], entry)
            self.journal.add(entry)
        self.shares["read_s"] += message["read_s"]
        self.shares["analyse_s"] += message["analyse_s"]
        self._progress()

    def _lost(self, chunks: deque, flag: int, what: str) -> None:
        """The worker is gone with the first chunk in hand (and, for a crash, the next
        one if it was being read ahead): one member in hand gets the flag; several are
        each tried again alone."""
        self._end_worker()
        members, alone = chunks.popleft()
        suspects = list(members)
        if flag == flags.CRASHED and chunks and not alone and not chunks[0][1]:
            suspects += chunks.popleft()[0]  # it was being read ahead
        if len(suspects) == 1:
            self._flag(suspects[0], flag, what)
            self._progress()
        else:
            log.warning("%s with member(s) %s in hand; each is tried again alone", what, suspects)
            self.alone.update(suspects)
            for i in reversed(suspects):
                chunks.appendleft([[i], True])

    def _flag(self, i: int, flag: int, what: str) -> None:
        task = self.tasks[i]
        error = f"{flags.describe(flag)}: {what}, on {task.extra['relpath']} (line {task.line})"
        log.error("member %d: %s", i, error)
        outcome = Outcome(task, {}, flag, error, 0.0, file_facts(task.path))
        self.outcomes[i] = outcome
        self.journal.add(member_entry(i, task.extra["relpath"], outcome, self.ran_with))
        self.journal.flush()

    def _progress(self) -> None:
        now = time.perf_counter()
        if (
            len(self.journal.pending) >= self.run.journal_every
            or now - self.last_flush >= self.run.journal_seconds
        ):
            self.journal.flush()
            self.last_flush = now
        done = len(self.outcomes)
        if now - self.last_report >= self.run.progress_seconds or done == self.n:
            resumed = self.n - len(self.todo)
            rate = (done - resumed) / max(now - self.t_start - self.setup_wall_s, 1e-9)
            log.info(
                "progress %d/%d observations (%.1f per s; read %.1f s, analysed %.1f s)",
                done,
                self.n,
                rate,
                self.shares["read_s"],
                self.shares["analyse_s"],
            )
            self.last_report = now

    # -- the worker ---------------------------------------------------------------------

    def _expect(self, kind: str, stage: str) -> dict:
        received, what = self.worker.receive(None)
        if received == MESSAGE and what.get("kind") == kind:
            return what
        if received == MESSAGE:
            self._worker_error(what)
        if what.stopped_from_outside:
            raise Terminated(str(what))
        self._end_worker()
        if self._killed_for_memory(what):
            raise BatchError(
                f"{stage} ran out of memory: the kernel's OOM killer stopped the analysis's "
                f"process at the job's memory limit (mem_mb={self.run.mem_mb}); raise the "
                f"analysis's mem_mb (config analyses.{self.plan['analysis']}.mem_mb)"
            )
        raise BatchError(f"{stage} crashed: the analysis's process {what}")

    def _worker_error(self, message: dict) -> None:
        self._end_worker()
        if message.get("kind") != "error":
            raise BatchError(f"unexpected message from the analysis's process: {message}")
        # The error line is the message. Where it was raised, for the analysis's author,
        # unless the message is a BatchError's, which says all a user needs.
        ours = message.get("type") == "BatchError"
        level = logging.DEBUG if ours else logging.INFO
        log.log(level, "the analysis's process failed:\n%s", message.get("traceback", "").rstrip())
        if ours:
            raise BatchError(message["message"])
        raise BatchError(
            f"{self.plan['analysis']} raised {message.get('type')} outside any one "
            f"observation: {message['message']} (its traceback is in this log)"
        )

    def _end_worker(self) -> None:
        """Stop (if need be) and reap the current worker; keep its peak memory."""
        if self.worker is not None:
            self.peak_mb = max(self.peak_mb, self.worker.kill().peak_mb)
            self.worker = None

    def stop(self) -> None:
        """A stop that is no member's doing (SIGTERM, a failed set-up): keep what is
        finished for the rerun, with nothing in hand (no member died), stop the worker."""
        self.journal.flush()
        self.journal.in_hand([])
        self._end_worker()

    def close(self) -> None:
        self.journal.flush()
        self.journal.close()
        self._end_worker()

    def header(self, started: str) -> dict:
        header = provenance.header_cards(
            self.declaration,
            self.plan["params"],
            self.models,
            started,
            provenance.utc_now(),
            self.versions,
        )
        header["READ_S"] = (round(self.shares["read_s"], 3), "seconds reading (overlapped)")
        header["ANAL_S"] = (round(self.shares["analyse_s"], 3), "seconds analysing")
        # What batch sizing needs (engine/plan/sizing.py): the loop's wall time over the members
        # this run analysed; the job's wall time minus it is the per-batch fixed cost.
        header["LOOP_S"] = (round(self.shares["loop_s"], 3), "seconds in the member loop")
        header["NRUN"] = (len(self.todo), "members analysed in this run (not resumed)")
        header["NWORKER"] = (self.workers, "worker processes (>1: a member stopped one)")
        first = -1.0 if self.first is None else round(self.first, 3)
        header["FIRST_S"] = (first, "s from the supervisor's start to a result")
        # The job's memory for sizing (engine/plan/sizing.py): Snakemake's benchmark samples too
        # rarely to see a short batch's peak.
        own = own_peak_mb()
        peak = self.peak_mb + own if self.run.supervise else max(self.peak_mb, own)
        header["PEAK_MB"] = (round(peak, 1), "peak resident memory of the job (MB)")
        return header


# Redone on resume: the analysis may have been fixed, the file may be back. A member
# that stopped the worker (CRASHED, TIMEOUT, OUT_OF_MEMORY) is not tried again.
_RETRIED = flags.ANALYSIS_ERROR | flags.READ_ERROR


def _still_valid(task: Task, entry: dict) -> bool:
    """A journaled member counts as done if it is this member, did not fail in a way
    worth retrying, and its file is the one it read (same size and mtime)."""
    if entry["path"] != task.extra["relpath"] or entry["flag"] & _RETRIED:
        return False
    facts = entry.get("input", {})
    try:
        st = task.path.stat()
    except OSError:
        return False
    return facts.get("size") == st.st_size and facts.get("mtime_ns") == st.st_mtime_ns


def _from_entry(task: Task, entry: dict) -> Outcome:
    # The row says what it ran with: the insignificant values of the run that made it.
    task.params = {**task.params, **entry.get("insignificant", {})}
    return Outcome(
        task,
        dict(entry["result"]),
        int(entry["flag"]),
        str(entry["error"]),
        float(entry["seconds"]),
        dict(entry.get("input", {})),
    )
