// berth-csi-testdriver: a small hostpath-style CSI node plugin for berth's CSI e2e test
// (tests/csi/csi.sh). The stock csi-driver-host-path and node-driver-registrar are not
// served by the Go module proxy here (see /work/shared/notes/csi-and-join.md A.15), so this
// driver plays both parts: it serves the CSI Identity and Node services on --endpoint and
// the kubelet's plugin Registration API on --registration-socket, as node-driver-registrar
// does (GetInfo -> {CSIPlugin, name, --kubelet-registration-path, ["1.0.0"]}; a failed
// registration makes it exit 1).
//
// Volumes are directories <--state-dir>/<volume_id>. NodeStageVolume bind-mounts the volume
// directory on the staging path, NodePublishVolume bind-mounts the staging path (or, for
// ephemeral and unstaged volumes, the volume directory) on the target path (created here,
// as the kubelet leaves it to the driver); read-only publishes are remounted ro.
// With --attach it also serves the CSI Controller service with PUBLISH_UNPUBLISH_VOLUME, for
// the external-attacher: ControllerPublishVolume answers a publish_context naming the node
// and the volume (the kubelet must pass it on to NodeStage/NodePublish). With --volume-stats
// it announces GET_VOLUME_STATS and answers NodeGetVolumeStats with fixed sentinel numbers
// (statsTotal, statsUsed, ... below) that no statfs could produce.
// Every RPC is logged as one JSON line {"method": ..., "request": {...}} to --log.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

var (
	endpoint     = flag.String("endpoint", "", "unix socket path of the CSI services")
	regSocket    = flag.String("registration-socket", "", "unix socket path of the Registration service (under <kubelet-root>/plugins_registry)")
	regPath      = flag.String("kubelet-registration-path", "", "endpoint announced to the kubelet (default: --endpoint)")
	driverName   = flag.String("drivername", "csi.berth.test", "CSI driver name")
	nodeID       = flag.String("nodeid", "", "node ID reported by NodeGetInfo")
	stateDir     = flag.String("state-dir", "", "directory holding the volumes")
	logPath      = flag.String("log", "", "file receiving one JSON line per RPC")
	maxVolumes   = flag.Int64("max-volumes", 0, "max_volumes_per_node")
	topology     = flag.String("topology", "", "accessible topology segments, k=v[,k=v]")
	stageUnstage = flag.Bool("stage-unstage", true, "announce STAGE_UNSTAGE_VOLUME")
	versions     = flag.String("versions", "1.0.0", "supported_versions announced in GetInfo, comma-separated")
	attach       = flag.Bool("attach", false, "serve the Controller service with PUBLISH_UNPUBLISH_VOLUME")
	volumeStats  = flag.Bool("volume-stats", false, "announce GET_VOLUME_STATS (sentinel numbers)")
)

// NodeGetVolumeStats answers (bytes and inodes), for the test to find in berth's metrics.
const (
	statsTotal       = 5 * 1024 * 1024 * 1024
	statsUsed        = 4242 * 4096
	statsAvailable   = statsTotal - statsUsed
	statsInodes      = 100000
	statsInodesUsed  = 4242
	statsInodesFree  = statsInodes - statsInodesUsed
	publishedNodeKey = "csi.berth.test/node"
	publishedVolKey  = "csi.berth.test/volume"
)

type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer
	csi.UnimplementedControllerServer
	registerapi.UnimplementedRegistrationServer
	mu  sync.Mutex
	out *os.File
}

func (d *driver) logCall(method string, req interface{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	line, _ := json.Marshal(map[string]interface{}{"method": method, "request": req})
	d.out.Write(append(line, '\n'))
}

func (d *driver) GetPluginInfo(ctx context.Context, req *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	d.logCall("GetPluginInfo", req)
	return &csi.GetPluginInfoResponse{Name: *driverName, VendorVersion: "0.1.0"}, nil
}

func (d *driver) GetPluginCapabilities(ctx context.Context, req *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	d.logCall("GetPluginCapabilities", req)
	resp := &csi.GetPluginCapabilitiesResponse{}
	if *attach {
		resp.Capabilities = append(resp.Capabilities, &csi.PluginCapability{
			Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}}})
	}
	return resp, nil
}

func (d *driver) ControllerGetCapabilities(ctx context.Context, req *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	d.logCall("ControllerGetCapabilities", req)
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME}}}}}, nil
}

func (d *driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	d.logCall("ControllerPublishVolume", req)
	if req.VolumeId == "" || req.NodeId == "" || req.VolumeCapability == nil {
		return nil, status.Error(codes.InvalidArgument, "volume_id, node_id and volume_capability are required")
	}
	return &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{
		publishedNodeKey: req.NodeId, publishedVolKey: req.VolumeId}}, nil
}

func (d *driver) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	d.logCall("ControllerUnpublishVolume", req)
	if req.VolumeId == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

func (d *driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	d.logCall("NodeGetVolumeStats", req)
	if req.VolumeId == "" || req.VolumePath == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id and volume_path are required")
	}
	if _, err := os.Stat(req.VolumePath); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume_path %s: %v", req.VolumePath, err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: statsTotal, Used: statsUsed, Available: statsAvailable},
		{Unit: csi.VolumeUsage_INODES, Total: statsInodes, Used: statsInodesUsed, Available: statsInodesFree},
	}}, nil
}

func (d *driver) Probe(ctx context.Context, req *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	d.logCall("Probe", req)
	return &csi.ProbeResponse{}, nil
}

func (d *driver) NodeGetInfo(ctx context.Context, req *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	d.logCall("NodeGetInfo", req)
	resp := &csi.NodeGetInfoResponse{NodeId: *nodeID, MaxVolumesPerNode: *maxVolumes}
	if *topology != "" {
		seg := map[string]string{}
		for _, kv := range strings.Split(*topology, ",") {
			k, v, _ := strings.Cut(kv, "=")
			seg[k] = v
		}
		resp.AccessibleTopology = &csi.Topology{Segments: seg}
	}
	return resp, nil
}

func (d *driver) NodeGetCapabilities(ctx context.Context, req *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	d.logCall("NodeGetCapabilities", req)
	resp := &csi.NodeGetCapabilitiesResponse{}
	if *stageUnstage {
		resp.Capabilities = append(resp.Capabilities, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME}}})
	}
	if *volumeStats {
		resp.Capabilities = append(resp.Capabilities, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_GET_VOLUME_STATS}}})
	}
	return resp, nil
}

func volumeDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/") || id == "." || id == ".." {
		return "", status.Errorf(codes.InvalidArgument, "bad volume_id %q", id)
	}
	dir := filepath.Join(*stateDir, id)
	return dir, os.MkdirAll(dir, 0777)
}

// isMounted: `path` is a mount point in this mount namespace (/proc/self/mountinfo, so that
// bind mounts within one filesystem count).
func isMounted(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeOctal(f[4]) == path {
			return true
		}
	}
	return false
}

func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func bind(src, dst string, readOnly bool) error {
	if isMounted(dst) {
		return nil
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return status.Errorf(codes.Internal, "bind %s on %s: %v", src, dst, err)
	}
	if readOnly {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(dst, 0)
			return status.Errorf(codes.Internal, "remount %s ro: %v", dst, err)
		}
	}
	return nil
}

func unmount(path string) error {
	for isMounted(path) { // stacked mounts: all of them
		if err := unix.Unmount(path, 0); err != nil {
			return status.Errorf(codes.Internal, "umount %s: %v", path, err)
		}
	}
	return nil
}

func (d *driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	d.logCall("NodeStageVolume", req)
	if req.StagingTargetPath == "" || req.VolumeCapability == nil {
		return nil, status.Error(codes.InvalidArgument, "staging_target_path and volume_capability are required")
	}
	src, err := volumeDir(req.VolumeId)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(req.StagingTargetPath, 0750); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.NodeStageVolumeResponse{}, bind(src, req.StagingTargetPath, false)
}

func (d *driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	d.logCall("NodeUnstageVolume", req)
	if req.StagingTargetPath == "" {
		return nil, status.Error(codes.InvalidArgument, "staging_target_path is required")
	}
	return &csi.NodeUnstageVolumeResponse{}, unmount(req.StagingTargetPath)
}

func (d *driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	d.logCall("NodePublishVolume", req)
	if req.TargetPath == "" || req.VolumeCapability == nil {
		return nil, status.Error(codes.InvalidArgument, "target_path and volume_capability are required")
	}
	src := req.StagingTargetPath
	if src == "" {
		var err error
		if src, err = volumeDir(req.VolumeId); err != nil {
			return nil, err
		}
		if req.VolumeContext["csi.storage.k8s.io/ephemeral"] == "true" {
			// Ephemeral volumes carry who they belong to, for the test to read.
			info, _ := json.Marshal(req.VolumeContext)
			os.WriteFile(filepath.Join(src, "volume_context.json"), info, 0644)
		}
	}
	if err := os.MkdirAll(req.TargetPath, 0750); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &csi.NodePublishVolumeResponse{}, bind(src, req.TargetPath, req.Readonly)
}

func (d *driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	d.logCall("NodeUnpublishVolume", req)
	if err := unmount(req.TargetPath); err != nil {
		return nil, err
	}
	os.Remove(req.TargetPath)
	if strings.HasPrefix(req.VolumeId, "csi-") { // an ephemeral volume: gone with its pod
		if dir, err := volumeDir(req.VolumeId); err == nil {
			os.RemoveAll(dir)
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (d *driver) GetInfo(ctx context.Context, req *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	d.logCall("GetInfo", req)
	ep := *regPath
	if ep == "" {
		ep = *endpoint
	}
	return &registerapi.PluginInfo{Type: registerapi.CSIPlugin, Name: *driverName, Endpoint: ep,
		SupportedVersions: strings.Split(*versions, ",")}, nil
}

func (d *driver) NotifyRegistrationStatus(ctx context.Context, req *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	d.logCall("NotifyRegistrationStatus", req)
	if !req.PluginRegistered {
		// As node-driver-registrar: a refused registration ends the plugin.
		log.Printf("registration failed: %s", req.Error)
		go func() { os.Exit(1) }()
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

func listen(path string) net.Listener {
	os.Remove(path)
	if err := os.MkdirAll(filepath.Dir(path), 0750); err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	return l
}

func main() {
	flag.Parse()
	if *endpoint == "" || *stateDir == "" || *nodeID == "" {
		fmt.Fprintln(os.Stderr, "--endpoint, --state-dir and --nodeid are required")
		os.Exit(2)
	}
	d := &driver{out: os.Stdout}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0644)
		if err != nil {
			log.Fatal(err)
		}
		d.out = f
	}
	if err := os.MkdirAll(*stateDir, 0755); err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterNodeServer(srv, d)
	if *attach {
		csi.RegisterControllerServer(srv, d)
	}
	go func() { log.Fatal(srv.Serve(listen(*endpoint))) }()
	if *regSocket != "" {
		reg := grpc.NewServer()
		registerapi.RegisterRegistrationServer(reg, d)
		go func() { log.Fatal(reg.Serve(listen(*regSocket))) }()
	}
	select {}
}
