"""The Snakemake workflow, shipped inside the package: its Snakefile (for `snakemake -s`
and a `module:` of your own Snakefile), the rules and their scripts, schemas, software
environments, report captions and profiles. Imports nothing."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAKEFILE = HERE / "Snakefile"
PROFILES = HERE / "profiles"
SCRIPTS = HERE / "scripts"
SCHEMAS = HERE / "schemas"
CONDA_ENV = HERE / "envs" / "starbatch.yaml"
