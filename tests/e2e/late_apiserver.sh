#!/usr/bin/env bash
# (e) berth started before the API server exists keeps retrying (with backoff, without
# exiting) and registers its node once the API server comes up. Uses a second control plane
# and a second berth ("berth-late") of its own, both torn down at the end.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
late_state=${BERTH_E2E_LATE_STATE:-$state-late}
late_cgroup=/berth-late

# Re-point lib.sh's globals (kubectl, start_berth, stop_berth, ...) at the second cluster.
"$repo_dir/tests/cluster/down.sh" "$late_state" >/dev/null 2>&1 || true
rm -rf "$late_state"
BERTH_NETNS='' BERTH_NODE_IP='' state_init "$late_state"
berth_dir="$state/berth"; berth_sock="$berth_dir/berth.sock"; node_name=berth-late
cgroup_root=$late_cgroup

cleanup() {
  local left; left=$(stop_berth "$late_cgroup")
  [ "$left" = 0 ] || log "killed $left process(es) left in cgroup $late_cgroup"
  "$repo_dir/tests/cluster/down.sh" "$state" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ensure_netns
write_cni_conf 10.88.0.0/16
start_berth "$node_name" "$late_cgroup"   # also writes the node kubeconfig and the CA
pid=$(berth_pid)
# No API server yet: berth must stay up. `timeout` returns 124 if it is still running.
if timeout 8 tail --pid="$pid" -f /dev/null; then
  fail "berth exited without an API server (status in berth.log)"
fi
"$repo_dir/tests/cluster/up.sh" "$state" >/dev/null
up_at=$SECONDS
wait_for 120 kubectl get node "$node_name" || fail "node $node_name did not register after the API server came up"
log "node registered $((SECONDS - up_at))s after the API server came up"
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
pid_alive berth || fail "berth died"
# Backoff leaves a trace of failed attempts in the log, and there were several, not one.
attempts=$(grep -Eic 'refused|retry|retrying|back-off|backoff|unavailable' "$state/berth.log" || true)
[ "$attempts" -ge 2 ] || fail "berth.log shows no retried connection attempts"
echo "PASS: berth waited without an API server, registered $node_name $((SECONDS - up_at))s after it came up"
