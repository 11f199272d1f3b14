#!/usr/bin/env bash
# Stop the test cluster started by tests/cluster/slurm/start.sh:
#
#   tests/cluster/slurm/stop.sh [STATE_DIR]
#
# scontrol shutdown (slurmctld and slurmd), then the daemons by their pid files
# if they linger, then /etc/slurm/slurm.conf as it was, then munged if start.sh
# started it. Safe to run twice.
set -uo pipefail

STATE=$(realpath -m "${1:-${STARBATCH_SLURM_DIR:-/tmp/starbatch-slurm}}")
export SLURM_CONF="$STATE/slurm.conf"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ -e "$SLURM_CONF" ] && { alive "$STATE/run/slurmctld.pid" || alive "$STATE/run/slurmd.pid"; }; then
    scancel --user=root --quiet 2>/dev/null
    scontrol shutdown 2>/dev/null
    for _ in $(seq 20); do
        alive "$STATE/run/slurmctld.pid" || alive "$STATE/run/slurmd.pid" || break
        sleep 0.5
    done
fi
for daemon in slurmd slurmctld; do
    pidfile="$STATE/run/$daemon.pid"
    if alive "$pidfile"; then
        echo "stop.sh: $daemon still running after scontrol shutdown, sending TERM" >&2
        kill "$(cat "$pidfile")"
        sleep 1
        alive "$pidfile" && kill -9 "$(cat "$pidfile")"
    fi
done
# Put back /etc/slurm/slurm.conf (start.sh linked it to STATE_DIR/slurm.conf).
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
    if [ -e "$STATE/etc-slurm.conf.orig" ] || [ -L "$STATE/etc-slurm.conf.orig" ]; then
        mv "$STATE/etc-slurm.conf.orig" /etc/slurm/slurm.conf
    fi
fi
if [ -e "$STATE/munged.started" ]; then
    munged --stop 2>/dev/null || { [ -s /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)"; }
    rm -f "$STATE/munged.started"
fi
exit 0
