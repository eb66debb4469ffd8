# Pushing OCI image layouts (built with umoci) to a test registry, shared by
# tests/images/build.sh, tests/peer/pause_image.sh and tests/critest/images.sh.
# Source it after tests/cluster/lib.sh and state_init (uses in_ns, wait_until, die).
# Variables: registry (host:port, default 127.0.0.1:5000, reached inside the cluster netns).

registry=${registry:-${registry_addr:-127.0.0.1:5000}}
registry_accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'

# registry_wait: waits up to 30 s for the registry's /v2/; dies otherwise.
registry_wait() {
  wait_until 30 "registry at $registry" in_ns curl -sf --max-time 2 "http://$registry/v2/" ||
    die "registry $registry not reachable in netns $netns (run tests/cluster/registry.sh $state)"
}
# remote_digest <repo> <tag>: the registry's manifest digest for the tag, empty if none.
remote_digest() {
  in_ns curl -sfI --max-time 5 -H "Accept: $registry_accept" "http://$registry/v2/$1/manifests/$2" |
    tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}' || true
}
# push_layout <layout> <layout tag> <repo:tag> <stamp> <record-file> [skopeo copy args]:
# copies the layout's tag to the registry unless <record-file> says this <stamp> was pushed
# and the registry still has that digest. Prints "<registry>/<repo:tag> <digest>".
push_layout() {
  local layout=$1 src=$2 dst=$3 stamp=$4 record=$5; shift 5
  local have; have=$(remote_digest "${dst%%:*}" "${dst##*:}")
  if [ -z "$have" ] || [ "$(cat "$record" 2>/dev/null)" != "$stamp $have" ]; then
    in_ns skopeo --insecure-policy copy -q --dest-tls-verify=false "$@" \
      "oci:$layout:$src" "docker://$registry/$dst" >&2
    have=$(remote_digest "${dst%%:*}" "${dst##*:}")
    [ -n "$have" ] || die "push of $dst: registry has no manifest afterwards"
    echo "$stamp $have" >"$record"
  fi
  echo "$registry/$dst $have"
}
