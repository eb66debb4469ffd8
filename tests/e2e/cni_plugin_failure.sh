#!/usr/bin/env bash
# A CNI plugin that fails (error JSON, exit 1), crashes (SIGSEGV) or hangs (killed after
# berth's --cni-plugin-timeout) makes the pod's sandbox fail: the plugin's message shows in
# the pod's FailedCreatePodSandBox event, and nothing is left behind: no veth, netns bind
# mount or host-local lease (the plugins before it in the chain are rolled back with DEL).
# The test plugin berth-test-plugin sits after bridge in a conflist that takes precedence
# (05-failing.conflist) for the duration of the test; it picks its behaviour from
# K8S_POD_NAME in CNI_ARGS.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-cni-fail
conf_dir="$state/cni/net.d"
failing="$conf_dir/05-failing.conflist"
trap 'rm -f "$failing"; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
[ -x "$state/cni/bin/berth-test-plugin" ] || fail "test plugin $state/cni/bin/berth-test-plugin missing (cluster_up.sh installs it)"
timeout_s=$(tr '\0' '\n' <"/proc/$(berth_pid)/cmdline" | sed -n 's/^--cni-plugin-timeout=//p')
[ -n "$timeout_s" ] || fail "berth runs without --cni-plugin-timeout"

ipam_dir="$state/cni/ipam/berth-e2e-failing"
leases() { find "$ipam_dir" -type f -name '10.*' 2>/dev/null | wc -l; }
veths0=$(count_veths); netns0=$(count_netns_mounts)
jq '.name = "berth-e2e-failing" | .plugins[0].ipam.dataDir = "'"$state/cni/ipam"'"
    | .plugins = [.plugins[0], {"type": "berth-test-plugin"}] + .plugins[1:]' \
  "$conf_dir/10-berth.conflist" >"$failing.tmp"
mv "$failing.tmp" "$failing"

# event_with <pod> <text>: a FailedCreatePodSandBox event of <pod> contains <text>.
event_with() {
  kubectl get events -n "$E2E_NS" --field-selector "involvedObject.name=$1,reason=FailedCreatePodSandBox" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | grep -qF -- "$2"
}
for mode in fail crash hang; do
  kubectl run "cni-$mode" -n "$E2E_NS" --image="$image" --restart=Never \
    --overrides='{"spec":{"terminationGracePeriodSeconds":1}}' -- sleep 3600 >/dev/null
done
wait_for 90 event_with cni-fail "CNI ADD plugin berth-test-plugin for sandbox" ||
  fail "no FailedCreatePodSandBox event naming the plugin for cni-fail" "$E2E_NS"
event_with cni-fail "injected failure for pod cni-fail: details of the failure" ||
  fail "cni-fail's event lacks the plugin's error msg and details" "$E2E_NS"
event_with cni-fail "berth-test-plugin stderr line" ||
  fail "cni-fail's event lacks the plugin's stderr" "$E2E_NS"
wait_for 90 event_with cni-crash "killed by signal 11" ||
  fail "no FailedCreatePodSandBox event 'killed by signal 11' for cni-crash" "$E2E_NS"
wait_for $((timeout_s * 3 + 60)) event_with cni-hang "timed out after $((timeout_s * 1000))ms" ||
  fail "no FailedCreatePodSandBox event 'timed out' for cni-hang" "$E2E_NS"
for mode in fail crash hang; do
  [ "$(jsonpath "pod/cni-$mode" '{.status.phase}' "$E2E_NS")" = Pending ] || fail "pod cni-$mode not Pending" "$E2E_NS"
done
# Stop the retries, then nothing may be left of any attempt.
rm -f "$failing"
kubectl delete pod -n "$E2E_NS" cni-fail cni-crash cni-hang --wait=true --timeout=180s >/dev/null ||
  fail "pods not deleted" "$E2E_NS"
back() { [ "$(count_veths)" = "$veths0" ] && [ "$(count_netns_mounts)" = "$netns0" ] && [ "$(leases)" = 0 ]; }
wait_for 60 back || fail "left behind: veths $(count_veths) (before $veths0), netns mounts $(count_netns_mounts) (before $netns0), leases $(leases)"
[ -z "$(crictl pods --namespace "$E2E_NS" -q)" ] || fail "sandboxes left: $(crictl pods --namespace "$E2E_NS")"
echo "PASS: failing, crashing and hanging CNI plugin: message in FailedCreatePodSandBox events, no veth/netns/lease left"
