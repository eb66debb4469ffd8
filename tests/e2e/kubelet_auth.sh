#!/usr/bin/env bash
# berth's kubelet server on :10250: TLS, authentication (x509 client certificates of the
# cluster CA, bearer tokens through TokenReview, no anonymous), authorization through
# SubjectAccessReview on nodes/{proxy,stats,metrics,pods}, the API server's node proxy, and
# no thread or fd left behind by the requests.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cluster/pki.sh
source "$repo_dir/tests/cluster/pki.sh"
e2e_namespace e2e-kubelet-auth
cleanup() {
  kubectl delete clusterrolebinding e2e-kubelet-stats --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrole e2e-kubelet-stats --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

pki="$state/pki"
# code <curl args...>: the HTTP status of a request to the kubelet server ("000": no answer).
code() { in_ns curl -sk --max-time 10 -o "$state/auth-body.txt" -w '%{http_code}' "$@" || true; }
body() { cat "$state/auth-body.txt"; }

port=$(jsonpath "node/$node_name" '{.status.daemonEndpoints.kubeletEndpoint.Port}')
[ "$port" = 10250 ] || fail "Node.status.daemonEndpoints.kubeletEndpoint.Port is '$port'"
serving() { [ "$(code "$(kubelet_url /healthz)")" = 401 ]; }
wait_for 30 serving || fail "kubelet server on $(kubelet_url /healthz) does not answer 401"
# The self-signed serving certificate names the node IP.
in_ns openssl s_client -connect "$node_addr:10250" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName >"$state/auth-san.txt" ||
  fail "no serving certificate on $node_addr:10250"
grep -q "IP Address:$node_addr" "$state/auth-san.txt" || fail "serving certificate SANs lack $node_addr: $(cat "$state/auth-san.txt")"
echo "PASS: kubelet server on :10250 (Node advertises it), self-signed for $node_addr"

# Settle the connections of the probes above before counting.
idle() { [ "$(count_kubelet_conn_threads)" = 0 ] && [ "$(count_kubelet_conns)" = 0 ]; }
wait_for 30 idle || fail "kubelet server: $(count_kubelet_conn_threads) connection threads, $(count_kubelet_conns) connections before the test"

# No credentials: 401 on every endpoint.
for p in /healthz /pods /stats/summary /metrics "/containerLogs/$E2E_NS/x/y"; do
  c=$(code "$(kubelet_url "$p")")
  [ "$c" = 401 ] || fail "GET $p without credentials: $c (want 401): $(body)"
done
c=$(code -H "Authorization: Bearer not-a-token" "$(kubelet_url /pods)")
[ "$c" = 401 ] || fail "GET /pods with a bogus token: $c (want 401)"
echo "PASS: no or invalid credentials -> 401 Unauthorized"

# A ServiceAccount without RBAC: authenticated (TokenReview) but 403 (SubjectAccessReview).
kubectl create serviceaccount nobody -n "$E2E_NS" >/dev/null
token=$(kubectl create token nobody -n "$E2E_NS")
c=$(code -H "Authorization: Bearer $token" "$(kubelet_url /pods)")
[ "$c" = 403 ] || fail "GET /pods as a ServiceAccount without RBAC: $c (want 403): $(body)"
want="Forbidden (user=system:serviceaccount:$E2E_NS:nobody, verb=get, resource=nodes, subresource(s)=[pods proxy])"
[ "$(body)" = "$want" ] || fail "403 body '$(body)', want '$want'"
c=$(code -X POST -H "Authorization: Bearer $token" "$(kubelet_url "/exec/$E2E_NS/x/y?command=true&output=1")")
[ "$c" = 403 ] || fail "POST /exec as a ServiceAccount without RBAC: $c (want 403)"
grep -q 'verb=create' "$state/auth-body.txt" || fail "exec 403 does not name verb=create: $(body)"
# Granting nodes/stats: /stats/summary is allowed, /pods still is not.
kubectl create clusterrole e2e-kubelet-stats --verb=get --resource=nodes/stats >/dev/null
kubectl create clusterrolebinding e2e-kubelet-stats --clusterrole=e2e-kubelet-stats \
  --serviceaccount="$E2E_NS:nobody" >/dev/null
# (RBAC reaches the API server's authorizer through an informer: wait for it)
stats_ok() { [ "$(code -H "Authorization: Bearer $token" "$(kubelet_url /stats/summary)")" = 200 ]; }
wait_for 60 stats_ok || fail "GET /stats/summary with nodes/stats granted: $(body)"
jq -e '.node.nodeName' "$state/auth-body.txt" >/dev/null || fail "/stats/summary is not a Summary: $(head -c 300 "$state/auth-body.txt")"
c=$(code -H "Authorization: Bearer $token" "$(kubelet_url /metrics)")
[ "$c" = 403 ] || fail "GET /metrics with only nodes/stats: $c (want 403)"
echo "PASS: ServiceAccount token -> 403 without RBAC, nodes/stats grants /stats/summary only"

# x509: the cluster admin's certificate (O=system:masters) may do everything.
adm=(--cert "$pki/admin.crt" --key "$pki/admin.key")
c=$(code "${adm[@]}" "$(kubelet_url /pods)")
[ "$c" = 200 ] || fail "GET /pods as kubernetes-admin: $c: $(body)"
jq -e '.kind == "PodList"' "$state/auth-body.txt" >/dev/null || fail "/pods is not a PodList"
c=$(code "${adm[@]}" "$(kubelet_url /metrics/cadvisor)")
[ "$c" = 200 ] || fail "GET /metrics/cadvisor as admin: $c"
for p in /metrics /metrics/resource /metrics/probes; do
  c=$(code "${adm[@]}" "$(kubelet_url $p)"); [ "$c" = 200 ] || fail "GET $p as admin: $c"
done
c=$(code "${adm[@]}" "$(kubelet_url "/containerLogs/$E2E_NS/nopod/main")")
[ "$c" = 404 ] || fail "logs of an unknown pod: $c (want 404): $(body)"
c=$(code -X POST "${adm[@]}" "$(kubelet_url "/exec/$E2E_NS/nopod/main?command=true&output=1")")
[ "$c" = 404 ] || fail "exec into an unknown pod: $c (want 404): $(body)"
# A certificate of the cluster CA for a user without RBAC: 403.
pki_cert e2e-kubelet-nobody "/CN=e2e-kubelet-nobody" client
c=$(code --cert "$pki/e2e-kubelet-nobody.crt" --key "$pki/e2e-kubelet-nobody.key" "$(kubelet_url /pods)")
[ "$c" = 403 ] || fail "GET /pods as x509 user without RBAC: $c (want 403): $(body)"
# A certificate of another CA is refused in the TLS handshake.
other="$state/auth-other-ca"
mkdir -p "$other"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$other/ca.key" -out "$other/ca.crt" -days 1 \
  -subj /CN=other-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$other/u.key" -subj "/O=system:masters/CN=mallory" \
  -out "$other/u.csr" 2>/dev/null
openssl x509 -req -in "$other/u.csr" -CA "$other/ca.crt" -CAkey "$other/ca.key" -CAcreateserial \
  -days 1 -out "$other/u.crt" 2>/dev/null
c=$(code --cert "$other/u.crt" --key "$other/u.key" "$(kubelet_url /pods)")
[ "$c" = 000 ] || fail "a certificate of a foreign CA got HTTP $c"
echo "PASS: x509 users: system:masters allowed, unknown user 403, foreign CA refused, unknown pod 404"

# Through the API server's node proxy (it authenticates with its kubelet client certificate).
[ "$(kubectl get --raw "/api/v1/nodes/$node_name/proxy/healthz")" = ok ] || fail "node proxy /healthz"
kubectl get --raw "/api/v1/nodes/$node_name/proxy/stats/summary" | jq -e .node >/dev/null ||
  fail "node proxy /stats/summary"
kubectl get --raw "/api/v1/nodes/$node_name/proxy/metrics/cadvisor" | grep -q '^machine_cpu_cores ' ||
  fail "node proxy /metrics/cadvisor has no machine_cpu_cores"
echo "PASS: kubectl get --raw /api/v1/nodes/$node_name/proxy/{healthz,stats/summary,metrics/cadvisor}"

# Nothing left behind: the connections above are closed, their threads and fds gone.
wait_for 30 idle || fail "kubelet server left $(count_kubelet_conn_threads) connection threads, $(count_kubelet_conns) connections"
echo "PASS: no kubelet server connection thread or socket left"
