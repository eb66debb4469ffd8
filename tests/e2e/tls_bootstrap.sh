#!/usr/bin/env bash
# TLS bootstrap and certificate rotation of a berth node, against the real control plane, with
# the server-side set-up kubeadm makes (bootstrap token Secret, the system:node-bootstrapper
# binding, auto-approval through nodeclient/selfnodeclient; kube-controller-manager's
# csrapproving and csrsigning controllers sign with the cluster CA).
#
# The controller-manager's --cluster-signing-duration is cluster-wide, so for this test the
# shared controller-manager is replaced by one with the same command line plus
# --cluster-signing-duration=3m, and the original is put back at the end (also on failure).
# Certificates then live 8 minutes (the signer backdates NotBefore by 5 minutes) and are
# renewed 36-132 s after they are issued.
#
# 1. A second node (tests/e2e/lib_node2.sh) starts berth with only --bootstrap-kubeconfig
#    (token) and --kubeconfig (absent): CSR node-csr-<digest> by system:bootstrap:<id>,
#    auto-approved, kubelet-client-current.pem -> kubelet-client-<time>.pem with CN
#    system:node:<node>, O system:nodes, issued by the cluster CA; the kubeconfig berth wrote
#    points at the link; the Node becomes Ready and a pod runs on it.
# 2. berth is restarted with --rotate-certificates and --rotate-server-certificates (the pod
#    keeps running): the client certificate is renewed through a CSR by system:node:<node>
#    (selfnodeclient), the link moves, kubelet_certificate_manager_client_ttl_seconds is
#    exported; the Node's Lease is still renewed after the first certificate expired (the API
#    connections use the new certificate); the pod's container was never restarted.
# 3. The serving CSR (kubernetes.io/kubelet-serving, SANs = node addresses) stays pending and
#    :10250 presents the self-signed certificate; after `kubectl certificate approve` it
#    presents the CA-signed one with the node's IP.
# 4. Errors: with a token whose group is not auto-approved, `kubectl certificate deny` ends
#    berth's bootstrap with the reason (exit 1) and nothing is half-written (no kubeconfig, no
#    current link; the key waits in kubelet-client.key.tmp for the next attempt, as upstream).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# Node B's credentials: the bootstrap kubeconfig only (set before lib_node2.sh is sourced).
tb_dir="$state/tls-bootstrap"
n2_auth_args=(--bootstrap-kubeconfig="$tb_dir/bootstrap-kubelet.conf")
# shellcheck source=tests/e2e/lib_node2.sh
source "$(dirname "$0")/lib_node2.sh"
n2_auth_args+=(--kubeconfig="$n2_dir/kubelet.conf")
e2e_namespace e2e-tls-bootstrap
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"

# [a-z0-9]{6}.[a-z0-9]{16} (hex is a subset).
token_id=$(openssl rand -hex 3)
token_secret=$(openssl rand -hex 8)
deny_id=$(openssl rand -hex 3)
deny_secret=$(openssl rand -hex 8)
crbs=(berth-e2e:kubelet-bootstrap berth-e2e:node-autoapprove-bootstrap
  berth-e2e:node-autoapprove-certificate-rotation berth-e2e:manual-bootstrap)
deny_dir="$n2_dir/denied"  # under node B's dir: node2_down unmounts what is left there

# --- the controller-manager with short-lived certificates ---------------------------------------
kcm_pid=$(cat "$state/pids/kube-controller-manager")
mapfile -d '' kcm_cmd <"/proc/$kcm_pid/cmdline"
[ ${#kcm_cmd[@]} -gt 1 ] || fail "cannot read the controller-manager's command line"
kcm_healthy() { in_ns curl -skf --max-time 2 https://127.0.0.1:10257/healthz; }
start_kcm() {
  stop_pid_file kube-controller-manager
  start_daemon kube-controller-manager "${kcm_cmd[0]}" "${kcm_cmd[@]:1}" "$@"
  wait_for 120 kcm_healthy
}
cleanup() {
  local rc=$?
  set +e
  stop_pid_file berth-denied
  node2_down
  local csr
  for csr in $(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:bootstrap:$token_id\")]}{.metadata.name}{\"\n\"}{end}") \
    $(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:bootstrap:$deny_id\")]}{.metadata.name}{\"\n\"}{end}") \
    $(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:node:$n2_name\")]}{.metadata.name}{\"\n\"}{end}"); do
    kubectl delete csr "$csr" --ignore-not-found >/dev/null 2>&1
  done
  kubectl delete secret -n kube-system "bootstrap-token-$token_id" "bootstrap-token-$deny_id" \
    --ignore-not-found >/dev/null 2>&1
  kubectl delete clusterrolebinding "${crbs[@]}" --ignore-not-found >/dev/null 2>&1
  # The shared controller-manager as it was.
  start_kcm || { log "the original controller-manager did not come back"; rc=1; }
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1
  rm -rf "$tb_dir"
  exit $rc
}
trap cleanup EXIT
start_kcm --cluster-signing-duration=3m || fail "controller-manager with --cluster-signing-duration=3m not healthy"
log "controller-manager signs 3-minute certificates (pid $(cat "$state/pids/kube-controller-manager"))"

# --- kubeadm's server-side objects ---------------------------------------------------------------
kubectl apply -f - >/dev/null <<YAML || fail "bootstrap token Secret"
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-$token_id, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  description: berth e2e tls_bootstrap
  token-id: "$token_id"
  token-secret: "$token_secret"
  expiration: "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
YAML
group=system:bootstrappers:kubeadm:default-node-token
kubectl create clusterrolebinding "${crbs[0]}" --clusterrole=system:node-bootstrapper --group="$group" >/dev/null
kubectl create clusterrolebinding "${crbs[1]}" \
  --clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient --group="$group" >/dev/null
kubectl create clusterrolebinding "${crbs[2]}" \
  --clusterrole=system:certificates.k8s.io:certificatesigningrequests:selfnodeclient --group=system:nodes >/dev/null
mkdir -p "$tb_dir"
cat >"$tb_dir/bootstrap-kubelet.conf" <<CONF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: $state/pki/ca.crt
    server: https://$node_addr:6443
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: tls-bootstrap-token-user}
  name: tls-bootstrap-token-user@kubernetes
current-context: tls-bootstrap-token-user@kubernetes
users:
- name: tls-bootstrap-token-user
  user: {token: $token_id.$token_secret}
CONF

# --- 1. bootstrap ----------------------------------------------------------------------------------
node2_up
pki="$n2_dir/lib/pki"
current="$pki/kubelet-client-current.pem"
[ -L "$current" ] || fail "$current is not a symlink: $(ls -l "$pki")"
first_target=$(readlink "$current")
[[ "$first_target" == "$pki"/kubelet-client-20*.pem ]] || fail "link target $first_target"
[ "$(stat -c %a "$first_target")" = 600 ] || fail "$first_target mode $(stat -c %a "$first_target")"
subject=$(openssl x509 -in "$current" -noout -subject -nameopt RFC2253)
[ "$subject" = "subject=CN=system:node:$n2_name,O=system:nodes" ] || fail "client certificate subject: $subject"
openssl verify -CAfile "$state/pki/ca.crt" "$current" >/dev/null || fail "client certificate not signed by the cluster CA"
grep -q "client-certificate: \"$current\"" "$n2_dir/kubelet.conf" ||
  fail "kubelet.conf does not point at $current: $(cat "$n2_dir/kubelet.conf")"
grep -q "client-key: \"$current\"" "$n2_dir/kubelet.conf" || fail "kubelet.conf client-key"
[ ! -e "$pki/kubelet-client.key.tmp" ] || fail "kubelet-client.key.tmp left behind"
csr_by() { # csr_by <username> <signer>: names of CSRs of that requester and signer
  kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"$1\")]}{.metadata.name} {.spec.signerName}{\"\n\"}{end}" |
    awk -v s="$2" '$2 == s {print $1}'
}
boot_csr=$(csr_by "system:bootstrap:$token_id" kubernetes.io/kube-apiserver-client-kubelet)
[ "$(wc -w <<<"$boot_csr")" = 1 ] || fail "want one bootstrap CSR, got: '$boot_csr'"
[[ "$boot_csr" =~ ^node-csr-[A-Za-z0-9_-]{43}$ ]] || fail "bootstrap CSR name $boot_csr"
[ "$(jsonpath "csr/$boot_csr" '{.status.conditions[?(@.type=="Approved")].reason}')" = AutoApproved ] ||
  fail "CSR $boot_csr not AutoApproved"
[ "$(jsonpath "csr/$boot_csr" '{.spec.usages}')" = '["digital signature","client auth"]' ] ||
  fail "CSR usages $(jsonpath "csr/$boot_csr" '{.spec.usages}')"
grep -q "certificate signing request $boot_csr" "$state/berth-b.log" || fail "berth-b.log does not name $boot_csr"
log "bootstrapped: $boot_csr -> $(basename "$first_target")"

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  nodeName: $n2_name
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $image, command: ["sleep", "3600"]}
POD
wait_for 120 pod_phase_is "$E2E_NS" sleeper Running || fail "pod sleeper not Running on $n2_name" "$E2E_NS"
container_id=$(jsonpath pod/sleeper '{.status.containerStatuses[0].containerID}' "$E2E_NS")

# --- 2. rotation ----------------------------------------------------------------------------------
first_not_after=$(date -d "$(openssl x509 -in "$first_target" -noout -enddate | cut -d= -f2)" +%s)
stop_pid_file berth-b
n2_auth_args+=(--rotate-certificates=true --rotate-server-certificates=true)
node2_start_berth
wait_for 60 node_ready "$n2_name" || fail "node $n2_name not Ready after the restart: $(tail -n 30 "$state/berth-b.log")"
renewed() { [ "$(readlink "$current")" != "$first_target" ]; }
wait_for 240 renewed || fail "client certificate not renewed: $(grep certificate "$state/berth-b.log" | tail -n 20)"
rot_csr=$(csr_by "system:node:$n2_name" kubernetes.io/kube-apiserver-client-kubelet | sed -n 1p)
[ -n "$rot_csr" ] || fail "no renewal CSR by system:node:$n2_name"
[[ "$rot_csr" == csr-* ]] || fail "renewal CSR name $rot_csr"
[ "$(jsonpath "csr/$rot_csr" '{.status.conditions[?(@.type=="Approved")].reason}')" = AutoApproved ] ||
  fail "renewal CSR $rot_csr not AutoApproved"
openssl verify -CAfile "$state/pki/ca.crt" "$current" >/dev/null || fail "renewed certificate not signed by the CA"
[ "$(openssl x509 -in "$current" -noout -subject -nameopt RFC2253)" = "subject=CN=system:node:$n2_name,O=system:nodes" ] ||
  fail "renewed certificate subject"
log "client certificate renewed through $rot_csr -> $(basename "$(readlink "$current")")"
ttl=$(ip netns exec "$n2_netns" curl -sf http://127.0.0.1:10249/metrics |
  awk '$1 == "kubelet_certificate_manager_client_ttl_seconds" {print $2}')
[ -n "$ttl" ] && awk -v t="$ttl" 'BEGIN {exit !(t > 0 && t <= 180)}' ||
  fail "kubelet_certificate_manager_client_ttl_seconds = '$ttl' (want 0 < ttl <= 180)"

# --- 3. serving certificate -----------------------------------------------------------------------
serving_issuer() {
  in_ns openssl s_client -connect "$n2_ip:10250" </dev/null 2>/dev/null |
    openssl x509 -noout -issuer -nameopt RFC2253 2>/dev/null
}
ca_subject=$(openssl x509 -in "$state/pki/ca.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
serve_csr_seen() { [ -n "$(csr_by "system:node:$n2_name" kubernetes.io/kubelet-serving)" ]; }
wait_for 60 serve_csr_seen || fail "no kubelet-serving CSR by system:node:$n2_name"
serve_csr=$(csr_by "system:node:$n2_name" kubernetes.io/kubelet-serving | sed -n 1p)
[ -z "$(jsonpath "csr/$serve_csr" '{.status.conditions}')" ] || fail "serving CSR $serve_csr was decided without us"
issuer=$(serving_issuer)
[ -n "$issuer" ] && [ "$issuer" != "issuer=$ca_subject" ] || fail ":10250 before approval: issuer '$issuer'"
kubectl certificate approve "$serve_csr" >/dev/null
ca_served() { [ "$(serving_issuer)" = "issuer=$ca_subject" ]; }
wait_for 60 ca_served || fail ":10250 still serves '$(serving_issuer)' after $serve_csr was approved"
sans=$(in_ns openssl s_client -connect "$n2_ip:10250" </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName)
grep -q "IP Address:$n2_ip" <<<"$sans" || fail "serving certificate SANs: $sans"
[ -L "$pki/kubelet-server-current.pem" ] || fail "no kubelet-server-current.pem"
log "serving certificate from $serve_csr: $(tr -d '\n' <<<"$sans")"

# --- the API connections use the renewed certificate ----------------------------------------------
lease_after() {
  local renew; renew=$(jsonpath "lease/$n2_name" '{.spec.renewTime}' kube-node-lease)
  [ -n "$renew" ] && [ "$(date -d "$renew" +%s)" -gt "$1" ]
}
left=$((first_not_after + 15 - $(date +%s)))
[ $left -le 0 ] || sleep "$left"  # the first certificate is expired now
wait_for 60 lease_after "$((first_not_after + 5))" ||
  fail "Lease of $n2_name not renewed after the first certificate expired ($(jsonpath "lease/$n2_name" '{.spec.renewTime}' kube-node-lease))"
node_ready "$n2_name" || fail "node $n2_name not Ready after the first certificate expired"
[ "$(jsonpath pod/sleeper '{.status.containerStatuses[0].containerID}' "$E2E_NS")" = "$container_id" ] ||
  fail "the pod's container changed across the restart and rotations" "$E2E_NS"
[ "$(jsonpath pod/sleeper '{.status.containerStatuses[0].restartCount}' "$E2E_NS")" = 0 ] ||
  fail "the pod's container restarted" "$E2E_NS"

# --- 4. a denied CSR --------------------------------------------------------------------------------
kubectl apply -f - >/dev/null <<YAML || fail "second bootstrap token Secret"
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-$deny_id, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: "$deny_id"
  token-secret: "$deny_secret"
  usage-bootstrap-authentication: "true"
  auth-extra-groups: system:bootstrappers:berth-e2e-manual
YAML
kubectl create clusterrolebinding "${crbs[3]}" --clusterrole=system:node-bootstrapper \
  --group=system:bootstrappers:berth-e2e-manual >/dev/null
sed "s/$token_id\.$token_secret/$deny_id.$deny_secret/" "$tb_dir/bootstrap-kubelet.conf" >"$tb_dir/manual.conf"
rotations=$(ls "$pki"/kubelet-client-20*.pem | wc -l)
stop_pid_file berth-b  # its ports (10249, 10250) are free for the bootstrap below
mkdir -p "$deny_dir"
nsenter --net="/run/netns/$n2_netns" "$berth_bin" --bootstrap-kubeconfig="$tb_dir/manual.conf" \
  --kubeconfig="$deny_dir/kubelet.conf" --node-name="$n2_name-denied" --node-ip="$n2_ip" \
  --root-dir="$deny_dir/lib" --state-dir="$deny_dir/run" --cri-socket="$deny_dir/berth.sock" \
  --cgroup-root="$n2_cg/denied" --cni-conf-dir="$deny_dir/net.d" --ebpf=false \
  --metrics-bind-address=127.0.0.1:10249 </dev/null >"$deny_dir/berth.log" 2>&1 &
echo $! >"$state/pids/berth-denied"
readlink -f "$berth_bin" >"$state/pids/berth-denied.exe"
manual_csr() { csr_by "system:bootstrap:$deny_id" kubernetes.io/kube-apiserver-client-kubelet; }
has_manual_csr() { [ -n "$(manual_csr)" ]; }
wait_for 90 has_manual_csr || fail "no CSR from the manual-approval token: $(tail -n 20 "$deny_dir/berth.log")"
denied_csr=$(manual_csr)
[ -z "$(jsonpath "csr/$denied_csr" '{.status.conditions}')" ] || fail "CSR $denied_csr was decided without us"
kubectl certificate deny "$denied_csr" >/dev/null
denied_pid=$(cat "$state/pids/berth-denied")
gone() { ! kill -0 "$denied_pid" 2>/dev/null; }
wait_for 60 gone || fail "berth kept running after $denied_csr was denied: $(tail -n 20 "$deny_dir/berth.log")"
set +e; wait "$denied_pid"; denied_rc=$?; set -e
rm -f "$state/pids/berth-denied" "$state/pids/berth-denied.exe"
[ "$denied_rc" = 1 ] || fail "berth exited $denied_rc after the denial (want 1)"
grep -q "certificate signing request $denied_csr is denied" "$deny_dir/berth.log" ||
  fail "berth's log does not give the denial: $(tail -n 5 "$deny_dir/berth.log")"
[ ! -e "$deny_dir/kubelet.conf" ] || fail "a kubeconfig was written although the CSR was denied"
[ ! -e "$deny_dir/lib/pki/kubelet-client-current.pem" ] || fail "a current link exists although the CSR was denied"
[ -s "$deny_dir/lib/pki/kubelet-client.key.tmp" ] || fail "the bootstrap key was not kept for the next attempt"
log "denied CSR $denied_csr: $(grep -o 'certificate signing request .* is denied.*' "$deny_dir/berth.log" | cut -c1-200)"
# Node B's berth back, so that the teardown removes its pod through it.
node2_start_berth
wait_for 60 node_ready "$n2_name" || fail "node $n2_name not Ready after the last restart"

log "PASS: bootstrap ($boot_csr), $((rotations - 1)) client renewal(s), serving certificate ($serve_csr), pod kept running"
