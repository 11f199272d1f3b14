"""The independent evaluation (Snakemake `script:` or CLI): gridfit, apogeenet and cannon
on the set make_independent_set.py made (spectra from another code path, labels
uniform over the declared valid range, stars outside every model), read as a batch job
reads apStar files: per analysis and S/N the bias, scatter and pull of each label, the
flags per kind of star, the targets with their measured values (docs/evaluation.md), and
one JSON line.

CLI (in a project; gridfit needs resources/grids/demo.npz):
    python $SCRIPTS/evaluate_independent.py results/evaluation/independent/set \
        results/evaluation/independent.tsv [--analyses gridfit apogeenet cannon]
"""

import argparse
import json
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.engine.entry import run_entry
from starbatch.offline.evaluation import format_rows, write_tsv
from starbatch.offline.independent_evaluation import evaluate, headline, summarise

log = logging.getLogger("starbatch")
COLUMNS = ("analysis", "snr", "label", "bias", "scatter", "median_err", "pull", "n")


def main(set_dir, table, names=LABEL_ANALYSES) -> dict:
    results = evaluate(set_dir, names)
    rows, flag_rows, targets = summarise(results)
    write_tsv(rows, table)
    top = headline(results)
    failed = [t["target"] for t in targets if not t["ok"]]
    text = "\n\n".join(
        [
            format_rows(top, tuple(top[0])),
            format_rows(rows, COLUMNS),
            format_rows(flag_rows, tuple(flag_rows[0])),
            format_rows(targets, tuple(targets[0])),
            f"{len(targets) - len(failed)} of {len(targets)} targets met",
        ]
    )
    summary = {
        "headline": top,
        "targets_met": len(targets) - len(failed),
        "targets": len(targets),
        "not_met": failed,
    }
    log.info("independent evaluation (%s):\n%s", set_dir, text)
    print(text)
    print(json.dumps(summary))
    return summary


def from_snakemake(smk) -> None:
    main(smk.input.set, smk.output.table, smk.params.analyses)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", help="directory made by scripts/make_independent_set.py")
    ap.add_argument("table", help="output TSV")
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    a = ap.parse_args()
    main(a.set, a.table, a.analyses)


run_entry(from_snakemake, cli, globals())
