checkpoint plan:
    input:
        table=config["observations"],
        specs=config.get("task_specs", []),
        demo=["resources/demo/truth.csv"] if demo_enabled() else [],
        redo=redo_marker("plan"),
    output:
        # Not update(): a failed plan's outputs are linked back with their old times
        # (engine/previous.py), so that the table edit it failed on is planned again.
        manifest=PLAN_MANIFEST,
        skipped=PLAN_SKIPPED,
    log:
        "logs/plan.log",
    conda:
        CONDA_ENV
    params:
        root=sas_root(),
        schema=str(SCHEMAS / "observations.schema.yaml"),
        plan_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        max_batch_size=max_batch_sizes(),
        buildable=buildable_models(),
        analysis_modules=config.get("analysis_modules", []),
    script:
        "../scripts/plan.py"
