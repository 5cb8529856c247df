#!/usr/bin/env bash
# A real single-machine SLURM for tests and for trying the SLURM executor: Debian's slurm-wlm with
# munge, run by hand (no systemd): munged, `slurmctld -D`, `slurmd -D`, one node (this machine, its
# cores and memory) in one partition `debug`; proctrack/linuxproc, task/none, no accounting database.
#
#   cluster/slurm-local.sh start   # prints the SLURM_CONF to export; idempotent
#   cluster/slurm-local.sh stop
#   cluster/slurm-local.sh status
#
# State, configuration and logs live in $LDM_SLURM_DIR (default /tmp/ldm-slurm). Run as root.
# Install first: apt-get install --no-install-recommends slurm-wlm munge (cluster/install-deps.sh).
set -euo pipefail
dir=${LDM_SLURM_DIR:-/tmp/ldm-slurm}
conf=$dir/slurm.conf
host=$(hostname -s)
ctld_port=${LDM_SLURM_CTLD_PORT:-6917}
slurmd_port=${LDM_SLURM_SLURMD_PORT:-6918}

die() { echo "slurm-local.sh: $*" >&2; exit 1; }

write_conf() {
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat > "$conf" <<CONF
ClusterName=ldm
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  : > "$dir/cgroup.conf"
}

start_munge() {
  pgrep -x munged > /dev/null && return
  [[ -s /etc/munge/munge.key ]] || {
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  }
  chown munge:munge /etc/munge/munge.key 2> /dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2> /dev/null || true
  if id munge > /dev/null 2>&1; then
    runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
  else
    munged --force || die "munged did not start"
  fi
}

case ${1:-} in
  start)
    [[ $(id -u) -eq 0 ]] || die "run as root"
    command -v slurmctld > /dev/null || die "slurmctld not found: apt-get install --no-install-recommends slurm-wlm munge"
    write_conf
    start_munge
    export SLURM_CONF=$conf
    if ! { [[ -f $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2> /dev/null; }; then
      setsid slurmctld -D -i -f "$conf" > "$dir/log/slurmctld.out" 2>&1 < /dev/null &
    fi
    if ! { [[ -f $dir/slurmd.pid ]] && kill -0 "$(cat "$dir/slurmd.pid")" 2> /dev/null; }; then
      setsid slurmd -D -f "$conf" > "$dir/log/slurmd.out" 2>&1 < /dev/null &
    fi
    for _ in $(seq 1 60); do
      state=$(sinfo -h -n "$host" -o %T 2> /dev/null || true)
      case $state in
        idle* | mixed* | allocated*) echo "export SLURM_CONF=$conf"; exit 0 ;;
        down* | drain*) scontrol update nodename="$host" state=resume > /dev/null 2>&1 || true ;;
      esac
      sleep 1
    done
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2> /dev/null || true
    die "SLURM did not come up within 60 s (node state: ${state:-none}); logs in $dir/log"
    ;;
  stop)
    for d in slurmd slurmctld; do
      [[ -f $dir/$d.pid ]] && kill "$(cat "$dir/$d.pid")" 2> /dev/null || true
    done
    for _ in $(seq 1 20); do
      pgrep -x slurmctld > /dev/null || pgrep -x slurmd > /dev/null || break
      sleep 0.5
    done
    rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid"
    ;;
  status)
    [[ -f $conf ]] || die "not started (no $conf)"
    SLURM_CONF=$conf timeout 10 sinfo
    ;;
  *)
    die "usage: slurm-local.sh start|stop|status"
    ;;
esac
