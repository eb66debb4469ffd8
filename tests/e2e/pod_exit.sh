#!/usr/bin/env bash
# (c) restartPolicy Never: a container exiting 0 makes the pod Succeeded (terminated reason
# Completed), one exiting 3 makes it Failed with exitCode 3.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-exit
for spec in "ok:0" "bad:3"; do
  name=${spec%%:*} code=${spec##*:}
  kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo exiting $code; exit $code"]
POD
done
wait_for 120 pod_phase_is "$E2E_NS" ok Succeeded || fail "pod ok not Succeeded" "$E2E_NS"
wait_for 120 pod_phase_is "$E2E_NS" bad Failed || fail "pod bad not Failed" "$E2E_NS"
t='{.status.containerStatuses[0].state.terminated'
[ "$(jsonpath pod/ok "$t.exitCode}" "$E2E_NS")" = 0 ] || fail "pod ok: exitCode not 0" "$E2E_NS"
[ "$(jsonpath pod/ok "$t.reason}" "$E2E_NS")" = Completed ] || fail "pod ok: reason not Completed" "$E2E_NS"
[ "$(jsonpath pod/bad "$t.exitCode}" "$E2E_NS")" = 3 ] || fail "pod bad: exitCode not 3" "$E2E_NS"
[ "$(jsonpath pod/bad "$t.reason}" "$E2E_NS")" = Error ] || fail "pod bad: reason not Error" "$E2E_NS"
[ "$(jsonpath pod/bad '{.status.containerStatuses[0].restartCount}' "$E2E_NS")" = 0 ] ||
  fail "pod bad was restarted despite restartPolicy Never" "$E2E_NS"
[ "$(pod_logs "$E2E_NS" bad 2>&1)" = "exiting 3" ] || fail "pod bad: logs differ" "$E2E_NS"
echo "PASS: exit 0 -> Succeeded/Completed, exit 3 -> Failed/Error exitCode 3"
