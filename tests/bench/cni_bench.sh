#!/usr/bin/env bash
# CNI ADD+DEL latency per pod sandbox, p50/p99 over N sandboxes (default 50), for
#   plugins_only  the conflist's plugins executed directly, as libcni would (ADD in order with
#                 prevResult chaining, DEL in reverse), timing only the plugin processes;
#   berth         a berth --runtime-only on its own CRI socket: its own timing of the CNI
#                 calls (log "CNI ADD|DEL for sandbox <id>: T ms (plugins P ms)"), the overhead
#                 T-P, and crictl runp+stopp+rmp per sandbox with and without pod network;
#   containerd    Debian's containerd 1.6 (tests/peer/containerd.sh), same conflist, same
#                 crictl cycles (containerd does not time its CNI calls: network cost =
#                 cycle with network - cycle with host network).
# All three use one conflist (bridge + host-local + portmap + bandwidth + loopback, subnet
# 10.250.0.0/24, bridge cni-bench0) inside the e2e cluster netns. Goal: berth adds <= 5 ms
# to the plugins. Prints JSON on stdout; progress on stderr.
#
# Usage: BERTH_E2E_STATE=... BERTH_BIN=... tests/bench/cni_bench.sh [N]
#   (the cluster of $BERTH_E2E_STATE must be up: tests/e2e/cluster_up.sh; its registry serves
#   containerd's pause image)
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
n=${1:-50}
peer="$repo_dir/tests/peer/containerd.sh"
[ -x "$peer" ] || fail "$peer missing (the containerd peer script)"
[ -x /usr/bin/containerd ] || fail "containerd not installed"
pid_alive kube-apiserver || fail "cluster of $state is not up (tests/e2e/cluster_up.sh)"
work="$state/bench-cni"
bench_cg="${cgroup_root}-bench"
bsock="$work/berth/berth.sock"
rm -rf "$work"
mkdir -p "$work/net.d" "$work/ipam" "$work/berth/lib" "$work/berth/run" "$work/logs"
cat >"$work/net.d/10-bench.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "berth-bench",
  "plugins": [
    {"type": "bridge", "bridge": "cni-bench0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}},
    {"type": "loopback"}
  ]
}
CONF

berth_bench_pid=
cleanup() {
  local id
  if [ -n "$berth_bench_pid" ]; then
    for id in $(bcrictl pods -q 2>/dev/null); do bcrictl rmp -f "$id" >/dev/null 2>&1 || true; done
    stop_pid_file berth-bench
  fi
  "$peer" stop "$work/containerd" >/dev/null 2>&1 || true
  local d pid
  for d in $(cgroup_dirs "$bench_cg"); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  ip -n "$netns" link del cni-bench0 2>/dev/null || true
  for d in $(ip netns list | awk '{print $1}' | grep "^$netns-cnib-" || true); do ip netns del "$d"; done
}
trap cleanup EXIT
bcrictl() { "$cluster_bin/crictl" --runtime-endpoint "unix://$bsock" --image-endpoint "unix://$bsock" --timeout 60s "$@"; }

# --- (a) the plugins alone ----------------------------------------------------------------------
log "plugins alone: $n x ADD+DEL"
ip netns exec "$netns" python3 - "$work/net.d/10-bench.conflist" "$n" "$netns-cnib" >"$work/plugins.json" <<'PY'
import json, os, subprocess, sys, time
conf = json.load(open(sys.argv[1])); n = int(sys.argv[2]); prefix = sys.argv[3]
def run(plugin, cmd, cid, netns, prev):
    c = dict(plugin); c["name"] = conf["name"]; c["cniVersion"] = conf["cniVersion"]
    if prev is not None: c["prevResult"] = prev
    if plugin.get("capabilities", {}).get("portMappings"): c["runtimeConfig"] = {"portMappings": []}
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID=cid, CNI_NETNS=netns, CNI_IFNAME="eth0",
               CNI_PATH="/usr/lib/cni",
               CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s" % (cid, cid, cid))
    data = json.dumps(c).encode()
    t = time.perf_counter()
    p = subprocess.run(["/usr/lib/cni/" + plugin["type"]], input=data, env=env, capture_output=True)
    dt = time.perf_counter() - t
    if p.returncode != 0: sys.exit("%s %s: %s %s" % (plugin["type"], cmd, p.stdout, p.stderr))
    return dt, (json.loads(p.stdout) if cmd == "ADD" else None)
out = []
for i in range(n):
    cid = "cnibench%03d" % i; ns = "%s-%d" % (prefix, i)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    add = dele = 0.0; prev = None
    for pl in conf["plugins"]:
        dt, prev = run(pl, "ADD", cid, "/run/netns/" + ns, prev); add += dt
    for pl in reversed(conf["plugins"]):
        dt, _ = run(pl, "DEL", cid, "/run/netns/" + ns, prev); dele += dt
    subprocess.run(["ip", "netns", "del", ns], check=True)
    out.append({"add_ms": add * 1e3, "del_ms": dele * 1e3})
json.dump(out, sys.stdout)
PY

# cycles <crictl-fn> <tag> <hostnet 0|1>: N x runp+stopp+rmp, wall ms per cycle, one per line.
cycles() {
  local fn=$1 tag=$2 hostnet=$3 i id t0 t1 nsopt=""
  [ "$hostnet" = 0 ] || nsopt='"security_context": {"namespace_options": {"network": 2}}'
  for i in $(seq 1 "$n"); do
    cat >"$work/pod.json" <<JSON
{"metadata": {"name": "$tag-$i", "namespace": "bench", "uid": "$tag-uid-$i", "attempt": 0},
 "hostname": "$tag-$i", "log_directory": "$work/logs/$tag-$i", "linux": {$nsopt}}
JSON
    t0=$(date +%s%N)
    id=$("$fn" runp "$work/pod.json" 2>"$work/runp.err") || fail "$tag cycle $i: runp failed: $(cat "$work/runp.err")"
    "$fn" stopp "$id" >/dev/null || fail "$tag cycle $i: stopp failed"
    "$fn" rmp "$id" >/dev/null || fail "$tag cycle $i: rmp failed"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done
}

# --- (b) berth ------------------------------------------------------------------------------------
log "berth --runtime-only: $n sandboxes with network, $n with host network"
nsenter --net="/run/netns/$netns" "$berth_bin" --runtime-only \
  --root-dir="$work/berth/lib" --state-dir="$work/berth/run" --cri-socket="$bsock" \
  --cgroup-root="$bench_cg" --cni-conf-dir="$work/net.d" --cni-bin-dir=/usr/lib/cni \
  --metrics-bind-address=127.0.0.1:10299 </dev/null >"$work/berth.log" 2>&1 &
berth_bench_pid=$!
echo "$berth_bench_pid" >"$state/pids/berth-bench"
readlink -f "$berth_bin" >"$state/pids/berth-bench.exe"
berth_net_ready() { bcrictl info 2>/dev/null | jq -e '.status.conditions[] | select(.type=="NetworkReady") | .status' | grep -q true; }
wait_for 60 berth_net_ready || fail "bench berth not ready: $(tail -n 20 "$work/berth.log")"
cycles bcrictl bnet 0 >"$work/berth_net.us"
cycles bcrictl bhost 1 >"$work/berth_host.us"
grep -E 'CNI (ADD|DEL) for sandbox ' "$work/berth.log" >"$work/berth_cni.log" || true
bcrictl version >/dev/null
stop_pid_file berth-bench
berth_bench_pid=

# --- (c) containerd -------------------------------------------------------------------------------
log "containerd: $n sandboxes with network, $n with host network"
PEER_NETNS=$netns PEER_CNI_CONF_DIR="$work/net.d" PEER_CGROUP_ROOT="$bench_cg-containerd" \
  "$peer" start "$work/containerd" >/dev/null
ccfg=$("$peer" env "$work/containerd" | sed -n 's/^PEER_CRICTL_CONFIG=//p')
ccrictl() { "$cluster_bin/crictl" --config "$ccfg" "$@"; }
ccrictl pull "${PEER_SANDBOX_IMAGE:-127.0.0.1:5000/pause:3.10}" >/dev/null || fail "containerd cannot pull its pause image"
cycles ccrictl cnet 0 >"$work/containerd_net.us"
cycles ccrictl chost 1 >"$work/containerd_host.us"
"$peer" stop "$work/containerd" >/dev/null || log "containerd stop reported leftovers"

python3 - "$work" "$n" <<'PY'
import json, re, sys
w, n = sys.argv[1], int(sys.argv[2])
def pct(xs, p):
    xs = sorted(xs); k = (len(xs) - 1) * p / 100.0; f = int(k); c = min(f + 1, len(xs) - 1)
    return round(xs[f] + (xs[c] - xs[f]) * (k - f), 2)
def stats(xs): return {"p50": pct(xs, 50), "p99": pct(xs, 99), "mean": round(sum(xs) / len(xs), 2), "n": len(xs)}
def us(f): return [int(l) / 1000.0 for l in open(w + "/" + f) if l.strip()]
plugins = json.load(open(w + "/plugins.json"))
p_add_del = [x["add_ms"] + x["del_ms"] for x in plugins]
tot, plg = {}, {}
for l in open(w + "/berth_cni.log"):
    m = re.search(r"CNI (ADD|DEL) for sandbox (\S+): ([\d.]+) ms \(plugins ([\d.]+) ms\)", l)
    if m:
        tot[m.group(2)] = tot.get(m.group(2), 0) + float(m.group(3))
        plg[m.group(2)] = plg.get(m.group(2), 0) + float(m.group(4))
b_tot = list(tot.values()); b_plg = [plg[k] for k in tot]; b_ovh = [tot[k] - plg[k] for k in tot]
bn, bh, cn, ch = us("berth_net.us"), us("berth_host.us"), us("containerd_net.us"), us("containerd_host.us")
out = {
  "bench": "cni_add_del", "sandboxes": n, "unit": "ms",
  "conflist": ["bridge", "host-local", "portmap", "bandwidth", "loopback"],
  "plugins_only": {"add_del": stats(p_add_del)},
  "berth": {"cni_add_del": stats(b_tot), "cni_plugins": stats(b_plg), "cni_overhead": stats(b_ovh),
            "cri_cycle_network": stats(bn), "cri_cycle_hostnetwork": stats(bh),
            "network_cost_p50": round(pct(bn, 50) - pct(bh, 50), 2)},
  "containerd": {"cri_cycle_network": stats(cn), "cri_cycle_hostnetwork": stats(ch),
                 "network_cost_p50": round(pct(cn, 50) - pct(ch, 50), 2)},
  "goal": "berth cni_add_del - plugins_only add_del <= 5 ms",
  "berth_minus_plugins_p50": round(pct(b_tot, 50) - pct(p_add_del, 50), 2),
  "berth_minus_plugins_p99": round(pct(b_tot, 99) - pct(p_add_del, 99), 2),
}
print(json.dumps(out, indent=1))
PY
