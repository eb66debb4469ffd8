#!/usr/bin/env bash
# kubectl exec / attach / port-forward / cp through the real API server, berth's kubelet
# server (authn/authz + proxy) and the runtime's streaming server (SPDY / WebSocket):
#  - exec: output, the remote exit code, 10 MB through `exec -i ... cat` byte-identical,
#    a TTY with its size and a resize while running;
#  - attach to a container's stdin; port-forward carrying 100 MB intact and 20 concurrent
#    connections; cp both ways;
#  - crictl exec -i / -it, attach, port-forward against berth's CRI socket;
#  - bad input: exec into a stopped container (kubelet answers 404), a client killed
#    mid-stream (the exec'd process ends); no streaming session or connection is left behind.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-exec
bg_pids=()
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
work="$state/exec"
rm -rf "$work"; mkdir -p "$work"
kc=(ip netns exec "$netns" "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" -n "$E2E_NS")

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "nc -ll -p 8080 -e cat & exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    stdin: true
    command: ["sh", "-c", "while read l; do echo \"got \$l\"; done; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: locked}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000]}
  containers:
  - name: main
    image: $image
    workingDir: /tmp
    env: [{name: FOO, value: bar}]
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [CHOWN, NET_BIND_SERVICE]}
    command: ["sh", "-c", "exec sleep 3600"]

---
apiVersion: v1
kind: Pod
metadata: {name: finished}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $image
    command: ["true"]
POD
for p in box reader locked; do
  wait_for 120 pod_phase_is "$E2E_NS" $p Running || fail "pod $p not Running" "$E2E_NS"
done
wait_for 120 pod_phase_is "$E2E_NS" finished Succeeded || fail "pod finished not Succeeded" "$E2E_NS"
# Warm-up: the first stream also proves the path works at all.
out=$(kubectl exec -n "$E2E_NS" box -- echo hi 2>&1) || fail "kubectl exec box -- echo hi: $out" "$E2E_NS"
[ "$out" = hi ] || fail "kubectl exec echo hi printed '$out'"
# Leak checks count the streaming sessions' threads (berth-stream) and the kubelet server's
# connections other than the API server's idle keep-alives (lib.sh).
count_stream_threads() { cat /proc/"$(berth_pid)"/task/*/comm 2>/dev/null | grep -c '^berth-stream$' || true; }

# Exit code of the remote command.
rc=0; kubectl exec -n "$E2E_NS" box -- sh -c 'echo out; echo err >&2; exit 7' >"$work/o" 2>"$work/e" || rc=$?
[ "$rc" = 7 ] || fail "kubectl exec ... exit 7 returned $rc"
[ "$(cat "$work/o")" = out ] || fail "exec stdout '$(cat "$work/o")'"
grep -q '^err$' "$work/e" || fail "exec stderr lacks 'err': $(cat "$work/e")"
echo "PASS: kubectl exec returns stdout, stderr and exit code 7"

# The exec'd command runs as the container's first process does: same user and groups,
# capability sets, no_new_privs, seccomp mode, cgroups, namespaces, oom_score_adj; the
# container's env and working dir. (The runc exec fallback of seccomp-confined containers
# is covered by streaming_crictl_test: berth's kubelet does not pass seccompProfile yet.)
process_facts() {  # process_facts <pod> <pid or self>
  kubectl exec -n "$E2E_NS" "$1" -- sh -c "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/$2/status
    cat /proc/$2/cgroup /proc/$2/oom_score_adj
    for n in ipc uts net pid mnt cgroup user; do readlink /proc/$2/ns/\$n; done"
}
for p in box locked; do
  self=$(process_facts $p self) || fail "exec into $p failed: $self" "$E2E_NS"
  init=$(process_facts $p 1) || fail "exec into $p failed: $init" "$E2E_NS"
  [ "$self" = "$init" ] || fail "exec'd process in $p differs from the container's:
$(diff <(echo "$init") <(echo "$self"))"
done
out=$(kubectl exec -n "$E2E_NS" locked -- sh -c 'id -u; id -G; pwd; echo $FOO; grep NoNewPrivs /proc/self/status')
[ "$out" = "$(printf '1000\n3000 4000\n/tmp\nbar\nNoNewPrivs:\t1')" ] || fail "exec in locked: '$out'"
out=$(kubectl exec -n "$E2E_NS" box -- no-such-command 2>&1) && fail "exec of a missing command succeeded"
grep -q 'exec: "no-such-command": executable file not found in \$PATH' <<<"$out" &&
  grep -q 'exit code 255' <<<"$out" || fail "exec of a missing command: '$out'"
echo "PASS: exec'd commands run as the container's process (user, caps, no_new_privs, cgroups, namespaces, env, cwd); a missing command is runc's error and 255"

# 10 MB through stdin -> cat -> stdout, byte-identical.
head -c $((10 * 1024 * 1024)) /dev/urandom >"$work/10m"
want=$(sha256sum <"$work/10m" | cut -d' ' -f1)
got=$(kubectl exec -i -n "$E2E_NS" box -- cat <"$work/10m" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "10 MB through kubectl exec -i cat: sha256 $got != $want"
echo "PASS: 10 MB through kubectl exec -i cat are byte-identical"

# TTY: the initial size and a resize while the command runs reach the container.
command -v script >/dev/null || fail "script (bsdutils) is required"
# The size set at start reaches the TTY asynchronously (as with runc + containerd, where the
# first resize races the command), so the command waits up to 5 s for it before printing.
# (The resize runs in a background job, whose stdin a non-interactive shell points at
# /dev/null: it names the terminal explicitly.)
# script's own stdin stays open (a pipe from a sleep we stop): at EOF of its stdin, script
# writes the EOF character of its pty (0 on a pty not copied from a terminal) to the
# session, which the container's TTY echoes as "^@" (as with any kubelet/runtime).
exec {tty_in}< <(sleep 60)
tty_in_pid=$!
bg_pids+=("$tty_in_pid")
script -qec "stty rows 33 cols 97; (sleep 3; stty rows 44 cols 101 </dev/tty) & ${kc[*]} exec -it box -- sh -c 'i=0; until [ \"\$(stty size 2>/dev/null)\" = \"33 97\" ] || [ \$i = 50 ]; do sleep 0.1; i=\$((i+1)); done; stty size; sleep 8; stty size'" /dev/null <&$tty_in >"$work/tty" 2>&1 ||
  fail "kubectl exec -it under script failed: $(cat "$work/tty")"
exec {tty_in}<&-
kill "$tty_in_pid" 2>/dev/null || true
tr -d '\r' <"$work/tty" >"$work/tty.txt"
grep -qx '33 97' "$work/tty.txt" || fail "TTY initial size: $(cat "$work/tty.txt")"
grep -qx '44 101' "$work/tty.txt" || fail "TTY size after resize: $(cat "$work/tty.txt")"
# Nothing but the two sizes comes back: no NUL byte and no echoed "^@" at the session start.
printf '33 97\n44 101\n' | cmp -s - "$work/tty.txt" ||
  fail "TTY output is not exactly '33 97' and '44 101': $(od -c "$work/tty" | head -5)"
echo "PASS: kubectl exec -it: TTY 33x97, resized to 44x101 while running, no stray byte"

# attach: a line written to the container's stdin comes back through its output.
# The session ends by itself once stdin ended (as with containerd), the container's stdin
# stays open for the next attach (crictl's, below).
timeout 20 "${kc[@]}" attach -i reader <<<"hello-attach" >"$work/attach" 2>&1 ||
  fail "kubectl attach -i did not end by itself after stdin EOF (rc $?): $(cat "$work/attach")"
attached() { kubectl logs -n "$E2E_NS" reader | grep -qx 'got hello-attach'; }
wait_for 20 attached || fail "kubectl attach: no 'got hello-attach' in the log: $(cat "$work/attach")"
echo "PASS: kubectl attach -i delivers stdin"

# port-forward: 100 MB through one connection, then 20 concurrent connections.
"${kc[@]}" port-forward pod/box 18080:8080 >"$work/pf.log" 2>&1 &
bg_pids+=($!)
forwarding() { in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080' 2>/dev/null; }
wait_for 30 forwarding || fail "kubectl port-forward did not listen: $(cat "$work/pf.log")"
cat >"$work/pf.py" <<'PY'
import hashlib, os, socket, sys, threading, time
port, size, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def one(results, i):
    data = os.urandom(min(size, 1 << 20))
    want, got = hashlib.sha256(), hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    def send():
        left = size
        while left > 0:
            chunk = data[: min(left, len(data))]
            s.sendall(chunk); want.update(chunk); left -= len(chunk)
    t = threading.Thread(target=send); t.start()
    n = 0
    while n < size:
        b = s.recv(1 << 16)
        if not b: break
        got.update(b); n += len(b)
    t.join(); s.close()
    results[i] = (n == size and want.digest() == got.digest(), n)
start = time.time()
results = [None] * conns
ts = [threading.Thread(target=one, args=(results, i)) for i in range(conns)]
for t in ts: t.start()
for t in ts: t.join()
secs = time.time() - start
bad = [r for r in results if not r[0]]
print("%d/%d intact, %.1f MB/s" % (conns - len(bad), conns, conns * size / secs / 1e6))
sys.exit(1 if bad else 0)
PY
out=$(in_ns python3 "$work/pf.py" 18080 $((100 * 1024 * 1024)) 1) || fail "port-forward 100 MB: $out"
echo "PASS: kubectl port-forward carried 100 MB intact ($out)"
out=$(in_ns python3 "$work/pf.py" 18080 $((1024 * 1024)) 20) || fail "port-forward 20 connections: $out"
echo "PASS: kubectl port-forward, 20 concurrent connections: $out"
kill "${bg_pids[-1]}" 2>/dev/null || true

# cp both ways (kubectl cp runs tar through exec).
head -c 300000 /dev/urandom >"$work/cp-in"
(cd "$work" && "${kc[@]}" cp cp-in box:/tmp/cp-in) || fail "kubectl cp to the pod"
(cd "$work" && "${kc[@]}" cp box:/tmp/cp-in cp-out) || fail "kubectl cp from the pod"
cmp -s "$work/cp-in" "$work/cp-out" || fail "kubectl cp round trip differs"
echo "PASS: kubectl cp both ways"

# crictl against the CRI socket: exec -i, exec -it (TTY size), attach, port-forward. crictl
# runs inside the netns: the streaming URLs name berth's loopback (--streaming-address),
# which a crictl in the host's netns cannot reach (it fails with "connection refused").
cid=$(crictl ps -q --label "io.kubernetes.pod.namespace=$E2E_NS" --label io.kubernetes.pod.name=box | head -n 1)
[ -n "$cid" ] || fail "crictl ps: no container of pod box"
cri=(ip netns exec "$netns" "$cluster_bin/crictl" --config "$state/crictl.yaml")
out=$(echo crictl-in | "${cri[@]}" exec -i "$cid" cat 2>/dev/null) || fail "crictl exec -i cat failed"
[ "$out" = crictl-in ] || fail "crictl exec -i cat printed '$out'"
# As above: script's stdin stays open, and the command waits for the asynchronous first resize.
exec {tty_in}< <(sleep 60)
tty_in_pid=$!
bg_pids+=("$tty_in_pid")
script -qec "stty rows 21 cols 77; ${cri[*]} exec -it $cid sh -c 'i=0; until [ \"\$(stty size 2>/dev/null)\" = \"21 77\" ] || [ \$i = 50 ]; do sleep 0.1; i=\$((i+1)); done; stty size'" /dev/null <&$tty_in >"$work/crictl-tty" 2>"$work/crictl-tty.err" ||
  fail "crictl exec -it: $(cat "$work/crictl-tty" "$work/crictl-tty.err")"
exec {tty_in}<&-
kill "$tty_in_pid" 2>/dev/null || true
# (crictl's own warnings go to the same terminal: only the command's line is checked.)
tr -d '\r' <"$work/crictl-tty" | grep -qx '21 77' || fail "crictl exec -it TTY size: $(od -c "$work/crictl-tty" | tail -5)"
rid=$(crictl ps -q --label "io.kubernetes.pod.namespace=$E2E_NS" --label io.kubernetes.pod.name=reader | head -n 1)
timeout 20 "${cri[@]}" attach -i "$rid" <<<"hello-crictl" >"$work/crictl-attach" 2>&1 ||
  fail "crictl attach -i did not end by itself after stdin EOF (rc $?): $(cat "$work/crictl-attach")"
crictl_attached() { kubectl logs -n "$E2E_NS" reader | grep -qx 'got hello-crictl'; }
wait_for 20 crictl_attached || fail "crictl attach: no 'got hello-crictl': $(cat "$work/crictl-attach")"
sb=$(crictl pods -q --label "io.kubernetes.pod.namespace=$E2E_NS" --label io.kubernetes.pod.name=box | head -n 1)
"${cri[@]}" port-forward "$sb" 18081:8080 >"$work/cpf.log" 2>&1 &
bg_pids+=($!)
crictl_forwarding() { in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/18081' 2>/dev/null; }
wait_for 30 crictl_forwarding || fail "crictl port-forward did not listen: $(cat "$work/cpf.log")"
out=$(in_ns python3 "$work/pf.py" 18081 $((10 * 1024 * 1024)) 1) || fail "crictl port-forward 10 MB: $out"
kill "${bg_pids[-1]}" 2>/dev/null || true
echo "PASS: crictl exec -i / -it, attach, port-forward ($out)"

# Bad input. A stopped container: kubectl refuses (completed pod); the kubelet itself answers
# 404 container not found.
out=$(kubectl exec -n "$E2E_NS" finished -- true 2>&1) && fail "exec into a completed pod succeeded"
c=$(in_ns curl -sk --max-time 10 -o "$work/stopped.txt" -w '%{http_code}' -X POST \
  --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
  -H 'Connection: Upgrade' -H 'Upgrade: SPDY/3.1' -H 'X-Stream-Protocol-Version: v4.channel.k8s.io' \
  "$(kubelet_url "/exec/$E2E_NS/finished/main?command=true&output=1")" || true)
[ "$c" = 404 ] || fail "kubelet /exec into a stopped container: $c $(cat "$work/stopped.txt")"
grep -q 'container not found' "$work/stopped.txt" || fail "stopped container error: $(cat "$work/stopped.txt")"
echo "PASS: exec into a stopped container: kubectl error, kubelet 404 container not found"

# A client killed mid-stream: the exec'd cat sees EOF and exits; nothing stays in berth.
mkfifo "$work/fifo"
exec 7<>"$work/fifo"
"${kc[@]}" exec -i box -- sh -c 'echo $$ >/tmp/victim; exec cat' <&7 >/dev/null 2>&1 &
victim_kubectl=$!
bg_pids+=("$victim_kubectl")
has_victim() { kubectl exec -n "$E2E_NS" box -- test -s /tmp/victim; }
wait_for 30 has_victim || fail "mid-stream exec did not start"
vpid=$(kubectl exec -n "$E2E_NS" box -- cat /tmp/victim)
kill -KILL "$victim_kubectl"
exec 7>&-
victim_gone() { ! kubectl exec -n "$E2E_NS" box -- kill -0 "$vpid" 2>/dev/null; }
wait_for 60 victim_gone || fail "exec'd process $vpid still runs after its client was killed"
settled() { [ "$(count_stream_threads)" = 0 ] && [ "$(count_kubelet_conns)" = 0 ] && [ "$(count_kubelet_conn_threads)" = 0 ]; }
wait_for 60 settled || fail "left behind: $(count_stream_threads) streaming sessions, $(count_kubelet_conns) kubelet connections, $(count_kubelet_conn_threads) connection threads"
echo "PASS: killed client: exec'd process ended; no streaming session, kubelet connection or thread left"
