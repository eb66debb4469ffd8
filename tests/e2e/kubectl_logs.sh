#!/usr/bin/env bash
# `kubectl logs` through the real API server and berth's kubelet server (/containerLogs):
# content, --tail, --timestamps, --limit-bytes, --since-time; -f sees each new line within a
# second; --previous after a restart. (Rotation: log_rotation.sh.)
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-logs
follower=""
cleanup_follower() { [ -z "$follower" ] || kill "$follower" 2>/dev/null || true; }
trap 'cleanup_follower; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: fixed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo one; sleep 0.5; echo two >&2; sleep 0.5; printf 'no newline'; sleep 2; echo; sleep 2; echo three; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "i=0; while true; do echo tick-\$i; i=\$((i+1)); sleep 0.3; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo started-\$(cat /proc/sys/kernel/random/uuid); sleep 1; exit 1"]
POD
for p in fixed ticker; do
  wait_for 120 pod_phase_is "$E2E_NS" $p Running || fail "pod $p not Running" "$E2E_NS"
done

# Content: stdout and stderr interleaved, a partial line joined with its end.
has_three() { [ "$(kubectl logs -n "$E2E_NS" fixed | tail -n 1)" = three ]; }
wait_for 30 has_three || fail "kubectl logs fixed never showed 'three': $(kubectl logs -n "$E2E_NS" fixed 2>&1)"
got=$(kubectl logs -n "$E2E_NS" fixed)
[ "$got" = $'one\ntwo\nno newline\nthree' ] || fail "kubectl logs fixed: got '$got'"
[ "$(kubectl logs -n "$E2E_NS" fixed --tail=1)" = three ] || fail "--tail=1 is not 'three'"
[ "$(kubectl logs -n "$E2E_NS" fixed --limit-bytes=6)" = $'one\ntw' ] || fail "--limit-bytes=6"
ts_line=$(kubectl logs -n "$E2E_NS" fixed --timestamps --tail=1)
[[ "$ts_line" =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\ three$ ]] ||
  fail "--timestamps: '$ts_line' is not '<RFC3339Nano> three'"
# --since-time after the third line's timestamp: nothing; before it: just that line.
ts=${ts_line%% *}
[ -z "$(kubectl logs -n "$E2E_NS" fixed --since-time=2099-01-01T00:00:00Z)" ] ||
  fail "--since-time in the future returned lines"
[ "$(kubectl logs -n "$E2E_NS" fixed --since-time="$ts")" = three ] ||
  fail "--since-time=$ts: $(kubectl logs -n "$E2E_NS" fixed --since-time="$ts" 2>&1)"
echo "PASS: kubectl logs content, --tail, --limit-bytes, --timestamps, --since-time"

# Bad input: unknown container and pod.
out=$(kubectl logs -n "$E2E_NS" fixed -c nope 2>&1) && fail "logs of an unknown container succeeded: $out"
out=$(kubectl logs -n "$E2E_NS" nopod 2>&1) && fail "logs of an unknown pod succeeded: $out"
echo "PASS: unknown container / pod are errors"

# -f: each new line arrives within a second of the time conmon stamped it.
lat="$state/logs-follow.txt"
: >"$lat"
kubectl logs -n "$E2E_NS" ticker -f --timestamps --tail=0 |
  while read -r stamp line; do echo "$(date +%s.%N) $stamp $line"; done >"$lat" &
follower=$!
enough() { [ "$(wc -l <"$lat")" -ge 10 ]; }
wait_for 30 enough || fail "kubectl logs -f: $(wc -l <"$lat") lines in 30 s"
cleanup_follower; follower=""
max_ms=$(while read -r arrived stamp _; do
  echo "$arrived $(date -d "$stamp" +%s.%N)"
done <"$lat" | awk '{d = ($1 - $2) * 1000; if (d > m) m = d} END {printf "%d", m}')
[ "$max_ms" -lt 1000 ] || fail "kubectl logs -f: a line arrived ${max_ms} ms after it was written"
echo "PASS: kubectl logs -f delivers new lines within ${max_ms} ms (max of 10)"

# --previous: the log of the attempt before the restart.
restarted() { [ "$(jsonpath pod/restarter '{.status.containerStatuses[0].restartCount}' "$E2E_NS")" -ge 1 ] 2>/dev/null; }
wait_for 90 restarted || fail "pod restarter was not restarted" "$E2E_NS"
has_current() { kubectl logs -n "$E2E_NS" restarter | grep -q '^started-'; }
wait_for 60 has_current || fail "no log for the current attempt of restarter" "$E2E_NS"
prev=$(kubectl logs -n "$E2E_NS" restarter --previous)
cur=$(kubectl logs -n "$E2E_NS" restarter)
[[ "$prev" == started-* ]] || fail "--previous: '$prev'"
[ "$prev" != "$cur" ] || fail "--previous shows the current attempt ('$prev')"
echo "PASS: kubectl logs --previous shows the attempt before the restart"

