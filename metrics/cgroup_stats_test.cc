#include "metrics/cgroup_stats.h"

#include <gtest/gtest.h>

#include <string>

#include "base/file.h"

namespace berth::metrics {
namespace {

const std::string kTestdata = BERTH_METRICS_TESTDATA;
// Recorded on this project's build host (hybrid: v1 controllers + empty unified).
const std::string kV1Container =
    "/kubepods/burstable/pod6a1d3c1e-5f0b-4c8e-9d7a-2f1c0e4b8a11/3f4e5d6c7b8a";
// Written by hand from Documentation/admin-guide/cgroup-v2.rst.
const std::string kV2Container =
    "/kubepods/burstable/pod7b2e4d2f-6c1a-4d9b-8e8b-3a2d1f5c9b22/9a8b7c6d5e4f";

TEST(ParseFlatKeyedTest, ParsesKeyValueLinesAndSkipsOthers) {
  auto m = ParseFlatKeyed("nr_periods 69\nnr_throttled 45\ngarbage\nkey notanumber\n\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m["nr_periods"], 69u);
  EXPECT_EQ(m["nr_throttled"], 45u);
}

TEST(ParseLimitTest, MaxAndHugeValuesAreUnlimited) {
  EXPECT_EQ(ParseLimit("max\n").value(), std::nullopt);
  EXPECT_EQ(ParseLimit("-1\n").value(), std::nullopt);
  EXPECT_EQ(ParseLimit("9223372036854771712\n").value(), std::nullopt);
  EXPECT_EQ(ParseLimit("268435456\n").value(), std::optional<uint64_t>(268435456));
  EXPECT_EQ(ParseLimit("12k").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseV1BlkioTest, ReadWritePerDeviceIgnoringTotals) {
  auto d = ParseV1Blkio("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\n254:0 Read 5\nTotal 35\n",
                        "254:0 Read 1\n8:0 Read 2\n8:0 Write 3\n8:0 Sync 5\nTotal 6\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].major, 8u);
  EXPECT_EQ(d[0].read_bytes, 10u);
  EXPECT_EQ(d[0].write_bytes, 20u);
  EXPECT_EQ(d[0].read_ops, 2u);
  EXPECT_EQ(d[0].write_ops, 3u);
  EXPECT_EQ(d[1].major, 254u);
  EXPECT_EQ(d[1].read_bytes, 5u);
  EXPECT_EQ(d[1].read_ops, 1u);
}

// The no-op throttle rule that makes v1 blkio counters count: one per whole disk (a
// directory with a queue), none on v2.
TEST(EnableV1BlkioStatsTest, WritesANoOpRulePerDisk) {
  char tmpl[] = "/tmp/berth-blkio-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(MkdirAll(dir + "/cg/memory").ok());
  ASSERT_TRUE(MkdirAll(dir + "/cg/blkio").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/cg/blkio/blkio.throttle.write_bps_device", "").ok());
  ASSERT_TRUE(MkdirAll(dir + "/block/vda/queue").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/block/vda/dev", "254:0\n").ok());
  ASSERT_TRUE(MkdirAll(dir + "/block/nodisk").ok());  // no queue: skipped
  ASSERT_TRUE(WriteFileAtomic(dir + "/block/nodisk/dev", "7:0\n").ok());
  absl::StatusOr<CgroupReader> v1 = CgroupReader::Create(dir + "/cg");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->EnableV1BlkioStats(dir + "/block"), 1);
  EXPECT_EQ(ReadFile(dir + "/cg/blkio/blkio.throttle.write_bps_device").value(), "254:0 0");
  // A rule the kernel refuses (here: the file cannot be written) skips that disk.
  ASSERT_TRUE(MkdirAll(dir + "/cg2/memory").ok());
  ASSERT_TRUE(MkdirAll(dir + "/cg2/blkio/blkio.throttle.write_bps_device").ok());
  EXPECT_EQ(CgroupReader::Create(dir + "/cg2")->EnableV1BlkioStats(dir + "/block"), 0);
  ASSERT_TRUE(MkdirAll(dir + "/v2").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/v2/cgroup.controllers", "io\n").ok());
  EXPECT_EQ(CgroupReader::Create(dir + "/v2")->EnableV1BlkioStats(dir + "/block"), 0);
  ASSERT_TRUE(RemoveAll(dir).ok());
}

TEST(ParseIoStatTest, KeyedFieldsPerDevice) {
  auto d = ParseIoStat("254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n8:16 rbytes=9\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].major, 8u);
  EXPECT_EQ(d[0].minor, 16u);
  EXPECT_EQ(d[0].read_bytes, 9u);
  EXPECT_EQ(d[1].write_bytes, 2u);
  EXPECT_EQ(d[1].read_ops, 3u);
  EXPECT_EQ(d[1].write_ops, 4u);
}

TEST(ParseCpuMaxTest, QuotaOrMax) {
  std::optional<uint64_t> quota;
  uint64_t period = 0;
  ASSERT_TRUE(ParseCpuMax("50000 100000\n", &quota, &period).ok());
  EXPECT_EQ(quota, std::optional<uint64_t>(50000));
  EXPECT_EQ(period, 100000u);
  ASSERT_TRUE(ParseCpuMax("max 100000\n", &quota, &period).ok());
  EXPECT_EQ(quota, std::nullopt);
  EXPECT_FALSE(ParseCpuMax("max\n", &quota, &period).ok());
}

TEST(CpuWeightToSharesTest, MatchesCadvisor) {
  EXPECT_EQ(CpuWeightToShares(1), 2u);
  EXPECT_EQ(CpuWeightToShares(100), 2597u);  // 2 + 99*262142/9999
  EXPECT_EQ(CpuWeightToShares(10000), 262144u);
  EXPECT_EQ(CpuWeightToShares(0), 0u);
}

TEST(CgroupReaderTest, DetectsModes) {
  EXPECT_EQ(CgroupReader::Create(kTestdata + "/v1").value().mode(), CgroupMode::kHybrid);
  EXPECT_EQ(CgroupReader::Create(kTestdata + "/v2").value().mode(), CgroupMode::kV2);
  EXPECT_EQ(CgroupReader::Create(kTestdata + "/proc").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CgroupReaderTest, DetectsHost) {
  if (!PathExists("/sys/fs/cgroup")) GTEST_SKIP() << "no /sys/fs/cgroup";
  absl::StatusOr<CgroupReader> r = CgroupReader::Create();
  ASSERT_TRUE(r.ok()) << r.status();
  // The root cgroup always has CPU accounting.
  absl::StatusOr<CgroupStats> s = r->Read("/");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->has_cpu);
  EXPECT_GT(s->cpu_usage_ns, 0u);
}

// The same recorded trees, found through mountinfo as on a host (base/cgroup_mounts.h).
TEST(CgroupReaderTest, FromMounts) {
  const std::string v1 = kTestdata + "/v1";
  absl::StatusOr<CgroupReader> hybrid = CgroupReader::FromMounts(ParseCgroupMounts(
      "26 25 0:23 / " + v1 +
      "/unified rw - cgroup2 cgroup2 rw\n"
      "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "30 25 0:27 / " +
      v1 +
      "/cpu rw - cgroup cgroup rw,cpu\n"
      "31 25 0:28 / " +
      v1 +
      "/cpuacct rw - cgroup cgroup rw,cpuacct\n"
      "32 25 0:29 / " +
      v1 +
      "/memory rw - cgroup cgroup rw,memory\n"
      "33 25 0:30 / " +
      v1 +
      "/blkio rw - cgroup cgroup rw,blkio\n"
      "34 25 0:31 / " +
      v1 + "/pids rw - cgroup cgroup rw,pids\n"));
  ASSERT_TRUE(hybrid.ok()) << hybrid.status();
  EXPECT_EQ(hybrid->mode(), CgroupMode::kHybrid);
  EXPECT_EQ(hybrid->Dir("memory", "/a"), v1 + "/memory/a");
  EXPECT_EQ(hybrid->Dir("unified", "/a"), v1 + "/unified/a");
  // Reads the same numbers as the directory layout does.
  absl::StatusOr<CgroupStats> a = hybrid->Read(kV1Container);
  absl::StatusOr<CgroupStats> b = CgroupReader::Create(v1).value().Read(kV1Container);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->cpu_usage_ns, b->cpu_usage_ns);
  EXPECT_EQ(a->memory_working_set_bytes, b->memory_working_set_bytes);

  // Co-mounted controllers and a v1-only host.
  absl::StatusOr<CgroupReader> comounted = CgroupReader::FromMounts(
      ParseCgroupMounts("30 25 0:27 / /x/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"));
  ASSERT_TRUE(comounted.ok()) << comounted.status();
  EXPECT_EQ(comounted->mode(), CgroupMode::kV1);
  EXPECT_EQ(comounted->Dir("cpuacct", "/p"), "/x/cpu,cpuacct/p");

  absl::StatusOr<CgroupReader> v2 = CgroupReader::FromMounts(ParseCgroupMounts(
      "26 25 0:23 / " + kTestdata +
      "/v2 rw - cgroup2 cgroup2 rw\n"
      "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"));
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->mode(), CgroupMode::kV2);
  EXPECT_EQ(v2->Dir("memory", "/kubepods"), kTestdata + "/v2/kubepods");

  EXPECT_EQ(CgroupReader::FromMounts({}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CgroupReader::FromMounts(
                ParseCgroupMounts("27 25 0:24 / /s rw - cgroup cgroup rw,name=systemd\n"
                                  "28 25 0:25 / /f rw - cgroup cgroup rw,freezer\n"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CgroupReaderTest, ReadsRecordedV1Container) {
  CgroupReader r = CgroupReader::Create(kTestdata + "/v1").value();
  absl::StatusOr<CgroupStats> st = r.Read(kV1Container);
  ASSERT_TRUE(st.ok()) << st.status();
  const CgroupStats& s = *st;
  EXPECT_TRUE(s.has_cpu);
  EXPECT_EQ(s.cpu_usage_ns, 821443878u);
  EXPECT_EQ(s.cpu_user_ns, 391204337u);
  EXPECT_EQ(s.cpu_system_ns, 362316096u);
  EXPECT_EQ(s.cpu_nr_periods, 69u);
  EXPECT_EQ(s.cpu_nr_throttled, 45u);
  EXPECT_EQ(s.cpu_throttled_time_ns, 2250213764u);
  EXPECT_EQ(s.cpu_shares, 512u);
  EXPECT_EQ(s.cpu_quota_us, std::optional<uint64_t>(10000));
  EXPECT_EQ(s.cpu_period_us, 100000u);

  EXPECT_TRUE(s.has_memory);
  EXPECT_EQ(s.memory_usage_bytes, 79429632u);
  EXPECT_EQ(s.memory_working_set_bytes, 79429632u - 20983808u);
  EXPECT_EQ(s.memory_rss_bytes, 28020736u);
  EXPECT_EQ(s.memory_cache_bytes, 51077120u);
  EXPECT_EQ(s.memory_mapped_file_bytes, 20979712u);
  EXPECT_EQ(s.memory_pgfault, 21797u);
  EXPECT_EQ(s.memory_pgmajfault, 2u);
  EXPECT_EQ(s.memory_oom_kill, 0u);
  EXPECT_EQ(s.memory_failcnt, 0u);
  EXPECT_EQ(s.memory_limit_bytes, std::optional<uint64_t>(268435456));

  EXPECT_TRUE(s.has_pids);
  EXPECT_EQ(s.pids_current, 1u);
  EXPECT_EQ(s.pids_limit, std::optional<uint64_t>(100));

  EXPECT_TRUE(s.has_blkio);
  ASSERT_EQ(s.blkio.size(), 1u);
  EXPECT_EQ(s.blkio[0].major, 254u);
  EXPECT_EQ(s.blkio[0].minor, 0u);
  EXPECT_EQ(s.blkio[0].read_bytes, 41951232u);
  EXPECT_EQ(s.blkio[0].write_bytes, 20971520u);
  EXPECT_EQ(s.blkio[0].read_ops, 54u);
  EXPECT_EQ(s.blkio[0].write_ops, 40u);
}

TEST(CgroupReaderTest, ReadsV2Container) {
  CgroupReader r = CgroupReader::Create(kTestdata + "/v2").value();
  absl::StatusOr<CgroupStats> st = r.Read(kV2Container);
  ASSERT_TRUE(st.ok()) << st.status();
  const CgroupStats& s = *st;
  EXPECT_EQ(s.cpu_usage_ns, 2503117000u);
  EXPECT_EQ(s.cpu_user_ns, 1804233000u);
  EXPECT_EQ(s.cpu_system_ns, 698884000u);
  EXPECT_EQ(s.cpu_nr_periods, 120u);
  EXPECT_EQ(s.cpu_nr_throttled, 31u);
  EXPECT_EQ(s.cpu_throttled_time_ns, 1478223000u);
  EXPECT_EQ(s.cpu_shares, CpuWeightToShares(39));
  EXPECT_EQ(s.cpu_quota_us, std::optional<uint64_t>(50000));
  EXPECT_EQ(s.cpu_period_us, 100000u);
  EXPECT_EQ(s.memory_usage_bytes, 104857600u);
  EXPECT_EQ(s.memory_working_set_bytes, 104857600u - 31457280u);
  EXPECT_EQ(s.memory_rss_bytes, 41943040u);
  EXPECT_EQ(s.memory_cache_bytes, 58720256u);
  EXPECT_EQ(s.memory_mapped_file_bytes, 20971520u);
  EXPECT_EQ(s.memory_pgfault, 53812u);
  EXPECT_EQ(s.memory_pgmajfault, 7u);
  EXPECT_EQ(s.memory_oom_kill, 1u);
  EXPECT_EQ(s.memory_failcnt, 4u);
  EXPECT_EQ(s.memory_limit_bytes, std::optional<uint64_t>(268435456));
  EXPECT_EQ(s.pids_current, 3u);
  EXPECT_EQ(s.pids_limit, std::optional<uint64_t>(1024));
  ASSERT_EQ(s.blkio.size(), 2u);
  EXPECT_EQ(s.blkio[0].major, 8u);
  EXPECT_EQ(s.blkio[1].read_bytes, 8192000u);
  EXPECT_EQ(s.blkio[1].write_ops, 400u);
}

TEST(CgroupReaderTest, V2UnlimitedPodCgroup) {
  CgroupReader r = CgroupReader::Create(kTestdata + "/v2").value();
  absl::StatusOr<CgroupStats> s =
      r.Read("/kubepods/burstable/pod7b2e4d2f-6c1a-4d9b-8e8b-3a2d1f5c9b22");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_quota_us, std::nullopt);
  EXPECT_EQ(s->memory_limit_bytes, std::nullopt);
  EXPECT_EQ(s->pids_limit, std::nullopt);
}

TEST(CgroupReaderTest, MissingCgroupIsNotFoundAndNamesIt) {
  for (const char* mode : {"/v1", "/v2"}) {
    CgroupReader r = CgroupReader::Create(kTestdata + mode).value();
    absl::StatusOr<CgroupStats> s = r.Read("/kubepods/nope");
    EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << mode;
    EXPECT_NE(s.status().message().find("/kubepods/nope"), absl::string_view::npos);
  }
}

TEST(ParseNetDevTest, ColumnsAndLoopbackExcluded) {
  const std::string content =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:  100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n"
      "  eth0: 1000 10 1 2 3 4 5 6 2000 20 7 8 9 10 11 12\n";
  absl::StatusOr<std::vector<InterfaceStats>> st = ParseNetDev(content);
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->size(), 1u);
  const InterfaceStats& i = (*st)[0];
  EXPECT_EQ(i.name, "eth0");
  EXPECT_EQ(i.rx_bytes, 1000u);
  EXPECT_EQ(i.rx_packets, 10u);
  EXPECT_EQ(i.rx_errors, 1u);
  EXPECT_EQ(i.rx_dropped, 2u);
  EXPECT_EQ(i.tx_bytes, 2000u);
  EXPECT_EQ(i.tx_packets, 20u);
  EXPECT_EQ(i.tx_errors, 7u);
  EXPECT_EQ(i.tx_dropped, 8u);
  EXPECT_FALSE(ParseNetDev("h1\nh2\n eth0: 1 2 3\n").ok());
}

TEST(ReadNetworkStatsTest, RecordedPodNamespace) {
  absl::StatusOr<std::vector<InterfaceStats>> st = ReadNetworkStats(4242, kTestdata + "/proc");
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->size(), 1u);
  EXPECT_EQ((*st)[0].name, "eth0");
  EXPECT_EQ((*st)[0].rx_bytes, 90u);
  EXPECT_EQ(ReadNetworkStats(4243, kTestdata + "/proc").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace berth::metrics
