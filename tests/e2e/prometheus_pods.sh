#!/usr/bin/env bash
# A real Prometheus scrapes berth's /metrics and /metrics/cadvisor every second while five
# workloads run side by side; the answers come from PromQL over Prometheus' HTTP API:
#   cpu-half   (cpu limit 500m, busy loop): rate(container_cpu_usage_seconds_total[30s]) in 0.4..0.6
#   disk       (dd 100 MB, O_DIRECT, to an emptyDir): >= 100 MB in container_fs_writes_bytes_total
#              and in berth_cgroup_io_write_bytes_total (eBPF block I/O)
#   net-client -> net-server (50 MB over TCP): >= 50 MB in the eBPF cgroup_skb counters
#              (berth_cgroup_network_*_bytes_total) and in the netns counters
#              (container_network_*_bytes_total), on both sides
#   oom        (memory limit 32Mi, `tail /dev/zero` grows until killed): exactly one OOM kill,
#              berth_oom_kills_total{command="tail"} 1
#   contended  (two busy loops under a 100m limit) vs idle (sleeps): higher mean run-queue
#              latency (berth_cgroup_runqueue_latency_seconds _sum/_count)
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/prometheus_lib.sh
source "$(dirname "$0")/prometheus_lib.sh"
MB=1048576

# The host's other load runs in the root cpu cgroup; on a real node the kubelet gives the
# pods' cgroup a weight matching the node's allocatable CPU. Give the test's cgroup root the
# weight of the whole machine so a pod's CPU limit, not host load, bounds it (restored on exit).
cpu_weight_file= cpu_weight_old=
for d in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do
  [ -d "$d" ] && [ ! -L "$d" ] && { mkdir -p "$d$cgroup_root"; break; }
done
[ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "/sys/fs/cgroup$cgroup_root"
for f in "/sys/fs/cgroup/cpu$cgroup_root/cpu.shares" "/sys/fs/cgroup/cpu,cpuacct$cgroup_root/cpu.shares" \
  "/sys/fs/cgroup$cgroup_root/cpu.weight"; do
  [ -f "$f" ] || continue
  cpu_weight_file=$f
  cpu_weight_old=$(cat "$f")
  case $f in *cpu.shares) echo 262144 >"$f" ;; *) echo 10000 >"$f" ;; esac
  break
done
[ -n "$cpu_weight_file" ] || fail "no cpu.shares / cpu.weight for cgroup root $cgroup_root"

e2e_namespace e2e-prometheus
cleanup() {
  stop_prometheus
  [ -z "$cpu_weight_file" ] || echo "$cpu_weight_old" >"$cpu_weight_file" 2>/dev/null || true
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Every 2 s (the timeout is the interval: a scrape slowed by a loaded machine is not lost).
prom_scrape_config 2s >"$state/prometheus-e2e.yml"
start_prometheus "$state/prometheus-e2e.yml"
wait_for 30 prom_targets_up || fail "Prometheus targets not up: $(in_ns curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 2000)"

pod() {  # pod <name> <container> <resources-json> <command> [volume-json]
  local name=$1 ctr=$2 res=$3 cmd=$4 vol=${5:-}
  local mounts='' volumes=''
  if [ -n "$vol" ]; then
    mounts=',"volumeMounts":[{"name":"data","mountPath":"/data"}]'
    volumes=',"volumes":[{"name":"data","emptyDir":{}}]'
  fi
  kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$name"},"spec":{
 "terminationGracePeriodSeconds":1,"restartPolicy":"Never",
 "containers":[{"name":"$ctr","image":"$image","resources":$res,
   "command":["sh","-c",$(jq -Rn --arg c "$cmd" '$c')]$mounts}]$volumes}}
POD
}
guaranteed='{"requests":{"cpu":"500m","memory":"32Mi"},"limits":{"cpu":"500m","memory":"32Mi"}}'
pod cpu-half burn "$guaranteed" 'while :; do :; done'
pod disk writer '{}' 'dd if=/dev/zero of=/data/f bs=1M count=100 oflag=direct && echo written && sleep 3600' data
pod net-server server '{}' 'sleep 3600 | nc -l -p 5001 >/dev/null; sleep 3600'
pod oom hog '{"limits":{"memory":"32Mi"}}' 'tail /dev/zero; echo survived; sleep 3600'
pod contended spin '{"limits":{"cpu":"100m"}}' 'while :; do :; done & while :; do :; done'
pod idle nap '{}' 'while :; do sleep 0.1; done'
for p in cpu-half disk net-server oom contended idle; do
  wait_for 120 pod_phase_is "$E2E_NS" $p Running || fail "pod $p not Running" "$E2E_NS"
done
server_ip=$(jsonpath pod/net-server '{.status.podIP}' "$E2E_NS")
[ -n "$server_ip" ] || fail "pod net-server has no IP" "$E2E_NS"
pod net-client client '{}' "dd if=/dev/zero bs=1M count=50 | nc $server_ip 5001; echo sent; sleep 3600"
wait_for 120 pod_phase_is "$E2E_NS" net-client Running || fail "pod net-client not Running" "$E2E_NS"
t_running=$SECONDS

sel() { echo "namespace=\"$E2E_NS\",pod=\"$1\"${2:+,container=\"$2\"}"; }
# at_least <promql> <min>: the query's value reaches min (polled: scrapes are 2 s apart).
at_least() { local v; v=$(prom_query "$1"); [ -n "$v" ] && awk -v v="$v" -v m="$2" 'BEGIN {exit !(v + 0 >= m)}'; }
expect_at_least() {  # expect_at_least <what> <promql> <min>
  wait_for 90 at_least "$2" "$3" ||
    fail "$1: '$2' = '$(prom_query "$2")', want >= $3; targets: $(prom_target_health)" "$E2E_NS"
  echo "PASS: $1: $2 = $(prom_query "$2") (>= $3)"
}

# Block I/O: 100 MB written with O_DIRECT, seen by the blkio/io cgroup counters and by eBPF.
expect_at_least "disk, cgroup blkio" "sum(container_fs_writes_bytes_total{$(sel disk writer)})" $((100 * MB))
# The eBPF counter attributes each completed request by its bios' blkcg, as the blkio/io
# controller does (it used to take the task at block_io_start and lost requests under load).
# On a shortfall the block programs' run and recursion-miss counts are printed: a completion
# nested in another on the same CPU is skipped by the kernel (bpf_prog recursion_misses).
q="sum(berth_cgroup_io_write_bytes_total{$(sel disk writer)})"
wait_for 90 at_least "$q" $((100 * MB)) ||
  fail "disk, eBPF block I/O: '$q' = '$(prom_query "$q")', want >= $((100 * MB)); blkio counter: \
$(prom_query "sum(container_fs_writes_bytes_total{$(sel disk writer)})"); programs: \
$(bpftool prog show 2>&1 | grep -A1 -E 'berth_block_rq' | tr '\n' ' ')" "$E2E_NS"
echo "PASS: disk, eBPF block I/O: $q = $(prom_query "$q") (>= $((100 * MB)))"
expect_at_least "disk, eBPF block I/O latency samples" "sum(berth_cgroup_io_latency_seconds_count{$(sel disk writer)})" 25

# Network: 50 MB from net-client to net-server.
expect_at_least "net-client, eBPF cgroup_skb transmit" \
  "sum(berth_cgroup_network_transmit_bytes_total{$(sel net-client client)})" $((50 * MB))
expect_at_least "net-server, eBPF cgroup_skb receive" \
  "sum(berth_cgroup_network_receive_bytes_total{$(sel net-server server)})" $((50 * MB))
expect_at_least "net-client, netns transmit" \
  "sum(container_network_transmit_bytes_total{$(sel net-client)})" $((50 * MB))
expect_at_least "net-server, netns receive" \
  "sum(container_network_receive_bytes_total{$(sel net-server)})" $((50 * MB))

# The same eBPF counters through the CRI: ListMetricDescriptors / ListPodSandboxMetrics.
crictl metricdescs >"$state/metricdescs.json" || fail "crictl metricdescs failed"
jq -e '[.descriptors[] | select(.name == "berth_cgroup_network_transmit_bytes_total" and
  .labelKeys == ["container", "namespace", "pod"])] | length == 1' "$state/metricdescs.json" >/dev/null ||
  fail "crictl metricdescs lacks berth_cgroup_network_transmit_bytes_total: $(head -c 1000 "$state/metricdescs.json")"
client_sb=$(crictl pods -q --name '^net-client$' --namespace "$E2E_NS" --state ready)
[ -n "$client_sb" ] || fail "no ready sandbox of net-client in crictl pods" "$E2E_NS"
crictl metricsp -o json >"$state/metricsp.json" || fail "crictl metricsp failed"
cri_tx=$(jq -r --arg sb "$client_sb" '.podMetrics[] | select(.podSandboxId == $sb) | .containerMetrics[].metrics[] |
  select(.name == "berth_cgroup_network_transmit_bytes_total" and .labelValues[0] == "client") | .value.value' \
  "$state/metricsp.json")
[ -n "$cri_tx" ] && [ "$cri_tx" -ge $((50 * MB)) ] ||
  fail "crictl metricsp: net-client berth_cgroup_network_transmit_bytes_total = '$cri_tx', want >= $((50 * MB))"
echo "PASS: crictl metricsp: net-client container berth_cgroup_network_transmit_bytes_total = $cri_tx"

# OOM: one kill of `tail`; the shell that started it survives, so the container keeps running.
expect_at_least "oom, eBPF OOM kill with command" "berth_oom_kills_total{$(sel oom hog),command=\"tail\"}" 1
expect_at_least "oom, cgroup oom events" "container_oom_events_total{$(sel oom hog)}" 1
kills=$(prom_query "sum(berth_oom_kills_total{$(sel oom)})")
[ "$kills" = 1 ] || fail "oom: want exactly one OOM kill in pod oom, got '$kills'" "$E2E_NS"
echo "PASS: oom: exactly one OOM kill, of command tail"

# CPU: the 30 s rate needs 30 s of scrapes after the pod started burning.
while [ $((SECONDS - t_running)) -lt 35 ]; do sleep 1; done
cpu_rate() { prom_query "rate(container_cpu_usage_seconds_total{$(sel cpu-half burn)}[30s])"; }
in_range() { local v; v=$(cpu_rate); [ -n "$v" ] && awk -v v="$v" 'BEGIN {exit !(v >= 0.4 && v <= 0.6)}'; }
wait_for 30 in_range || fail "cpu-half: rate(container_cpu_usage_seconds_total[30s]) = '$(cpu_rate)', want 0.4..0.6" "$E2E_NS"
echo "PASS: cpu-half: rate(container_cpu_usage_seconds_total[30s]) = $(cpu_rate)"
ebpf_cpu=$(prom_query "rate(berth_cgroup_cpu_seconds_total{$(sel cpu-half burn)}[30s])")
echo "INFO: cpu-half: rate(berth_cgroup_cpu_seconds_total[30s]) = $ebpf_cpu (eBPF)"

# Run-queue latency: mean over the last 30 s, contended pod above idle pod.
mean_runq() {
  prom_query "sum(rate(berth_cgroup_runqueue_latency_seconds_sum{$(sel "$1")}[30s])) / sum(rate(berth_cgroup_runqueue_latency_seconds_count{$(sel "$1")}[30s]))"
}
contended=$(mean_runq contended)
idle=$(mean_runq idle)
[ -n "$contended" ] && [ -n "$idle" ] || fail "run-queue latency: contended='$contended' idle='$idle'" "$E2E_NS"
awk -v c="$contended" -v i="$idle" 'BEGIN {exit !(c + 0 > i + 0)}' ||
  fail "run-queue latency: contended pod mean $contended s is not above idle pod mean $idle s" "$E2E_NS"
p99() {
  prom_query "histogram_quantile(0.99, sum by (le) (rate(berth_cgroup_runqueue_latency_seconds_bucket{$(sel "$1")}[30s])))"
}
echo "PASS: run-queue latency mean: contended $contended s > idle $idle s (p99: contended $(p99 contended) s, idle $(p99 idle) s)"

# The live expositions (with these pods' eBPF histograms and network families) pass promtool;
# on /metrics/cadvisor the one lint finding allowed is cAdvisor's own container_memory_failcnt.
for path in /metrics /metrics/resource /metrics/cadvisor; do
  in_ns curl -sf --max-time 10 "http://127.0.0.1:10249$path" -o "$state/promtool.txt" || fail "GET $path failed"
  rc=0; lint=$(promtool check metrics <"$state/promtool.txt" 2>&1) || rc=$?
  if [ "$path" = /metrics/cadvisor ]; then
    [ "$rc" = 3 ] && [ "$lint" = 'container_memory_failcnt counter metrics should have "_total" suffix' ] ||
      fail "promtool check metrics $path: exit $rc: $lint"
  else
    [ "$rc" = 0 ] || fail "promtool check metrics $path: exit $rc: $lint"
  fi
done
echo "PASS: promtool check metrics accepts /metrics, /metrics/resource and /metrics/cadvisor"

# Every query of the Grafana dashboard (deploy/grafana) is valid PromQL and returns series for
# this namespace's pods.
dash="$repo_dir/deploy/grafana/berth-dashboard.json"
n=0
while IFS= read -r expr; do
  q=${expr//\$__rate_interval/30s}
  q=${q//\$namespace/$E2E_NS}
  q=${q//\$pod/.*}
  resp=$(in_ns curl -s --max-time 10 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$q")
  [ "$(jq -r .status <<<"$resp")" = success ] || fail "dashboard query failed: $q: $resp"
  if ! jq -e '.data.result | length > 0' <<<"$resp" >/dev/null; then
    case $q in *process_*|*berth_ebpf_up*) ;;  # berth's own series have no namespace
      *) fail "dashboard query returned no series for namespace $E2E_NS: $q" ;; esac
  fi
  n=$((n + 1))
done < <(jq -r '.panels[].targets[]?.expr' "$dash")
echo "PASS: all $n Grafana dashboard queries run on Prometheus and return series"

kubectl delete namespace "$E2E_NS" --wait=true --timeout=120s >/dev/null ||
  fail "deleting namespace $E2E_NS failed" "$E2E_NS"
echo "PASS: prometheus_pods ($((SECONDS)) s)"
