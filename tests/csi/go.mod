// berth's CSI test driver (driver/), built for tests/csi/csi.sh. A module of its own so
// that tests/cluster/go.sum (the cluster binaries' rebuild stamp) stays untouched; the
// versions are the ones kubelet v1.36.3 is built with (tests/cluster/go.mod).
module berth.dev/tests/csi

go 1.26.2

require (
	github.com/container-storage-interface/spec v1.9.0
	golang.org/x/sys v0.40.0
	google.golang.org/grpc v1.80.0
	k8s.io/kubelet v0.36.3
)

require (
	github.com/golang/protobuf v1.5.4 // indirect
	golang.org/x/net v0.49.0 // indirect
	golang.org/x/text v0.33.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260128011058-8636f8732409 // indirect
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af // indirect
)
