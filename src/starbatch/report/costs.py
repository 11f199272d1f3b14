"""What batching cost, per analysis: the set-up share of the batches, the time per
observation and the batch size that would meet the targets (engine/plan/sizing.py), as a
TSV for the report and as the end-of-run lines."""

from __future__ import annotations

import csv
from pathlib import Path
from statistics import median

from starbatch.engine.atomic import write_atomic
from starbatch.engine.plan.sizing import (
    DEFAULT_BATCH_MINUTES,
    DEFAULT_SETUP_SHARE,
    batch_costs,
    choose_size,
    read_sizes,
    summarise,
)

# Batches read per analysis (their FITS headers): a median needs no more.
REPORT_BATCHES = 200
COLUMNS = (
    "analysis",
    "batches_measured",
    "fixed_s_median",
    "setup_share_median",
    "setup_share_max",
    "per_obs_s",
    "peak_mb",
    "max_batch_size",
    "mode",
    "recommended",
)


def cost_rows(
    batch_dir,
    bench_dir,
    plan_dir,
    setup_share: float = DEFAULT_SETUP_SHARE,
    batch_minutes: float = DEFAULT_BATCH_MINUTES,
) -> list[dict]:
    costs = batch_costs(batch_dir, bench_dir, limit=REPORT_BATCHES)
    sizes = read_sizes(plan_dir)
    rows = []
    for analysis, summary in sorted(summarise(costs).items()):
        shares = [c.setup_share for c in costs if c.analysis == analysis]
        record = sizes.get(analysis, {})
        rows.append(
            {
                "analysis": analysis,
                "batches_measured": summary.batches,
                "fixed_s_median": summary.setup_s,
                "setup_share_median": round(median(shares), 4),
                "setup_share_max": round(max(shares), 4),
                "per_obs_s": summary.per_obs_s,
                "peak_mb": summary.peak_mb if summary.peak_mb is not None else "",
                "max_batch_size": record.get("max_batch_size", ""),
                "mode": record.get("mode", ""),
                "recommended": choose_size(summary, setup_share, batch_minutes)[0],
            }
        )
    return rows


def write_cost_table(path, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS, delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)


def cost_lines(path) -> list[str]:
    """One line per analysis from a cost table, for the end of a run."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return []
    return [
        f"{r['analysis']}: set-up {float(r['setup_share_median']):.1%} of a batch (median of "
        f"{r['batches_measured']}, max {float(r['setup_share_max']):.1%}), "
        f"{float(r['per_obs_s']) * 1000:.0f} ms per observation; max_batch_size "
        f"{r['max_batch_size'] or '?'} ({r['mode'] or 'fixed'}), recommended {r['recommended']}"
        for r in rows
    ]
