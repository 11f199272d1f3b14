"""Make the independent evaluation set (Snakemake `script:` or CLI): runs the standalone
generator starbatch/offline/independent.py in the environment that has The
Cannon's package (this interpreter if it has `thecannon`, as under `--sdm conda`, else the
one given, by default .venv-independent/bin/python from `make independent`). Imports the
standard library only, so it runs in either environment.

CLI (from a checkout's root; $SCRIPTS: the workflow's scripts folder):
    python $SCRIPTS/make_independent_set.py OUT_DIR --range '{"giant_teff": [3800, 5200],
        "dwarf_teff": [4500, 6500], "feh": [-2.0, 0.4]}' [--n 100] [--n-out 2]
        [--snr 50 100 200] [--seed 9100]
"""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

DEFAULT_PYTHON = ".venv-independent/bin/python"


def python_with_thecannon(python: str) -> str:
    return sys.executable if importlib.util.find_spec("thecannon") else python


def main(generator, out, n, n_out, snrs, seed, valid_range, python, log=None) -> None:
    """Run the generator as a separate process (an argument list: no shell)."""
    python = python_with_thecannon(python)
    if not Path(python).exists() and python != sys.executable:
        raise SystemExit(f"{python}: no such interpreter; run `make independent` first")
    args = [python, str(generator), str(out), "--n", str(n), "--n-out", str(n_out)]
    args += ["--snr", *map(str, snrs), "--seed", str(seed), "--range", json.dumps(valid_range)]
    if log is None:
        subprocess.run(args, check=True)
        return
    with open(log, "w") as fh:
        fh.write(" ".join(args) + "\n")
        fh.flush()
        subprocess.run(args, check=True, stdout=fh, stderr=subprocess.STDOUT)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--range", required=True, help="the declared valid range (JSON)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--n-out", type=int, default=2)
    ap.add_argument("--snr", type=float, nargs="+", default=[50.0, 100.0, 200.0])
    ap.add_argument("--seed", type=int, default=9100)
    ap.add_argument("--python", default=DEFAULT_PYTHON)
    a = ap.parse_args()
    generator = Path(__file__).resolve().parents[2] / "offline/independent.py"
    main(generator, a.out, a.n, a.n_out, a.snr, a.seed, json.loads(a.range), a.python)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    p = smk.params
    main(
        smk.input.generator,
        smk.output[0],
        p.n,
        p.n_out,
        p.snr,
        p.seed,
        p.valid_range,
        p.python,
        smk.log[0],
    )
elif __name__ == "__main__":
    cli()
