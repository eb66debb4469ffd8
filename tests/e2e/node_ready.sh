#!/usr/bin/env bash
# (a) The berth node registers, becomes Ready with the node IP as InternalIP, and renews its
# Lease in kube-node-lease.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
ip=$(jsonpath "node/$node_name" '{.status.addresses[?(@.type=="InternalIP")].address}')
[ "$ip" = "$node_addr" ] || fail "node InternalIP is '$ip', want $node_addr"

label=$(jsonpath "node/$node_name" '{.metadata.labels.berth\.dev/e2e}')
[ "$label" = true ] || fail "node label berth.dev/e2e (--node-labels) is '$label', want true"

lease=lease/$node_name
wait_for 60 kubectl get "$lease" -n kube-node-lease || fail "no Lease $node_name in kube-node-lease"
holder=$(jsonpath "$lease" '{.spec.holderIdentity}' kube-node-lease)
[ "$holder" = "$node_name" ] || fail "Lease holderIdentity is '$holder', want $node_name"
# As kubelet's lease controller: a Lease created before the Node's uid is known gets its
# ownerReference on a later renewal.
lease_owner() { jsonpath "$lease" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' kube-node-lease; }
lease_owned() { [ "$(lease_owner)" = "Node/$node_name" ]; }
wait_for 30 lease_owned || fail "Lease owner is '$(lease_owner)', want Node/$node_name"
first=$(jsonpath "$lease" '{.spec.renewTime}' kube-node-lease)
[ -n "$first" ] || fail "Lease has no renewTime"
# The kubelet renews every leaseDurationSeconds/4 (10 s by default): within 60 s it changes.
renewed() { local now; now=$(jsonpath "$lease" '{.spec.renewTime}' kube-node-lease); [ -n "$now" ] && [ "$now" != "$first" ]; }
wait_for 60 renewed || fail "Lease renewTime stayed at $first for 60s"
echo "PASS: node $node_name Ready, InternalIP $ip, Lease renewed after $first"
