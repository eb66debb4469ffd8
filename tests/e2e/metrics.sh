#!/usr/bin/env bash
# (g) berth serves Prometheus text on 127.0.0.1:10249/metrics (inside the netns) with
# process metrics.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
url=http://127.0.0.1:10249/metrics
serving() { in_ns curl -sf --max-time 5 "$url" -o /dev/null; }
wait_for 60 serving || fail "GET $url failed"
headers=$(in_ns curl -sf --max-time 5 -D - -o "$state/metrics.txt" "$url")
grep -qi '^content-type: text/plain' <<<"$headers" || fail "Content-Type is not text/plain: $headers"
grep -q '^# TYPE process_resident_memory_bytes gauge' "$state/metrics.txt" ||
  fail "no '# TYPE process_resident_memory_bytes gauge' line"
rss=$(awk '$1=="process_resident_memory_bytes" {print $2}' "$state/metrics.txt")
awk -v v="$rss" 'BEGIN {exit !(v + 0 > 0)}' || fail "process_resident_memory_bytes is '$rss'"
# The exposition must parse: every sample line is "<name>[{labels}] <number>[ <timestamp>]".
bad=$(grep -v '^#' "$state/metrics.txt" | grep -v '^$' |
  grep -Evc '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEINanf]+( [0-9]+)?$' || true)
[ "$bad" = 0 ] || fail "$bad malformed sample lines in $url"
echo "PASS: $url serves Prometheus text, process_resident_memory_bytes=$rss"
