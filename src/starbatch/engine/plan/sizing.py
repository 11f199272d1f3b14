"""Batch sizes from measured costs (``max_batch_size: auto``).

A batch pays a fixed cost once (job start, imports, the analysis's set-up, writing its
table) and a cost per observation. A batch of n has a set-up share
``setup / (setup + n * per_obs)``; auto sizing takes the smallest n that keeps the share
at most ``target_setup_share`` and caps n so that a batch runs at most
``target_batch_minutes`` (cluster time limits hold). Costs come from earlier batches
(their result headers and Snakemake benchmark files) or, before any run, from what the
analysis declares (Analysis.resources, also the SLURM defaults).

A chosen size then fits the batches that run at once (``parallel_batches``: the run's
--cores; on a cluster, what the config says). It is raised to one round of them (every
core one batch, the set-up paid least often) where such a batch stays within
``target_batch_minutes``: the journal makes a large batch safe to interrupt. And it is
balanced: an analysis gets at least that many batches when it has that many
observations, and its batch count is rounded up to whole rounds of them at equal sizes,
so no core idles while the last batch runs alone. Balancing can lift the set-up share
above the target (at most parallel_batches - 1 more batches); the time limit only gets
easier. With parallel_batches 1 (a cluster's default: its parallelism is not known)
neither applies.

Sizes are stable: once chosen, an analysis's size is recorded in the plan directory
(sizes.json) and reused, so re-plans, no-op reruns and appended rows behave exactly as
with a fixed number; a new size is chosen only when asked (``resize``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from statistics import median

AUTO = "auto"
DEFAULT_SETUP_SHARE = 0.05
DEFAULT_BATCH_MINUTES = 60.0
# Batches whose costs are read back, newest first, per analysis: enough for a median,
# few enough that a re-plan of 10^4 batches reads headers for well under a second.
MEASURED_BATCHES = 50
SIZES_FILE = "sizes.json"
log = logging.getLogger("starbatch")


@dataclass(frozen=True)
class Costs:
    setup_s: float  # once per batch: job start, imports, load, writing the table
    per_obs_s: float
    peak_mb: float | None = None  # largest resident memory of a batch job, if measured
    batches: int = 0  # how many batches were measured; 0: the analysis's declaration

    @property
    def source(self) -> str:
        return f"measured on {self.batches} batch(es)" if self.batches else "declared"

    def batch_seconds(self, n: int) -> float:
        return self.setup_s + n * self.per_obs_s

    def longest(self, batch_minutes: float) -> int:
        """The largest batch that runs within ``batch_minutes`` (at least 1)."""
        per_obs = max(self.per_obs_s, 1e-9)
        return max(1, math.floor((batch_minutes * 60 - self.setup_s) / per_obs))

    def setup_share(self, n: int) -> float:
        total = self.batch_seconds(n)
        return self.setup_s / total if total > 0 else 0.0


def declared_costs(registry: Mapping, analyses_config: Mapping | None = None) -> dict[str, Costs]:
    """{analysis: Costs} before any measurement: the config's analyses.<name>
    runtime_setup_s / runtime_per_obs_s, else what the analysis declares."""
    out = {}
    for name, cls in registry.items():
        own = (analyses_config or {}).get(name, {})
        out[name] = Costs(
            float(own.get("runtime_setup_s", cls.resource("runtime_setup_s"))),
            float(own.get("runtime_per_obs_s", cls.resource("runtime_per_obs_s"))),
        )
    return out


def choose_size(
    costs: Costs,
    setup_share: float = DEFAULT_SETUP_SHARE,
    batch_minutes: float = DEFAULT_BATCH_MINUTES,
) -> tuple[int, str]:
    """(size, why): the smallest batch whose set-up share is at most ``setup_share``,
    unless that batch would run longer than ``batch_minutes`` (the limit wins)."""
    if costs.per_obs_s <= 0:
        return 1, "no time per observation measured: one per batch"
    # share = s / (s + n p) <= f  <=>  n >= s (1 - f) / (f p)
    wanted = max(1, math.ceil(costs.setup_s * (1 - setup_share) / (setup_share * costs.per_obs_s)))
    longest = costs.longest(batch_minutes)
    share = f"set-up {costs.setup_s:.2f} s, {costs.per_obs_s:.4g} s per observation"
    if wanted > longest:
        return longest, (
            f"{share} ({costs.source}): {longest} keeps a batch within {batch_minutes:g} min; "
            f"its set-up share is then {costs.setup_share(longest):.1%} (target "
            f"{setup_share:.0%} would need {wanted})"
        )
    return wanted, (
        f"{share} ({costs.source}): {wanted} keeps the set-up at "
        f"{costs.setup_share(wanted):.1%} of a batch (target {setup_share:.0%}), "
        f"{costs.batch_seconds(wanted) / 60:.1f} min per batch"
    )


def one_round(
    size: int, rows: int, parallel: int, costs: Costs, batch_minutes: float
) -> tuple[int, str]:
    """(size, note): ``size`` raised to one round of ``parallel`` batches (every core
    one batch, the set-up paid least often) where a batch of that size stays within
    ``batch_minutes``; a journal makes a large batch safe to interrupt. Unchanged for
    one batch at a time (a cluster's parallelism is not known) or no rows."""
    if parallel <= 1 or rows <= 0:
        return size, ""
    rounds = math.ceil(rows / parallel)
    wanted = min(rounds, costs.longest(batch_minutes))
    if wanted <= size:
        return size, ""
    return wanted, f"; raised to {wanted}: one round of {parallel} batches at a time" + (
        f" (capped at {batch_minutes:g} min)" if wanted < rounds else ""
    )


def balance(size: int, rows: int, parallel: int) -> tuple[int, str]:
    """(size, note): ``size`` lowered so that ``rows`` observations make at least
    ``parallel`` batches (or one per row) and whole rounds of ``parallel`` equal
    batches where a whole size allows it (9 rows on 4 slots: 5 batches of 2, as no size
    makes 4); unchanged for one batch at a time or no rows."""
    if parallel <= 1 or rows <= 0:
        return size, ""
    wanted = math.ceil(rows / size)
    if wanted < parallel:
        wanted = min(parallel, rows)  # every slot busy, even if set-up weighs more
    else:
        wanted = math.ceil(wanted / parallel) * parallel  # the last round full
    balanced = math.ceil(rows / wanted)  # equal sizes; may make fewer than wanted
    if math.ceil(rows / balanced) < wanted:
        balanced = (rows - 1) // (wanted - 1)  # the largest size making at least wanted
    balanced = max(1, min(size, balanced))
    if balanced == size:
        return size, ""
    return balanced, (
        f"; balanced to {balanced} ({rows} rows in {math.ceil(rows / balanced)} batches, "
        f"{parallel} at a time)"
    )


def _benchmark(path: Path) -> tuple[float, float] | None:
    """(wall seconds, peak RSS MB) from a Snakemake benchmark file, if there is one."""
    try:
        header, values = path.read_text().splitlines()[:2]
    except (OSError, ValueError):
        return None
    row = dict(zip(header.split("\t"), values.split("\t"), strict=False))
    try:
        return float(row["s"]), float(row.get("max_rss", "nan"))
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class BatchCost:
    """What one finished batch cost, from its result header and benchmark file."""

    analysis: str
    batch: str
    fixed_s: float  # job wall time minus the member loop (without a benchmark: set-up)
    loop_s: float
    n_run: int  # members analysed by that run (a resumed batch did fewer)
    peak_mb: float | None

    @property
    def setup_share(self) -> float:
        total = self.fixed_s + self.loop_s
        return self.fixed_s / total if total > 0 else 0.0


def batch_costs(
    batch_dir: str | Path, bench_dir: str | Path | None = None, limit: int = MEASURED_BATCHES
) -> list[BatchCost]:
    """The newest ``limit`` batches of each analysis in ``batch_dir``. Tables of older
    starbatch versions (no LOOP_S) and unreadable ones are left out."""
    from astropy.io import fits  # only when measuring: planning imports this module

    try:
        entries = [e for e in os.scandir(batch_dir) if e.name.endswith(".fits") and e.is_file()]
    except OSError:
        return []
    entries.sort(key=lambda e: e.stat().st_mtime, reverse=True)
    taken: dict[str, int] = {}
    out = []
    for entry in entries:
        analysis = entry.name.split("-", 1)[0]
        if taken.get(analysis, 0) >= limit:
            continue
        try:
            header = fits.getheader(entry.path, 1)
            loop, n_run, fixed = float(header["LOOP_S"]), int(header["NRUN"]), header["SETUP_S"]
            peak = float(header["PEAK_MB"]) if "PEAK_MB" in header else None
        except (OSError, KeyError, IndexError, TypeError, ValueError):
            continue
        batch = entry.name[: -len(".fits")]
        bench = _benchmark(Path(bench_dir) / f"{batch}.tsv") if bench_dir else None
        if bench is not None:
            fixed = max(fixed, bench[0] - loop)
            if math.isfinite(bench[1]):
                peak = max(peak or 0.0, bench[1])
        out.append(BatchCost(analysis, batch, float(fixed), loop, n_run, peak))
        taken[analysis] = taken.get(analysis, 0) + 1
    return out


def summarise(costs: list[BatchCost]) -> dict[str, Costs]:
    """{analysis: Costs}: the median fixed cost, the time per observation over all the
    members analysed, the largest peak memory."""
    by_analysis: dict[str, list[BatchCost]] = {}
    for c in costs:
        by_analysis.setdefault(c.analysis, []).append(c)
    out = {}
    for analysis, items in by_analysis.items():
        runs = sum(c.n_run for c in items)
        if not runs:
            continue
        peaks = [c.peak_mb for c in items if c.peak_mb is not None]
        out[analysis] = Costs(
            round(median(c.fixed_s for c in items), 3),
            round(sum(c.loop_s for c in items) / runs, 6),
            round(max(peaks), 1) if peaks else None,
            len(items),
        )
    return out


def measured_costs(batch_dir: str | Path, bench_dir: str | Path | None = None) -> dict[str, Costs]:
    """{analysis: Costs} from the newest batches' result headers and benchmark files."""
    return summarise(batch_costs(batch_dir, bench_dir))


def read_sizes(plan_dir: str | Path) -> dict[str, dict]:
    path = Path(plan_dir) / SIZES_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def resolve_sizes(
    requested: Mapping[str, int | str],
    declared: Mapping[str, Costs],
    measured: Mapping[str, Costs],
    recorded: Mapping[str, dict],
    *,
    resize: bool = False,
    setup_share: float = DEFAULT_SETUP_SHARE,
    batch_minutes: float = DEFAULT_BATCH_MINUTES,
    rows: Callable[[], Mapping[str, int]] | None = None,
    parallel: int = 1,
) -> tuple[dict[str, int], dict[str, dict]]:
    """Each analysis's batch size, and the record to keep (sizes.json).

    ``requested``: a number or "auto" per analysis. An auto size already recorded is
    kept unless ``resize``; otherwise it is chosen from the measured costs, else the
    declared ones, and balanced (``balance``) over ``parallel`` batches at a time for
    the analysis's row count (``rows()``, asked only when a size is chosen). Every
    record holds the latest costs and the recommended size, so a report can say when a
    resize would pay."""
    sizes, records, counts = {}, {}, None
    for analysis, want in requested.items():
        costs = measured.get(analysis) or declared[analysis]
        recommended, why = choose_size(costs, setup_share, batch_minutes)
        previous = recorded.get(analysis, {})
        kept = False
        if want != AUTO:
            size, mode, why = int(want), "fixed", "max_batch_size in the config"
        elif previous.get("mode") == AUTO and not resize:
            size, mode, why, kept = int(previous["max_batch_size"]), AUTO, previous["why"], True
        else:
            if counts is None:
                counts = rows() if rows is not None else {}
            n_rows = int(counts.get(analysis, 0))
            size, mode = recommended, AUTO
            size, note = one_round(size, n_rows, parallel, costs, batch_minutes)
            size, balanced = balance(size, n_rows, parallel)
            why += note + balanced
        sizes[analysis] = size
        records[analysis] = {
            "max_batch_size": size,
            "mode": mode,
            "why": why,  # why this size was chosen (when it was chosen)
            "kept": kept,
            "recommended": recommended,
            "costs": asdict(costs),
            "costs_source": costs.source,
        }
    return sizes, records


@lru_cache(maxsize=4)
def _recorded_costs(plan_dir: str, mtime: float) -> dict[str, Costs]:
    out = {}
    for analysis, record in read_sizes(plan_dir).items():
        costs = record.get("costs", {})
        if costs.get("batches"):
            out[analysis] = Costs(**costs)
    return out


def recorded_costs(plan_dir: str | Path) -> dict[str, Costs]:
    """{analysis: measured Costs} as the last plan recorded them (cached per file
    version: resource functions ask once per job). Read-only."""
    path = Path(plan_dir) / SIZES_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    return _recorded_costs(str(plan_dir), mtime)


def write_sizes(plan_dir: str | Path, records: Mapping[str, dict]) -> None:
    from ..atomic import write_text_if_changed

    text = json.dumps(records, indent=1, sort_keys=True) + "\n"
    write_text_if_changed(Path(plan_dir) / SIZES_FILE, text)


def plan_sizes(
    requested: Mapping[str, int | str],
    declared: Mapping[str, Costs],
    plan_dir: str | Path,
    batch_dir: str | Path,
    bench_dir: str | Path | None = None,
    *,
    resize: bool = False,
    setup_share: float = DEFAULT_SETUP_SHARE,
    batch_minutes: float = DEFAULT_BATCH_MINUTES,
    rows: Callable[[], Mapping[str, int]] | None = None,
    parallel: int = 1,
) -> tuple[dict[str, int], dict[str, dict]]:
    """resolve_sizes with the costs measured in ``batch_dir``/``bench_dir`` and the
    sizes recorded in ``plan_dir``; logs each auto size and why. The caller writes the
    records (write_sizes) once the plan is written."""
    measured = measured_costs(batch_dir, bench_dir) if Path(batch_dir).is_dir() else {}
    sizes, records = resolve_sizes(
        requested,
        declared,
        measured,
        read_sizes(plan_dir),
        resize=resize,
        setup_share=setup_share,
        batch_minutes=batch_minutes,
        rows=rows,
        parallel=parallel,
    )
    for analysis, r in records.items():
        if r["mode"] == AUTO:
            log.info(
                "%s: max_batch_size auto = %d, %s: %s%s",
                analysis,
                r["max_batch_size"],
                "kept (resize_batches to choose anew)" if r["kept"] else "chosen",
                r["why"],
                f"; recommended now: {r['recommended']}" if r["kept"] else "",
            )
    return sizes, records
