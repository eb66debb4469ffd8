#!/usr/bin/env bash
# (d) A pod whose image does not exist in the registry shows ErrImagePull, then
# ImagePullBackOff, and the message carries the registry's error.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-pull
bad_image="$registry/e2e-no-such-image:v1"
kubectl run nope -n "$E2E_NS" --image="$bad_image" --restart=Never -- sleep 1 >/dev/null
seen="$state/pull-reasons.$$"; : >"$seen"
trap 'rm -f "$seen"; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
# Record every waiting reason/message observed until ImagePullBackOff shows up.
observe() {
  local r
  r=$(jsonpath pod/nope '{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS")
  [ "$r" = "|" ] || echo "$r" >>"$seen"
  [[ "$r" == ImagePullBackOff\|* ]]
}
wait_for 120 observe || fail "pod nope never reached ImagePullBackOff" "$E2E_NS"
# ErrImagePull may be short-lived in the status; the kubelet's events record it as well.
events=$(kubectl get events -n "$E2E_NS" --field-selector involvedObject.name=nope -o jsonpath='{range .items[*]}{.reason}|{.message}{"\n"}{end}')
if ! grep -q '^ErrImagePull|' "$seen" && ! grep -q 'ErrImagePull' <<<"$events"; then
  fail "ErrImagePull was never observed (status or events)" "$E2E_NS"
fi
# As upstream (images/image_manager.go), the back-off message wraps the last pull error:
# "Back-off pulling image \"<image>\": <error from the registry>".
registry_error='name unknown|manifest unknown|not found|NAME_UNKNOWN|MANIFEST_UNKNOWN'
backoff=$(grep '^ImagePullBackOff|' "$seen" | tail -n 1)
grep -Eqi "$registry_error" <<<"$backoff" ||
  fail "ImagePullBackOff message lacks the registry error ($registry_error): $backoff" "$E2E_NS"
grep -qF "$bad_image" <<<"$backoff" || fail "ImagePullBackOff message does not name $bad_image: $backoff" "$E2E_NS"
echo "PASS: ErrImagePull -> ImagePullBackOff; messages: $(sort -u "$seen" | tr '\n' ';')"
