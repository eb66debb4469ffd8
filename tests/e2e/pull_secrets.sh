#!/usr/bin/env bash
# The kubelet's image pull secrets: a registry that requires basic auth (Debian's
# docker-registry with an htpasswd file, on 127.0.0.1:5001 in the cluster netns, started and
# stopped here by PID) serves a copy of the busybox image. A pod whose imagePullSecrets holds
# a kubernetes.io/dockerconfigjson secret for it (`kubectl create secret docker-registry`)
# runs; a pod without the secret and a pod with a wrong password fail with ErrImagePull /
# ImagePullBackOff carrying the registry's refusal.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-pullsecret
private=127.0.0.1:5001
image="$private/private/busybox:latest"
reg_dir="$state/registry-auth.$$"
reg_pid=
cleanup() {
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  if [ -n "$reg_pid" ]; then kill -TERM "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$reg_dir"
}
trap cleanup EXIT

mkdir -p "$reg_dir/data"
htpasswd -Bbc "$reg_dir/htpasswd" berth 's3cret' 2>/dev/null
cat >"$reg_dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $reg_dir/data
http:
  addr: $private
  secret: berth-test-registry-auth
auth:
  htpasswd:
    realm: berth-test
    path: $reg_dir/htpasswd
CFG
# `ip netns exec` execs the registry, so $! is its own PID and cleanup stops it (through the
# in_ns function, $! was a subshell's and the registry outlived the test).
ip netns exec "$netns" /usr/bin/docker-registry serve "$reg_dir/config.yml" >"$reg_dir/registry.log" 2>&1 &
reg_pid=$!
# Up when it answers, and refuses anonymous access.
wait_for 30 bash -c "[ \"\$(ip netns exec $netns curl -s -o /dev/null -w '%{http_code}' http://$private/v2/)\" = 401 ]" ||
  fail "auth registry on $private did not come up (log: $(tail -n 5 "$reg_dir/registry.log"))"
in_ns skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false \
  --dest-creds berth:s3cret "docker://$registry/busybox:latest" "docker://$image" ||
  fail "could not copy busybox into $private"

kubectl create secret docker-registry regcred -n "$E2E_NS" --docker-server="$private" \
  --docker-username=berth --docker-password=s3cret >/dev/null
kubectl create secret docker-registry wrongcred -n "$E2E_NS" --docker-server="$private" \
  --docker-username=berth --docker-password=wrong >/dev/null
pod() {  # pod <name> <secret or "">
  local secrets=""
  [ -z "$2" ] || secrets="imagePullSecrets: [{name: $2}]"
  kubectl apply -n "$E2E_NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  $secrets
  containers:
  - {name: main, image: "$image", imagePullPolicy: Always, command: [sleep, "3600"]}
YAML
}
pod private regcred
pod nosecret ""
pod wrongpw wrongcred

wait_for 120 pod_phase_is "$E2E_NS" private Running || fail "pod private (with regcred) not Running" "$E2E_NS"
refusal='401|unauthori[sz]ed|authentication required|requires basic auth'
for p in nosecret wrongpw; do
  reason_is() {
    local r; r=$(jsonpath "pod/$1" '{.status.containerStatuses[0].state.waiting.reason}' "$E2E_NS")
    [ "$r" = ErrImagePull ] || [ "$r" = ImagePullBackOff ]
  }
  wait_for 120 reason_is "$p" || fail "pod $p did not fail its pull" "$E2E_NS"
  msg=$(jsonpath "pod/$p" '{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS")
  grep -Eqi "$refusal" <<<"$msg" || fail "pod $p: waiting message lacks the registry's refusal ($refusal): $msg" "$E2E_NS"
  [ "$(jsonpath "pod/$p" '{.status.phase}' "$E2E_NS")" = Pending ] || fail "pod $p is not Pending" "$E2E_NS"
done
echo "PASS: pull secret used for $image; without it / with a wrong password: $(jsonpath pod/wrongpw '{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS")"
