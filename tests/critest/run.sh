#!/usr/bin/env bash
# Runs the CRI validation suite (critest from tests/cluster, cri-tools v1.36) against a CRI
# runtime started by this script in its own network namespace, and prints the counts as JSON:
#   {"runtime":"berth","passed":N,"failed":N,"skipped":N,"seconds":S,"failed_specs":[...],
#    "suite_failure":[...],"unexpected_skips":[...]}
# (skipped spec names in <state>/summary-<runtime>.json).
#
# Usage: tests/critest/run.sh [berth|containerd ...]   (default: berth; several runtimes run
#        one after the other and print one JSON line each, then a side-by-side line)
# Env:   BERTH_BIN (berth binary; default build/kubelet/berth), BERTH_CRITEST_STATE (state dir;
#        default build/critest-state), BERTH_NETNS / BERTH_CGROUP_ROOT (suffixed with "-ct"),
#        CRITEST_FOCUS (a ginkgo focus regex, for iterating on a few specs),
#        CRITEST_TIMEOUT (seconds per runtime, default 900: ginkgo's suite timeout),
#        PEER_CONTAINERD (default tests/peer/containerd.sh: containerd on a private socket).
# Exit status: 0 when no spec failed against berth, berth skipped nothing skip.txt does not
# list and critest did not time out (containerd's counts are reported only).
#
# Everything runs inside netns <BERTH_NETNS>-ct: the registry (127.0.0.1:5000, images from
# tests/critest/images.sh under their upstream paths), the runtime (CNI bridge 10.89.0.0/16),
# and critest itself (it fetches pod IPs and 127.0.0.1 host ports). Each run starts from an
# empty image store. Specs in tests/critest/skip.txt are skipped, with their reasons there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export BERTH_NETNS="${BERTH_NETNS:-berth}-ct"
cgroup_root="${BERTH_CGROUP_ROOT:-/berth}-ct"
# shellcheck source=tests/cluster/lib.sh
source "$repo/tests/cluster/lib.sh"
state_init "${BERTH_CRITEST_STATE:-$repo/build/critest-state}"
critest=$cluster_bin/critest
runtimes=("$@"); [ ${#runtimes[@]} -gt 0 ] || runtimes=(berth)
[ -x "$critest" ] || die "critest missing: run tests/cluster/build.sh critest"
command -v jq >/dev/null || die "jq missing (deploy/setup.sh)"

# shellcheck source=tests/critest/lib.sh
source "$here/lib.sh"
trap cleanup_all EXIT
env_up

# skip.txt: "<ginkgo regex> | <reason>" per line (passed to -ginkgo.skip), and
# "self: <regex> | <reason>" for specs critest skips by itself here; '#' comments. Every
# skipped spec must match one of them, else the run fails (a spec skipped because an earlier
# one hung or the suite timed out is not an accepted skip).
skip_lines() { sed -e 's/#.*//' -e 's/[[:space:]]*|.*$//' -e '/^[[:space:]]*$/d' "$here/skip.txt"; }
skip_re=$(skip_lines | grep -v '^self:' | paste -sd'|')
known_skip_re=$(skip_lines | sed 's/^self:[[:space:]]*//' | paste -sd'|')

any_failed=0
summary=()
for rt in "${runtimes[@]}"; do
  start_runtime "$rt"
  timeout=${CRITEST_TIMEOUT:-900}
  report="$state/report-$rt.json"
  rm -f "$report"
  args=(-runtime-endpoint="unix://$sock" -image-endpoint="unix://$sock"
    -ginkgo.json-report="$report" -ginkgo.no-color -ginkgo.v
    -ginkgo.timeout="${timeout}s" -ginkgo.poll-progress-after=60s -ginkgo.poll-progress-interval=60s)
  [ -z "$skip_re" ] || args+=(-ginkgo.skip="$skip_re")
  [ -z "${CRITEST_FOCUS:-}" ] || args+=(-ginkgo.focus="$CRITEST_FOCUS")
  log "critest against $rt (log: $state/logs/critest-$rt.log)"
  start=$SECONDS
  # nsenter joins only the netns: the mounts critest makes (mount propagation, tmpfs under a
  # host path) must be in the host mount namespace the runtime sees (`ip netns exec` would
  # give critest a private one).
  # A hung RPC or stream must not eat CI's time: ginkgo's suite timeout interrupts the spec
  # that hangs (it is reported "timedout", the ones after it "skipped"), and `timeout` kills
  # critest outright if even that does not return.
  rc=0
  timeout -k 10 $((timeout + 120)) nsenter --net="/run/netns/$netns" "$critest" "${args[@]}" \
    >"$state/logs/critest-$rt.log" 2>&1 || rc=$?
  secs=$((SECONDS - start))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    tail -n 60 "$state/logs/critest-$rt.log" >&2
    [ "$rt" != berth ] || any_failed=1
    log "FAIL: critest against $rt killed after ${secs}s (hung past -ginkgo.timeout=${timeout}s)"
    summary+=("$(jq -nc --arg rt "$rt" --argjson secs "$secs" '{runtime: $rt, passed: 0, failed: 1, skipped: 0, seconds: $secs, killed: true}')")
    continue
  fi
  [ -s "$report" ] || { tail -n 40 "$state/logs/critest-$rt.log" >&2; die "critest wrote no report for $rt"; }
  full=$(jq -c --arg rt "$rt" --argjson secs "$secs" --arg known "$known_skip_re" --argjson focused "$([ -n "${CRITEST_FOCUS:-}" ] && echo true || echo false)" '
    [.[].SpecReports[] | select(.LeafNodeType == "It")] as $s |
    { runtime: $rt,
      passed: ([$s[] | select(.State == "passed")] | length),
      failed: ([$s[] | select(.State == "failed" or .State == "panicked" or .State == "timedout" or .State == "aborted" or .State == "interrupted")] | length),
      skipped: ([$s[] | select(.State == "skipped" or .State == "pending")] | length),
      seconds: $secs,
      failed_specs: [$s[] | select(.State != "passed" and .State != "skipped" and .State != "pending") |
                     ((.ContainerHierarchyTexts | join(" ")) + " " + .LeafNodeText)],
      skipped_specs: [$s[] | select(.State == "skipped" or .State == "pending") |
                      ((.ContainerHierarchyTexts | join(" ")) + " " + .LeafNodeText)],
      suite_failure: (.[0].SpecialSuiteFailureReasons // []) } |
    .unexpected_skips = (if $focused then [] else
                           [.skipped_specs[] | select(test($known) | not)] end)' "$report")
  echo "$full" >"$state/summary-$rt.json"
  # stdout: counts and what went wrong; the skipped spec names stay in summary-<rt>.json.
  line=$(jq -c 'del(.skipped_specs)' <<<"$full")
  echo "$line"
  summary+=("$line")
  if [ "$(jq '.suite_failure | length' <<<"$line")" != 0 ]; then
    log "FAIL: critest against $rt: $(jq -r '.suite_failure | join("; ")' <<<"$line") after ${secs}s (-ginkgo.timeout=${timeout}s; log $state/logs/critest-$rt.log)"
  fi
  if [ "$(jq '.unexpected_skips | length' <<<"$line")" != 0 ]; then
    if [ "$rt" = berth ]; then
      log "FAIL: berth skipped specs that tests/critest/skip.txt does not list: $(jq -c .unexpected_skips <<<"$line")"
    else  # the peer skips what it lacks (e.g. containerd 1.6: no rro mounts): informational
      log "$rt skipped $(jq '.unexpected_skips | length' <<<"$line") specs not in skip.txt (features it does not advertise)"
    fi
  fi
  # Pass/fail is berth's; the peer's counts are for comparison.
  if [ "$rt" = berth ] && { [ "$(jq .failed <<<"$line")" != 0 ] ||
       [ "$(jq '.suite_failure | length' <<<"$line")" != 0 ] ||
       [ "$(jq '.unexpected_skips | length' <<<"$line")" != 0 ]; }; then
    any_failed=1
  fi
done
if [ ${#summary[@]} -gt 1 ]; then
  printf '%s\n' "${summary[@]}" | jq -sc '{side_by_side: map({(.runtime): {passed, failed, skipped, seconds}}) | add}'
fi
exit $any_failed
