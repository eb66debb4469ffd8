#!/usr/bin/env bash
# Pod startup benchmark, berth against its peer in the same run. With the e2e cluster and
# berth up (tests/e2e/cluster_up.sh, same BERTH_E2E_STATE), it starts the peer as a second
# node of the same cluster: the upstream kubelet (tests/peer/kubelet.sh, node peer-kubelet)
# on containerd (tests/peer/containerd.sh). Then, one side after the other, it creates N pods
# (default 10) pinned to the side's node by spec.nodeName, of the same image, already present
# on both nodes (pulled before), and measures from a watch on the API server the time from
# each pod's first appearance (ADDED) to phase Running; plus resident memory (VmRSS, KiB):
#   berth: the berth process alone (and berth + its conmon processes), idle and with N pods
#   peer:  kubelet + containerd + all containerd shims, idle and with N pods
# The peer is stopped at the end (its Node deleted). Prints one JSON object on stdout. Not a
# pass/fail test. Needs tests/cluster/build.sh kubelet.
# berth.phases: where berth's time went while its N pods started, from two scrapes of its
# /metrics (before the pods, once all run): count, sum, mean, p50 and p99 (interpolated in
# the buckets, as PromQL histogram_quantile) of berth_pod_start_phase_duration_seconds per
# phase, of kubelet_runtime_operations_duration_seconds per operation, and of
# kubelet_pod_worker_duration_seconds per operation type; plus the kubelet's
# kubelet_pod_start_sli_duration_seconds and kubelet_pod_start_duration_seconds.
# Usage: BERTH_E2E_STATE=<state> tests/bench/pod_startup.sh [N]
#        BENCH_ORDER="peer berth" measures the peer first (default "berth peer").
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
n=${1:-10}
pid=$(berth_pid)
[ -n "$pid" ] && pid_alive berth || fail "berth is not running (start tests/e2e/cluster_up.sh)"
[ -x "$cluster_bin/kubelet" ] || fail "$cluster_bin/kubelet missing: run tests/cluster/build.sh kubelet"
berth_metrics() { ip netns exec "$netns" curl -sf http://127.0.0.1:10249/metrics; }
# hq <before> <after> <metric> <label>: tests/bench/histogram_quantiles.awk's JSON.
hq() { awk -v metric="$3" -v label="$4" -f "$(dirname "$0")/histogram_quantiles.awk" "$1" "$2"; }
# unlabelled <file>: the label-less pod start histograms with an empty label x, for hq.
unlabelled() {
  sed -E 's/^(kubelet_pod_start(_sli)?_duration_seconds_bucket)\{/\1{x="",/
          s/^(kubelet_pod_start(_sli)?_duration_seconds_sum) /\1{x=""} /' "$1"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# berth_conmon_rss_kb: summed VmRSS of the conmon processes berth started (conmon.pid files in
# its state dir), the counterpart of containerd's shims.
berth_conmon_rss_kb() {
  local f p total=0 kb
  while IFS= read -r f; do
    p=$(cat "$f" 2>/dev/null) || continue
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = conmon ] || continue
    kb=$(rss_kb "$p" 2>/dev/null || true); total=$((total + ${kb:-0}))
  done < <(find "$berth_dir/run" -name conmon.pid 2>/dev/null)
  echo "$total"
}

# --- the peer: containerd + upstream kubelet, a second node ----------------------------------
peer="$state/bench-peer"
peer_node="peer-kubelet"
export BERTH_E2E_STATE=$state PEER_NODE_NAME=$peer_node
export PEER_CGROUP_ROOT="$cgroup_root-bench-peer"
peer_crictl() { "$cluster_bin/crictl" --config "$peer/containerd/containerd/crictl.yaml" "$@"; }
watch_pid=
cleanup() {
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  for side in berth peer; do
    kubectl delete namespace "bench-startup-$side" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  done
  "$repo_dir/tests/peer/node.sh" stop "$peer" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$repo_dir/tests/peer/node.sh" start "$peer" || fail "the upstream peer node did not start"

# The same image, present on both nodes before any pod asks for it.
crictl pull "$image" >/dev/null || fail "crictl pull $image (berth)"
peer_crictl pull "$image" >/dev/null || fail "crictl pull $image (containerd)"
peer_crictl pull 127.0.0.1:5000/pause:3.10 >/dev/null || fail "crictl pull pause (containerd)"

# measure <side> <node>: creates N pods on <node> in namespace bench-startup-<side>, waits
# until all run; leaves "<seconds>" samples in $samples, RSS with pods in $busy_* (by side);
# then deletes them and waits until the node runs none.
measure() {
  local side=$1 node=$2 ns=bench-startup-$1
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kubectl create namespace "$ns" >/dev/null
  wait_for 60 kubectl get serviceaccount default -n "$ns" || fail "no default ServiceAccount in $ns"
  # Stamp each watch event with the local time it arrived (EPOCHREALTIME: no fork per line).
  local events="$state/bench-events.$side.$$"
  : >"$events"
  {
    kubectl get pods -n "$ns" --watch -o json |
      jq -c --unbuffered '{name: .metadata.name, phase: .status.phase}' |
      while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done >"$events"
  } &
  watch_pid=$!
  # The watch is known to be established once it reports a sentinel pod (unschedulable: a
  # nodeSelector no node matches, so it never runs and deletes at once). Pods created before
  # that would be reported by the initial list, late, and shorten their measured startup.
  kubectl create -n "$ns" -f - >/dev/null <<'SENTINEL'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"sentinel"},"spec":{
 "nodeSelector":{"bench.berth/none":"none"},"containers":[{"name":"c","image":"none"}]}}
SENTINEL
  watch_ready() { grep -q '"name":"sentinel"' "$events"; }
  wait_for 30 watch_ready || fail "pod watch did not report the sentinel pod within 30s" "$ns"

  local list='{"apiVersion":"v1","kind":"List","items":[' i
  for i in $(seq 1 "$n"); do
    [ "$i" = 1 ] || list+=','
    list+="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p$i\",\"labels\":{\"app\":\"bench\"}},"
    list+="\"spec\":{\"nodeName\":\"$node\",\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"c\",\"image\":\"$image\","
    list+="\"imagePullPolicy\":\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}"
  done
  list+=']}'
  [ "$side" != berth ] || berth_metrics >"$state/bench-metrics.before" || fail "scrape berth /metrics"
  kubectl create -n "$ns" -f - >/dev/null <<<"$list"
  all_running() { [ "$(kubectl get pods -n "$ns" --field-selector status.phase=Running -o name | wc -l)" = "$n" ]; }
  wait_for 300 all_running || fail "$side: not all $n pods Running within 300s" "$ns"
  if [ "$side" = berth ]; then
    busy_berth=$(rss_kb "$pid"); busy_berth_conmon=$(berth_conmon_rss_kb)
    # The SLI is observed once the watch reports a pod running: wait for all N of them.
    local b=$state/bench-metrics.before a=$state/bench-metrics.after
    sli_count() { awk '/^kubelet_pod_start_sli_duration_seconds_count/ {print $2}' "$1"; }
    sli_seen() { berth_metrics >"$a" && [ "$(sli_count "$a")" -ge "$(( $(sli_count "$b") + n ))" ]; }
    wait_for 10 sli_seen || log "berth: the SLI of some pods was not observed"
    berth_phases=$(jq -n --argjson phase "$(hq "$b" "$a" berth_pod_start_phase_duration_seconds phase)" \
      --argjson ops "$(hq "$b" "$a" kubelet_runtime_operations_duration_seconds operation_type)" \
      --argjson worker "$(hq "$b" "$a" kubelet_pod_worker_duration_seconds operation_type)" \
      --argjson sli "$(hq <(unlabelled "$b") <(unlabelled "$a") kubelet_pod_start_sli_duration_seconds x)" \
      --argjson start "$(hq <(unlabelled "$b") <(unlabelled "$a") kubelet_pod_start_duration_seconds x)" \
      '{pod_start_phase_seconds: $phase, runtime_operations_seconds: $ops, pod_worker_seconds: $worker,
        pod_start_sli_seconds: ($sli[""] // null), pod_start_seconds: ($start[""] // null)}')
    rm -f "$b" "$a"
  else
    busy_peer_kubelet=$("$repo_dir/tests/peer/kubelet.sh" rss "$peer/kubelet")
    busy_peer_containerd=$("$repo_dir/tests/peer/containerd.sh" rss "$peer/containerd")
  fi
  watch_seen_all() { [ "$(grep -c '"phase":"Running"' "$events")" -ge "$n" ]; }
  wait_for 30 watch_seen_all || true
  kill "$watch_pid" 2>/dev/null || true; watch_pid=

  # Per pod: first event time (creation) -> first event with phase Running.
  samples=$(awk '{
      t = $1; match($0, /"name":"[^"]*"/); name = substr($0, RSTART + 8, RLENGTH - 9)
      if (name !~ /^p[0-9]+$/) next
      if (!(name in first)) first[name] = t
      if ($0 ~ /"phase":"Running"/ && !(name in running)) running[name] = t
    } END { for (p in running) printf "%.3f\n", running[p] - first[p] }' "$events" | sort -n)
  rm -f "$events"
  [ -n "$samples" ] || fail "$side: no pod reached Running in the watch" "$ns"
  kubectl delete namespace "$ns" --wait=false >/dev/null
  no_pods() { [ -z "$(kubectl get pods -A --field-selector "spec.nodeName=$node" -o name)" ]; }
  wait_for 180 no_pods || fail "$side: pods of $ns still on $node after 180s"
}
# stats_json: {p50, p99, max, count, samples} of $samples.
stats_json() {
  local count; count=$(grep -c . <<<"$samples")
  jq -n --argjson p50 "$(percentile 0.50 <<<"$samples")" --argjson p99 "$(percentile 0.99 <<<"$samples")" --argjson max "$(tail -n1 <<<"$samples")" \
    --argjson count "$count" --argjson samples "[$(paste -sd, <<<"$samples")]" \
    '{p50: $p50, p99: $p99, max: $max, count: $count, samples: $samples}'
}

no_pods_on_node() { [ -z "$(kubectl get pods -A --field-selector "spec.nodeName=$node_name" -o name)" ]; }
wait_for 120 no_pods_on_node || log "warning: other pods run on $node_name; idle RSS includes them"
idle_berth=$(rss_kb "$pid"); idle_berth_conmon=$(berth_conmon_rss_kb)
idle_peer_kubelet=$("$repo_dir/tests/peer/kubelet.sh" rss "$peer/kubelet")
idle_peer_containerd=$("$repo_dir/tests/peer/containerd.sh" rss "$peer/containerd")

for side in ${BENCH_ORDER:-berth peer}; do
  case "$side" in
    berth) measure berth "$node_name"; berth_stats=$(stats_json) ;;
    peer) measure peer "$peer_node"; peer_stats=$(stats_json) ;;
    *) fail "BENCH_ORDER: unknown side $side (berth, peer)" ;;
  esac
done

# (built from the module cache without version ldflags: the version is go.mod's)
kver=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$repo_dir/tests/cluster/go.mod")
cver=$(/usr/bin/containerd --version | awk '{print $3}')
jq -n --argjson n "$n" --arg image "$image" --argjson bs "$berth_stats" --argjson ps "$peer_stats" \
  --argjson ib "$idle_berth" --argjson bb "$busy_berth" --argjson ibc "$idle_berth_conmon" --argjson bbc "$busy_berth_conmon" \
  --argjson ipk "$idle_peer_kubelet" --argjson ipc "$idle_peer_containerd" \
  --argjson bpk "$busy_peer_kubelet" --argjson bpc "$busy_peer_containerd" \
  --argjson phases "${berth_phases:-null}" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg order "${BENCH_ORDER:-berth peer}" --arg peer "upstream kubelet ${kver:-?} (tests/cluster/go.mod) + containerd $cver + runc" \
  '{benchmark: "pod_startup", pods: $n, image: $image, order: $order, load_at_end: $load,
    berth: {created_to_running_seconds: $bs, phases: $phases,
            rss_kib: {idle: $ib, with_pods_running: $bb, per_pod: (($bb - $ib) / $n),
                      conmon_with_pods_running: $bbc,
                      berth_plus_conmon_with_pods_running: ($bb + $bbc)}},
    peer: {runtime: $peer, created_to_running_seconds: $ps,
           rss_kib: {idle: ($ipk + $ipc), with_pods_running: ($bpk + $bpc),
                     per_pod: ((($bpk + $bpc) - ($ipk + $ipc)) / $n),
                     kubelet: {idle: $ipk, with_pods_running: $bpk},
                     containerd_plus_shims: {idle: $ipc, with_pods_running: $bpc}}}}'
