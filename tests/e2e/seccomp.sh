#!/usr/bin/env bash
# Pod seccomp profiles (kubelet/pod_util.cc ResolveSeccompProfile -> CRI
# LinuxContainerSecurityContext.seccomp -> cri/runtime/seccomp.cc):
#  - pod-level RuntimeDefault: the container's process and a `kubectl exec`'d one run
#    filtered (Seccomp: 2 in /proc/<pid>/status), and a shell in it can still fork;
#  - no profile (the node has no --seccomp-default): unfiltered (Seccomp: 0);
#  - a container-level Localhost profile from <root-dir>/kubelet/seccomp denying mkdir wins
#    over the pod's RuntimeDefault: mkdir fails with EPERM inside;
#  - a Localhost profile that does not exist: the container waits in CreateContainerError
#    naming the file, and a Failed event says why.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-seccomp
profile_dir="$berth_dir/lib/kubelet/seccomp/berth-e2e"
mkdir -p "$profile_dir"
trap 'rm -rf "$profile_dir"; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
cat >"$profile_dir/deny-mkdir.json" <<'JSON'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
JSON
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS
apiVersion: v1
kind: Pod
metadata: {name: filtered}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
  - name: local
    image: $image
    securityContext: {seccompProfile: {type: Localhost, localhostProfile: berth-e2e/deny-mkdir.json}}
    command: ["sh", "-c", "mkdir /tmp/x 2>&1 || echo mkdir-denied; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    securityContext: {seccompProfile: {type: Localhost, localhostProfile: berth-e2e/absent.json}}
    command: ["sleep", "3600"]
PODS
for p in filtered plain; do
  wait_for 120 pod_phase_is "$E2E_NS" $p Running || fail "pod $p not Running" "$E2E_NS"
done
seccomp_mode() {  # seccomp_mode <pod> <container> <pid>
  kubectl exec -n "$E2E_NS" "$1" -c "$2" -- sh -c "grep '^Seccomp:' /proc/$3/status" | awk '{print $2}'
}
[ "$(seccomp_mode filtered main 1)" = 2 ] || fail "RuntimeDefault pod: pid 1 is not seccomp-filtered" "$E2E_NS"
[ "$(seccomp_mode filtered main self)" = 2 ] || fail "RuntimeDefault pod: exec'd process is not filtered" "$E2E_NS"
out=$(kubectl exec -n "$E2E_NS" filtered -c main -- sh -c 'echo forked | cat; (echo sub)' 2>&1) ||
  fail "a shell under RuntimeDefault cannot fork: $out" "$E2E_NS"
[ "$out" = "$(printf 'forked\nsub')" ] || fail "unexpected output under RuntimeDefault: $out" "$E2E_NS"
[ "$(seccomp_mode plain main 1)" = 0 ] || fail "pod without a profile is filtered (no --seccomp-default)" "$E2E_NS"
logs_denied() { kubectl logs -n "$E2E_NS" filtered -c local 2>/dev/null | grep -q mkdir-denied; }
wait_for 30 logs_denied || fail "the Localhost profile did not deny mkdir: $(kubectl logs -n "$E2E_NS" filtered -c local 2>&1)" "$E2E_NS"
[ "$(seccomp_mode filtered local 1)" = 2 ] || fail "Localhost container is not filtered" "$E2E_NS"
waiting_reason() { jsonpath pod/missing '{.status.containerStatuses[0].state.waiting.reason}' "$E2E_NS"; }
create_error() { [ "$(waiting_reason)" = CreateContainerError ]; }
wait_for 90 create_error || fail "missing Localhost profile: waiting reason '$(waiting_reason)'" "$E2E_NS"
msg=$(jsonpath pod/missing '{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS")
grep -q 'absent.json' <<<"$msg" || fail "CreateContainerError does not name the profile: $msg" "$E2E_NS"
echo "PASS: RuntimeDefault filters pid 1 and exec'd processes (forks work), none without a profile, Localhost profile from the kubelet's seccomp dir applied, a missing one reported"
