#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the Slurm executor's tests (tests/tests/slurm.rs):
# Debian's slurm-wlm and munge, configured in .services/slurm/ (slurm.conf, state, spool, logs),
# with munged, slurmctld and slurmd started directly as root (no systemd), and accounting:
# slurmdbd over a MariaDB server of its own (a data directory in .services/slurm/db, on
# 127.0.0.1), so that sacct answers as on a real cluster. Their pids go to .services/*.pid
# (tests/run stops them when the tests end); SLURM_CONF and PRUNUS_TEST_SLURM go to
# .services/env. The executor's path for clusters without accounting (`scontrol show job`,
# the exit code prunus exec writes to the store) is tested through slurm-noacct.conf, the
# same cluster as its clients see it with accounting off (sacct then says it is disabled).
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

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null ||
    ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "30-slurm: slurm-wlm and munge are not installed and this is not root; Slurm tests will be skipped"
        exit 0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        slurm-wlm munge slurmdbd mariadb-server >/dev/null
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
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Accounting: a MariaDB server of its own for slurmdbd, then slurmdbd, before slurmctld.
# (Daemons of a cluster that stopped answering are stopped first: they hold the data.)
for daemon in slurmd slurmctld slurmdbd mariadb; do
    if [ -f ".services/$daemon.pid" ]; then
        pid=$(cat ".services/$daemon.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f ".services/$daemon.pid"
    fi
done
db_port=$(free_port)
dbd_port=$(free_port)
if [ ! -d "$dir/db/mysql" ]; then
    mariadb-install-db --datadir="$dir/db" --user=root --skip-test-db >"$dir/log/mariadb-install.log" 2>&1
fi
/usr/sbin/mariadbd --datadir="$dir/db" --user=root --bind-address=127.0.0.1 --port="$db_port" \
    --socket="$dir/mysql.sock" --pid-file="$PWD/.services/mariadb.pid" \
    --log-error="$dir/log/mariadb.log" >/dev/null 2>&1 &
db_up=0
for _ in $(seq 100); do
    if mariadb --socket="$dir/mysql.sock" -uroot -e 'select 1' >/dev/null 2>&1; then
        db_up=1
        break
    fi
    sleep 0.2
done
if [ "$db_up" != 1 ]; then
    echo "30-slurm: MariaDB did not start; see $dir/log/mariadb.log" >&2
    tail -n 20 "$dir/log/mariadb.log" >&2 || true
    exit 1
fi
# A test cluster's database, on 127.0.0.1 only: the password guards nothing else.
mariadb --socket="$dir/mysql.sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'prunus-test';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
# slurmdbd reads slurmdbd.conf from SLURM_CONF's directory, and wants it private.
cat >"$dir/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=prunus-test
StorageLoc=slurm_acct_db
PidFile=$PWD/.services/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
CONF
chmod 0600 "$dir/slurmdbd.conf"
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
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
# The same cluster with accounting off, as a client sees it (the fallback path's tests).
sed 's|^AccountingStorageType=.*|AccountingStorageType=accounting_storage/none|' \
    "$dir/slurm.conf" >"$dir/slurm-noacct.conf"
export SLURM_CONF="$dir/slurm.conf"
rm -f .services/slurmctld.pid .services/slurmd.pid .services/slurmdbd.pid
/usr/sbin/slurmdbd
for _ in $(seq 100); do
    sacctmgr -n list cluster >/dev/null 2>&1 && break
    sleep 0.2
done
if ! sacctmgr -n list cluster >/dev/null 2>&1; then
    echo "30-slurm: slurmdbd did not answer; see $dir/log/slurmdbd.log" >&2
    tail -n 20 "$dir/log/slurmdbd.log" >&2 || true
    exit 1
fi
sacctmgr -i add cluster prunus-test >/dev/null 2>&1 || true # already there on a rerun
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
