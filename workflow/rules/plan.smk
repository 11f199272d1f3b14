checkpoint plan:
    input:
        table=config["observations"],
        specs=config.get("task_specs", []),
        demo=["resources/demo/truth.csv"] if demo_enabled() else [],
    output:
        manifest="results/plan/manifest.tsv",
        skipped=report(
            "results/plan/skipped.csv",
            caption="../report/skipped.rst",
            category="Failures",
        ),
    log:
        "logs/plan.log",
    conda:
        CONDA_ENV
    params:
        root=sas_root(),
        schema=str(REPO / "workflow/schemas/observations.schema.yaml"),
        plan_dir=lambda wildcards, output: os.path.dirname(output.manifest),
        max_batch_size=max_batch_sizes(),
    script:
        "../../scripts/plan.py"
