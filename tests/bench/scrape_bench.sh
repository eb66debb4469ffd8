#!/usr/bin/env bash
# Scrape benchmark, berth against the upstream kubelet in the same run: with N pods (default
# 100) running on each node, the time and size of one scrape of /metrics/cadvisor.
#   berth: its metrics endpoint (http://127.0.0.1:10249, plain HTTP) and, when berth serves
#          the kubelet port, https://<node-ip>:10250 (same TLS set-up as the kubelet's);
#   peer:  the upstream kubelet on containerd (tests/peer/node.sh) as a second node of the same cluster, over HTTPS with the
#          admin client certificate (its x509 authentication, AlwaysAllow authorization).
# Each endpoint is scraped S times (default 10) after a warm-up scrape; the JSON reports
# median/min/max seconds (curl time_total), bytes and sample lines. Needs the e2e cluster and
# berth up (tests/e2e/cluster_up.sh, same BERTH_E2E_STATE). Not a pass/fail test.
# Usage: BERTH_E2E_STATE=<state> tests/bench/scrape_bench.sh [N] [S]
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
n=${1:-100}
scrapes=${2:-10}
[ -x "$cluster_bin/kubelet" ] || fail "$cluster_bin/kubelet missing: run tests/cluster/build.sh kubelet"
pid=$(berth_pid)
[ -n "$pid" ] && pid_alive berth || fail "berth is not running (start tests/e2e/cluster_up.sh)"

peer="$state/bench-scrape-peer"
peer_node="peer-kubelet"
export BERTH_E2E_STATE=$state PEER_NODE_NAME=$peer_node
export PEER_CGROUP_ROOT="$cgroup_root-scrape-peer"
peer_crictl() { "$cluster_bin/crictl" --config "$peer/containerd/containerd/crictl.yaml" "$@"; }
cleanup() {
  for side in berth peer; do
    kubectl delete namespace "bench-scrape-$side" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  done
  "$repo_dir/tests/peer/node.sh" stop "$peer" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$repo_dir/tests/peer/node.sh" start "$peer" || fail "the upstream peer node did not start"
eval "$("$repo_dir/tests/peer/node.sh" env "$peer")"
crictl pull "$image" >/dev/null || fail "crictl pull $image (berth)"
peer_crictl pull "$image" >/dev/null || fail "crictl pull $image (containerd)"
peer_crictl pull 127.0.0.1:5000/pause:3.10 >/dev/null || fail "crictl pull pause (containerd)"

# run_pods <side> <node>: N pods (sleep) on <node>, in namespace bench-scrape-<side>, all Running.
run_pods() {
  local side=$1 node=$2 ns=bench-scrape-$1 i list='{"apiVersion":"v1","kind":"List","items":['
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kubectl create namespace "$ns" >/dev/null
  wait_for 60 kubectl get serviceaccount default -n "$ns" || fail "no default ServiceAccount in $ns"
  for i in $(seq 1 "$n"); do
    [ "$i" = 1 ] || list+=','
    list+="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p$i\"},"
    list+="\"spec\":{\"nodeName\":\"$node\",\"terminationGracePeriodSeconds\":1,"
    list+="\"tolerations\":[{\"key\":\"berth.dev/peer\",\"operator\":\"Exists\"}],"
    list+="\"containers\":[{\"name\":\"c\",\"image\":\"$image\",\"imagePullPolicy\":\"IfNotPresent\","
    list+="\"command\":[\"sleep\",\"3600\"]}]}}"
  done
  list+=']}'
  kubectl create -n "$ns" -f - >/dev/null <<<"$list"
  all_running() { [ "$(kubectl get pods -n "$ns" --field-selector status.phase=Running -o name | wc -l)" = "$n" ]; }
  wait_for 600 all_running || fail "$side: not all $n pods Running within 600s" "$ns"
}
run_pods berth "$node_name"
run_pods peer "$peer_node"

# scrape <name> <curl args...>: S timed scrapes after one warm-up; JSON stats on stdout.
scrape() {
  local name=$1; shift
  local out="$state/bench-scrape.$name.txt" times=() bytes=0 t line
  in_ns curl -sf --max-time 60 -o "$out" "$@" || fail "scrape $name: curl $* failed"
  for _ in $(seq 1 "$scrapes"); do
    line=$(in_ns curl -sf --max-time 60 -o "$out" -w '%{time_total} %{size_download}' "$@") ||
      fail "scrape $name: curl $* failed"
    t=${line% *}; bytes=${line#* }
    times+=("$t")
  done
  local series; series=$(grep -vc '^#' "$out" || true)
  local pods; pods=$(grep -o 'pod="[^"]*"' "$out" | sort -u | wc -l)
  printf '%s\n' "${times[@]}" | sort -g | jq -s --argjson bytes "$bytes" --argjson series "$series" \
    --argjson pods "$pods" --arg url "${*: -1}" \
    '{url: $url, median_seconds: .[(length / 2 | floor)], min_seconds: .[0], max_seconds: .[-1],
      bytes: $bytes, sample_lines: $series, distinct_pods: $pods}'
  rm -f "$out"
}
tls=(--cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" -k)
berth_http=$(scrape berth-http http://127.0.0.1:10249/metrics/cadvisor)
berth_https=null
if in_ns curl -sk --max-time 5 -o /dev/null "https://$node_addr:10250/healthz"; then
  berth_https=$(scrape berth-https "${tls[@]}" "https://$node_addr:10250/metrics/cadvisor")
fi
peer_https=$(scrape peer-https "${tls[@]}" "https://$node_addr:$PEER_KUBELET_PORT/metrics/cadvisor")

jq -n --argjson n "$n" --argjson s "$scrapes" --argjson bh "$berth_http" --argjson bs "$berth_https" \
  --argjson p "$peer_https" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{
  benchmark: "scrape_cadvisor", pods_per_node: $n, scrapes: $s, loadavg: $load,
  berth: {http: $bh, https: $bs},
  upstream_kubelet: $p,
  time_ratio_berth_to_kubelet: (($bs // $bh).median_seconds / $p.median_seconds),
  bytes_ratio_berth_to_kubelet: (($bs // $bh).bytes / $p.bytes),
  goal: "berth scrape time <= 1/4 of the upstream kubelet"
}'
