checkpoint plan:
    input:
        table=config["observations"],
        specs=config.get("task_specs", []),
        demo=["resources/demo/truth.csv"] if demo_enabled() else [],
    output:
        # update(): a failed re-plan (say, a typo in the table) restores the previous
        # plan instead of leaving none.
        manifest=update("results/plan/manifest.tsv"),
        skipped=update("results/plan/skipped.csv"),
    log:
        "logs/plan.log",
    conda:
        CONDA_ENV
    params:
        root=sas_root(),
        schema=str(REPO / "workflow/schemas/observations.schema.yaml"),
        plan_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        max_batch_size=max_batch_sizes(),
        buildable=buildable_models(),
        analysis_modules=config.get("analysis_modules", []),
    script:
        "../../scripts/plan.py"
