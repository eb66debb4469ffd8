#include "kubelet/server/cri_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace berth::kubelet::server {
namespace {

class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("cri_log_test_", getpid(), "_", counter_++);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "0.log").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Append(const std::string& s) {
    std::ofstream f(path_, std::ios::app);
    f << s;
  }
  std::string Read(const LogOptions& o) {
    std::string out;
    LogSink sink;
    sink.write = [&](std::string_view d) {
      out.append(d);
      return true;
    };
    absl::Status s = ReadContainerLog(path_, o, sink);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string path_;
};

constexpr char kLog[] =
    "2026-01-01T10:00:00.000000001Z stdout F one\n"
    "2026-01-01T10:00:01.5Z stderr F two\n"
    "2026-01-01T10:00:02Z stdout P thr\n"
    "2026-01-01T10:00:02.1Z stdout F ee\n"
    "garbage line\n"
    "2026-01-01T10:00:03Z stdout F four\n";

TEST(ParseCriLogLine, Fields) {
  auto r = ParseCriLogLine("2026-01-01T10:00:00.25+01:00 stderr P a b ");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stream, "stderr");
  EXPECT_TRUE(r->partial);
  EXPECT_EQ(r->content, "a b ");
  EXPECT_EQ(r->timestamp, absl::FromUnixMillis(1767258000250));
  EXPECT_FALSE(ParseCriLogLine("2026-01-01T10:00:00Z stdin F x").ok());
  EXPECT_FALSE(ParseCriLogLine("yesterday stdout F x").ok());
  EXPECT_FALSE(ParseCriLogLine("2026-01-01T10:00:00Z stdout X x").ok());
  auto empty = ParseCriLogLine("2026-01-01T10:00:00Z stdout F");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->content, "");
}

TEST_F(CriLogTest, WholeFileJoinsPartialsAndSkipsGarbage) {
  Append(kLog);
  EXPECT_EQ(Read({}), "one\ntwo\nthree\nfour\n");
}

TEST_F(CriLogTest, TailSinceTimestampsLimit) {
  Append(kLog);
  LogOptions tail;
  tail.tail_lines = 2;
  EXPECT_EQ(Read(tail), "four\n");  // the last two records: the garbage line and "four"
  tail.tail_lines = 3;
  EXPECT_EQ(Read(tail), "ee\nfour\n");
  tail.tail_lines = 4;
  EXPECT_EQ(Read(tail), "three\nfour\n");
  tail.tail_lines = 100;
  EXPECT_EQ(Read(tail), "one\ntwo\nthree\nfour\n");
  tail.tail_lines = 0;
  EXPECT_EQ(Read(tail), "");

  LogOptions since;
  since.since = absl::FromUnixSeconds(1767261601);  // 10:00:01
  EXPECT_EQ(Read(since), "two\nthree\nfour\n");

  LogOptions ts;
  ts.timestamps = true;
  ts.tail_lines = 1;
  EXPECT_EQ(Read(ts), "2026-01-01T10:00:03Z four\n");
  ts.tail_lines = 5;
  EXPECT_EQ(Read(ts),
            "2026-01-01T10:00:01.5Z two\n2026-01-01T10:00:02Z thr2026-01-01T10:00:02.1Z ee\n"
            "2026-01-01T10:00:03Z four\n");

  LogOptions limit;
  limit.limit_bytes = 6;
  EXPECT_EQ(Read(limit), "one\ntw");
}

TEST_F(CriLogTest, ParseLogOptions) {
  std::map<std::string, std::string> q = {
      {"follow", "true"}, {"tailLines", "3"}, {"sinceSeconds", "10"}, {"timestamps", "1"}};
  auto get = [&](const std::string& k) -> std::optional<std::string> {
    auto it = q.find(k);
    return it == q.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  absl::Time now = absl::FromUnixSeconds(1000);
  auto o = ParseLogOptions(get, now);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->follow);
  EXPECT_TRUE(o->timestamps);
  EXPECT_EQ(o->tail_lines, 3);
  EXPECT_EQ(o->since, absl::FromUnixSeconds(990));
  q["sinceTime"] = "2026-01-01T10:00:00Z";
  EXPECT_FALSE(ParseLogOptions(get, now).ok());  // both since forms
  q.erase("sinceSeconds");
  o = ParseLogOptions(get, now);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->since, absl::FromUnixSeconds(1767261600));
  q["tailLines"] = "-1";
  EXPECT_FALSE(ParseLogOptions(get, now).ok());
  q["tailLines"] = "1";
  q["limitBytes"] = "0";
  EXPECT_FALSE(ParseLogOptions(get, now).ok());
}

TEST_F(CriLogTest, FollowSeesNewLinesAndRotationAndStopsWithContainer) {
  Append("2026-01-01T10:00:00Z stdout F first\n");
  std::mutex mu;
  std::string out;
  std::atomic<bool> running{true};
  LogOptions o;
  o.follow = true;
  LogSink sink;
  sink.write = [&](std::string_view d) {
    std::lock_guard<std::mutex> l(mu);
    out.append(d);
    return true;
  };
  sink.container_running = [&] { return running.load(); };
  sink.poll_interval = absl::Milliseconds(50);
  absl::Status result;
  std::thread reader([&] { result = ReadContainerLog(path_, o, sink); });
  auto wait_for = [&](const std::string& want) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (out == want) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> l(mu);
    ADD_FAILURE() << "output is '" << out << "', want '" << want << "'";
    return false;
  };
  EXPECT_TRUE(wait_for("first\n"));
  Append("2026-01-01T10:00:01Z stdout F second\n");
  EXPECT_TRUE(wait_for("first\nsecond\n"));
  // Rotation: the file is renamed away and a new one is created at the path.
  std::filesystem::rename(path_, path_ + ".20260101-100002");
  Append("2026-01-01T10:00:02Z stdout F third\n");
  EXPECT_TRUE(wait_for("first\nsecond\nthird\n"));
  running = false;
  reader.join();
  EXPECT_TRUE(result.ok()) << result;
}

TEST_F(CriLogTest, FollowStopsWhenCancelledOrClientGone) {
  Append("2026-01-01T10:00:00Z stdout F first\n");
  LogOptions o;
  o.follow = true;
  std::atomic<bool> cancel{false};
  LogSink sink;
  sink.write = [](std::string_view) { return true; };
  sink.container_running = [] { return true; };
  sink.cancelled = [&] { return cancel.load(); };
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  EXPECT_TRUE(ReadContainerLog(path_, o, sink).ok());
  stopper.join();
  // A failing write ends the read at once.
  sink.write = [](std::string_view) { return false; };
  sink.cancelled = [] { return false; };
  EXPECT_TRUE(ReadContainerLog(path_, o, sink).ok());
  EXPECT_TRUE(absl::IsNotFound(ReadContainerLog(path_ + ".missing", o, sink)));
}

}  // namespace
}  // namespace berth::kubelet::server
