#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for trying and testing the workflow's SLURM profile.
#
#   scripts/slurm_cluster.sh start    # install slurm + munge if missing, start munged, slurmctld, slurmd
#   eval "$(scripts/slurm_cluster.sh env)"          # SLURM_CONF for sinfo / sbatch / snakemake
#   scripts/slurm_cluster.sh status
#   scripts/slurm_cluster.sh stop     # cancel the cluster's jobs, stop the three daemons this script started
#
# Everything lives in one run folder, $AFFSR_SLURM_DIR (default /tmp/affsr-slurm): slurm.conf, gres.conf,
# the munge key and socket, the controller state, slurmd's spool, pid files and logs. `start` prints
# `export SLURM_CONF=...` on stdout (progress goes to stderr), so `eval "$(scripts/slurm_cluster.sh start)"`
# works too.
#
# The cluster: one node (this machine's CPUs, RealMemory a little below its memory, one *bookkeeping* GPU:
# SLURM schedules `--gpus=1` jobs on it, there is no device behind it), one default partition `debug`, no
# slurmdbd (accounting storage none, so clients use `squeue`; MinJobAge=3600 keeps finished jobs visible).
#
# One file outside the run folder: /etc/slurm/slurm.conf, made a symlink to the run folder's slurm.conf
# while the cluster runs. SLURM_CONF would be enough for every client but one: the Snakemake SLURM jobstep
# plugin deletes SLURM_* variables before its `srun` inside each job, and srun then reads the compiled-in
# path. `start` refuses to replace an /etc/slurm/slurm.conf that is not its own symlink; `stop` removes it.
#
# Needs root (or passwordless sudo): apt-get, and slurmd launches jobs. Debian/Ubuntu (apt) only.
# Settings (environment): AFFSR_SLURM_DIR, AFFSR_SLURM_PORT (slurmctld port, slurmd uses the next one;
# default 6817), AFFSR_SLURM_GPUS (1: the node has one bookkeeping GPU, the default; 0: none).
set -euo pipefail

RUN_DIR="${AFFSR_SLURM_DIR:-/tmp/affsr-slurm}"
PORT="${AFFSR_SLURM_PORT:-6817}"
GPUS="${AFFSR_SLURM_GPUS:-1}"
case "$GPUS" in 0 | 1) ;; *) echo "slurm_cluster: error: AFFSR_SLURM_GPUS must be 0 or 1, not '$GPUS'" >&2; exit 2 ;; esac
CONF="$RUN_DIR/slurm.conf"
ETC_CONF=/etc/slurm/slurm.conf
PACKAGES=(slurm-wlm munge)
COMMANDS=(munged munge slurmctld slurmd sinfo squeue sbatch srun scontrol scancel)
DAEMONS=(munged slurmctld slurmd)  # start order; stopped in reverse
READY_TIMEOUT=60                   # seconds for each daemon to answer
HEADER="# Written by scripts/slurm_cluster.sh"

say() { echo "slurm_cluster: $*" >&2; }
die() { echo "slurm_cluster: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- installation -----------------------------------------------------------------------------------------

missing_commands() {
    local cmd
    for cmd in "${COMMANDS[@]}"; do
        command -v "$cmd" > /dev/null 2>&1 || echo "$cmd"
    done
}

install_packages() {
    command -v apt-get > /dev/null || die "SLURM is not installed and there is no apt-get: install ${PACKAGES[*]} (commands: ${COMMANDS[*]})"
    mkdir -p "$RUN_DIR"
    local log="$RUN_DIR/apt.log"
    say "installing ${PACKAGES[*]} with apt-get (log: $log)"
    export DEBIAN_FRONTEND=noninteractive
    local install=(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${PACKAGES[@]}")
    # keep the packages from starting Debian's own munge/slurm services: this script runs its own daemons
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && created=1
        trap 'rm -f "'"$policy"'"' EXIT
    fi
    if ! "${install[@]}" > "$log" 2>&1; then
        say "apt-get install failed; running apt-get update and trying again"
        apt-get update -q >> "$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
        "${install[@]}" >> "$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get install ${PACKAGES[*]} failed (log: $log)"; }
    fi
    if [ -n "$created" ]; then rm -f "$policy"; trap - EXIT; fi
    local missing
    missing="$(missing_commands | tr '\n' ' ')"
    [ -z "$missing" ] || die "installed ${PACKAGES[*]} but these commands are still missing: $missing"
}

# ---- our daemons: pids recorded in $RUN_DIR/pids/<name> ----------------------------------------------------

pid_of() {  # the recorded pid of one of our daemons if that process is alive and is ours, else nothing
    local name="$1" file="$RUN_DIR/pids/$1" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
    # ours: the daemon's name and our run folder in its command line (a recycled pid has neither)
    local cmdline
    cmdline="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null || true)"
    case "$cmdline" in
        *"$name"*"$RUN_DIR"*) echo "$pid" ;;
    esac
}

launch() {  # launch NAME COMMAND...: start a daemon in the foreground of a new session, record its pid
    local name="$1"; shift
    mkdir -p "$RUN_DIR/pids" "$RUN_DIR/log"
    setsid "$@" < /dev/null > "$RUN_DIR/log/$name.out" 2>&1 &
    local pid=$! i
    echo "$pid" > "$RUN_DIR/pids/$name"
    # until it execs, the background job is a copy of this script, whose command line pid_of does not
    # recognise: wait for the exec (up to 10 s), or a busy machine reads "exited before ..." for a daemon
    # that is only starting
    for i in $(seq 200); do
        [ -r "/proc/$pid/cmdline" ] || break
        case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null || true)" in
            *"$name"*"$RUN_DIR"*) break ;;
        esac
        sleep 0.05
    done
}

wait_until() {  # wait_until WHAT NAME COMMAND...: poll COMMAND until it succeeds; fail if daemon NAME died
    local what="$1" name="$2"; shift 2
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" > /dev/null 2>&1; do
        if [ -z "$(pid_of "$name")" ]; then
            show_logs "$name"
            die "$name exited before $what (logs above, all in $RUN_DIR/log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_logs "$name"
            die "no $what after ${READY_TIMEOUT}s (logs above, all in $RUN_DIR/log)"
        fi
        sleep 0.5
    done
}

show_logs() {
    local f
    for f in "$RUN_DIR/log/$1".*; do
        [ -s "$f" ] && { echo "---- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
    done
    return 0
}

stop_daemon() {
    local name="$1" pid i
    pid="$(pid_of "$name")"
    if [ -n "$pid" ]; then
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2> /dev/null || true
        for i in $(seq 1 60); do
            [ -d "/proc/$pid" ] || break
            # a zombie counts as gone: it has exited, only its parent has not looked yet
            grep -q '^State:.*Z' "/proc/$pid/status" 2> /dev/null && break
            sleep 0.5
        done
        if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2> /dev/null; then
            say "$name (pid $pid) did not exit after 30 s: SIGKILL"
            kill -KILL "$pid" 2> /dev/null || true
        fi
    fi
    rm -f "$RUN_DIR/pids/$name"
}

# ---- configuration ----------------------------------------------------------------------------------------

write_config() {
    local host cpus mem_mb real_mb gres_line=""
    host="$(uname -n | cut -d. -f1)"
    cpus="$(nproc)"
    mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    real_mb=$((mem_mb - (mem_mb / 20 > 512 ? mem_mb / 20 : 512)))  # leave 5 % (at least 512 MB) for the OS
    [ "$real_mb" -ge 1000 ] || die "only $mem_mb MB of memory: too little for a SLURM node running jobs"
    if [ "$GPUS" = 1 ]; then
        gres_line=" Gres=gpu:1"
        # a GPU needs a device file; /dev/null stands in (no cgroups here, so nothing is bound to it)
        printf '%s\n' "# a bookkeeping GPU: SLURM schedules it, no GPU stands behind it" \
            "NodeName=$host Name=gpu File=/dev/null" > "$RUN_DIR/gres.conf"
    else
        : > "$RUN_DIR/gres.conf"
    fi
    cat > "$CONF" << EOF
$HEADER: a one-node test cluster on $host; everything under $RUN_DIR.
ClusterName=affsr
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$RUN_DIR/munge/munge.socket
StateSaveLocation=$RUN_DIR/state
SlurmdSpoolDir=$RUN_DIR/spool
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$RUN_DIR/log/slurmctld.log
SlurmdLogFile=$RUN_DIR/log/slurmd.log
# no cgroups: works in containers and VMs alike
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: clients query squeue; finished jobs stay listed for an hour
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# trust this file's node description (CPUs, memory) instead of draining the node over small differences
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
KillWait=30
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb$gres_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    say "wrote $CONF: node $host, $cpus CPUs, RealMemory=$real_mb MB, $GPUS bookkeeping GPU(s)"
}

link_etc_conf() {
    if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
        local target other
        target="$(readlink "$ETC_CONF" || true)"
        [ "$target" != "$CONF" ] || return 0
        if [ -n "$target" ] && { [ ! -e "$target" ] || head -n 1 "$target" | grep -q "^$HEADER"; }; then
            # a link left by this script for another run folder: stale unless that cluster still runs
            other="$(dirname "$target")"
            if [ -n "$(RUN_DIR="$other" pid_of slurmctld)" ]; then
                die "a cluster of this script runs in $other: stop it first (AFFSR_SLURM_DIR=$other $0 stop)"
            fi
            rm -f "$ETC_CONF"
        else
            die "$ETC_CONF exists and is not this script's: it will not be replaced. The srun that the \
Snakemake jobstep plugin runs inside each job reads that file (the plugin drops SLURM_CONF). Stop that SLURM \
and move the file away, or use that cluster directly."
        fi
    fi
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -s "$CONF" "$ETC_CONF"
}

unlink_etc_conf() {
    if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then
        rm -f "$ETC_CONF"
    fi
}

# ---- commands -----------------------------------------------------------------------------------------------

port_listening() {  # a TCP socket listens on this port (from /proc: no ss/netstat needed)
    local hex
    hex="$(printf '%04X' "$1")"
    awk -v port=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == port {found = 1} END {exit !found}' \
        /proc/net/tcp /proc/net/tcp6 2> /dev/null
}

node_idle() {
    sinfo -h -N -o '%t' | grep -qx 'idle'
}

print_env() {
    echo "export SLURM_CONF=$CONF"
}

cmd_start() {
    local missing
    missing="$(missing_commands | tr '\n' ' ')"
    [ -z "$missing" ] || { say "missing: $missing"; install_packages; }
    export SLURM_CONF="$CONF"

    if [ -n "$(pid_of munged)" ] && [ -n "$(pid_of slurmctld)" ] && [ -n "$(pid_of slurmd)" ] \
        && [ -f "$CONF" ] && node_idle; then
        say "already running (run folder $RUN_DIR)"
        link_etc_conf
        print_env
        return 0
    fi
    cmd_stop quiet  # whatever part of an earlier cluster is left: a clean start
    for port in "$PORT" $((PORT + 1)); do
        if port_listening "$port"; then
            die "port $port is in use (another slurmctld/slurmd?): set AFFSR_SLURM_PORT to a free pair"
        fi
    done

    mkdir -p "$RUN_DIR"/{munge,state,spool,log,pids}
    # munged refuses key, socket and log folders that others can write to
    chmod 0755 "$RUN_DIR" "$RUN_DIR/log"
    chmod 0711 "$RUN_DIR/munge"
    if [ ! -s "$RUN_DIR/munge/munge.key" ]; then
        (umask 077 && head -c 1024 /dev/urandom > "$RUN_DIR/munge/munge.key")
    fi
    chmod 0600 "$RUN_DIR/munge/munge.key"
    write_config
    link_etc_conf

    launch munged munged --foreground --force --key-file="$RUN_DIR/munge/munge.key" \
        --socket="$RUN_DIR/munge/munge.socket" --pid-file="$RUN_DIR/munge/munged.pid" \
        --log-file="$RUN_DIR/log/munged.log" --seed-file="$RUN_DIR/munge/munged.seed"
    wait_until "munge credentials" munged \
        sh -c "munge -n -S '$RUN_DIR/munge/munge.socket' | unmunge -S '$RUN_DIR/munge/munge.socket'"

    # -D: stay in the foreground, so the pid we record is the daemon's; -c: no state from an earlier run
    launch slurmctld slurmctld -D -c -f "$CONF"
    wait_until "answer from slurmctld (scontrol ping)" slurmctld sh -c "scontrol ping | grep -q UP"

    launch slurmd slurmd -D -f "$CONF" -N "$(uname -n | cut -d. -f1)"
    wait_until "idle node in sinfo" slurmd node_idle

    sinfo >&2
    say "running; clients need: $(print_env)"
    print_env
}

cmd_stop() {
    local quiet="${1:-}" jobs
    export SLURM_CONF="$CONF"
    if [ -n "$(pid_of slurmctld)" ] && command -v squeue > /dev/null; then
        jobs="$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o %i 2> /dev/null || true)"
        if [ -n "$jobs" ]; then
            say "cancelling jobs: $(echo $jobs)"
            # shellcheck disable=SC2086
            scancel --full $jobs 2> /dev/null || true
            for _ in $(seq 1 20); do
                [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2> /dev/null)" ] && break
                sleep 0.5
            done
        fi
    fi
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        stop_daemon "${DAEMONS[$i]}"
    done
    unlink_etc_conf
    [ -n "$quiet" ] || say "stopped (run folder $RUN_DIR kept: logs in $RUN_DIR/log)"
}

cmd_status() {
    local name pid rc=0
    for name in "${DAEMONS[@]}"; do
        pid="$(pid_of "$name")"
        if [ -n "$pid" ]; then echo "$name: running (pid $pid)"; else echo "$name: not running"; rc=1; fi
    done
    if [ "$rc" = 0 ]; then
        SLURM_CONF="$CONF" sinfo
        SLURM_CONF="$CONF" squeue
    fi
    return "$rc"
}

# everything but `env` needs root: apt-get, and slurmd starts jobs (as their users)
case "${1:-}" in
    start | stop | status)
        if [ "$(id -u)" != 0 ]; then
            command -v sudo > /dev/null && sudo -n true 2> /dev/null \
                || die "'$1' needs root (apt-get, slurmd): run it as root or with passwordless sudo"
            exec sudo -n -E bash "$0" "$@"
        fi
        ;;
esac

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) print_env ;;
    *) usage ;;
esac
