#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for the Slurm tests: installs Debian's
# slurm-wlm and munge at pinned versions, writes a one-node configuration and starts munged,
# slurmctld and slurmd. Idempotent: when the node already answers, it returns at once.
# Needs root (apt-get, daemons). The cluster is left running; scripts/slurm-down.sh stops it.
set -euo pipefail

SLURM_VERSION="22.05.8-4+deb12u3"
MUNGE_VERSION="0.5.15-2+deb12u1"

log() { echo "slurm-up: $*" >&2; }

node="$(hostname -s)"

node_idle() {
  command -v sinfo >/dev/null 2>&1 || return 1
  local state
  state="$(timeout 5 sinfo -h -n "$node" -o '%t' 2>/dev/null | head -n1)" || return 1
  case "$state" in
    idle | mix | alloc | comp) return 0 ;;
    *) return 1 ;;
  esac
}

if node_idle; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "needs root to install and start Slurm (run as root, or start a cluster yourself)"
  exit 1
fi

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

if [ "$(installed_version slurm-wlm)" != "$SLURM_VERSION" ] ||
  [ "$(installed_version munge)" != "$MUNGE_VERSION" ]; then
  log "installing slurm-wlm $SLURM_VERSION and munge $MUNGE_VERSION"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends \
    "slurm-wlm=$SLURM_VERSION" "slurmctld=$SLURM_VERSION" "slurmd=$SLURM_VERSION" \
    "slurm-client=$SLURM_VERSION" "slurm-wlm-basic-plugins=$SLURM_VERSION" \
    "munge=$MUNGE_VERSION" "libmunge2=$MUNGE_VERSION" >&2
fi

# munge: one key shared by the controller and the node daemon (both local here).
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  head -c 1024 /dev/urandom >/etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
chmod 400 /etc/munge/munge.key
chmod 700 /etc/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  runuser -u munge -- munged
  for _ in $(seq 1 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

# The node name must equal `hostname -s`. OverSubscribe lets several agents share the cores:
# agents mostly wait on a model. MinJobAge keeps ended jobs visible to `scontrol show job`
# for ten minutes (accounting is off), long enough for a restarted coordinator to read them.
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
conf="$(
  cat <<CONF
ClusterName=wgtest
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MpiDefault=none
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName=$node CPUs=2 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
)"
if [ ! -f /etc/slurm/slurm.conf ] || [ "$(cat /etc/slurm/slurm.conf)" != "$conf" ]; then
  printf '%s\n' "$conf" >/etc/slurm/slurm.conf
  # A running daemon keeps its old configuration: restart both.
  pkill_pidfile() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; }
  pkill_pidfile /run/slurmctld.pid
  pkill_pidfile /run/slurmd.pid
  sleep 1
fi

daemon_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! daemon_running /run/slurmctld.pid; then
  log "starting slurmctld"
  slurmctld
fi
if ! daemon_running /run/slurmd.pid; then
  log "starting slurmd"
  slurmd
fi

for _ in $(seq 1 100); do
  if node_idle; then
    exit 0
  fi
  # A node that was down (e.g. after a restart) comes back on its own (ReturnToService=2);
  # one left drained by an earlier run is resumed explicitly.
  case "$(sinfo -h -n "$node" -o '%t' 2>/dev/null | head -n1)" in
    drain* | down*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.3
done
log "the node did not become idle; see /var/log/slurm/slurmctld.log and slurmd.log"
sinfo >&2 || true
exit 1
