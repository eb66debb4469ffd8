#!/usr/bin/env bash
# (f) The projected service-account volume is mounted at
# /var/run/secrets/kubernetes.io/serviceaccount with namespace, token and ca.crt, on a tmpfs
# (as upstream: the token never reaches the disk). The container has the service links
# in-cluster clients need: KUBERNETES_SERVICE_HOST/PORT of the "kubernetes" service, and the
# variables of its own namespace's services (not of another namespace's).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-sa
sa=/var/run/secrets/kubernetes.io/serviceaccount
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Service
metadata: {name: my-db}
spec:
  ports: [{name: pg, port: 5432}]
  selector: {app: none}
---
apiVersion: v1
kind: Pod
metadata: {name: sa}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "cat $sa/namespace; echo; test -s $sa/token && echo token-ok; grep -q 'BEGIN CERTIFICATE' $sa/ca.crt && echo ca-ok; echo payload=\$(cut -d. -f2 $sa/token); echo fs=\$(grep ' $sa ' /proc/mounts | cut -d' ' -f3); env | sort | grep -E '^(KUBERNETES|MY_DB)_'"]
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
grep -qx fs=tmpfs <<<"$out" || fail "the service-account volume is not a tmpfs: $(grep '^fs=' <<<"$out")" "$E2E_NS"
# Service links, with the cluster IPs the API server gave.
k8s_ip=$(kubectl get service -n default kubernetes -o jsonpath='{.spec.clusterIP}')
db_ip=$(kubectl get service -n "$E2E_NS" my-db -o jsonpath='{.spec.clusterIP}')
k8s_port=$(kubectl get service -n default kubernetes -o jsonpath='{.spec.ports[0].port}')
for want in "KUBERNETES_SERVICE_HOST=$k8s_ip" "KUBERNETES_SERVICE_PORT=$k8s_port" \
    "KUBERNETES_PORT=tcp://$k8s_ip:$k8s_port" "MY_DB_SERVICE_HOST=$db_ip" "MY_DB_SERVICE_PORT_PG=5432" \
    "MY_DB_PORT_5432_TCP_ADDR=$db_ip"; do
  grep -qxF "$want" <<<"$out" || fail "service link $want missing: $(grep -E '^(KUBERNETES|MY_DB)_' <<<"$out")" "$E2E_NS"
done
echo "PASS: service-account volume (tmpfs) has namespace=$E2E_NS, token, ca.crt; service links KUBERNETES_SERVICE_HOST=$k8s_ip, MY_DB_*"
