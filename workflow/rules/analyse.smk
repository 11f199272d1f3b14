# The batch jobs: one per batch of the plan, loading its analysis once (resources:
# rules/resources.smk).


rule analyse_batch:
    input:
        unpack(batch_inputs),
    output:
        "results/batches/{batch}.fits",
    log:
        "logs/batches/{batch}.log",
    benchmark:
        "benchmarks/batches/{batch}.tsv"
    group:
        batch_group
    conda:
        CONDA_ENV
    threads: batch_threads
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
        gpu=batch_gpus,
    params:
        root=sas_root(),
        max_failed_fraction=config["max_failed_fraction"],
        progress_seconds=config.get("progress_seconds", 10),
        checkpoint_every=config.get("checkpoint_every", 100),
        checkpoint_seconds=config.get("checkpoint_seconds", 300),
        analysis_modules=config.get("analysis_modules", []),
    script:
        "../../scripts/run_batch.py"
