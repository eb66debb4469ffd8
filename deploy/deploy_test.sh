#!/usr/bin/env bash
# Unit test of deploy/prometheus and deploy/grafana: the scrape configuration passes
# `promtool check config` (Debian's prometheus package; the files it names are created in a
# temporary directory), and the Grafana dashboard is valid JSON with unique panel ids, a
# Prometheus query in every non-row panel and only berth's variables. (The e2e test
# prometheus_pods.sh runs every dashboard query against a real Prometheus.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus, deploy/setup.sh)"
command -v jq >/dev/null || fail "jq missing"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed "s#/etc/prometheus/#$tmp/#g" "$here/prometheus/prometheus.yml" >"$tmp/prometheus.yml"
: >"$tmp/kubernetes-token"
: >"$tmp/kubernetes-ca.crt"
printf -- "- targets: ['127.0.0.1:6443']\n  labels: {node: node-1}\n" >"$tmp/berth-nodes.yml"
promtool check config "$tmp/prometheus.yml" || fail "promtool check config deploy/prometheus/prometheus.yml"
jobs=$(grep -c 'job_name:' "$here/prometheus/prometheus.yml")
[ "$jobs" -ge 4 ] || fail "want >= 4 scrape jobs, got $jobs"

dash="$here/grafana/berth-dashboard.json"
jq -e . "$dash" >/dev/null || fail "$dash is not valid JSON"
jq -e '.uid and .title and (.panels | length > 0)' "$dash" >/dev/null || fail "dashboard lacks uid/title/panels"
jq -e '[.panels[].id] | length == (unique | length)' "$dash" >/dev/null || fail "duplicate panel ids"
jq -e '[.panels[] | select(.type != "row") | (.targets | length > 0) and all(.targets[]; (.expr | length) > 0)] | all' \
  "$dash" >/dev/null || fail "a panel without a query"
# Variables used in queries are the dashboard's own (or Grafana's built-in $__rate_interval).
used=$(jq -r '.panels[].targets[]?.expr' "$dash" | grep -o '\$[a-z_]*' | sort -u | tr '\n' ' ')
for v in $used; do
  case $v in '$__rate_interval') continue ;; esac
  jq -e --arg n "${v#\$}" '[.templating.list[].name] | index($n) != null' "$dash" >/dev/null ||
    fail "query variable $v is not defined in templating"
done
# Families on the dashboard: berth's eBPF ones and the cAdvisor ones it serves.
for m in berth_cgroup_runqueue_latency_seconds_bucket berth_oom_kills_total berth_ebpf_up \
  berth_cgroup_network_transmit_bytes_total container_cpu_usage_seconds_total \
  container_memory_working_set_bytes container_network_receive_bytes_total; do
  grep -q "$m" "$dash" || fail "dashboard has no panel over $m"
done
echo "PASS: deploy/prometheus/prometheus.yml ($jobs jobs) and deploy/grafana/berth-dashboard.json ($(jq '[.panels[] | select(.type != "row")] | length' "$dash") panels)"
