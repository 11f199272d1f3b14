#!/usr/bin/env bash
# Start a throw-away one-node SLURM (Debian slurmctld + slurmd + munge) for the
# SLURM integration test (tests/cluster/test_slurm.py); see docs/cluster.md.
#
#   tests/cluster/slurm/start.sh [STATE_DIR]      (as root; stop with tests/cluster/slurm/stop.sh STATE_DIR)
#
# Everything SLURM writes (slurm.conf, state, spool, logs, pid files) goes under
# STATE_DIR (default $STARBATCH_SLURM_DIR or /tmp/starbatch-slurm). Clients find
# the cluster through SLURM_CONF=STATE_DIR/slurm.conf (also written to
# STATE_DIR/env) and through /etc/slurm/slurm.conf, a link to it while the
# cluster runs (stop.sh puts back what was there). Installs the Debian packages
# when missing.
# A munged that already answers is reused (and left running by stop.sh).
# Exits non-zero with the reason (and the daemon logs) if the node does not
# become idle.
#
# Knobs (environment): STARBATCH_SLURM_CPUS (default: min(2, nproc)),
# STARBATCH_SLURM_MEM_MB (default: min(8000, 3/4 of MemTotal)),
# STARBATCH_SLURM_PORTS ("6817-6818": slurmctld and slurmd ports),
# STARBATCH_SLURM_TIMEOUT (seconds to wait for an idle node, default 60).
set -euo pipefail

STATE=$(realpath -m "${1:-${STARBATCH_SLURM_DIR:-/tmp/starbatch-slurm}}")
HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${STARBATCH_SLURM_TIMEOUT:-60}
STARTED=0

die() {
    echo "start.sh: $*" >&2
    if [ "$STARTED" = 1 ]; then
        echo "start.sh: stop what did start with: tests/cluster/slurm/stop.sh $STATE" >&2
        for log in "$STATE"/log/*.log; do
            [ -s "$log" ] && { echo "--- $log (tail)" >&2; tail -n 20 "$log" >&2; }
        done
    fi
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (munged, slurmctld and slurmd are system daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sinfo >/dev/null || ! command -v munged >/dev/null; then
    echo "start.sh: installing slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq slurmctld slurmd slurm-client munge >&2 \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi

# A previous run that was not stopped (crashed test): start from scratch. Never
# empty a folder that is not ours.
if [ -e "$STATE/slurm.conf" ]; then
    grep -q "^# Written by tests/cluster/slurm/start.sh" "$STATE/slurm.conf" \
        || die "$STATE/slurm.conf was not written by start.sh; give another STATE_DIR"
    "$HERE/stop.sh" "$STATE" >&2 || true
    rm -rf "$STATE"
elif [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ]; then
    die "$STATE is not empty; give an empty or new STATE_DIR"
fi
mkdir -p "$STATE"/{state,spool,run,log}
STARTED=1

# munge: reuse a running daemon, else start one as the munge user.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "start.sh: reusing the running munged" >&2
else
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi || die "cannot create /etc/munge/munge.key"
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    touch "$STATE/munged.started"
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null || die "munge does not work: 'munge -n | unmunge' failed"
fi

HOST=$(hostname -s)
NPROC=$(nproc)
CPUS=${STARBATCH_SLURM_CPUS:-$((NPROC < 2 ? NPROC : 2))}
TOTAL_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM=${STARBATCH_SLURM_MEM_MB:-$((TOTAL_MB * 3 / 4 < 8000 ? TOTAL_MB * 3 / 4 : 8000))}
PORTS=${STARBATCH_SLURM_PORTS:-6817-6818}
CTLD_PORT=${PORTS%-*}
SLURMD_PORT=${PORTS#*-}

cat >"$STATE/slurm.conf" <<CONF
# Written by tests/cluster/slurm/start.sh: a one-node test cluster on $HOST.
ClusterName=starbatch
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Accounting is off (no slurmdbd, sacct does not work): Snakemake polls job
# states with squeue, which only sees jobs younger than MinJobAge.
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
# A second, non-default partition: the test selects it to check that the
# profile's partition knob reaches sbatch.
PartitionName=batch Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
CONF
# Clients read SLURM_CONF, but the plugin's job step drops SLURM_* variables
# before its nested srun, which then only finds /etc/slurm/slurm.conf: link it
# there, keeping a file that was there for stop.sh to put back.
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    mv /etc/slurm/slurm.conf "$STATE/etc-slurm.conf.orig"
fi
ln -s "$STATE/slurm.conf" /etc/slurm/slurm.conf
echo "export SLURM_CONF=$STATE/slurm.conf" >"$STATE/env"
export SLURM_CONF="$STATE/slurm.conf"

slurmctld -f "$SLURM_CONF" || die "slurmctld did not start"
slurmd -f "$SLURM_CONF" || die "slurmd did not start"

state=""
for _ in $(seq "$((TIMEOUT * 2))"); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
    [ "$state" = "idle" ] && break
    sleep 0.5
done
if [ "$state" != "idle" ]; then
    reason=$(sinfo -h -N -o '%t %E' 2>&1 | head -n 1 || true)
    die "node $HOST is not idle after ${TIMEOUT}s (sinfo: '${reason:-no answer}')"
fi
echo "start.sh: SLURM up on $HOST (CPUs=$CPUS RealMemory=$MEM MB; partitions debug (default) and batch)" >&2
echo "SLURM_CONF=$SLURM_CONF"
