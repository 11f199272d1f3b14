rule demo_spectra:
    input:
        emulator=EMULATOR,
        real=REAL_SAS,
    output:
        truth="resources/demo/truth.csv",
    log:
        "logs/demo_spectra.log",
    conda:
        CONDA_ENV
    params:
        root=config["sas_base_dir"],
        n_stars=config["demo"].get("n_stars", 300),
        seed=config["demo"].get("seed", 42),
        snr=config["demo"].get("snr", [30, 200]),
        n_sdss5=config["demo"].get("n_sdss5", 0),
    script:
        "../scripts/make_demo.py"


rule truth_vs_fit:
    input:
        truth="resources/demo/truth.csv",
        summary="results/summary.fits",
    output:
        report(
            "results/plots/truth_vs_fit.png",
            caption="../report/truth_vs_fit.rst",
            category="Demo",
        ),
    log:
        "logs/truth_vs_fit.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/plot_truth.py"
