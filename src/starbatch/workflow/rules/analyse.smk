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
        # Only what decides the results; run settings (progress, checkpoints, the
        # failure threshold, analysis_modules) come from the config in the job, so that
        # changing them reruns no finished batch.
        root=sas_root(),
    script:
        "../scripts/run_batch.py"
