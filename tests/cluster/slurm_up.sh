#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for tests/cluster: Debian's slurmctld, slurmd and munge, started
# without systemd; state, logs and pid files under one folder. Measured recipe: ../shared/notes/slurm.md.
#
#   tests/cluster/slurm_up.sh           install when missing (root + apt-get), configure, start; idempotent
#                                       (restarts a running cluster only to change its number of fake GPUs)
#   tests/cluster/slurm_up.sh --stop    stop the daemons this script started, by their pid files
#
# Environment: FEATFLOW_SLURM_DIR (state, config, logs, pid files; default /tmp/featflow-slurm),
#              FEATFLOW_SLURM_GPUS (fake GPUs in the node's gres, character devices made with mknod; default 4).
# The configuration goes to /etc/slurm (slurm.conf, gres.conf): the slurm-jobstep plugin strips SLURM_CONF from
# the environment of the srun it calls inside each job, so only the default path works. A slurm.conf that this
# script did not write (a real site's) is never touched: the script then exits 3.
# Exit status: 0 cluster up; 3 this machine cannot host it (not root, no apt-get, install failed), reason on
# stderr (tests skip); anything else: the daemons did not come up (tests fail, logs under $DIR/log).
set -euo pipefail

DIR=${FEATFLOW_SLURM_DIR:-/tmp/featflow-slurm}
GPUS=${FEATFLOW_SLURM_GPUS:-4}
CONF=/etc/slurm/slurm.conf
MARK="# Written by tests/cluster/slurm_up.sh"

cannot() { echo "slurm_up: $*" >&2; exit 3; }

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
    local name pidfile pid
    for name in slurmd slurmctld munged; do
        pidfile=$DIR/run/$name.pid
        alive "$pidfile" || { rm -f "$pidfile"; continue; }
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        rm -f "$pidfile"
        echo "slurm_up: stopped $name ($pid)"
    done
}

if [[ ${1:-} == --stop ]]; then stop; exit 0; fi

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    command -v apt-get >/dev/null || cannot "SLURM is not installed and there is no apt-get to install it"
    local pkgs=(slurmctld slurmd slurm-client munge)
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 240 apt-get install -y -q --no-install-recommends "${pkgs[@]}" >"$DIR/log/apt.log" 2>&1; then
        timeout 120 apt-get update -q >>"$DIR/log/apt.log" 2>&1 \
            && timeout 240 apt-get install -y -q --no-install-recommends "${pkgs[@]}" >>"$DIR/log/apt.log" 2>&1 \
            || cannot "apt-get install ${pkgs[*]} failed: $(tail -n 3 "$DIR/log/apt.log" | tr '\n' ' ')"
    fi
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi  # a munged already serves
    [[ -s /etc/munge/munge.key ]] || cannot "no /etc/munge/munge.key (the munge package creates it)"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --force
    # munged runs as user munge and writes its pid file under /run/munge; keep a copy with ours, so that
    # --stop ends the munged this script started and never one it found running.
    for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/run/munged.pid"
}

configure() {
    local host node
    host=$(hostname -s)
    # Rules declare the memory of paper-scale runs (8 GB and more) and a CI machine may have less: nothing
    # enforces memory here (no cgroups), so the node advertises at least 64 GB (SlurmdParameters=
    # config_overrides lets slurmd take the configured value) and every declared request stays schedulable.
    # Likewise at least 8 CPUs, so that the jobs of one DAG level run side by side on a 2-core machine (most of
    # their time is Snakemake's status polling, not computation).
    local cpus mem
    cpus=$(nproc)
    cpus=$((cpus > 8 ? cpus : 8))
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mem=$((mem * 9 / 10 > 65536 ? mem * 9 / 10 : 65536))
    node="NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem"
    local gres_line="" gres_types=""
    [[ ! -e $CONF ]] || grep -qF "$MARK" "$CONF" || cannot "$CONF exists and is not a test cluster's; not touching it"
    mkdir -p /etc/slurm
    rm -f /etc/slurm/gres.conf
    if ((GPUS > 0)); then
        mkdir -p "$DIR/dev"
        for ((i = 0; i < GPUS; i++)); do
            # slurmd rejects regular files as GPU devices; a character device (like /dev/null) passes.
            [[ -c $DIR/dev/fakegpu$i ]] || mknod "$DIR/dev/fakegpu$i" c 1 3
        done
        gres_types="GresTypes=gpu"
        gres_line="Gres=gpu:fake:$GPUS"
        echo "NodeName=$host Name=gpu Type=fake File=$DIR/dev/fakegpu[0-$((GPUS - 1))]" >/etc/slurm/gres.conf
    fi
    cat >"$CONF" <<EOF
$MARK: a single-node test cluster, no accounting storage (use squeue).
ClusterName=featflow
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
SlurmdParameters=config_overrides
$gres_types
$node NodeAddr=127.0.0.1 $gres_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_idle() {
    local state=""
    for _ in $(seq 150); do
        state=$(sinfo -h -o %T 2>/dev/null | head -n 1 || true)
        case $state in
            idle* | mixed* | allocated*) return 0 ;;
            down* | drain*) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    echo "slurm_up: node not idle after 30 s (state '$state'); logs in $DIR/log" >&2
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    return 1
}

[[ $(id -u) == 0 ]] || cannot "a local cluster needs root to install SLURM and start slurmd (uid $(id -u))"
mkdir -p "$DIR/run" "$DIR/log" "$DIR/spool"
want=""
((GPUS > 0)) && want="Gres=gpu:fake:$GPUS"
have=$(grep -o "Gres=gpu:fake:[0-9]*" "$CONF" 2>/dev/null || true)
if alive "$DIR/run/slurmctld.pid" && alive "$DIR/run/slurmd.pid" && [[ $have == "$want" ]]; then
    wait_idle
    echo "slurm_up: cluster up ($CONF, $GPUS fake GPUs), state in $DIR"
    exit 0
fi
install_packages
id slurm >/dev/null 2>&1 || cannot "no 'slurm' user (the slurmctld package creates it)"
stop  # leftovers of an earlier, half-started cluster, or one with another GPU count (gres needs a restart)
install -d -o slurm -g slurm "$DIR/state"
start_munge
configure
slurmctld -c -f "$CONF"
slurmd -f "$CONF"
wait_idle
echo "slurm_up: cluster up ($CONF, $GPUS fake GPUs), state in $DIR"
