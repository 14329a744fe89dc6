#!/usr/bin/env bash
# weightzoo's test cluster: a real single-node SLURM cluster on localhost, without systemd,
#   munged -> (mariadbd -> slurmdbd) -> slurmctld -> slurmd
# used by tests/test_slurm.py to run the pipeline through `snakemake --profile slurm`.
# Adapted from the verified recipe shared/recipes/local-slurm/ (Debian 12, slurm-wlm 22.05):
# two fake GPUs by default (training jobs request `gpu=1`), GPUs and job comments in
# the accounting (sacct -o AllocTRES,Comment), a distinct device file per fake
# GPU, and a marker line in slurm.conf that tests/test_slurm.py checks before it ever
# restarts daemons (it never touches a cluster it did not generate).
#
#   sudo bash tests/slurm/start-local-slurm.sh                 # with accounting (sacct)
#   sudo ACCOUNTING=0 bash tests/slurm/start-local-slurm.sh    # without (squeue status)
#   sudo bash tests/slurm/stop-local-slurm.sh
#
# Idempotent: daemons already running are left alone (unless the generated
# slurm.conf changed, in which case slurmctld/slurmd are restarted; switching
# ACCOUNTING therefore takes a few seconds). Waits until `sinfo` reports the node
# idle (and, with accounting, until `sacct` answers).  Must run as root.
#
# Environment knobs:
#   ACCOUNTING=1   start mariadb + slurmdbd so that `sacct` works (default 1;
#                  0 = accounting_storage/none, then use squeue status checks)
#   FAKE_GPUS=2    advertise N fake GPUs (gres gpu backed by /dev/null, /dev/zero, ...)
#                  so that `--gpus=N` jobs are schedulable on a CPU-only machine (2: the
#                  test's two training jobs run side by side on the node's 2 CPUs)
#   INSTALL=1      apt-get install missing packages (default 1)
#   CLEAN_STATE=1  start slurmctld with -c (forget old jobs / drained nodes)
#   TIMEOUT=120    seconds to wait for the node to become idle
set -euo pipefail

ACCOUNTING=${ACCOUNTING:-1}
FAKE_GPUS=${FAKE_GPUS:-2}
INSTALL=${INSTALL:-1}
CLEAN_STATE=${CLEAN_STATE:-1}
TIMEOUT=${TIMEOUT:-120}
CLUSTER=${CLUSTER:-localcluster}
PARTITION=${PARTITION:-debug}
LOGDIR=${LOGDIR:-/var/log/slurm}
ETC=/etc/slurm
DB_PASS=${DB_PASS:-slurmpw}

log() { echo "[start-local-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

alive() { # alive PIDFILE -> true if the pid in it is a live process
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}
wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "timeout waiting for $what"; return 1; }
    sleep 0.5
  done
}

# ---------------------------------------------------------------- packages
if [ "$INSTALL" = 1 ]; then
  pkgs=(munge slurm-wlm slurm-client)
  [ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd mariadb-server)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get update -qq
    # policy-rc.d / no systemd: postinst "invoke-rc.d ... denied" messages are harmless
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
for b in munged slurmctld slurmd sinfo sbatch; do command -v "$b" >/dev/null || die "$b not found"; done

mkdir -p "$LOGDIR" /run/slurm /var/spool/slurmctld /var/spool/slurmd "$ETC"

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
if ! alive /run/munge/munged.pid; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
fi
wait_for 20 munge bash -c 'munge -n | unmunge' || die "munge not working (see /var/log/munge/munged.log)"

# ---------------------------------------------------------------- config
HOST=$(hostname -s)
# node geometry as slurmd detects it; RealMemory must not exceed the detected value
NODE_HW=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //; s/ ?UpTime=.*//')
GRES_LINE=""; NODE_GRES=""
if [ "$FAKE_GPUS" -gt 0 ]; then
  GRES_LINE="GresTypes=gpu"; NODE_GRES="Gres=gpu:$FAKE_GPUS"
  # one distinct device file per fake GPU (slurmd counts GPUs by their files)
  devs=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty)
  [ "$FAKE_GPUS" -le ${#devs[@]} ] || die "FAKE_GPUS > ${#devs[@]} not supported"
  : > "$ETC/gres.conf.new"
  for i in $(seq 0 $((FAKE_GPUS - 1))); do
    echo "NodeName=$HOST Name=gpu File=${devs[$i]}" >> "$ETC/gres.conf.new"
  done
  if ! cmp -s "$ETC/gres.conf.new" "$ETC/gres.conf"; then mv "$ETC/gres.conf.new" "$ETC/gres.conf"; else rm -f "$ETC/gres.conf.new"; fi
else
  rm -f "$ETC/gres.conf"
fi
if [ "$ACCOUNTING" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# store the plugin's --comment (rule and wildcards of each job) for sacct -o Comment
AccountingStoreFlags=job_comment"
  # GPUs show up in the jobs' TRES (sacct -o AllocTRES); slurmctld refuses this without slurmdbd
  if [ "$FAKE_GPUS" -gt 0 ]; then ACCT="$ACCT
AccountingStorageTRES=gres/gpu"; fi
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
cat > "$ETC/slurm.conf.new" <<EOF
# generated by weightzoo tests/slurm/start-local-slurm.sh (local test cluster)
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# keep finished jobs visible to squeue for 5 min (plugin needs >= 3*init-seconds)
MinJobAge=300
$ACCT
$GRES_LINE
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST $NODE_HW $NODE_GRES State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
CONF_CHANGED=0
if ! cmp -s "$ETC/slurm.conf.new" "$ETC/slurm.conf"; then
  mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"; CONF_CHANGED=1
else
  rm -f "$ETC/slurm.conf.new"
fi

# ---------------------------------------------------------------- accounting
if [ "$ACCOUNTING" = 1 ]; then
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  if ! mariadb-admin ping >/dev/null 2>&1; then
    log "starting mariadbd"
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      >>"$LOGDIR/mariadb.log" 2>&1 </dev/null &
    wait_for 60 mariadb mariadb-admin ping || die "mariadb did not start ($LOGDIR/mariadb.log)"
  fi
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > "$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurm/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ETC/slurmdbd.conf"   # slurmdbd refuses a world-readable config
  if ! alive /run/slurm/slurmdbd.pid; then
    log "starting slurmdbd"
    slurmdbd
    wait_for 30 "slurmdbd port 6819" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819' \
      || die "slurmdbd did not start ($LOGDIR/slurmdbd.log)"
  fi
fi

# ---------------------------------------------------------------- slurmctld / slurmd
if [ "$CONF_CHANGED" = 1 ]; then
  for d in slurmd slurmctld; do
    if alive /run/slurm/$d.pid; then
      pid=$(cat /run/slurm/$d.pid)
      log "config changed: stopping $d"; kill "$pid"
      wait_for 30 "$d exit" bash -c "! kill -0 $pid 2>/dev/null" || true
    fi
  done
fi
if ! alive /run/slurm/slurmctld.pid; then
  log "starting slurmctld"
  if [ "$CLEAN_STATE" = 1 ]; then slurmctld -c; else slurmctld -i; fi
fi
wait_for 30 slurmctld scontrol ping || die "slurmctld not responding ($LOGDIR/slurmctld.log)"
if ! alive /run/slurm/slurmd.pid; then
  log "starting slurmd"
  slurmd
fi

# ---------------------------------------------------------------- wait for idle node
node_state() { sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -1; }
end=$((SECONDS + TIMEOUT)); resumed=0
while :; do
  st=$(node_state)
  case "$st" in
    idle|mix|alloc) break ;;
    drain*|drng|down*|inval*)
      if [ $resumed = 0 ]; then
        log "node state '$st' -> resuming ($(scontrol show node "$HOST" | grep -o 'Reason=.*'))"
        scontrol update nodename="$HOST" state=resume || true; resumed=1
      fi ;;
  esac
  [ $SECONDS -lt $end ] || { scontrol show node "$HOST" >&2; die "node not idle after ${TIMEOUT}s (state '$st')"; }
  sleep 0.5
done
if [ "$ACCOUNTING" = 1 ]; then
  # slurmctld registers the cluster in slurmdbd by itself; wait until sacct answers
  wait_for 60 "cluster in slurmdbd" bash -c "sacctmgr -n list cluster format=cluster%40 | grep -qw $CLUSTER" \
    || die "cluster not registered in slurmdbd"
  wait_for 30 sacct sacct -X -n || die "sacct not working"
fi
log "ready: $(sinfo -h -o '%P %a %t %D %N %G' | tr -s ' ')"
