#!/usr/bin/env bash
# Container log rotation by --container-log-max-size=1Mi / --container-log-max-files=3
# (start_berth) through CRI ReopenContainerLog: a pod writes ~6.6 MB in 30 s; the log is
# rotated, at most 3 files exist, and a `kubectl logs -f` started before reads across the
# rotations without losing or repeating a line.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-log-rotation
follower=""
cleanup_follower() { [ -z "$follower" ] || kill "$follower" 2>/dev/null || true; }
trap 'cleanup_follower; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "sleep 2; pad=\$(printf '%0100d' 0); i=0; while [ \$i -lt 60000 ]; do echo \"n=\$i \$pad\"; i=\$((i+1)); [ \$((i % 2000)) = 0 ] && sleep 1; done; echo done; sleep 3600"]
POD
wait_for 120 pod_phase_is "$E2E_NS" writer Running || fail "pod writer not Running" "$E2E_NS"
uid=$(jsonpath pod/writer '{.metadata.uid}' "$E2E_NS")
logdir=/var/log/pods/${E2E_NS}_writer_${uid}/main
followed="$state/logs-rotation.txt"
kubectl logs -n "$E2E_NS" writer -f >"$followed" &
follower=$!
max_files=0
finished() {
  local n; n=$(find "$logdir" -maxdepth 1 -name '0.log*' | wc -l)
  [ "$n" -le "$max_files" ] || max_files=$n
  grep -q '^done$' "$followed"
}
deadline=$((SECONDS + 120))
until finished; do
  [ $SECONDS -lt $deadline ] || fail "writer: follower saw no 'done' in 120 s ($(wc -l <"$followed") lines)" "$E2E_NS"
  sleep 0.5
done
cleanup_follower; follower=""
rotated=$(find "$logdir" -maxdepth 1 -name '0.log.*' | wc -l)
[ "$rotated" -ge 1 ] || fail "no rotated log file in $logdir: $(ls -la "$logdir")"
[ "$max_files" -le 3 ] || fail "$max_files log files in $logdir (max 3)"
size=$(stat -c %s "$logdir/0.log")
[ "$size" -lt $((4 * 1024 * 1024)) ] || fail "current log is $size bytes: not rotated"
grep '^n=' "$followed" | cut -d' ' -f1 | cut -d= -f2 >"$state/logs-seq.txt"
seq 0 59999 | cmp -s - "$state/logs-seq.txt" ||
  fail "follower across rotations lost or repeated lines: $(seq 0 59999 | diff - "$state/logs-seq.txt" | head -5)"
echo "PASS: logs rotated (${rotated} rotated file(s) now, at most ${max_files} files), -f followed 60000 lines across rotations"
