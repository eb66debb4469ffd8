# shellcheck shell=bash
# A real Prometheus (Debian's `prometheus` package) scraping berth, for the e2e tests
# prometheus_*.sh (sourced after lib.sh).
#
#   start_prometheus <config-file>   starts it by PID inside the cluster netns on
#                                    127.0.0.1:$prom_port, data in <state>/prometheus.$$;
#                                    stopped (by PID) and its data removed on exit
#   prom_query <promql>              instant query over the HTTP API: prints the first
#                                    result's value ('' when there is none)
#   prom_scrape_config <interval>    prints a scrape config for berth's endpoints on
#                                    127.0.0.1:10249 (/metrics and /metrics/cadvisor)
prom_bin=${BERTH_PROMETHEUS:-/usr/bin/prometheus}
prom_port=${BERTH_PROMETHEUS_PORT:-9090}
prom_pid=
prom_dir=

stop_prometheus() {
  if [ -n "$prom_pid" ]; then
    kill -TERM "$prom_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$prom_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
    prom_pid=
  fi
  [ -z "$prom_dir" ] || rm -rf "$prom_dir"
}

prom_scrape_config() {
  local interval=$1
  cat <<CONF
global:
  scrape_interval: $interval
  scrape_timeout: $interval
  evaluation_interval: $interval
scrape_configs:
  - job_name: berth
    static_configs: [{targets: ['127.0.0.1:10249']}]
  - job_name: berth-cadvisor
    metrics_path: /metrics/cadvisor
    static_configs: [{targets: ['127.0.0.1:10249']}]
CONF
}

start_prometheus() {
  local config=$1
  [ -x "$prom_bin" ] || fail "$prom_bin missing (Debian package prometheus, deploy/setup.sh)"
  prom_dir="$state/prometheus.$$"
  rm -rf "$prom_dir"
  mkdir -p "$prom_dir/data"
  cp "$config" "$prom_dir/prometheus.yml"
  # Inside the cluster netns (loopback only); --web.listen-address binds 127.0.0.1 there.
  ip netns exec "$netns" "$prom_bin" --config.file="$prom_dir/prometheus.yml" \
    --storage.tsdb.path="$prom_dir/data" --web.listen-address="127.0.0.1:$prom_port" \
    --storage.tsdb.retention.time=1h </dev/null >"$prom_dir/prometheus.log" 2>&1 &
  prom_pid=$!
  prom_ready() { in_ns curl -sf --max-time 2 "http://127.0.0.1:$prom_port/-/ready"; }
  wait_for 60 prom_ready || fail "Prometheus did not become ready: $(tail -n 20 "$prom_dir/prometheus.log")"
  log "started Prometheus (pid $prom_pid) on 127.0.0.1:$prom_port in netns $netns"
}

prom_query() {
  in_ns curl -sf --max-time 10 "http://127.0.0.1:$prom_port/api/v1/query" \
    --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'
}

# prom_targets_up: every scrape target is up.
prom_targets_up() {
  local down
  down=$(in_ns curl -sf --max-time 10 "http://127.0.0.1:$prom_port/api/v1/targets" |
    jq -r '[.data.activeTargets[] | select(.health != "up")] | length') || return 1
  [ "$down" = 0 ]
}

# prom_target_health: one line per scrape target: job, health, last scrape duration and error
# (for failure messages: a metric that never appears may be a failing scrape).
prom_target_health() {
  in_ns curl -sf --max-time 10 "http://127.0.0.1:$prom_port/api/v1/targets" |
    jq -r '.data.activeTargets[] | "\(.labels.job): \(.health), last scrape \(.lastScrapeDuration)s \(.lastError)"' || true
}
