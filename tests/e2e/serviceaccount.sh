#!/usr/bin/env bash
# (f) The projected service-account volume is mounted at
# /var/run/secrets/kubernetes.io/serviceaccount with namespace, token and ca.crt.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-sa
sa=/var/run/secrets/kubernetes.io/serviceaccount
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: sa}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "cat $sa/namespace; echo; test -s $sa/token && echo token-ok; grep -q 'BEGIN CERTIFICATE' $sa/ca.crt && echo ca-ok; echo payload=\$(cut -d. -f2 $sa/token)"]
POD
wait_for 120 pod_phase_is "$E2E_NS" sa Succeeded || fail "pod sa not Succeeded" "$E2E_NS"
out=$(pod_logs "$E2E_NS" sa)
[ "$(sed -n 1p <<<"$out")" = "$E2E_NS" ] || fail "namespace file says '$(sed -n 1p <<<"$out")', want $E2E_NS" "$E2E_NS"
grep -qx token-ok <<<"$out" || fail "token missing or empty: $out" "$E2E_NS"
grep -qx ca-ok <<<"$out" || fail "ca.crt missing or not PEM: $out" "$E2E_NS"
# The token is a JWT issued by this API server for this pod's ServiceAccount.
payload=$(sed -n 's/^payload=//p' <<<"$out" | tr '_-' '/+')
while [ $(( ${#payload} % 4 )) != 0 ]; do payload+="="; done
claims=$(base64 -d <<<"$payload" 2>/dev/null) || fail "token payload is not base64url: $payload" "$E2E_NS"
[ "$(jq -r .iss <<<"$claims")" = https://kubernetes.default.svc.cluster.local ] ||
  fail "token issuer: $(jq -r .iss <<<"$claims")" "$E2E_NS"
[ "$(jq -r '.["kubernetes.io"].namespace + "/" + .["kubernetes.io"].pod.name' <<<"$claims")" = "$E2E_NS/sa" ] ||
  fail "token not bound to pod $E2E_NS/sa: $claims" "$E2E_NS"
echo "PASS: service-account volume has namespace=$E2E_NS, token, ca.crt"
