checkpoint plan:
    input:
        table=config["observations"],
        specs=config.get("task_specs", []),
        demo=["resources/demo/truth.csv"] if demo_enabled() else [],
    output:
        manifest="results/plan/manifest.tsv",
        skipped="results/plan/skipped.csv",
    log:
        "logs/plan.log",
    params:
        root=sas_root(),
        plan_dir="results/plan",
        max_batch_size=max_batch_sizes(),
    script:
        "../../scripts/plan.py"
