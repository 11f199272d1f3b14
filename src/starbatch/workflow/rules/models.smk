# Models the analyses load: gridfit's grids, built from the emulator, and the trained
# apogeenet and cannon weights. Training is not part of the default run: ask for it,
# e.g. `starbatch run train_apogeenet` (docs/analyses.md). Trained files go to
# resources/models/ under the working directory, where the analyses look first.


rule build_grid:
    input:
        EMULATOR,
    output:
        "resources/grids/{grid}.npz",
    log:
        "logs/grids/{grid}.log",
    conda:
        CONDA_ENV
    params:
        spec=lambda wildcards: config["grids"][wildcards.grid],
    script:
        "../scripts/build_grid.py"


rule train_apogeenet:
    input:
        config=training_config("apogeenet-v2.train.json"),
        emulator=EMULATOR,
    output:
        model="resources/models/apogeenet-v2.pt",
        scores="resources/models/apogeenet-v2.scores.json",
    log:
        "logs/train/apogeenet-v2.log",
    benchmark:
        "benchmarks/train/apogeenet-v2.tsv"
    conda:
        CONDA_ENV
    # The training config's thread count (1: two OpenMP threads on a shared 2-core
    # machine spin-wait for each other, measured 5x the CPU per step).
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        kind="apogeenet",
    script:
        "../scripts/train.py"


rule train_cannon:
    input:
        config=training_config("cannon-v2.train.json"),
        emulator=EMULATOR,
    output:
        model="resources/models/cannon-v2.npz",
        scores="resources/models/cannon-v2.scores.json",
    log:
        "logs/train/cannon-v2.log",
    benchmark:
        "benchmarks/train/cannon-v2.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        kind="cannon",
    script:
        "../scripts/train.py"
