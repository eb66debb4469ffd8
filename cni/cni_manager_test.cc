#include "cni/cni_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"

namespace berth::cni {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fake CNI plugin: a shell script that records its environment and stdin per command
// into the test's temp dir and prints <type>.<CMD>.out, writes <type>.<CMD>.stderr to
// stderr and exits with <type>.<CMD>.rc (0 when absent).
constexpr char kFakePlugin[] = R"SH(#!/bin/sh
D=%DIR%
T=$(basename "$0")
echo "$T $CNI_COMMAND" >> "$D/calls.log"
cat > "$D/$T.$CNI_COMMAND.stdin"
env > "$D/$T.$CNI_COMMAND.env"
[ -f "$D/$T.sleep" ] && exec sleep "$(cat "$D/$T.sleep")"
[ -f "$D/$T.$CNI_COMMAND.kill" ] && kill -"$(cat "$D/$T.$CNI_COMMAND.kill")" $$
[ -f "$D/$T.$CNI_COMMAND.out" ] && cat "$D/$T.$CNI_COMMAND.out"
[ -f "$D/$T.$CNI_COMMAND.stderr" ] && cat "$D/$T.$CNI_COMMAND.stderr" >&2
rc=0
[ -f "$D/$T.$CNI_COMMAND.rc" ] && rc=$(cat "$D/$T.$CNI_COMMAND.rc")
exit $rc
)SH";

constexpr char kResultA[] =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],)"
    R"("ips":[{"address":"fd00::7/64","interface":0},{"address":"10.88.0.7/16","gateway":"10.88.0.1","interface":0}],)"
    R"("routes":[{"dst":"0.0.0.0/0"}],"dns":{}})";
constexpr char kResultB[] =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],)"
    R"("ips":[{"address":"10.88.0.7/16","gateway":"10.88.0.1","interface":0},{"address":"fd00::7/64","interface":0}],)"
    R"("routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.96.0.10"]}})";

class CniManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cni_manager_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    conf_dir_ = dir_ + "/net.d";
    bin_dir_ = dir_ + "/bin";
    cache_dir_ = dir_ + "/cache";
    ASSERT_TRUE(MkdirAll(conf_dir_).ok());
    ASSERT_TRUE(MkdirAll(bin_dir_).ok());
    std::string script = kFakePlugin;
    script.replace(script.find("%DIR%"), 5, dir_);
    for (const char* t : {"fake-a", "fake-b", "fake-c"}) {
      ASSERT_TRUE(WriteFileAtomic(JoinPath(bin_dir_, t), script, 0755).ok());
    }
    req_.container_id = "sb1";
    req_.netns_path = "/run/netns/p";
    req_.ifname = "eth0";
    req_.pod_name = "web";
    req_.pod_namespace = "default";
    req_.pod_uid = "uid-1";
    req_.port_mappings = {{8080, 80, "tcp", ""}, {5353, 53, "udp", "127.0.0.1"}};
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  CniManagerOptions Opts() {
    return {.conf_dir = conf_dir_,
            .bin_dirs = {dir_ + "/nonexistent", bin_dir_},
            .cache_dir = cache_dir_,
            .plugin_timeout = std::chrono::seconds(10)};
  }
  void WriteConf(const std::string& name, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(JoinPath(conf_dir_, name), data).ok());
  }
  void WriteList(const std::string& version = "1.0.0") {
    WriteConf("10-test.conflist",
              absl::StrCat(R"({"name":"testnet","cniVersion":")", version, R"(","plugins":[)",
                           R"({"type":"fake-a","subnet":"10.88.0.0/16"},)",
                           R"({"type":"fake-b","capabilities":{"portMappings":true}}]})"));
  }
  void Set(const std::string& file, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, file), data).ok());
  }
  std::string Get(const std::string& file) {
    auto s = ReadFile(JoinPath(dir_, file));
    return s.ok() ? *s : "";
  }
  nlohmann::json Stdin(const std::string& plugin, const std::string& cmd) {
    return nlohmann::json::parse(Get(plugin + "." + cmd + ".stdin"), nullptr, false);
  }
  std::vector<std::string> Calls() {
    std::vector<std::string> v = absl::StrSplit(Get("calls.log"), '\n', absl::SkipEmpty());
    return v;
  }
  std::string Env(const std::string& plugin, const std::string& cmd, const std::string& key) {
    for (absl::string_view line : absl::StrSplit(Get(plugin + "." + cmd + ".env"), '\n')) {
      if (absl::StartsWith(line, key + "=")) return std::string(line.substr(key.size() + 1));
    }
    return "<unset>";
  }

  std::string dir_, conf_dir_, bin_dir_, cache_dir_;
  AttachRequest req_;
};

TEST_F(CniManagerTest, ReadyReportsMissingConfigAndReloads) {
  CniManager m(Opts());
  absl::Status s = m.Ready();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no network config found in " + conf_dir_));
  WriteList();
  EXPECT_TRUE(m.Ready().ok()) << m.Ready();
  EXPECT_EQ(m.CurrentNetwork()->name, "testnet");
  // A lexically earlier file takes over.
  WriteConf("05-other.conf", R"({"name":"other","cniVersion":"0.4.0","type":"fake-c"})");
  ASSERT_TRUE(m.CurrentNetwork().ok());
  EXPECT_EQ(m.CurrentNetwork()->name, "other");
  ASSERT_EQ(unlink((conf_dir_ + "/05-other.conf").c_str()), 0);
  EXPECT_EQ(m.CurrentNetwork()->name, "testnet");
}

TEST_F(CniManagerTest, ReadyNeedsPluginBinaries) {
  WriteConf("10-x.conflist",
            R"({"name":"x","cniVersion":"1.0.0","plugins":[{"type":"fake-a"},{"type":"nope"}]})");
  CniManager m(Opts());
  absl::Status s = m.Ready();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("plugin nope not found"));
}

TEST_F(CniManagerTest, AddPassesEnvStdinAndChainsPrevResult) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD"));

  EXPECT_EQ(Env("fake-a", "ADD", "CNI_COMMAND"), "ADD");
  EXPECT_EQ(Env("fake-a", "ADD", "CNI_CONTAINERID"), "sb1");
  EXPECT_EQ(Env("fake-a", "ADD", "CNI_NETNS"), "/run/netns/p");
  EXPECT_EQ(Env("fake-a", "ADD", "CNI_IFNAME"), "eth0");
  EXPECT_EQ(Env("fake-a", "ADD", "CNI_ARGS"),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
            "K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid-1");
  EXPECT_EQ(Env("fake-a", "ADD", "CNI_PATH"), dir_ + "/nonexistent:" + bin_dir_);

  nlohmann::json a = Stdin("fake-a", "ADD");
  ASSERT_FALSE(a.is_discarded());
  EXPECT_EQ(a["name"], "testnet");
  EXPECT_EQ(a["cniVersion"], "1.0.0");
  EXPECT_EQ(a["type"], "fake-a");
  EXPECT_EQ(a["subnet"], "10.88.0.0/16");
  EXPECT_FALSE(a.contains("prevResult"));
  EXPECT_FALSE(a.contains("runtimeConfig"));  // fake-a declares no capabilities

  nlohmann::json b = Stdin("fake-b", "ADD");
  ASSERT_FALSE(b.is_discarded());
  EXPECT_EQ(b["prevResult"]["ips"][1]["address"], "10.88.0.7/16");
  EXPECT_EQ(b["prevResult"]["interfaces"][0]["sandbox"], "/run/netns/p");
  EXPECT_EQ(b["runtimeConfig"]["portMappings"],
            nlohmann::json::parse(R"([{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}])"));

  EXPECT_EQ(r->ips, (std::vector<std::string>{"10.88.0.7", "fd00::7"}));
  nlohmann::json raw = nlohmann::json::parse(r->raw_json, nullptr, false);
  EXPECT_EQ(raw["dns"]["nameservers"][0], "10.96.0.10");  // the last plugin's result
}

TEST_F(CniManagerTest, BandwidthGoesOnlyToPluginsWithTheCapability) {
  WriteConf("10-bw.conflist", R"({"name":"bw","cniVersion":"1.0.0","plugins":[{"type":"fake-a"},)"
                              R"({"type":"fake-b","capabilities":{"bandwidth":true}}]})");
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  req_.bandwidth.ingress_rate = 1000000;
  req_.bandwidth.ingress_burst = 2147483647;
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(Stdin("fake-a", "ADD").contains("runtimeConfig"));
  nlohmann::json b = Stdin("fake-b", "ADD");
  EXPECT_EQ(b["runtimeConfig"]["bandwidth"],
            nlohmann::json::parse(R"({"ingressRate":1000000,"ingressBurst":2147483647})"));
}

TEST_F(CniManagerTest, ConvertsResultsToListVersion) {
  WriteList("0.4.0");
  // A plugin printing a 1.0.0 result for a 0.4.0 list, the next a 0.3.1 one.
  Set("fake-a.ADD.out", R"({"cniVersion":"1.0.0","ips":[{"address":"10.5.0.2/24"}]})");
  Set("fake-b.ADD.out",
      R"({"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.5.0.2/24"}]})");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_TRUE(r.ok()) << r.status();
  nlohmann::json b = Stdin("fake-b", "ADD");
  EXPECT_EQ(b["prevResult"]["cniVersion"], "0.4.0");
  EXPECT_EQ(b["prevResult"]["ips"][0]["version"], "4");
  nlohmann::json raw = nlohmann::json::parse(r->raw_json, nullptr, false);
  EXPECT_EQ(raw["cniVersion"], "0.4.0");
  EXPECT_EQ(r->ips, std::vector<std::string>{"10.5.0.2"});
}

TEST_F(CniManagerTest, Converts040ResultsFor100List) {
  WriteList("1.0.0");
  Set("fake-a.ADD.out",
      R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.6.0.2/24"}]})");
  Set("fake-b.ADD.out",
      R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.6.0.2/24"}]})");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_TRUE(r.ok()) << r.status();
  nlohmann::json b = Stdin("fake-b", "ADD");
  EXPECT_EQ(b["prevResult"]["cniVersion"], "1.0.0");
  EXPECT_FALSE(b["prevResult"]["ips"][0].contains("version"));
  EXPECT_EQ(nlohmann::json::parse(r->raw_json)["cniVersion"], "1.0.0");
}

TEST_F(CniManagerTest, FailedAddSurfacesErrorAndRollsBack) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out",
      R"({"cniVersion":"1.0.0","code":7,"msg":"failed to set up port map","details":"iptables: no chain"})");
  Set("fake-b.ADD.stderr", "debug: something went wrong\n");
  Set("fake-b.ADD.rc", "1");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_FALSE(r.ok());
  std::string msg(r.status().message());
  EXPECT_THAT(msg, HasSubstr("CNI ADD plugin fake-b for sandbox sb1: failed to set up port map: "
                             "iptables: no chain"));
  EXPECT_THAT(msg, HasSubstr("something went wrong"));
  // DEL of the whole list, in reverse order, with the last good result as prevResult.
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-b DEL", "fake-a DEL"));
  EXPECT_EQ(Stdin("fake-a", "DEL")["prevResult"]["ips"][1]["address"], "10.88.0.7/16");
  EXPECT_FALSE(PathExists(m.CachePath("testnet", req_)));
}

TEST_F(CniManagerTest, FailureWithoutErrorJsonUsesStderr) {
  WriteList();
  Set("fake-a.ADD.stderr", "segfault in plugin\n");
  Set("fake-a.ADD.rc", "2");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("CNI ADD plugin fake-a for sandbox sb1: segfault in plugin"));
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b DEL", "fake-a DEL"));
}

TEST_F(CniManagerTest, PluginKilledBySignalFailsAddAndRollsBack) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.kill", "SEGV");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("CNI ADD plugin fake-b for sandbox sb1: killed by signal 11"));
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-b DEL", "fake-a DEL"));
  EXPECT_FALSE(PathExists(m.CachePath("testnet", req_)));
}

TEST_F(CniManagerTest, DnsAndIpRangesGoOnlyToPluginsWithTheCapability) {
  WriteConf("10-caps.conflist", R"({"name":"caps","cniVersion":"1.0.0","plugins":[)"
                                R"({"type":"fake-a","capabilities":{"ipRanges":true}},)"
                                R"({"type":"fake-b","capabilities":{"dns":true}}]})");
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  req_.dns.servers = {"10.96.0.10"};
  req_.dns.searches = {"default.svc.cluster.local", "svc.cluster.local"};
  req_.dns.options = {"ndots:5"};
  req_.ip_range_subnets = {"10.244.1.0/24", "fd00:10:244:1::/64"};
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_TRUE(r.ok()) << r.status();
  nlohmann::json a = Stdin("fake-a", "ADD");
  EXPECT_EQ(a["runtimeConfig"],
            nlohmann::json::parse(R"({"ipRanges":[[{"subnet":"10.244.1.0/24"}],)"
                                  R"([{"subnet":"fd00:10:244:1::/64"}]]})"));
  nlohmann::json b = Stdin("fake-b", "ADD");
  EXPECT_EQ(b["runtimeConfig"],
            nlohmann::json::parse(R"({"dns":{"servers":["10.96.0.10"],)"
                                  R"("searches":["default.svc.cluster.local","svc.cluster.local"],)"
                                  R"("options":["ndots:5"]}})"));
  // Both addresses of a dual-stack result, IPv4 first.
  EXPECT_EQ(r->ips, (std::vector<std::string>{"10.88.0.7", "fd00::7"}));
  // Without values, the capabilities add nothing.
  AttachRequest plain = req_;
  plain.container_id = "sb2";
  plain.dns = {};
  plain.ip_range_subnets.clear();
  ASSERT_TRUE(m.Add(plain).ok());
  EXPECT_FALSE(Stdin("fake-a", "ADD").contains("runtimeConfig"));
  EXPECT_FALSE(Stdin("fake-b", "ADD").contains("runtimeConfig"));
}

TEST_F(CniManagerTest, GcDeletesStaleAttachmentsAndRunsPluginGc) {
  WriteList("1.1.0");
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  AttachRequest keep = req_;
  keep.container_id = "sbkeep";
  ASSERT_TRUE(m.Add(req_).ok());
  ASSERT_TRUE(m.Add(keep).ok());
  ASSERT_TRUE(m.Gc({keep}).ok());
  // sb1 is not valid: DEL with its cached result and port mappings; sbkeep stays.
  EXPECT_FALSE(PathExists(m.CachePath("testnet", req_)));
  EXPECT_TRUE(PathExists(m.CachePath("testnet", keep)));
  EXPECT_EQ(Env("fake-a", "DEL", "CNI_CONTAINERID"), "sb1");
  EXPECT_EQ(Stdin("fake-b", "DEL")["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  // Then GC of every plugin with the valid attachments, only CNI_COMMAND and CNI_PATH set.
  EXPECT_EQ(Stdin("fake-a", "GC")["cni.dev/valid-attachments"],
            nlohmann::json::parse(R"([{"containerID":"sbkeep","ifname":"eth0"}])"));
  EXPECT_EQ(Env("fake-b", "GC", "CNI_CONTAINERID"), "<unset>");
  EXPECT_EQ(Calls().back(), "fake-b GC");
}

TEST_F(CniManagerTest, GcSkipsPluginGcBefore11) {
  WriteList("1.0.0");
  CniManager m(Opts());
  ASSERT_TRUE(m.Gc({}).ok());
  EXPECT_TRUE(Calls().empty());
}

TEST_F(CniManagerTest, InvalidResultFailsAdd) {
  WriteList();
  Set("fake-a.ADD.out", "not json");
  CniManager m(Opts());
  auto r = m.Add(req_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("CNI ADD plugin fake-a for sandbox sb1"));
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b DEL", "fake-a DEL"));
}

TEST_F(CniManagerTest, CacheSurvivesRestartAndDelIsIdempotent) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  std::string cache;
  {
    CniManager m(Opts());
    ASSERT_TRUE(m.Add(req_).ok());
    cache = m.CachePath("testnet", req_);
  }
  EXPECT_EQ(cache, cache_dir_ + "/testnet-sb1-eth0");
  auto bytes = ReadFile(cache);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  nlohmann::json c = nlohmann::json::parse(*bytes, nullptr, false);
  EXPECT_EQ(c["containerId"], "sb1");
  EXPECT_EQ(c["ifName"], "eth0");
  EXPECT_EQ(c["config"]["name"], "testnet");
  EXPECT_EQ(c["result"]["dns"]["nameservers"][0], "10.96.0.10");

  // The config changes and berth restarts: DEL uses the cached config and result.
  ASSERT_EQ(unlink((conf_dir_ + "/10-test.conflist").c_str()), 0);
  WriteConf("10-new.conflist",
            R"({"name":"newnet","cniVersion":"1.0.0","plugins":[{"type":"fake-c"}]})");
  // The DEL request carries only IDs (as after a restart): the port mappings come from the
  // cache, or portmap would leave its NAT rules behind.
  CniManager m2(Opts());
  AttachRequest del = req_;
  del.port_mappings.clear();
  ASSERT_TRUE(m2.Del(del).ok());
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-b DEL", "fake-a DEL"));
  EXPECT_EQ(Stdin("fake-b", "DEL")["prevResult"]["dns"]["nameservers"][0], "10.96.0.10");
  EXPECT_EQ(Stdin("fake-b", "DEL")["runtimeConfig"]["portMappings"],
            nlohmann::json::parse(
                R"([{"hostPort":8080,"containerPort":80,"protocol":"tcp"},)"
                R"({"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}])"));
  EXPECT_EQ(Env("fake-b", "DEL", "CNI_COMMAND"), "DEL");
  EXPECT_FALSE(PathExists(cache));

  // DEL again: no cache; the current network's plugins run without prevResult.
  ASSERT_TRUE(m2.Del(req_).ok());
  EXPECT_EQ(Calls().back(), "fake-c DEL");
  EXPECT_FALSE(Stdin("fake-c", "DEL").contains("prevResult"));
  ASSERT_TRUE(m2.Del(req_).ok());
}

TEST_F(CniManagerTest, DelWithoutConfigOrCacheIsOk) {
  CniManager m(Opts());
  EXPECT_TRUE(m.Del(req_).ok());
  EXPECT_TRUE(Calls().empty());
}

TEST_F(CniManagerTest, DelErrorKeepsCacheAndRunsAllPlugins) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  ASSERT_TRUE(m.Add(req_).ok());
  Set("fake-b.DEL.out", R"({"code":999,"msg":"busy"})");
  Set("fake-b.DEL.rc", "1");
  absl::Status s = m.Del(req_);
  EXPECT_THAT(std::string(s.message()), HasSubstr("CNI DEL plugin fake-b for sandbox sb1: busy"));
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-b DEL", "fake-a DEL"));
  EXPECT_TRUE(PathExists(m.CachePath("testnet", req_)));
  ASSERT_EQ(unlink((dir_ + "/fake-b.DEL.rc").c_str()), 0);
  EXPECT_TRUE(m.Del(req_).ok());
  EXPECT_FALSE(PathExists(m.CachePath("testnet", req_)));
}

TEST_F(CniManagerTest, CheckUsesCachedResult) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  EXPECT_EQ(m.Check(req_).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(m.Add(req_).ok());
  ASSERT_TRUE(m.Check(req_).ok());
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-a CHECK", "fake-b CHECK"));
  EXPECT_EQ(Stdin("fake-a", "CHECK")["prevResult"]["dns"]["nameservers"][0], "10.96.0.10");
  Set("fake-b.CHECK.out", R"({"code":5,"msg":"interface eth0 missing"})");
  Set("fake-b.CHECK.rc", "1");
  EXPECT_THAT(std::string(m.Check(req_).message()),
              HasSubstr("CNI CHECK plugin fake-b for sandbox sb1: interface eth0 missing"));
}

TEST_F(CniManagerTest, CheckSkippedWhenDisabled) {
  WriteConf("10-x.conflist", R"({"name":"x","cniVersion":"1.0.0","disableCheck":true,
      "plugins":[{"type":"fake-a"}]})");
  Set("fake-a.ADD.out", kResultA);
  CniManager m(Opts());
  ASSERT_TRUE(m.Add(req_).ok());
  EXPECT_TRUE(m.Check(req_).ok());
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD"));
}

TEST_F(CniManagerTest, PluginTimeoutIsDeadlineExceeded) {
  WriteConf("10-x.conflist", R"({"name":"x","cniVersion":"1.0.0","plugins":[{"type":"fake-a"}]})");
  Set("fake-a.sleep", "5");
  CniManagerOptions o = Opts();
  o.plugin_timeout = std::chrono::milliseconds(200);
  CniManager m(o);
  auto r = m.Add(req_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("CNI ADD plugin fake-a for sandbox sb1"));
}

TEST_F(CniManagerTest, CorruptCacheDoesNotBlockDel) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  ASSERT_TRUE(m.Add(req_).ok());
  std::string cache = m.CachePath("testnet", req_);
  ASSERT_TRUE(WriteFileAtomic(cache, "{truncated").ok());
  EXPECT_EQ(m.Check(req_).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(m.Del(req_).ok());
  EXPECT_THAT(Calls(), ElementsAre("fake-a ADD", "fake-b ADD", "fake-b DEL", "fake-a DEL"));
  EXPECT_FALSE(Stdin("fake-a", "DEL").contains("prevResult"));
  EXPECT_FALSE(PathExists(cache));
}

TEST_F(CniManagerTest, RejectsInvalidIds) {
  WriteList();
  CniManager m(Opts());
  req_.container_id = "../../etc/passwd";
  EXPECT_EQ(m.Add(req_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Del(req_).code(), absl::StatusCode::kInvalidArgument);
  req_.container_id = "sb1";
  req_.ifname = "averyveryverylongifname";
  EXPECT_EQ(m.Add(req_).status().code(), absl::StatusCode::kInvalidArgument);
  req_.ifname = "eth/0";
  EXPECT_EQ(m.Check(req_).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Calls().empty());
}

TEST_F(CniManagerTest, ReadyRunsStatusFor11Lists) {
  WriteList("1.1.0");
  CniManager m(Opts());
  ASSERT_TRUE(m.Ready().ok()) << m.Ready();
  EXPECT_THAT(Calls(), ElementsAre("fake-a STATUS", "fake-b STATUS"));
  EXPECT_EQ(Env("fake-a", "STATUS", "CNI_CONTAINERID"), "<unset>");
  EXPECT_EQ(Env("fake-a", "STATUS", "CNI_PATH"), dir_ + "/nonexistent:" + bin_dir_);
  EXPECT_EQ(Stdin("fake-b", "STATUS")["cniVersion"], "1.1.0");
  Set("fake-b.STATUS.out", R"({"code":50,"msg":"no IP addresses available"})");
  Set("fake-b.STATUS.rc", "1");
  absl::Status s = m.Ready();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("CNI STATUS plugin fake-b of network testnet: no IP addresses available"));
}

TEST_F(CniManagerTest, ReadyDoesNotRunStatusBefore11) {
  WriteList("1.0.0");
  CniManager m(Opts());
  ASSERT_TRUE(m.Ready().ok());
  EXPECT_TRUE(Calls().empty());
}

TEST_F(CniManagerTest, ConcurrentAttachmentsAreIndependent) {
  WriteList();
  Set("fake-a.ADD.out", kResultA);
  Set("fake-b.ADD.out", kResultB);
  CniManager m(Opts());
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      AttachRequest r = req_;
      r.container_id = absl::StrCat("sb-thread-", i);
      auto added = m.Add(r);
      results[i] = added.ok() ? m.Del(r) : added.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Calls().size(), 6u * 4u);
  auto cache = ListDir(cache_dir_);
  ASSERT_TRUE(cache.ok());
  EXPECT_TRUE(cache->empty());
}

}  // namespace
}  // namespace berth::cni
