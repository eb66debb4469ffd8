# Shared by the peer scripts (containerd.sh, kubelet.sh): cgroup and process helpers for a
# peer started in its own cgroup tree, stopped by PID. Source it; it defines functions only
# (callers define log()).

# cgroup_dirs <path>: <path> under every mounted hierarchy (v1 controllers, name=systemd, unified).
cgroup_dirs() {
  local h
  for h in /sys/fs/cgroup/*/; do [ -d "$h${1#/}" ] && echo "$h${1#/}"; done
  [ -f /sys/fs/cgroup/cgroup.procs ] && [ -d "/sys/fs/cgroup$1" ] && echo "/sys/fs/cgroup$1"
  return 0
}
# cgroup_procs <path>: PIDs in the cgroup tree <path>, all hierarchies.
cgroup_procs() {
  local d
  for d in $(cgroup_dirs "$1"); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un
}
# live_procs <path>: cgroup_procs without zombies (dead already; init reaps them).
live_procs() {
  local p
  for p in $(cgroup_procs "$1"); do
    grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null || echo "$p"
  done
}
# make_cgroup <path>: creates <path> in every hierarchy (cpuset: cpus/mems copied down, as a
# v1 cpuset cgroup takes no task while they are empty); prints the cgroup.procs files.
make_cgroup() {
  local h dir part parts
  for h in /sys/fs/cgroup/*/; do
    [ -f "${h}cgroup.procs" ] || continue
    dir=${h%/}
    IFS=/ read -ra parts <<<"${1#/}"
    for part in "${parts[@]}"; do
      mkdir -p "$dir/$part"
      if [ -f "$dir/cpuset.cpus" ]; then
        [ -n "$(cat "$dir/$part/cpuset.cpus")" ] || cat "$dir/cpuset.cpus" >"$dir/$part/cpuset.cpus"
        [ -n "$(cat "$dir/$part/cpuset.mems")" ] || cat "$dir/cpuset.mems" >"$dir/$part/cpuset.mems"
      fi
      dir="$dir/$part"
    done
    echo "$dir/cgroup.procs"
  done
}
# stop_pid <pid> <what> <alive-cmd...>: SIGTERM, up to 15 s for alive-cmd to fail, then
# SIGKILL and wait until it does.
stop_pid() {
  local pid=$1 what=$2; shift 2
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while "$@" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if "$@"; then log "$what (pid $pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  while "$@"; do sleep 0.05; done
  log "stopped $what (pid $pid)"
}
# kill_leftovers <cgroup> <grace-seconds>: gives processes left in the cgroup tree
# <grace-seconds> to exit, then SIGKILLs them by PID (for up to 10 s). Prints how many it
# killed with their command lines on stderr; returns 1 if it killed any or some survive.
kill_leftovers() {
  local cg=$1 deadline=$((SECONDS + $2)) pid pids killed=0 what=
  while [ -n "$(live_procs "$cg")" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  deadline=$((SECONDS + 10))
  while pids=$(live_procs "$cg") && [ -n "$pids" ]; do
    for pid in $pids; do
      what+=" $pid:$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
      kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    done
    [ $SECONDS -lt $deadline ] || { log "processes survive SIGKILL in $cg: $pids"; return 1; }
    sleep 0.1
  done
  [ "$killed" = 0 ] || { log "killed $killed leftover process(es) in $cg:$what"; return 1; }
}
# remove_cgroup_tree <cgroup>: removes the tree in every hierarchy, deepest first (up to
# 10 s each); returns 1 if one stays.
remove_cgroup_tree() {
  local d deadline status=0
  for d in $(cgroup_dirs "$1"); do
    deadline=$((SECONDS + 10))
    while [ -d "$d" ] && [ $SECONDS -lt $deadline ]; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
    done
    [ ! -d "$d" ] || { log "cannot remove cgroup $d"; status=1; }
  done
  return $status
}
