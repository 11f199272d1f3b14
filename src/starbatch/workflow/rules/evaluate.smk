# Accuracy and cost of the label analyses, and their results on the real DR17 files
# (docs/analyses.md). Not part of the default run: ask for a target, e.g.
# `starbatch run evaluate_accuracy`.

from starbatch.analyses.labels import VALID_RANGE

# The independent set's generator: its own Python, with The Cannon's package (a
# checkout's `make independent` makes .venv-independent/).
INDEPENDENT_PYTHON = config["independent"].get("python") or str(
    PACKAGE.parents[1] / ".venv-independent/bin/python"
)


rule evaluate_accuracy:
    input:
        emulator=EMULATOR,
        models=default_model_files,
    output:
        table="results/evaluation/accuracy.tsv",
        plot=report(
            "results/evaluation/accuracy.png",
            caption="../report/accuracy.rst",
            category="Evaluation",
        ),
    log:
        "logs/evaluation/accuracy.log",
    benchmark:
        "benchmarks/evaluation/accuracy.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        # 300: the robust std of the pulls is then uncertain by ~7%, not ~12% (100).
        n=300,
        snr=[20, 50, 100, 200],
        seed=777,
        analyses=LABEL_ANALYSES,
        analysis_params={},
    script:
        "../scripts/evaluate_accuracy.py"


rule evaluate_robustness:
    input:
        emulator=EMULATOR,
        models=default_model_files,
    output:
        table="results/evaluation/robustness.tsv",
    log:
        "logs/evaluation/robustness.log",
    benchmark:
        "benchmarks/evaluation/robustness.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        n=100,
        snr=[20, 50, 100, 200],
        seed=4242,
    script:
        "../scripts/evaluate_robustness.py"


rule measure_cost:
    input:
        emulator=EMULATOR,
        models=default_model_files,
    output:
        table="results/evaluation/cost.tsv",
    log:
        "logs/evaluation/cost.log",
    benchmark:
        "benchmarks/evaluation/cost.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        n=64,
        seed=778,
        analyses=LABEL_ANALYSES,
        analysis_params={},
    script:
        "../scripts/measure_cost.py"


rule real_spectra_table:
    input:
        models=default_model_files,
    output:
        "results/evaluation/real_spectra.md",
    log:
        "logs/evaluation/real_spectra.log",
    conda:
        CONDA_ENV
    params:
        sas=REAL_SAS,
    script:
        "../scripts/real_spectra_table.py"


# The independent evaluation (docs/evaluation.md): a set made by another code path (The
# Cannon's own package on the Doppler models, its own LSF, continuum and noise), in its
# own environment (a checkout's `make independent`, or config independent.python), then
# every label analysis on it.
rule independent_set:
    input:
        generator=str(PACKAGE / "offline/independent.py"),
    output:
        directory("results/evaluation/independent/set"),
    log:
        "logs/evaluation/independent_set.log",
    conda:
        "../envs/independent.yaml"
    params:
        n=config["independent"].get("n", 100),
        n_out=config["independent"].get("n_out", 2),
        snr=config["independent"].get("snr", [50, 100, 200]),
        seed=config["independent"].get("seed", 9100),
        valid_range=VALID_RANGE,
        python=INDEPENDENT_PYTHON,
    script:
        "../scripts/make_independent_set.py"


rule evaluate_independent:
    input:
        set=rules.independent_set.output[0],
        models=default_model_files,
    output:
        table="results/evaluation/independent.tsv",
    log:
        "logs/evaluation/independent.log",
    benchmark:
        "benchmarks/evaluation/independent.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        analyses=LABEL_ANALYSES,
    script:
        "../scripts/evaluate_independent.py"
