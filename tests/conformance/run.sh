#!/usr/bin/env bash
# Runs the upstream Kubernetes e2e suite (e2e.test of the pinned k8s.io/kubernetes) against
# one berth node of a local control plane, with JUnit output, and prints the counts as JSON.
#
# Usage: tests/conformance/run.sh [ci|node] [berth|peer]
#   ci    the CI subset (at most ~20 min here): NodeConformance specs that are neither Slow,
#         Serial, Disruptive, Flaky nor feature-gated, without the liveness specs that wait
#         out a 4-minute observation window (they run in `node`)
#   node  phase 1: every NodeConformance spec and every sig-node Conformance spec, Slow,
#         Serial and Disruptive ones included
#   berth (default) the node is berth; peer: the upstream kubelet on Debian's containerd
#         (tests/peer/node.sh), in the same harness, for the side-by-side figures
# Specs in skip.txt ("<regex> | <reason>") are skipped; the run fails when a spec fails or
# when a spec that skip.txt does not name is skipped.
# Env: BERTH_BIN (berth binary, default build/kubelet/berth), BERTH_CONFORMANCE_STATE (state
# dir, default build/conformance-state), CONFORMANCE_PROCS (ginkgo processes, default 6),
# CONFORMANCE_FOCUS (a regex: run only matching specs of the phase), CONFORMANCE_KEEP=1
# (leave the cluster and berth running afterwards).
# The run has its own netns (berth-conformance), cgroup root, registry (127.0.0.1:5050:
# the suite's fake registry pod takes :5000) and node (berth-conformance); everything it
# started is stopped by PID on exit, also on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
phase=${1:-ci}
node_kind=${2:-berth}
case $node_kind in berth|peer) ;; *) echo "run.sh: unknown node kind $node_kind (berth|peer)" >&2; exit 2 ;; esac
export BERTH_E2E_STATE=${BERTH_CONFORMANCE_STATE:-$repo/build/conformance-state$([ "$node_kind" = peer ] && echo -peer)}
export BERTH_NETNS=${BERTH_NETNS:-berth-conformance$([ "$node_kind" = peer ] && echo -peer)}
export BERTH_CGROUP_ROOT=${BERTH_CGROUP_ROOT:-/berth-conformance}
export BERTH_REGISTRY_ADDR=${BERTH_REGISTRY_ADDR:-127.0.0.1:5050}
export BERTH_NODE_NAME=${BERTH_NODE_NAME:-berth-conformance}
# shellcheck source=tests/e2e/lib.sh
source "$repo/tests/e2e/lib.sh"
[ "$(id -u)" = 0 ] || fail "conformance run needs root"

case $phase in
  ci) label='NodeConformance && !Serial && !Slow && !Disruptive && !Flaky && Feature: isEmpty'
      phase_skip='Probing (container|restartable init container).*(should \*not\* be restarted|should be restarted with a (exec|local redirect|/healthz)|monotonically increasing)' ;;
  node) label='(NodeConformance || (sig-node && Conformance)) && !Flaky && Feature: isEmpty'
        phase_skip='' ;;
  *) echo "run.sh: unknown phase $phase (ci|node)" >&2; exit 2 ;;
esac

peer_dir="$state/peer"
cleanup() {
  local rc=$?
  if [ "${CONFORMANCE_KEEP:-0}" != 1 ]; then
    if [ "$node_kind" = peer ]; then "$repo/tests/peer/node.sh" stop "$peer_dir" >/dev/null 2>&1 || true; fi
    bash "$repo/tests/e2e/cluster_down.sh" >/dev/null 2>&1 || rc=${rc:-1}
  fi
  exit $rc
}
trap cleanup EXIT

# fresh_dir <dir>: removes a node's state from an earlier run, unless something is still
# mounted under it. Images are rebuilt under their upstream tags, so a node that kept an
# earlier build of a tag would run stale content.
fresh_dir() {
  if awk -v d="$1/" 'index($2, d) == 1 {found=1} END {exit !found}' /proc/self/mounts; then
    log "mounts left under $1: keeping it"
  else
    rm -rf "$1"
  fi
}

"$here/build.sh"
"$repo/tests/cluster/up.sh" "$state" >/dev/null
"$here/images.sh" "$state"
if [ "$node_kind" = peer ]; then
  # The upstream kubelet v1.36.3 (tests/cluster) on containerd, registries mapped to ours.
  export PEER_NODE_NAME=peer-conformance PEER_CGROUP_ROOT=$cgroup_root-peer PEER_KUBELET_UNTAINTED=1 \
    PEER_KUBELET_CLUSTER_DNS=10.96.0.10
  "$repo/tests/peer/pause_image.sh" "$state" >/dev/null
  fresh_dir "$peer_dir"
  "$repo/tests/peer/node.sh" start "$peer_dir" || fail "peer node did not start"
  node_name=$PEER_NODE_NAME
  eval "$("$repo/tests/peer/containerd.sh" env "$peer_dir/containerd")"
  runtime_sock=$PEER_CONTAINERD_SOCK
else
  runtime_sock=$berth_sock
  if ! pid_alive berth; then
    fresh_dir "$berth_dir"
    start_berth "$node_name" "$cgroup_root" --registry-mirror=registry.k8s.io=http://$registry_addr \
      --insecure-registry=$registry_addr --cluster-dns=10.96.0.10 --cluster-domain=cluster.local
  fi
  wait_for 120 kubectl get node "$node_name" || fail "node $node_name did not register within 120s"
  has_pod_cidr() { [ -n "$(jsonpath "node/$node_name" '{.spec.podCIDR}')" ]; }
  wait_for 30 has_pod_cidr || log "node $node_name has no podCIDR after 30s"
  pod_cidr=$(jsonpath "node/$node_name" '{.spec.podCIDR}')
  write_cni_conf "${pod_cidr:-10.88.0.0/16}"
fi
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready within 120s"

skip_lines() { sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]]\{1,\}|[[:space:]].*$//' -e '/^[[:space:]]*$/d' "$here/skip.txt"; }
skip_re=$(skip_lines | paste -sd'|')
[ -z "$phase_skip" ] || skip_re=${skip_re:+$skip_re|}$phase_skip
out="$state/report-$phase"
rm -rf "$out"; mkdir -p "$out"
args=(--procs="${CONFORMANCE_PROCS:-6}" --timeout=4h --label-filter="$label" --no-color
      --junit-report=junit.xml --json-report=report.json --output-dir="$out" --poll-progress-after=300s)
[ -z "$skip_re" ] || args+=(--skip="$skip_re")
[ -z "${CONFORMANCE_FOCUS:-}" ] || args+=(--focus="$CONFORMANCE_FOCUS")
log "running e2e.test ($phase): label filter: $label"
start=$SECONDS
set +e
in_ns "$here/bin/ginkgo" "${args[@]}" "$here/bin/e2e.test" -- \
  --kubeconfig="$state/admin.kubeconfig" --provider=skeleton --kubectl-path="$cluster_bin/kubectl" \
  --report-dir="$out" --e2e-output-dir="$out" --dns-domain=cluster.local --minStartupPods=0 \
  --container-runtime-endpoint="unix://$runtime_sock" --allowed-not-ready-nodes=0 \
  >"$out/ginkgo.log" 2>&1
ginkgo_rc=$?
set -e
secs=$((SECONDS - start))
[ -f "$out/report.json" ] || { tail -n 50 "$out/ginkgo.log" >&2; fail "ginkgo wrote no report (exit $ginkgo_rc)"; }
# Spec states of the JSON report. Specs the filters left out are "skipped" with no Failure;
# a spec that skipped itself (e2eskipper) has one. Those skip.txt names are expected.
summary=$(jq -c --arg phase "$phase" --arg node "$node_kind" --argjson secs "$secs" --arg skip "$skip_re" '
  [.[].SpecReports[] | select(.LeafNodeType == "It")] as $s |
  def name: ([.ContainerHierarchyTexts[], .LeafNodeText] | join(" "));
  ($s | map(select(.State == "skipped" and .Failure != null))) as $skipped |
  {phase: $phase, node: $node, seconds: $secs,
   passed: ($s | map(select(.State == "passed")) | length),
   failed: ($s | map(select(.State != "passed" and .State != "skipped" and .State != "pending")) | length),
   skipped: ($skipped | length),
   failed_specs: [$s[] | select(.State != "passed" and .State != "skipped" and .State != "pending") | name],
   unexpected_skips: [$skipped[] | name | select($skip == "" or (test($skip) | not))]}' "$out/report.json")
echo "$summary" | jq -c 'del(.failed_specs, .unexpected_skips) + {failed_specs: (.failed_specs | length), unexpected_skips: (.unexpected_skips | length)}'
echo "$summary" | jq -r '.failed_specs[] | "FAILED: " + .' >&2
echo "$summary" | jq -r '.unexpected_skips[] | "SKIPPED (not in skip.txt): " + .' >&2
echo "$summary" >"$out/summary.json"
if [ "$(jq '.failed + (.unexpected_skips | length)' <<<"$summary")" != 0 ] || [ "$(jq .passed <<<"$summary")" = 0 ]; then
  log "conformance $phase: failures; ginkgo log: $out/ginkgo.log"
  exit 1
fi
log "conformance $phase: all specs passed"
