#!/usr/bin/env bash
# Pod startup benchmark: with the e2e cluster and berth up (tests/e2e/cluster_up.sh, same
# BERTH_E2E_STATE), creates N pods (default 10) of an image already present on the node and
# measures, from a watch on the API server, the time from each pod's first appearance
# (ADDED) to phase Running; plus berth's RSS (VmRSS) idle and with the N pods running.
# Prints one JSON object on stdout. Not a pass/fail test.
# Usage: BERTH_E2E_STATE=<state> tests/bench/pod_startup.sh [N]
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
n=${1:-10}
ns=bench-startup
pid=$(berth_pid)
[ -n "$pid" ] && pid_alive berth || fail "berth is not running (start tests/e2e/cluster_up.sh)"
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl create namespace "$ns" >/dev/null
wait_for 60 kubectl get serviceaccount default -n "$ns" || fail "no default ServiceAccount in $ns"
watch_pid=
cleanup() {
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

crictl pull "$image" >/dev/null || fail "crictl pull $image"
no_pods_on_node() { [ -z "$(kubectl get pods -A --field-selector "spec.nodeName=$node_name" -o name)" ]; }
wait_for 120 no_pods_on_node || log "warning: other pods run on $node_name; idle RSS includes them"
idle_rss=$(rss_kb "$pid")

# Stamp each watch event with the local time it arrived (EPOCHREALTIME: no fork per line).
events="$state/bench-events.$$"
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

list='{"apiVersion":"v1","kind":"List","items":['
for i in $(seq 1 "$n"); do
  [ "$i" = 1 ] || list+=','
  list+="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p$i\",\"labels\":{\"app\":\"bench\"}},"
  list+="\"spec\":{\"terminationGracePeriodSeconds\":1,\"containers\":[{\"name\":\"c\",\"image\":\"$image\","
  list+="\"imagePullPolicy\":\"IfNotPresent\",\"command\":[\"sleep\",\"3600\"]}]}}"
done
list+=']}'
kubectl create -n "$ns" -f - >/dev/null <<<"$list"
all_running() { [ "$(kubectl get pods -n "$ns" --field-selector status.phase=Running -o name | wc -l)" = "$n" ]; }
wait_for 300 all_running || fail "not all $n pods Running within 300s" "$ns"
busy_rss=$(rss_kb "$pid")
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
count=$(grep -c . <<<"$samples" || true)
[ "$count" -gt 0 ] || fail "no pod reached Running in the watch" "$ns"
pct() { awk -v q="$1" '{v[NR] = $1} END { i = int(q * NR + 0.999999); if (i < 1) i = 1; print v[i] }' <<<"$samples"; }
jq -n --argjson n "$n" --argjson count "$count" --argjson p50 "$(pct 0.50)" --argjson p99 "$(pct 0.99)" \
  --argjson max "$(tail -n1 <<<"$samples")" --argjson idle "$idle_rss" --argjson busy "$busy_rss" \
  --argjson samples "[$(paste -sd, <<<"$samples")]" \
  '{benchmark: "pod_startup", runtime: "berth", pods: $n,
    created_to_running_seconds: {p50: $p50, p99: $p99, max: $max, count: $count, samples: $samples},
    berth_rss_kib: {idle: $idle, with_pods_running: $busy, per_pod: (($busy - $idle) / $n)}}'
