#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the Slurm executor's tests (tests/tests/slurm.rs):
# Debian's slurm-wlm and munge, configured in .services/slurm/ (slurm.conf, state, spool, logs),
# with munged, slurmctld and slurmd started directly as root (no systemd). Their pids go to
# .services/*.pid (tests/run stops them when the tests end); SLURM_CONF and PRUNUS_TEST_SLURM
# go to .services/env. Accounting is off (no slurmdbd), so the executor's fallback path
# (`scontrol show job`, the exit code prunus exec writes to the store) is what is tested.
# Idempotent: a cluster already answering is left as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .services
dir="$PWD/.services/slurm"

record_env() {
    touch .services/env
    grep -v -e '^export SLURM_CONF=' -e '^export PRUNUS_TEST_SLURM=' .services/env >.services/env.new || true
    cat >>.services/env.new <<ENV
export SLURM_CONF=$dir/slurm.conf
export PRUNUS_TEST_SLURM=1
ENV
    mv .services/env.new .services/env
}

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "30-slurm: slurm-wlm and munge are not installed and this is not root; Slurm tests will be skipped"
        exit 0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
    echo "30-slurm: slurmd must run as root; Slurm tests will be skipped"
    exit 0
fi

if [ -f .services/slurmctld.pid ] && kill -0 "$(cat .services/slurmctld.pid)" 2>/dev/null &&
    SLURM_CONF="$dir/slurm.conf" sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
    record_env
    exit 0 # already running (setup is idempotent)
fi

# munge: one key for the one node; its socket where Slurm looks for it.
[ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do [ -f /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid .services/munged.pid
fi

host=$(hostname -s)
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
# The node as slurmd sees it (CPUs, memory), minus what slurmd -C adds that slurm.conf lacks.
node=$(slurmd -C | head -n1)
cat >"$dir/slurm.conf" <<CONF
ClusterName=prunus-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$PWD/.services/slurmctld.pid
SlurmdPidFile=$PWD/.services/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1
# (sched_interval: a requeued job made eligible again starts within a second, not a minute)
# Finished jobs stay visible to scontrol show job (there is no accounting database).
MinJobAge=86400
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Short grace periods: SIGTERM at the time limit, SIGKILL 10 s later.
KillWait=10
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=10
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
rm -f .services/slurmctld.pid .services/slurmd.pid
/usr/sbin/slurmctld -i
/usr/sbin/slurmd
for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
        record_env
        echo "Slurm on $host: $(sinfo -h -o '%P %D %c %T')"
        exit 0
    fi
    sleep 0.2
done
echo "30-slurm: the node did not come up; see $dir/log/" >&2
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
exit 1
