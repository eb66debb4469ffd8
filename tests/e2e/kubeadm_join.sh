#!/usr/bin/env bash
# `kubeadm join` of a berth worker with unmodified kubeadm v1.36.3 (tests/cluster/build.sh
# kubeadm), as kind's and kubeadm's workers join:
#
# 1. kubeadm's server side, made by kubeadm itself against the local control plane (which runs
#    the API server with bootstrap-token auth and the controller-manager's bootstrapsigner,
#    tokencleaner, csrapproving and csrsigning): `kubeadm init phase upload-config kubeadm`,
#    `... upload-config kubelet` (ConfigMaps kubeadm-config and kubelet-config with their
#    Roles), `... bootstrap-token` (token, RBAC, kube-public/cluster-info), then the operator's
#    `kubeadm token create --print-join-command`. The bootstrapsigner signs cluster-info for
#    the token (jws-kubeconfig-<id>); the printed CA hash is the CA's SPKI digest.
# 2. On a second node (tests/e2e/lib_node2.sh: its own netns) in a private mount namespace with
#    tmpfs over /etc/kubernetes and /var/lib/kubelet (the host's stay untouched), berth runs as
#    systemd runs it with deploy/systemd/10-kubeadm.conf (its Environment, EnvironmentFile and
#    ExecStart lines; KUBELET_EXTRA_ARGS holds the node's local flags): before the join none of
#    the drop-in's files exists and berth serves the CRI only. The printed command runs with
#    --node-name and berth's --cri-socket: discovery by token and CA hash, preflight (the CRI
#    checks pass), the files kubeadm writes (bootstrap-kubelet.conf, pki/ca.crt, config.yaml,
#    kubeadm-flags.env with --hostname-override); when kubeadm says "Starting the kubelet",
#    berth is restarted (systemctl restart kubelet) and kubeadm waits for the kubelet's
#    /healthz and kubelet.conf.
# 3. kubeadm exits 0 ("This node has joined the cluster"), the client CSR of the join token is
#    AutoApproved, the Node is Ready under its --hostname-override name (Hostname address and
#    kubernetes.io/hostname label too), config.yaml was read with only the expected warning,
#    and a pod runs on the node.
# Everything created is removed on exit: pods, berth, the mount namespace, the Node, CSRs,
# tokens and kubeadm's ConfigMaps, Roles and bindings.
#
# Preflight errors ignored: KubeletVersion and SystemVerification (which picks its kernel
# checks by the kubelet's version), as they run `kubelet --version` and berth is no kubelet
# binary.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
kubeadm="$cluster_bin/kubeadm"
[ -x "$kubeadm" ] || fail "kubeadm missing: run tests/cluster/build.sh kubeadm"
dropin="$repo_dir/deploy/systemd/10-kubeadm.conf"
# Node B's berth is started by the drop-in (node2_start_berth below): a non-empty
# n2_auth_args only keeps lib_node2.sh from making a node kubeconfig.
n2_auth_args=(--drop-in)
# shellcheck source=tests/e2e/lib_node2.sh
source "$(dirname "$0")/lib_node2.sh"
kj_dir="$state/kubeadm-join"  # outside node B's dir, which node2_up empties
# b_log: what node B's berth logged during this test (berth-b.log is appended to by every test).
b_log_start=$(stat -c %s "$state/berth-b.log" 2>/dev/null || echo 0)
b_log() { tail -c "+$((b_log_start + 1))" "$state/berth-b.log"; }
token_id=$(openssl rand -hex 3)
token="$token_id.$(openssl rand -hex 8)"
join_id=""
kubeadm_objects=(
  "-n kube-system configmap kubeadm-config" "-n kube-system configmap kubelet-config"
  "-n kube-public configmap cluster-info"
  "-n kube-system role kubeadm:nodes-kubeadm-config" "-n kube-system rolebinding kubeadm:nodes-kubeadm-config"
  "-n kube-system role kubeadm:kubelet-config" "-n kube-system rolebinding kubeadm:kubelet-config"
  "-n kube-public role kubeadm:bootstrap-signer-clusterinfo"
  "-n kube-public rolebinding kubeadm:bootstrap-signer-clusterinfo"
  "clusterrolebinding kubeadm:kubelet-bootstrap" "clusterrolebinding kubeadm:node-autoapprove-bootstrap"
  "clusterrolebinding kubeadm:node-autoapprove-certificate-rotation"
  "clusterrole kubeadm:get-nodes" "clusterrolebinding kubeadm:get-nodes"
)
# delete_kubeadm_objects: deletes them; prints those that existed.
delete_kubeadm_objects() {
  local o out
  for o in "${kubeadm_objects[@]}"; do
    # shellcheck disable=SC2086
    out=$(kubectl delete $o --ignore-not-found 2>&1) || true
    [ -z "$out" ] || echo "$o"
  done
}

# --- the mount namespace of node B ------------------------------------------------------------
# A holder process keeps it: tmpfs over /etc/kubernetes and /var/lib/kubelet, node B's name in
# /etc/hosts, and systemctl masked (kubeadm then finds no init system and leaves the host's
# services alone).
holder_pid() { cat "$state/pids/kubeadm-mntns"; }
in_b() { nsenter --target "$(holder_pid)" --mount --net="/run/netns/$n2_netns" "$@"; }
in_b_root() { echo "/proc/$(holder_pid)/root"; }  # node B's files, seen from the host
mntns_up() {
  pid_alive kubeadm-mntns && return 0
  mkdir -p "$kj_dir"
  for d in /etc/kubernetes /var/lib/kubelet; do
    if [ ! -d "$d" ]; then mkdir "$d" && echo "$d" >>"$kj_dir/created-dirs"; fi
  done
  local mask=() p
  for p in $(type -ap systemctl | xargs -r readlink -f | sort -u); do mask+=("$p"); done
  : >"$kj_dir/not-executable"
  # The node's name resolves to its address (kubeadm's Hostname check looks it up).
  { cat /etc/hosts; echo "$n2_ip $n2_name"; } >"$kj_dir/hosts"
  # shellcheck disable=SC2016
  unshare --mount --propagation slave sh -c '
    mount -t tmpfs -o mode=0755 kubeadm-join-etc /etc/kubernetes &&
    mount -t tmpfs -o mode=0700 kubeadm-join-var /var/lib/kubelet &&
    mount --bind "$2" /etc/hosts || exit 1
    f=$1; shift 2
    for p in "$@"; do mount --bind "$f" "$p" || exit 1; done
    exec sleep 2147483647' sh "$kj_dir/not-executable" "$kj_dir/hosts" "${mask[@]}" </dev/null >>"$kj_dir/mntns.log" 2>&1 &
  echo $! >"$state/pids/kubeadm-mntns"
  mntns_ready() { grep -q kubeadm-join-var "/proc/$(holder_pid)/mounts" && [ "$(readlink "/proc/$(holder_pid)/exe")" = "$(readlink -f "$(type -P sleep)")" ]; }
  wait_for 10 mntns_ready || fail "mount namespace for node B not ready: $(cat "$kj_dir/mntns.log")"
  readlink -f "$(type -P sleep)" >"$state/pids/kubeadm-mntns.exe"
}

# --- berth as the drop-in starts it ------------------------------------------------------------
# dropin_script: a shell script doing what systemd does with the drop-in: Environment= lines,
# EnvironmentFile= lines (optional with "-"; /etc/default/kubelet -> node B's extra-args file),
# then the last ExecStart with $VAR split on whitespace.
dropin_script() {
  local line exec_line="" v f
  echo 'set -e'
  while IFS= read -r line; do
    case $line in
      Environment=*) v=${line#Environment=}; v=${v#\"}; v=${v%\"}; printf 'export %q\n' "$v" ;;
      EnvironmentFile=*)
        f=${line#EnvironmentFile=}; f=${f#-}
        [ "$f" != /etc/default/kubelet ] || f="$kj_dir/default-kubelet"
        printf 'if [ -f %q ]; then set -a; . %q; set +a; fi\n' "$f" "$f" ;;
      ExecStart=?*) exec_line=${line#ExecStart=} ;;
    esac
  done <"$dropin"
  [ -n "$exec_line" ] || fail "no ExecStart in $dropin"
  # shellcheck disable=SC2016
  printf 'exec %q %s\n' "$berth_bin" "${exec_line#* }"
}
# start_dropin_berth: berth in node B's namespaces, its command line from the drop-in.
start_dropin_berth() {
  cat >"$kj_dir/default-kubelet" <<ENV
KUBELET_EXTRA_ARGS="--node-ip=$n2_ip --root-dir=$n2_dir/lib --state-dir=$n2_dir/run --cri-socket=$n2_sock --cgroup-root=$n2_cg --cni-conf-dir=$n2_dir/net.d --cni-bin-dir=/usr/lib/cni --insecure-registry=$registry --insecure-registry=$node_addr:5000 --registry-mirror=$registry=http://$node_addr:5000 --metrics-bind-address=127.0.0.1:10249 --pod-cidr-from-node"
ENV
  dropin_script >"$kj_dir/berth-dropin.sh"
  # nsenter execs bash, which execs berth: one PID.
  nsenter --target "$(holder_pid)" --mount --net="/run/netns/$n2_netns" bash "$kj_dir/berth-dropin.sh" \
    </dev/null >>"$state/berth-b.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/pids/berth-b"
  readlink -f "$berth_bin" >"$state/pids/berth-b.exe"
  log "started berth on node B by the drop-in (pid $pid): $(tail -n 1 "$kj_dir/berth-dropin.sh")"
}
# node2_start_berth (called by node2_up): as on a machine with berth.service enabled, berth
# runs before the join (serving the CRI only: the drop-in's files do not exist yet), kubeadm
# join checks the CRI, writes the files and restarts the service (here: this function).
node2_start_berth() {
  mntns_up
  start_dropin_berth
  if [ ! -f "$kj_dir/kubelet-started" ]; then
    local pid; pid=$(cat "$state/pids/berth-b")
    cri_up_or_exited() { crictl_b version || ! kill -0 "$pid"; }
    wait_for 60 cri_up_or_exited && crictl_b version >/dev/null ||
      fail "berth on node B serves no CRI before the join: $(tail -n 20 "$state/berth-b.log")"
    grep -qF '(not joined yet): serving the CRI only' <<<"$(b_log)" ||
      fail "berth did not say it waits for the join: $(tail -n 20 "$state/berth-b.log")"
    join_node
    stop_pid_file berth-b  # systemctl restart kubelet
    restart_t0=$EPOCHREALTIME
    start_dropin_berth
  fi
}

# --- kubeadm -----------------------------------------------------------------------------------
# join_node: kubeadm's server side (from node B's netns: cluster-info names the API server
# as node B reaches it), then `kubeadm join` in the background until it starts the kubelet.
join_node() {
  sed "s|https://127.0.0.1:6443|https://$node_addr:6443|" "$state/admin.kubeconfig" >"$kj_dir/admin.conf"
  cat >"$kj_dir/kubeadm.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "$token"
  description: berth e2e kubeadm_join
  ttl: 15m
localAPIEndpoint:
  advertiseAddress: $node_addr
  bindPort: 6443
nodeRegistration:
  criSocket: unix://$n2_sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
controlPlaneEndpoint: $node_addr:6443
networking:
  serviceSubnet: 10.96.0.0/16
  podSubnet: 10.244.0.0/16
YAML
  local phase
  for phase in "upload-config kubeadm" "upload-config kubelet" bootstrap-token; do
    # shellcheck disable=SC2086
    in_b "$kubeadm" init phase $phase --config "$kj_dir/kubeadm.yaml" --kubeconfig "$kj_dir/admin.conf" \
      >>"$kj_dir/init-phases.log" 2>&1 || fail "kubeadm init phase $phase: $(tail -n 20 "$kj_dir/init-phases.log")"
  done
  [ "$(jsonpath "secret/bootstrap-token-$token_id" '{.type}' kube-system)" = bootstrap.kubernetes.io/token ] ||
    fail "kubeadm made no bootstrap token Secret bootstrap-token-$token_id"
  grep -q '^kind: KubeletConfiguration' <<<"$(jsonpath configmap/kubelet-config '{.data.kubelet}' kube-system)" ||
    fail "no kube-system/kubelet-config ConfigMap"
  # The operator's command.
  join_cmd=$(in_b "$kubeadm" token create --print-join-command --ttl 15m --kubeconfig "$kj_dir/admin.conf" \
    2>>"$kj_dir/init-phases.log") || fail "kubeadm token create: $(tail -n 20 "$kj_dir/init-phases.log")"
  log "join command: $join_cmd"
  local -a cmd
  read -r -a cmd <<<"$join_cmd"
  [ "${cmd[0]} ${cmd[1]} ${cmd[2]}" = "kubeadm join $node_addr:6443" ] || fail "join command: $join_cmd"
  join_token=$(grep -o -- '--token [a-z0-9.]*' <<<"$join_cmd" | cut -d' ' -f2)
  join_id=${join_token%%.*}
  local hash
  hash=$(openssl x509 -pubkey -noout -in "$state/pki/ca.crt" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
  grep -q -- "--discovery-token-ca-cert-hash sha256:$hash" <<<"$join_cmd" ||
    fail "the join command's CA hash is not sha256 of the CA's public key ($hash)"
  signed() { [ -n "$(jsonpath configmap/cluster-info "{.data.jws-kubeconfig-$join_id}" kube-public)" ]; }
  wait_for 60 signed || fail "the bootstrapsigner did not sign cluster-info for token $join_id"
  # Emptied here, not by the background job's redirection, which may come after the first look.
  : >"$state/kubeadm-join.log"
  join_t0=$EPOCHREALTIME
  nsenter --target "$(holder_pid)" --mount --net="/run/netns/$n2_netns" "$kubeadm" "${cmd[@]:1}" --node-name "$n2_name" --cri-socket "unix://$n2_sock" \
    --ignore-preflight-errors=KubeletVersion,SystemVerification \
    --v=1 </dev/null >>"$state/kubeadm-join.log" 2>&1 &
  echo $! >"$state/pids/kubeadm-join"
  readlink -f "$kubeadm" >"$state/pids/kubeadm-join.exe"
  starting() { grep -q '^\[kubelet-start\] Starting the kubelet' "$state/kubeadm-join.log"; }
  wait_for 120 starting || fail "kubeadm join did not get to starting the kubelet: $(tail -n 30 "$state/kubeadm-join.log")"
  touch "$kj_dir/kubelet-started"
  log "kubeadm join wrote the kubelet's files and waits for it"
}

cleanup() {
  local rc=$? csr id left
  set +e
  stop_pid_file kubeadm-join
  node2_down || rc=1
  stop_pid_file kubeadm-mntns
  if [ -f "$kj_dir/created-dirs" ]; then
    while read -r d; do rmdir "$d"; done <"$kj_dir/created-dirs"
  fi
  for id in "$token_id" $join_id; do
    for csr in $(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:bootstrap:$id\")]}{.metadata.name}{\"\n\"}{end}"); do
      kubectl delete csr "$csr" --ignore-not-found >/dev/null 2>&1
    done
    kubectl delete secret -n kube-system "bootstrap-token-$id" --ignore-not-found >/dev/null 2>&1
  done
  for csr in $(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:node:$n2_name\")]}{.metadata.name}{\"\n\"}{end}"); do
    kubectl delete csr "$csr" --ignore-not-found >/dev/null 2>&1
  done
  delete_kubeadm_objects >/dev/null
  left=$(delete_kubeadm_objects)
  [ -z "$left" ] || { log "kubeadm objects not deleted: $left"; rc=1; }
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1
  rm -rf "$kj_dir"
  exit $rc
}

e2e_namespace e2e-kubeadm-join
trap cleanup EXIT
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
left=$(delete_kubeadm_objects)  # left over by an interrupted run
[ -z "$left" ] || log "deleted kubeadm objects left over by an earlier run: $left"
host_kubelet_dir=$(ls -lA /var/lib/kubelet 2>/dev/null || true)
rm -rf "$kj_dir"
mkdir -p "$kj_dir"

# --- 1-2. kubeadm join, berth started by the drop-in, Node Ready --------------------------------
node2_up
joined() { ! pid_alive kubeadm-join; }
wait_for 300 joined || fail "kubeadm join still running: $(tail -n 30 "$state/kubeadm-join.log")"
join_t1=$EPOCHREALTIME
join_pid=$(cat "$state/pids/kubeadm-join")
set +e; wait "$join_pid"; join_rc=$?; set -e
rm -f "$state/pids/kubeadm-join" "$state/pids/kubeadm-join.exe"
[ "$join_rc" = 0 ] || fail "kubeadm join exited $join_rc: $(tail -n 40 "$state/kubeadm-join.log")"
grep -q 'This node has joined the cluster' "$state/kubeadm-join.log" || fail "kubeadm join: $(tail -n 20 "$state/kubeadm-join.log")"
log "kubeadm join exited 0"

# --- 3. what kubeadm wrote and what berth did with it --------------------------------------------
root=$(in_b_root)
grep -q -- "--hostname-override=$n2_name" "$root/var/lib/kubelet/kubeadm-flags.env" ||
  fail "kubeadm-flags.env: $(cat "$root/var/lib/kubelet/kubeadm-flags.env")"
grep -q "^containerRuntimeEndpoint: unix://$n2_sock" "$root/var/lib/kubelet/config.yaml" ||
  fail "config.yaml has no containerRuntimeEndpoint of berth's socket"
[ -s "$root/etc/kubernetes/pki/ca.crt" ] || fail "kubeadm wrote no /etc/kubernetes/pki/ca.crt"
[ ! -e "$root/etc/kubernetes/bootstrap-kubelet.conf" ] || fail "kubeadm left bootstrap-kubelet.conf after the join"
[ ! -e /etc/kubernetes/kubelet.conf ] || fail "the host's /etc/kubernetes got a kubelet.conf"
[ "$(ls -lA /var/lib/kubelet 2>/dev/null || true)" = "$host_kubelet_dir" ] || fail "the host's /var/lib/kubelet changed"
current="$n2_dir/lib/pki/kubelet-client-current.pem"
grep -q "client-certificate: \"$current\"" "$root/etc/kubernetes/kubelet.conf" ||
  fail "/etc/kubernetes/kubelet.conf: $(cat "$root/etc/kubernetes/kubelet.conf")"
[ "$(openssl x509 -in "$current" -noout -subject -nameopt RFC2253)" = "subject=CN=system:node:$n2_name,O=system:nodes" ] ||
  fail "client certificate subject: $(openssl x509 -in "$current" -noout -subject)"
openssl verify -CAfile "$state/pki/ca.crt" "$current" >/dev/null || fail "client certificate not signed by the cluster CA"
csrs=$(kubectl get csr -o jsonpath="{range .items[?(@.spec.username==\"system:bootstrap:$join_id\")]}{.metadata.name}{\"\n\"}{end}")
[ "$(wc -w <<<"$csrs")" = 1 ] || fail "want one CSR by system:bootstrap:$join_id, got '$csrs'"
[ "$(jsonpath "csr/$csrs" '{.spec.signerName}')" = kubernetes.io/kube-apiserver-client-kubelet ] || fail "CSR $csrs signer"
[ "$(jsonpath "csr/$csrs" '{.status.conditions[?(@.type=="Approved")].reason}')" = AutoApproved ] ||
  fail "CSR $csrs not AutoApproved"
# config.yaml: one warning, naming cgroupDriver as not implemented; no field is unknown.
warning=$(grep -o 'kubelet config file /var/lib/kubelet/config.yaml: .*' <<<"$(b_log)" | sort -u)
[ "$(wc -l <<<"$warning")" = 1 ] || fail "berth's warnings about config.yaml: $warning"
grep -qF 'not implemented by berth, ignored: cgroupDriver (systemd; berth uses cgroupfs)' <<<"$warning" ||
  fail "berth's warning about config.yaml: $warning"
[ "$(in_b curl -sf --max-time 5 http://127.0.0.1:10248/healthz)" = ok ] || fail "node B's /healthz"
[ "$(jsonpath "node/$n2_name" '{.metadata.labels.kubernetes\.io/hostname}')" = "$n2_name" ] ||
  fail "kubernetes.io/hostname label: $(jsonpath "node/$n2_name" '{.metadata.labels}')"
[ "$(jsonpath "node/$n2_name" '{.status.addresses[?(@.type=="Hostname")].address}')" = "$n2_name" ] ||
  fail "Hostname address: $(jsonpath "node/$n2_name" '{.status.addresses}')"
log "node $n2_name joined: CSR $csrs, $(grep -c . "$root/var/lib/kubelet/config.yaml") lines of config.yaml read"

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
log "PASS: kubeadm join ($join_cmd), Node $n2_name Ready, pod Running;" \
  "join took $(awk -v a="$join_t0" -v b="$join_t1" 'BEGIN {printf "%.1f", b - a}') s," \
  "$(awk -v a="$restart_t0" -v b="$join_t1" 'BEGIN {printf "%.1f", b - a}') s of it after berth's restart as the kubelet"
