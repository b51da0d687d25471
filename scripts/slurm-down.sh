#!/usr/bin/env bash
# Stops the single-node Slurm cluster scripts/slurm-up.sh started (slurmd, slurmctld, munged).
set -uo pipefail
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
  fi
done
