"""The starbatch command's own logic (tests/workflow/test_wheel.py runs it for real):
what it hands Snakemake, and when it removes a lock."""

import os
import subprocess
import sys

import pytest

from starbatch import cli
from starbatch.workflow import PROFILES, SNAKEFILE


def test_run_hands_snakemake_the_packaged_workflow_and_every_option():
    cmd = cli.snakemake_command(["--cores", "4", "-n", "--forcerun", "plan"])
    assert cmd[:5] == [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
    assert cmd[5:] == ["--cores", "4", "-n", "--forcerun", "plan"]


def test_a_shipped_profile_is_found_by_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = cli.snakemake_command(["--profile", "slurm"])
    assert cmd[-2:] == ["--profile", str(PROFILES / "slurm")]
    (tmp_path / "slurm").mkdir()  # a profile of the project's own wins
    assert cli.snakemake_command(["--profile", "slurm"])[-1] == "slurm"


@pytest.mark.parametrize(
    "args, added",
    [
        ([], True),
        (["-n"], True),
        (["--cores", "2"], False),
        (["-j8"], False),
        (["--jobs=8"], False),
    ],
)
def test_every_core_unless_told(args, added):
    assert (cli.snakemake_command(args)[5:7] == ["--cores", "all"]) is added


def test_run_outside_a_project_says_how_to_make_one(tmp_path, capsys):
    assert cli.run(["--cores", "1"], tmp_path) == 2
    assert "starbatch init" in capsys.readouterr().err


def test_a_lock_of_a_killed_run_is_removed_and_a_live_ones_is_not(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, cwd: calls.append(cmd) or 0)
    locks = tmp_path / ".snakemake/locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    pid = tmp_path / cli.RUN_PID
    pid.parent.mkdir()
    pid.write_text(f"{os.getpid()}\n")  # alive: this process
    cli._unlock_after_a_killed_run(tmp_path)
    assert calls == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid.write_text(f"{dead.pid}\n")
    cli._unlock_after_a_killed_run(tmp_path)
    assert calls and calls[0][-1] == "--unlock"


def test_every_command_documents_itself(capsys):
    for command in ("init", "run", "status", "rerun", "demo", "workflow-path"):
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0
        assert command.split("-")[0] in capsys.readouterr().out
