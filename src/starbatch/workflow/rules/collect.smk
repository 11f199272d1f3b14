# Collection in stages: batches -> parts of at most tables_per_part tables -> one
# summary per analysis -> the global summary. No job sees more than tables_per_part
# inputs, however many batches there are; an analysis with no more batches than that
# skips the part stage.


rule collect_part:
    input:
        tables=part_inputs,
    output:
        fits="results/collect/{analysis}/part-{part}.fits",
    log:
        "logs/collect/{analysis}/part-{part}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/collect.py"


rule collect_analysis:
    input:
        tables=analysis_summary_inputs,
    output:
        fits="results/{analysis}/summary.fits",
        csv="results/{analysis}/summary.csv",
        parquet="results/{analysis}/summary.parquet",
    log:
        "logs/collect/{analysis}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/collect.py"


rule summary:
    input:
        tables=summary_inputs,
        skipped=PLAN_SKIPPED,
        redo=redo_marker("summary"),
    output:
        fits=report(
            SUMMARY["fits"], caption="../report/summary.rst", category="Results"
        ),
        csv=report(SUMMARY["csv"], caption="../report/summary.rst", category="Results"),
        parquet=SUMMARY["parquet"],
        failed=report(
            SUMMARY["failed"], caption="../report/failed.rst", category="Failures"
        ),
    log:
        "logs/collect/summary.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/collect.py"


# The star-by-star comparison of the label analyses: reads one summary per label
# analysis (and variant), at most a few dozen files.
rule compare:
    input:
        summaries=label_summaries,
    output:
        parquet="results/compare/labels.parquet",
        fits=report(
            "results/compare/labels.fits",
            caption="../report/compare.rst",
            category="Comparison",
        ),
        html=report(
            "results/plots/compare.html",
            caption="../report/compare.rst",
            category="Comparison",
        ),
    log:
        "logs/collect/compare.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/compare.py"


# Every plot of the summary in one job: each job start costs a Python importing
# matplotlib, on the way to the end of the run.
rule plots:
    input:
        "results/summary.fits",
    output:
        kiel=report(
            "results/plots/kiel.png", caption="../report/kiel.rst", category="Results"
        ),
        timing=report(
            "results/plots/timing.png",
            caption="../report/timing.rst",
            category="Timing",
        ),
        flags_table="results/flags.tsv",
        flags=report(
            "results/plots/flags.png",
            caption="../report/flags.rst",
            category="Results",
        ),
        costs=report(
            "results/batch_costs.tsv",
            caption="../report/costs.rst",
            category="Timing",
        ),
    log:
        "logs/plots/plots.log",
    conda:
        CONDA_ENV
    params:
        # The targets the recommended sizes are for (engine/plan/sizing.py).
        setup_share=config.get("target_setup_share", DEFAULT_SETUP_SHARE),
        batch_minutes=config.get("target_batch_minutes", DEFAULT_BATCH_MINUTES),
    script:
        "../scripts/plot.py"


rule status:
    input:
        summary="results/summary.fits",
        skipped="results/plan/skipped.csv",
    log:
        "logs/status.log",
    conda:
        CONDA_ENV
    params:
        root=sas_root(),
    script:
        "../scripts/status.py"
