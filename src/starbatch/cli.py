"""The `starbatch` command: make a project, run the packaged workflow in it, see what
its results say, rerun what needs it. Snakemake stays the engine: `run`, `rerun` and
`demo` pass every option they do not know to it unchanged."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from starbatch.offline.project import CONFIG, RUN_PID
from starbatch.workflow import PROFILES, SNAKEFILE

# Options that say how many jobs run at once (else `run` asks for every core); -c8, -j8
# and -e slurm count too.
PARALLELISM = ("--cores", "--jobs", "--profile", "--executor")


def snakemake_command(args: Sequence[str]) -> list[str]:
    """The packaged workflow with ``args``: a shipped profile by its name (``--profile
    slurm``), every core when nothing says how many."""
    args = list(args)
    for i, arg in enumerate(args[:-1]):
        if arg == "--profile" and not Path(args[i + 1]).exists():
            shipped = PROFILES / args[i + 1]
            if shipped.is_dir():
                args[i + 1] = str(shipped)
    if not any(a.split("=", 1)[0] in PARALLELISM or a[:2] in ("-c", "-j", "-e") for a in args):
        args = ["--cores", "all", *args]
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), *args]


def run(args: Sequence[str], directory: Path = Path(".")) -> int:
    """Snakemake on the packaged workflow in ``directory``; its exit status. A lock left
    by an earlier `starbatch run` whose Snakemake was killed (it is gone) is removed
    first: a plain rerun then continues where it stopped."""
    directory = Path(directory)
    if not (directory / CONFIG).exists():
        print(
            f"starbatch: no {CONFIG} in {directory.resolve()}: not a project "
            "(make one with `starbatch init DIR`)",
            file=sys.stderr,
        )
        return 2
    earlier = _recorded_run(directory)
    if earlier == "gone" and any((directory / ".snakemake" / "locks").glob("*")):
        print("starbatch: removing the lock of an earlier run that was killed", file=sys.stderr)
        subprocess.call(snakemake_command(["--unlock"]), cwd=directory)
    # A live run keeps its record (a dry run alongside it must not take it over); a run
    # on another host sharing the directory can only be unlocked by hand.
    record = earlier not in ("alive", "elsewhere")
    pid = directory / RUN_PID
    pid.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(snakemake_command(args), cwd=directory)
    if record:  # Snakemake's own PID: it may outlive this process
        pid.write_text(f"{proc.pid} {socket.gethostname()} {_started(proc.pid)}\n")
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Snakemake got the Ctrl-C too: let it stop its jobs
        return proc.wait()
    finally:
        if record and proc.poll() is not None:
            pid.unlink(missing_ok=True)


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), "-" where /proc cannot
    say, None when there is no such process. With the PID it names one process even
    after the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "-"


def _recorded_run(directory: Path) -> str:
    """What became of the Snakemake an earlier `starbatch run` recorded: "none",
    "alive", "gone" (killed: its lock is stale), "elsewhere" (another host) or
    "unknown" (an unreadable record)."""
    try:
        pid, host, started = (directory / RUN_PID).read_text().split()
        pid = int(pid)
    except FileNotFoundError:
        return "none"
    except ValueError:
        return "unknown"
    if host != socket.gethostname():
        return "elsewhere"
    now = _started(pid)
    return "alive" if now is not None and now in (started, "-") else "gone"


def status() -> dict:
    """The status table of the project in the working directory, printed; its data."""
    from starbatch.engine.status import format_status
    from starbatch.offline.project import status as project_status

    result = project_status()
    print(format_status(result))
    return result


def rerun(what: str, args: Sequence[str]) -> int:
    from starbatch.engine.status import rerun_targets

    targets = rerun_targets(status(), what)
    if not targets:
        print(f"nothing to rerun: no {what} rows")
        return 0
    print(f"rerunning {len(targets)} target(s): {' '.join(targets[:10])}")
    # Batch IDs are validated identifiers, and no shell is involved.
    return run([*args, "--forcerun", *targets])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="starbatch",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Each command's --help says more. Snakemake's own: starbatch run --snakemake-help",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = sub.add_parser(
        "init",
        help="make a project: config, example table on real DR17 files, example analysis",
        description="Make a project in DIR: config/config.yaml (commented), "
        "config/observations.csv (an example table on four real DR17 spectra, copied "
        "into DIR/sas), linedepth.py (an example analysis of your own) and a README. "
        "An existing project is never overwritten.",
    )
    init.add_argument("directory", type=Path)
    run_p = sub.add_parser(
        "run",
        help="run the workflow in the current project (Snakemake options pass through)",
        description="Run the packaged workflow in the current directory (a project). "
        "Every option not listed here goes to Snakemake unchanged, e.g. --cores 8, -n, "
        "--forcerun plan, --until plan, --report report.html; --profile slurm finds the "
        "shipped SLURM profile. Without --cores or --jobs it uses every core.",
    )
    run_p.add_argument("--snakemake-help", action="store_true", help="Snakemake's own options")
    sub.add_parser(
        "status",
        help="done, failed, not run and stale rows per analysis",
        description="Per analysis: rows done, failed (by flag), not run (file missing at "
        "planning) and stale (input file changed, or the model the next run would load "
        "is not the one the row was made with).",
    )
    again = sub.add_parser(
        "rerun",
        help="rerun the batches holding failed or stale rows (Snakemake options pass through)",
        description="Rerun exactly the batches that hold failed (or stale) rows, and what "
        "depends on them. Other options go to Snakemake, as for run.",
    )
    again.add_argument("what", choices=("failed", "stale"))
    demo = sub.add_parser(
        "demo",
        help="make the demo project in DIR and run it (Snakemake options pass through)",
        description="Make the demo in DIR (synthetic spectra with known labels, generated "
        "by the workflow, plus real DR17 files) and run it; other options go to Snakemake.",
    )
    demo.add_argument("directory", type=Path)
    sub.add_parser(
        "workflow-path",
        help="the packaged Snakefile (for snakemake -s, or a module: of your own)",
        description="Print the path of the packaged Snakefile.",
    )
    a, rest = ap.parse_known_args(argv)
    if rest and a.command not in ("run", "rerun", "demo"):
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.command == "init":
        from starbatch.offline.project import ProjectExists, init_project

        try:
            made = init_project(a.directory)
        except ProjectExists as exc:
            print(f"starbatch: {exc}", file=sys.stderr)
            return 1
        print(f"made a project in {made}: cd {made} && starbatch run --cores 2")
        return 0
    if a.command == "run":
        if a.snakemake_help:
            return subprocess.call([sys.executable, "-m", "snakemake", "--help"])
        return run(rest)
    if a.command == "status":
        status()
        return 0
    if a.command == "rerun":
        return rerun(a.what, rest)
    if a.command == "demo":
        from starbatch.offline.project import ProjectExists, demo_project

        if not (a.directory / CONFIG).exists():
            try:
                demo_project(a.directory)
            except ProjectExists as exc:  # made meanwhile
                print(f"starbatch: {exc}", file=sys.stderr)
                return 1
        return run(rest, a.directory)
    print(SNAKEFILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
