"""The starbatch command's own logic (tests/workflow/test_wheel.py runs it for real):
what it hands Snakemake, and when it removes a lock."""

import os
import socket
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


def test_a_recorded_run_is_gone_only_when_its_process_is(tmp_path):
    pid = tmp_path / cli.RUN_PID
    assert cli._recorded_run(tmp_path) == "none"
    pid.parent.mkdir()
    me, host = os.getpid(), socket.gethostname()
    pid.write_text(f"{me} {host} {cli._started(me)}\n")
    assert cli._recorded_run(tmp_path) == "alive"
    pid.write_text(f"{me} {host} 1\n")  # the PID, reused by another process
    assert cli._recorded_run(tmp_path) == "gone"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    started = cli._started(dead.pid)
    dead.wait()
    pid.write_text(f"{dead.pid} {host} {started}\n")
    assert cli._recorded_run(tmp_path) == "gone"
    pid.write_text(f"{dead.pid} another-node {started}\n")
    assert cli._recorded_run(tmp_path) == "elsewhere"
    pid.write_text("12345\n")
    assert cli._recorded_run(tmp_path) == "unknown"


def test_the_lock_of_a_killed_run_is_removed_and_a_live_runs_record_kept(tmp_path, monkeypatch):
    (tmp_path / cli.CONFIG).parent.mkdir()
    (tmp_path / cli.CONFIG).write_text("{}")
    started = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, cwd: started.append(cmd) or 0)
    monkeypatch.setattr(
        cli, "snakemake_command", lambda args: [sys.executable, "-c", "pass", *args]
    )
    locks = tmp_path / ".snakemake/locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    pid = tmp_path / cli.RUN_PID
    pid.parent.mkdir()
    me = os.getpid()
    live = f"{me} {socket.gethostname()} {cli._started(me)}\n"
    pid.write_text(live)
    assert cli.run(["-n"], tmp_path) == 0
    assert started == [] and pid.read_text() == live
    pid.write_text(f"{me} {socket.gethostname()} 1\n")
    assert cli.run([], tmp_path) == 0
    assert started and started[0][-1] == "--unlock"
    assert not pid.exists()  # the run's own record, removed when it ended


def test_every_command_documents_itself(capsys):
    for command in ("init", "run", "status", "rerun", "demo", "workflow-path"):
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0
        assert command.split("-")[0] in capsys.readouterr().out


def test_init_writes_nothing_where_any_of_its_files_is_there(tmp_path, capsys):
    from starbatch.offline.project import CONFIG

    (tmp_path / "linedepth.py").write_text("# mine\n")
    (tmp_path / "README.md").write_text("my notes\n")
    assert cli.main(["init", str(tmp_path)]) == 1
    assert "linedepth.py" in capsys.readouterr().err and not (tmp_path / "config").exists()
    (tmp_path / "linedepth.py").unlink()
    assert cli.main(["init", str(tmp_path)]) == 0
    assert (tmp_path / CONFIG).exists() and any((tmp_path / "sas").rglob("*.fits"))
    assert (tmp_path / "README.md").read_text() == "my notes\n"  # a README of its own is kept
    assert cli.main(["init", str(tmp_path)]) == 1
    assert "nothing changed" in capsys.readouterr().err
