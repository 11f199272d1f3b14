"""The entry points' plumbing (engine/entry.py), run as the scripts run: a process."""

import os
import subprocess
import sys

from starbatch.workflow import SCRIPTS

JOB = """
import logging
from starbatch.engine.entry import run_entry

def cli():
    print("the result")  # a pipe: block-buffered, lost unless flushed
    logging.getLogger("starbatch").info("the last log line")

run_entry(None, cli, globals())
raise SystemExit("run_entry returned: the job would pay the interpreter's teardown")
"""
# As a Snakemake job runs: stdout a block-buffered pipe (this machine sets it unbuffered).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def run(job: str) -> subprocess.CompletedProcess:
    # From the rule scripts' folder, which Python puts first on the path of a -c job (as
    # for a script).
    cmd = [sys.executable, "-c", job]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=SCRIPTS)


def test_a_finished_job_exits_at_once_with_its_output_flushed():
    proc = run(JOB)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "the result\n"
    assert proc.stderr.rstrip().endswith("INFO the last log line")


def test_a_user_error_still_exits_1_with_one_line():
    job = JOB.replace('print("the result")', 'raise ValueError("column x: not a number")')
    proc = run(job)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().endswith("ERROR column x: not a number")
