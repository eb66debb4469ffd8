#!/usr/bin/env bash
# POST /checkpoint/{namespace}/{pod}/{container} on berth's kubelet server (upstream kubelet's
# forensic container checkpointing): authorization (nodes/checkpoint), 404 for an unknown pod
# or container, and the CRI CheckpointContainer outcome. Where `criu check` passes, the
# archive appears under <root-dir>/checkpoints as checkpoint-<pod>_<ns>-<container>-<time>.tar;
# where it fails (Debian's CRIU 3.17 on a kernel >= 6.13), the answer is a 500 naming CRIU's
# error and no archive is left. Either way the container keeps running, not restarted.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-checkpoint
trap 'kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
pki="$state/pki"
adm=(--cert "$pki/admin.crt" --key "$pki/admin.key")
code() { in_ns curl -sk --max-time 150 -o "$state/checkpoint-body.txt" -w '%{http_code}' "$@" || true; }
body() { cat "$state/checkpoint-body.txt"; }
checkpoints="$berth_dir/lib/checkpoints"
count_archives() { { find "$checkpoints" -maxdepth 1 -type f 2>/dev/null || true; } | wc -l; }

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: cp}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo state > /state; echo started; sleep 3600"]
POD
wait_for 120 pod_phase_is "$E2E_NS" cp Running || fail "pod cp not Running" "$E2E_NS"

# Unknown pod / container: 404 with kubelet's messages.
c=$(code -X POST "${adm[@]}" "$(kubelet_url "/checkpoint/$E2E_NS/nope/main")")
[ "$c" = 404 ] && [ "$(body)" = "pod does not exist" ] || fail "unknown pod: $c '$(body)'"
c=$(code -X POST "${adm[@]}" "$(kubelet_url "/checkpoint/$E2E_NS/cp/other")")
[ "$c" = 404 ] && [ "$(body)" = "container other does not exist" ] || fail "unknown container: $c '$(body)'"
# A ServiceAccount without RBAC: 403 naming the checkpoint subresource.
kubectl create serviceaccount nobody -n "$E2E_NS" >/dev/null
token=$(kubectl create token nobody -n "$E2E_NS")
c=$(code -X POST -H "Authorization: Bearer $token" "$(kubelet_url "/checkpoint/$E2E_NS/cp/main")")
[ "$c" = 403 ] || fail "POST /checkpoint without RBAC: $c (want 403)"
grep -q 'verb=create, resource=nodes, subresource(s)=\[checkpoint\]' "$state/checkpoint-body.txt" ||
  fail "403 body: $(body)"
echo "PASS: /checkpoint: 404 for unknown pod/container, 403 without nodes/checkpoint"

before=$(count_archives)
c=$(code -X POST "${adm[@]}" "$(kubelet_url "/checkpoint/$E2E_NS/cp/main?timeout=60")")
if criu check >/dev/null 2>&1; then
  [ "$c" = 200 ] || fail "POST /checkpoint: $c: $(body)"
  path=$(jq -r '.items[0]' "$state/checkpoint-body.txt")
  [[ "$path" == "$checkpoints/checkpoint-cp_$E2E_NS-main-"*.tar ]] || fail "archive path '$path'"
  tar -tf "$path" | grep -q '^checkpoint/' || fail "$path has no checkpoint/ directory"
  for f in config.dump spec.dump rootfs-diff.tar; do tar -tf "$path" | grep -qx "$f" || fail "$path lacks $f"; done
  echo "PASS: checkpoint archive $path"
else
  [ "$c" = 500 ] || fail "POST /checkpoint with a CRIU that cannot dump: $c (want 500): $(body)"
  want="checkpointing of $E2E_NS/cp/main failed ("
  [[ "$(body)" == "$want"* ]] || fail "500 body does not start with '$want': $(body)"
  grep -q 'runc checkpoint failed' "$state/checkpoint-body.txt" || fail "500 body lacks runc's error: $(body)"
  grep -q 'Error (criu/' "$state/checkpoint-body.txt" || fail "500 body lacks CRIU's log: $(body)"
  [ "$(count_archives)" = "$before" ] || fail "a failed checkpoint left $(ls "$checkpoints")"
  [ -z "$(ls "$berth_dir/lib/checkpoint-work" 2>/dev/null || true)" ] ||
    fail "checkpoint work dir left: $(ls "$berth_dir/lib/checkpoint-work")"
  echo "PASS: CRIU cannot dump here ($(criu check 2>&1 | grep -m1 Error || true)): 500 with CRIU's error, nothing left"
fi

# The container kept running: same container, not restarted, still answering.
[ "$(jsonpath pod/cp '{.status.containerStatuses[0].restartCount}' "$E2E_NS")" = 0 ] || fail "container restarted" "$E2E_NS"
[ "$(kubectl exec -n "$E2E_NS" cp -c main -- cat /state)" = state ] || fail "kubectl exec after checkpoint" "$E2E_NS"
echo "PASS: container still running after the checkpoint"
