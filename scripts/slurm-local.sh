#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for the `slurm` tests and for trying the SLURM launcher.
#
#   scripts/slurm-local.sh start    install slurm-wlm + munge if missing (Debian, needs root),
#                                   write a config under $GENTOOL_SLURM_DIR, start munged,
#                                   slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-local.sh stop     stop the daemons it started (jobs die with them)
#   scripts/slurm-local.sh env      print the line that points SLURM's clients at this cluster
#
# Clients (sbatch, squeue, the hydra-submitit launcher) find the cluster through SLURM_CONF:
#   eval "$(scripts/slurm-local.sh env)"
# Exit status 3 means SLURM could not be installed here (no root or no package archive): the
# tests skip with that reason.
set -euo pipefail

DIR="${GENTOOL_SLURM_DIR:-/tmp/gentool-slurm}"
CONF="$DIR/slurm.conf"
# Where the running cluster's folder is noted, whatever its DIR: the ports are fixed, so a new
# start first stops a cluster left running from another folder.
RUNNING=/tmp/gentool-slurm-local.running

install() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "slurm-local: slurm-wlm and munge are not installed and this is not root; install them with: sudo apt-get install slurm-wlm munge" >&2
        exit 3
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$DIR/apt.log" 2>&1; then
        # A fresh machine may not have the package lists yet.
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$DIR/apt.log" 2>&1 || true
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >>"$DIR/apt.log" 2>&1; then
            echo "slurm-local: apt-get could not install slurm-wlm and munge (see $DIR/apt.log)" >&2
            exit 3
        fi
    fi
}

write_config() {
    local cpus memory
    cpus=$(nproc --all)   # --all: nproc alone honours OMP_NUM_THREADS, which is not the machine
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
    mkdir -p "$DIR/state" "$DIR/spool"
    # The settings known to work on one VM without cgroups or accounting: processes tracked by
    # their parent ids, no task binding, cores as the consumable resource.
    cat >"$CONF" <<CONFIG
ClusterName=gentool-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONFIG
}

start_munge() {
    if ! munge -n >/dev/null 2>&1; then
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        [ -f /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
        chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
        if id munge >/dev/null 2>&1; then
            runuser -u munge -- munged
        else
            munged --force
        fi
    fi
}

start() {
    mkdir -p "$DIR"
    install
    stop quietly
    write_config
    start_munge
    SLURM_CONF="$CONF" slurmctld
    SLURM_CONF="$CONF" slurmd
    echo "$DIR" >"$RUNNING"
    for _ in $(seq 1 60); do
        if SLURM_CONF="$CONF" sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "slurm-local: one node up ($CONF)"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm-local: the node did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
    exit 1
}

# The job steps of this cluster: slurmstepd processes started by its slurmd, which hands them
# its environment, SLURM_CONF included. Steps of any other Slurm on the machine are left alone.
own_steps() {
    local pid
    for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$CONF"; then
            echo "$pid"
        fi
    done
}

stop() {
    local folder pid
    # Cancelled jobs end their steps; the controller must still be up to hear it.
    SLURM_CONF="$CONF" scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
    for folder in "$DIR" "$(cat "$RUNNING" 2>/dev/null || true)"; do
        for daemon in slurmd slurmctld; do
            if [ -n "$folder" ] && [ -f "$folder/$daemon.pid" ]; then
                kill "$(cat "$folder/$daemon.pid")" 2>/dev/null || true
                rm -f "$folder/$daemon.pid"
            fi
        done
    done
    rm -f "$RUNNING"
    sleep 0.5
    # Steps still running under a stopped slurmd would keep their files open.
    for pid in $(own_steps); do
        kill "$pid" 2>/dev/null || true
    done
    [ "${1:-}" = quietly ] || echo "slurm-local: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
