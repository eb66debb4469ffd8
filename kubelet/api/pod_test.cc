#include "kubelet/api/pod.h"

#include <gtest/gtest.h>

namespace berth::kubelet::api {
namespace {

Json MinimalPod() {
  return Json::parse(R"({
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
    "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}
  })");
}

TEST(ParsePodTest, AppliesTheApiServerDefaults) {
  Json j = MinimalPod();
  j["spec"]["containers"][0]["livenessProbe"] = {{"httpGet", {{"port", 8080}}}};
  j["spec"]["containers"][0]["readinessProbe"] = {{"grpc", {{"port", 9000}}}, {"periodSeconds", 0}};
  j["spec"]["containers"][0]["ports"] = {{{"containerPort", 80}}};
  j["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}},
                                             {"requests", {{"cpu", "100m"}}}};
  j["spec"]["containers"][0]["env"] = {
      {{"name", "CPU"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}}}}}},
      {{"name", "ZERO"},
       {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}, {"divisor", "0"}}}}}},
      {{"name", "POD"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}};
  j["spec"]["initContainers"] = {{{"name", "init"}, {"image", "busybox"}}};
  j["spec"]["volumes"] = Json::parse(R"([
    {"name": "cm", "configMap": {"name": "c"}},
    {"name": "sec", "secret": {"secretName": "s"}},
    {"name": "dapi", "downwardAPI": {"items": []}},
    {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
    {"name": "hp", "hostPath": {"path": "/data"}},
    {"name": "bare"}
  ])");

  absl::StatusOr<Pod> pod = ParsePod(j);
  ASSERT_TRUE(pod.ok()) << pod.status();
  const PodSpec& s = pod->spec;
  EXPECT_EQ(s.restart_policy, "Always");
  EXPECT_EQ(s.dns_policy, "ClusterFirst");
  EXPECT_EQ(s.termination_grace_period_seconds, 30);
  EXPECT_EQ(s.scheduler_name, "default-scheduler");
  EXPECT_TRUE(s.enable_service_links);
  EXPECT_FALSE(s.host_network);

  const Container& c = s.containers[0];
  EXPECT_EQ(c.termination_message_path, "/dev/termination-log");
  EXPECT_EQ(c.termination_message_policy, "File");
  EXPECT_EQ(c.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(s.init_containers[0].image_pull_policy, "Always");  // untagged
  ASSERT_TRUE(c.liveness_probe.has_value());
  EXPECT_EQ(c.liveness_probe->period_seconds, 10);
  EXPECT_EQ(c.liveness_probe->timeout_seconds, 1);
  EXPECT_EQ(c.liveness_probe->success_threshold, 1);
  EXPECT_EQ(c.liveness_probe->failure_threshold, 3);
  EXPECT_EQ(c.liveness_probe->http_get->path, "/");
  EXPECT_EQ(c.liveness_probe->http_get->scheme, "HTTP");
  EXPECT_EQ(c.liveness_probe->http_get->port, (IntOrString{true, 8080, ""}));
  EXPECT_EQ(c.readiness_probe->period_seconds, 10);  // 0 is unset
  EXPECT_EQ(c.readiness_probe->grpc->service, "");
  EXPECT_EQ(c.ports[0].protocol, "TCP");
  EXPECT_EQ(c.ports[0].host_port, 0);  // not host network
  // Requests default to limits where unset.
  EXPECT_EQ(c.resources.requests.at("cpu").MilliValue(), 100);
  EXPECT_EQ(c.resources.requests.at("memory").Value(), 64 << 20);
  EXPECT_EQ(c.env[0].value_from->resource_field_ref->divisor.Value(), 1);
  EXPECT_EQ(c.env[1].value_from->resource_field_ref->divisor.Value(), 1);  // "0" reads as 1
  EXPECT_EQ(c.env[2].value_from->field_ref->api_version, "v1");

  ASSERT_EQ(s.volumes.size(), 6u);
  EXPECT_EQ(s.volumes[0].config_map->default_mode, 0644);
  EXPECT_EQ(s.volumes[1].secret->default_mode, 0644);
  EXPECT_EQ(s.volumes[2].downward_api->default_mode, 0644);
  EXPECT_EQ(s.volumes[3].projected->default_mode, 0644);
  EXPECT_EQ(s.volumes[3].projected->sources[0].service_account_token->expiration_seconds, 3600);
  EXPECT_EQ(s.volumes[4].host_path->type, "");
  ASSERT_TRUE(s.volumes[5].empty_dir.has_value());  // no source: emptyDir
  EXPECT_EQ(s.volumes[5].empty_dir->medium, "");
}

TEST(ParsePodTest, HostNetworkPortsDefaultHostPort) {
  Json j = MinimalPod();
  j["spec"]["hostNetwork"] = true;
  j["spec"]["containers"][0]["ports"] = {{{"containerPort", 8080}},
                                         {{"containerPort", 53}, {"hostPort", 5353}}};
  absl::StatusOr<Pod> pod = ParsePod(j);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->spec.containers[0].ports[0].host_port, 8080);
  EXPECT_EQ(pod->spec.containers[0].ports[1].host_port, 5353);
}

TEST(ParsePodTest, ResourceListsRoundUpToMilli) {
  Json j = MinimalPod();
  j["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "0.0001"}, {"memory", 1000}}}};
  absl::StatusOr<Pod> pod = ParsePod(j);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->spec.containers[0].resources.requests.at("cpu").String(), "1m");
  EXPECT_EQ(pod->spec.containers[0].resources.requests.at("memory").Value(), 1000);
}

TEST(DefaultImagePullPolicyTest, ByTag) {
  struct Case {
    const char* image;
    const char* policy;
  };
  for (const Case& c :
       {Case{"busybox", "Always"}, Case{"busybox:latest", "Always"},
        Case{"busybox:1.36", "IfNotPresent"}, Case{"localhost:5000/busybox", "Always"},
        Case{"localhost:5000/busybox:v1", "IfNotPresent"},
        Case{"busybox@sha256:abcd", "IfNotPresent"},
        Case{"busybox:latest@sha256:abcd", "Always"}}) {
    EXPECT_EQ(DefaultImagePullPolicy(c.image), c.policy) << c.image;
  }
}

TEST(ParsePodTest, KeepsGivenValuesOverDefaults) {
  Json j = Json::parse(R"({
    "metadata": {"name": "p", "namespace": "n", "uid": "u",
                 "labels": {"app": "x"}, "annotations": {"a": "b"},
                 "deletionTimestamp": "2024-01-02T03:04:05Z", "deletionGracePeriodSeconds": 5,
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "nu", "controller": true}]},
    "spec": {
      "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
      "activeDeadlineSeconds": 60, "enableServiceLinks": false, "hostPID": true, "hostIPC": true,
      "shareProcessNamespace": true, "nodeName": "n1", "serviceAccountName": "sa",
      "hostname": "h", "subdomain": "sub", "priority": 2000000000, "runtimeClassName": "crun",
      "os": {"name": "linux"}, "setHostnameAsFQDN": true, "nodeSelector": {"k": "v"},
      "imagePullSecrets": [{"name": "reg"}], "readinessGates": [{"conditionType": "x/ready"}],
      "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a", "b"]}],
      "dnsConfig": {"nameservers": ["9.9.9.9"], "searches": ["s"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
      "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}],
      "overhead": {"ephemeral-storage": "1Gi"},
      "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 3000, "supplementalGroups": [4, 5],
                          "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}],
                          "seccompProfile": {"type": "RuntimeDefault"}},
      "initContainers": [{"name": "side", "image": "i", "restartPolicy": "Always"}],
      "ephemeralContainers": [{"name": "debug", "image": "i", "targetContainerName": "main"}],
      "containers": [{
        "name": "main", "image": "i:latest", "imagePullPolicy": "Never", "command": ["sh"], "args": ["-c", "x"],
        "workingDir": "/w", "stdin": true, "stdinOnce": true, "tty": true,
        "terminationMessagePath": "/tmp/t", "terminationMessagePolicy": "FallbackToLogsOnError",
        "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cm", "optional": true}}, {"secretRef": {"name": "s"}}],
        "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": true}}},
                {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
        "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": true, "subPath": "x", "mountPropagation": "HostToContainer"}],
        "volumeDevices": [{"name": "blk", "devicePath": "/dev/xvda"}],
        "lifecycle": {"postStart": {"exec": {"command": ["true"]}}, "preStop": {"sleep": {"seconds": 3}}},
        "startupProbe": {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 2, "periodSeconds": 1,
                         "failureThreshold": 30, "terminationGracePeriodSeconds": 7},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 80, "scheme": "HTTPS",
                                       "httpHeaders": [{"name": "X", "value": "y"}]}},
        "securityContext": {"privileged": true, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false, "runAsUser": 7,
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}
      }],
      "volumes": [
        {"name": "ed", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "cm", "configMap": {"name": "c", "defaultMode": 256, "optional": true, "items": [{"key": "k", "path": "p", "mode": 384}]}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "claim", "readOnly": true}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "hp", "hostPath": {"path": "/d", "type": "DirectoryOrCreate"}}
      ]
    },
    "status": {
      "phase": "Running", "hostIP": "10.0.0.2", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
      "startTime": "2024-01-02T03:04:00Z", "qosClass": "Burstable",
      "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-02T03:04:06Z"}],
      "containerStatuses": [{"name": "main", "restartCount": 3, "ready": true, "started": true,
                             "containerID": "berth://abc", "image": "i:latest", "imageID": "sha256:1",
                             "state": {"running": {"startedAt": "2024-01-02T03:04:01Z"}},
                             "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "signal": 9,
                                           "finishedAt": "2024-01-02T03:04:00Z", "containerID": "berth://old"}}}],
      "initContainerStatuses": [{"name": "side", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "m"}}}]
    }
  })");
  absl::StatusOr<Pod> pod = ParsePod(j);
  ASSERT_TRUE(pod.ok()) << pod.status();
  const ObjectMeta& m = pod->metadata;
  EXPECT_EQ(pod->Key(), "n/p");
  EXPECT_EQ(m.labels.at("app"), "x");
  EXPECT_EQ(m.annotations.at("a"), "b");
  EXPECT_EQ(m.deletion_timestamp, absl::FromUnixSeconds(1704164645));
  EXPECT_EQ(m.deletion_grace_period_seconds, 5);
  ASSERT_EQ(m.owner_references.size(), 1u);
  EXPECT_TRUE(m.owner_references[0].controller);
  EXPECT_EQ(m.owner_references[0].kind, "Node");

  const PodSpec& s = pod->spec;
  EXPECT_EQ(s.restart_policy, "Never");
  EXPECT_EQ(s.dns_policy, "Default");
  EXPECT_EQ(s.termination_grace_period_seconds, 0);
  EXPECT_EQ(s.active_deadline_seconds, 60);
  EXPECT_FALSE(s.enable_service_links);
  EXPECT_TRUE(s.host_pid);
  EXPECT_TRUE(s.host_ipc);
  EXPECT_EQ(s.share_process_namespace, true);
  EXPECT_EQ(s.priority, 2000000000);
  EXPECT_EQ(s.runtime_class_name, "crun");
  EXPECT_EQ(s.os, "linux");
  EXPECT_TRUE(s.set_hostname_as_fqdn);
  EXPECT_EQ(s.node_selector.at("k"), "v");
  EXPECT_EQ(s.image_pull_secrets, std::vector<std::string>{"reg"});
  EXPECT_EQ(s.readiness_gates, std::vector<std::string>{"x/ready"});
  EXPECT_EQ(s.host_aliases[0].hostnames, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.dns_config->options[0].value, "2");
  EXPECT_FALSE(s.dns_config->options[1].value.has_value());
  EXPECT_EQ(s.tolerations[0].op, "Exists");
  EXPECT_EQ(s.tolerations[0].toleration_seconds, 10);
  EXPECT_EQ(s.overhead.at("ephemeral-storage").Value(), int64_t{1} << 30);
  EXPECT_EQ(s.security_context.fs_group, 3000);
  EXPECT_EQ(s.security_context.supplemental_groups, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(s.security_context.sysctls[0].name, "net.ipv4.ip_forward");
  EXPECT_EQ(s.security_context.seccomp_profile->type, "RuntimeDefault");
  EXPECT_TRUE(IsRestartableInitContainer(s.init_containers[0]));
  EXPECT_EQ(s.ephemeral_containers[0].target_container_name, "main");
  EXPECT_EQ(FindContainer(*pod, "debug"), &s.ephemeral_containers[0]);
  EXPECT_EQ(FindContainer(*pod, "side"), &s.init_containers[0]);
  EXPECT_EQ(FindContainer(*pod, "none"), nullptr);

  const Container& c = s.containers[0];
  EXPECT_EQ(c.image_pull_policy, "Never");
  EXPECT_EQ(c.args, (std::vector<std::string>{"-c", "x"}));
  EXPECT_TRUE(c.stdin && c.stdin_once && c.tty);
  EXPECT_EQ(c.termination_message_path, "/tmp/t");
  EXPECT_EQ(c.termination_message_policy, "FallbackToLogsOnError");
  EXPECT_EQ(c.env_from[0].prefix, "P_");
  EXPECT_TRUE(c.env_from[0].config_map_ref->optional);
  EXPECT_EQ(c.env_from[1].secret_ref->name, "s");
  EXPECT_EQ(c.env[0].value, "1");
  EXPECT_TRUE(c.env[1].value_from->secret_key_ref->optional);
  EXPECT_EQ(c.env[2].value_from->resource_field_ref->divisor.Value(), 1 << 20);
  EXPECT_EQ(c.volume_mounts[0].mount_propagation, "HostToContainer");
  EXPECT_TRUE(c.volume_mounts[0].read_only);
  EXPECT_EQ(c.volume_devices[0].device_path, "/dev/xvda");
  EXPECT_EQ(c.lifecycle->post_start->exec->command, std::vector<std::string>{"true"});
  EXPECT_EQ(c.lifecycle->pre_stop->sleep->seconds, 3);
  EXPECT_EQ(c.startup_probe->tcp_socket->port, (IntOrString{false, 0, "http"}));
  EXPECT_EQ(c.startup_probe->initial_delay_seconds, 2);
  EXPECT_EQ(c.startup_probe->period_seconds, 1);
  EXPECT_EQ(c.startup_probe->failure_threshold, 30);
  EXPECT_EQ(c.startup_probe->termination_grace_period_seconds, 7);
  EXPECT_EQ(c.readiness_probe->http_get->scheme, "HTTPS");
  EXPECT_EQ(c.readiness_probe->http_get->http_headers[0].value, "y");
  EXPECT_EQ(c.security_context->privileged, true);
  EXPECT_EQ(c.security_context->allow_privilege_escalation, false);
  EXPECT_EQ(c.security_context->run_as_user, 7);
  EXPECT_EQ(c.security_context->capabilities->drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(c.security_context->seccomp_profile->localhost_profile, "p.json");
  EXPECT_EQ(c.raw, j["spec"]["containers"][0]);

  EXPECT_EQ(s.volumes[0].empty_dir->medium, "Memory");
  EXPECT_EQ(s.volumes[0].empty_dir->size_limit->Value(), 64 << 20);
  EXPECT_EQ(s.volumes[1].config_map->default_mode, 256);
  EXPECT_TRUE(s.volumes[1].config_map->optional);
  EXPECT_EQ(s.volumes[1].config_map->items[0].mode, 384);
  EXPECT_EQ(s.volumes[2].persistent_volume_claim->claim_name, "claim");
  EXPECT_TRUE(s.volumes[3].ephemeral);
  EXPECT_FALSE(s.volumes[3].empty_dir.has_value());
  EXPECT_EQ(s.volumes[4].host_path->type, "DirectoryOrCreate");

  const PodStatus& st = pod->status;
  EXPECT_EQ(st.phase, "Running");
  EXPECT_EQ(st.pod_ips, std::vector<std::string>{"10.1.0.5"});
  EXPECT_EQ(st.conditions[0].status, "True");
  EXPECT_EQ(st.container_statuses[0].restart_count, 3);
  EXPECT_EQ(st.container_statuses[0].started, true);
  EXPECT_TRUE(st.container_statuses[0].state.running.has_value());
  EXPECT_EQ(st.container_statuses[0].last_state.terminated->exit_code, 137);
  EXPECT_EQ(st.container_statuses[0].last_state.terminated->signal, 9);
  EXPECT_EQ(st.init_container_statuses[0].state.waiting->reason, "CrashLoopBackOff");

  // The object is kept as sent, without the defaults.
  EXPECT_EQ(pod->raw, j);
}

TEST(ParsePodTest, NullIsAbsent) {
  Json j = MinimalPod();
  j["spec"]["restartPolicy"] = nullptr;
  j["spec"]["volumes"] = nullptr;
  j["spec"]["containers"][0]["env"] = nullptr;
  j["status"] = nullptr;
  absl::StatusOr<Pod> pod = ParsePod(j);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->spec.restart_policy, "Always");
  EXPECT_TRUE(pod->spec.volumes.empty());
}

TEST(ParsePodTest, MalformedInputNamesTheField) {
  struct Case {
    const char* patch;  // a JSON merge patch over MinimalPod()
    const char* error;  // the expected message
  };
  const Case kCases[] = {
      {R"({"metadata": {"uid": ""}})", "metadata.uid: missing"},
      {R"({"metadata": "x"})", "metadata: want an object, got string"},
      {R"({"metadata": {"labels": {"a": 1}}})", "metadata.labels[a]: want a string, got integer"},
      {R"({"metadata": {"deletionTimestamp": "yesterday"}})",
       "metadata.deletionTimestamp: not an RFC 3339 time: \"yesterday\""},
      {R"({"spec": []})", "spec: want an object, got array"},
      {R"({"spec": {"containers": {}}})", "spec.containers: want an array, got object"},
      {R"({"spec": {"containers": ["x"]}})", "spec.containers[0]: want an object, got string"},
      {R"({"spec": {"containers": [{"name": 3}]}})",
       "spec.containers[0].name: want a string, got integer"},
      {R"({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}})",
       "spec.containers[0].ports[0].containerPort: want an integer, got string"},
      {R"({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8.5}]}]}})",
       "spec.containers[0].ports[0].containerPort: want an integer, got 8.5"},
      {R"({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 4294967296}]}]}})",
       "spec.containers[0].ports[0].containerPort: integer 4294967296 out of range"},
      {R"({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1x"}}}]}})",
       "spec.containers[0].resources.limits[cpu]: quantity \"1x\": quantities must match the "
       "regular "
       "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
      {R"({"spec": {"containers": [{"name": "c", "resources": {"requests": {"memory": true}}}]}})",
       "spec.containers[0].resources.requests[memory]: want a quantity string, got boolean"},
      {R"({"spec": {"containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1K"}}}]}]}})",
       "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: quantity \"1K\": unable to "
       "parse quantity's suffix"},
      {R"({"spec": {"containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "-1"}}}]}]}})",
       "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: must be positive"},
      {R"({"spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": true}}}]}})",
       "spec.containers[0].livenessProbe.httpGet.port: want an integer, got boolean"},
      {R"({"spec": {"containers": [{"name": "c", "command": ["a", 1]}]}})",
       "spec.containers[0].command[1]: want a string, got integer"},
      {R"({"spec": {"containers": [{"name": "c", "securityContext": {"privileged": "yes"}}]}})",
       "spec.containers[0].securityContext.privileged: want a boolean, got string"},
      {R"({"spec": {"containers": [{"name": "c", "lifecycle": {"preStop": []}}]}})",
       "spec.containers[0].lifecycle.preStop: want an object, got array"},
      {R"({"spec": {"securityContext": {"supplementalGroups": ["x"]}}})",
       "spec.securityContext.supplementalGroups[0]: want an integer, got string"},
      {R"({"spec": {"volumes": [{"name": "v", "emptyDir": {"sizeLimit": "lots"}}]}})",
       "spec.volumes[0].emptyDir.sizeLimit: quantity \"lots\": quantities must match the regular "
       "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
      {R"({"spec": {"volumes": [{"name": "v", "secret": {"defaultMode": "0644"}}]}})",
       "spec.volumes[0].secret.defaultMode: want an integer, got string"},
      {R"({"spec": {"terminationGracePeriodSeconds": "30"}})",
       "spec.terminationGracePeriodSeconds: want an integer, got string"},
      {R"({"spec": {"overhead": {"cpu": []}}})",
       "spec.overhead[cpu]: want a quantity string, got array"},
      {R"({"status": {"containerStatuses": [{"name": "c", "restartCount": -1.5}]}})",
       "status.containerStatuses[0].restartCount: want an integer, got -1.5"},
      {R"({"status": {"startTime": 5}})",
       "status.startTime: want an RFC 3339 time string, got integer"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.patch);
    Json j = MinimalPod();
    j.merge_patch(Json::parse(c.patch));
    absl::StatusOr<Pod> pod = ParsePod(j);
    ASSERT_FALSE(pod.ok());
    EXPECT_EQ(pod.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(pod.status().message()), c.error);
  }
  EXPECT_EQ(std::string(ParsePod(Json::array()).status().message()),
            "pod: want an object, got array");
}

}  // namespace
}  // namespace berth::kubelet::api
