# Training the learned analyses (apogeenet, cannon) on synthetic spectra, and the
# accuracy / cost benchmarks. None of this is part of the default run: ask for it,
# e.g. `snakemake --cores 2 train_apogeenet` (see docs/analyses.md). The training
# rules write resources/models/ relative to the working directory, so run from the
# repository they regenerate the committed files (add --forcerun RULE if present).

from starbatch.benchmark import committed_model_files

PRIOR = str(REPO / "resources/priors/dr17-rgb-labels-subsample.npz")
BENCHMARK_ANALYSES = ["gridfit", "apogeenet", "cannon"]


rule train_apogeenet:
    input:
        config="resources/models/apogeenet-v1.train.json",
        emulator=EMULATOR,
        prior=PRIOR,
    output:
        model="resources/models/apogeenet-v1.pt",
        scores="resources/models/apogeenet-v1.scores.json",
    log:
        "logs/train/apogeenet-v1.log",
    benchmark:
        "benchmarks/train/apogeenet-v1.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        kind="apogeenet",
    script:
        "../../scripts/train.py"


rule train_cannon:
    input:
        config="resources/models/cannon-v1.train.json",
        emulator=EMULATOR,
        prior=PRIOR,
    output:
        model="resources/models/cannon-v1.npz",
        scores="resources/models/cannon-v1.scores.json",
    log:
        "logs/train/cannon-v1.log",
    benchmark:
        "benchmarks/train/cannon-v1.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        kind="cannon",
    script:
        "../../scripts/train.py"


rule accuracy_benchmark:
    input:
        emulator=EMULATOR,
        grid="resources/grids/demo.npz",
        models=lambda wildcards: committed_model_files(BENCHMARK_ANALYSES),
    output:
        table="results/benchmarks/accuracy.tsv",
        plot=report(
            "results/benchmarks/accuracy.png",
            caption="../report/accuracy.rst",
            category="Benchmarks",
        ),
    log:
        "logs/benchmarks/accuracy.log",
    benchmark:
        "benchmarks/accuracy_benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        n=100,
        snr=[20, 50, 100, 200],
        seed=777,
        analyses=BENCHMARK_ANALYSES,
        analysis_params={},
    script:
        "../../scripts/accuracy_benchmark.py"


rule cost_benchmark:
    input:
        emulator=EMULATOR,
        grid="resources/grids/demo.npz",
        models=lambda wildcards: committed_model_files(BENCHMARK_ANALYSES),
    output:
        table="results/benchmarks/cost.tsv",
    log:
        "logs/benchmarks/cost.log",
    benchmark:
        "benchmarks/cost_benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 2
    params:
        n=64,
        seed=778,
        analyses=BENCHMARK_ANALYSES,
        analysis_params={},
    script:
        "../../scripts/cost_benchmark.py"


rule real_spectra_table:
    input:
        grid="resources/grids/demo.npz",
        models=lambda wildcards: committed_model_files(BENCHMARK_ANALYSES),
    output:
        "results/benchmarks/real_spectra.md",
    log:
        "logs/benchmarks/real_spectra.log",
    conda:
        CONDA_ENV
    params:
        sas=REAL_SAS,
    script:
        "../../scripts/real_spectra_table.py"
