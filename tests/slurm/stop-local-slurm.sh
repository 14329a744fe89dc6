#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/start-local-slurm.sh, each by the pid in its pid file.
# Idempotent.  KEEP_MUNGE=1 / KEEP_DB=1 leave munged / mariadb running.
set -uo pipefail
log() { echo "[stop-local-slurm] $*" >&2; }

stop_pidfile() { # stop_pidfile NAME PIDFILE
  local name=$1 pf=$2 pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then log "$name still alive, SIGKILL"; kill -KILL "$pid"; fi
  fi
  rm -f "$pf"
}

# cancel leftover jobs so slurmd has no running steps
if command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1; then
  scancel --user=root --full 2>/dev/null || true
fi
stop_pidfile slurmd    /run/slurm/slurmd.pid
stop_pidfile slurmctld /run/slurm/slurmctld.pid
stop_pidfile slurmdbd  /run/slurm/slurmdbd.pid
if [ "${KEEP_DB:-0}" != 1 ] && command -v mariadb-admin >/dev/null && mariadb-admin ping >/dev/null 2>&1; then
  log "stopping mariadbd"
  mariadb-admin shutdown || true
fi
if [ "${KEEP_MUNGE:-0}" != 1 ]; then
  stop_pidfile munged /run/munge/munged.pid
fi
log "stopped"
