#!/usr/bin/env bash
# The README's first command, end to end: `bash deploy/run.sh` with no cluster given builds
# berth, starts the local control plane (tests/cluster) in its own network namespace and joins
# it as a node. The test then runs the commands run.sh prints ("In another shell:") as they
# are, and checks what they show: the node Ready, the deployment's pod Running, the container
# in `crictl ps`, berth's /metrics; and `kubectl logs` / `kubectl exec` through the API server
# (which needs run.sh's --client-ca-file). Afterwards (also when a step fails) it removes the
# pods, stops berth by PID, runs `deploy/run.sh --down`, unmounts what is left under its dirs
# and removes its cgroups and dirs.
# Everything is private to this run: netns berth-run-<pid>, BERTH_LOCAL_DIR, berth's
# --root-dir/--state-dir/--cri-socket/--cgroup-root/--log-root; BERTH_BUILD_DIR is the build
# dir of the calling ctest (configured the same way as run.sh configures it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
log() { echo "[$(date +%H:%M:%S)] run_test: $*" >&2; }
# shellcheck source=tests/peer/lib.sh
source "$top/tests/peer/lib.sh"

id=$$
export BERTH_NETNS=berth-run-$id
export BERTH_LOCAL_DIR=/var/tmp/berth-run-test-$id
export BERTH_NODE_NAME=berth-run-test
export BERTH_BUILD_DIR=${BERTH_BUILD_DIR:-$top/build}
run_state=/run/berth-run-$id
cg=/berth-run-$id
out="$BERTH_LOCAL_DIR.log"
crictl=("$top/tests/cluster/bin/crictl" --runtime-endpoint "unix://$run_state/berth.sock" --timeout 20s)
kctl="$BERTH_LOCAL_DIR/kubectl"
pid=

fail() {
  echo "FAIL: $*" >&2
  echo "---- deploy/run.sh output (last 60 lines)" >&2; tail -n 60 "$out" >&2 2>/dev/null || true
  [ -x "$kctl" ] && { "$kctl" get nodes,pods -A -o wide >&2 2>&1 || true; }
  exit 1
}
alive() { [ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; }

cleanup() {
  local status=$? m
  set +e
  if alive; then
    if [ -x "$kctl" ]; then
      "$kctl" delete deployment --all --wait=false >/dev/null 2>&1
      "$kctl" delete pods --all --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1
    fi
    local deadline=$((SECONDS + 60))
    while [ -n "$("${crictl[@]}" pods -q 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    local left; left=$("${crictl[@]}" pods -q 2>/dev/null)
    [ -z "$left" ] || { log "pods left, removing through the CRI: $left"; "${crictl[@]}" rmp -f $left >/dev/null 2>&1; }
    # run.sh execs berth: $pid is berth once it runs (before that, the script itself).
    stop_pid "$pid" "deploy/run.sh (berth)" alive
  fi
  bash deploy/run.sh --down >>"$out" 2>&1 || { log "deploy/run.sh --down failed"; status=1; }
  kill_leftovers "$cg" 0 || status=1
  for m in $(awk -v a="$BERTH_LOCAL_DIR/" -v b="$run_state/" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  remove_cgroup_tree "$cg" || status=1
  rm -rf "$BERTH_LOCAL_DIR" "$run_state"
  [ $status = 0 ] && rm -f "$out"
  exit $status
}
trap cleanup EXIT

mkdir -p "$(dirname "$out")"
log "bash deploy/run.sh (netns $BERTH_NETNS, output in $out)"
bash deploy/run.sh --root-dir="$BERTH_LOCAL_DIR/root" --state-dir="$run_state" \
  --cri-socket="$run_state/berth.sock" --cgroup-root="$cg" --log-root="$BERTH_LOCAL_DIR/logs" \
  >"$out" 2>&1 &
pid=$!

# The instructions run.sh prints, between "In another shell:" and "Stop berth".
deadline=$((SECONDS + 900))
until grep -q '^Stop berth with' "$out"; do
  alive || fail "deploy/run.sh exited before printing its instructions"
  [ $SECONDS -lt $deadline ] || fail "deploy/run.sh printed no instructions within 900 s"
  sleep 1
done
mapfile -t cmds < <(sed -n '/^In another shell:/,/^Stop berth/{/^  /p}' "$out" | sed 's/^  //')
[ ${#cmds[@]} = 4 ] || fail "expected 4 commands in run.sh's instructions, got ${#cmds[@]}: ${cmds[*]}"
log "instructions: ${cmds[*]}"
for c in "${cmds[@]}"; do [[ $c == *berth.sock* ]] && [[ $c != *"$run_state/berth.sock"* ]] &&
  fail "the crictl command does not follow --cri-socket: $c"; done

# 1. kubectl get nodes: the node registers and turns Ready.
deadline=$((SECONDS + 180))
until grep -Eq "^$BERTH_NODE_NAME +Ready " <<<"$(bash -c "${cmds[0]}" 2>/dev/null)"; do
  alive || fail "berth exited"
  [ $SECONDS -lt $deadline ] || fail "node $BERTH_NODE_NAME not Ready within 180 s"
  sleep 1
done
log "node Ready"
# 2. kubectl create deployment hello ...: its pod runs on the node.
bash -c "${cmds[1]}" >/dev/null || fail "${cmds[1]}"
"$kctl" rollout status deployment/hello --timeout=120s >/dev/null || fail "deployment hello not available"
pod=$("$kctl" get pods -l app=hello -o jsonpath='{.items[0].metadata.name}')
[ "$("$kctl" get pod "$pod" -o jsonpath='{.spec.nodeName}')" = "$BERTH_NODE_NAME" ] || fail "pod not on $BERTH_NODE_NAME"
# 3. crictl ps: the container is listed as running.
ps_out=$(bash -c "${cmds[2]}" 2>/dev/null) || fail "${cmds[2]}"
grep -Eq "Running +busybox .* $pod " <<<"$ps_out" || fail "crictl ps does not list $pod's container running: $ps_out"
# 4. curl .../metrics: Prometheus text from berth.
metrics=$(bash -c "${cmds[3]}") || fail "${cmds[3]}"  # whole output first: grep -q would SIGPIPE curl
grep -q '^berth_build_info{' <<<"$metrics" || fail "no berth_build_info on /metrics"
# kubectl logs and exec go API server -> berth :10250 with the API server's client certificate.
"$kctl" logs "$pod" >/dev/null || fail "kubectl logs $pod"
[ "$("$kctl" exec "$pod" -- echo exec-ok)" = exec-ok ] || fail "kubectl exec $pod"
log "PASS: deploy/run.sh node runs the printed commands' deployment; logs and exec work"
