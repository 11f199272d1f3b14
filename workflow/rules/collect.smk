# Staged aggregation: batches -> parts of at most aggregate_fanin tables ->
# one summary per analysis -> the global summary. No job sees more than
# aggregate_fanin inputs, however many batches there are.


rule collect_part:
    input:
        tables=shard_inputs,
    output:
        fits="results/collect/{analysis}/part-{shard}.fits",
    log:
        "logs/collect/{analysis}/part-{shard}.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/collect.py"


rule collect_analysis:
    input:
        tables=analysis_parts,
    output:
        fits="results/{analysis}/summary.fits",
        csv="results/{analysis}/summary.csv",
    log:
        "logs/collect/{analysis}.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/collect.py"


rule summary:
    input:
        tables=analysis_summaries,
        skipped="results/plan/skipped.csv",
    output:
        fits=report(
            "results/summary.fits", caption="../report/summary.rst", category="Results"
        ),
        csv=report(
            "results/summary.csv", caption="../report/summary.rst", category="Results"
        ),
        failed=report(
            "results/failed.csv", caption="../report/failed.rst", category="Failures"
        ),
    log:
        "logs/collect/summary.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/collect.py"


rule kiel:
    input:
        "results/summary.fits",
    output:
        report(
            "results/plots/kiel.png", caption="../report/kiel.rst", category="Results"
        ),
    log:
        "logs/plots/kiel.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_kiel.py"


rule flag_summary:
    input:
        "results/summary.fits",
    output:
        table="results/flags.tsv",
        plot=report(
            "results/plots/flags.png",
            caption="../report/flags.rst",
            category="Results",
        ),
    log:
        "logs/plots/flags.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/flag_summary.py"


rule timing:
    input:
        "results/summary.fits",
    output:
        report(
            "results/plots/timing.png",
            caption="../report/timing.rst",
            category="Timing",
        ),
    log:
        "logs/plots/timing.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_timing.py"
