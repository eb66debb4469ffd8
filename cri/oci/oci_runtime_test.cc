// Unit tests of OciRuntime's parsing and error mapping, with a fake runtime script (no root).
#include "cri/oci/oci_runtime.h"

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::cri::oci {
namespace {

class OciRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-oci-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { RemoveAll(dir_).IgnoreError(); }

  // A fake runtime that answers like runc: `state` prints JSON for "c1" and an error for
  // anything else; `kill` reports "container not running"; `delete` says "does not exist".
  std::string FakeRuntime() {
    std::string path = JoinPath(dir_, "fake-runc");
    std::string script = R"(#!/bin/sh
while [ "$1" = --root ]; do shift 2; done
cmd=$1; shift
case "$cmd" in
  --version) echo "fake-runc 1.0"; exit 0 ;;
  state)
    if [ "$1" = c1 ]; then echo '{"ociVersion":"1.0.2","id":"c1","pid":42,"status":"running"}'; exit 0; fi
    echo "time=\"2024-01-01T00:00:00Z\" level=error msg=\"container does not exist\"" >&2; exit 1 ;;
  kill) echo "time=\"x\" level=error msg=\"container not running\"" >&2; exit 1 ;;
  delete) echo "time=\"x\" level=error msg=\"container does not exist\"" >&2; exit 1 ;;
  start) echo "time=\"x\" level=error msg=\"cannot start a container that has stopped\"" >&2; exit 1 ;;
  update) cat > "$(dirname "$0")/update.json"; exit 0 ;;
esac
exit 3
)";
    EXPECT_TRUE(WriteFileAtomic(path, script, 0755).ok());
    return path;
  }

  OciRuntime Runtime() {
    OciRuntimeOptions o;
    o.runtime_path = FakeRuntime();
    o.runtime_root = JoinPath(dir_, "root");
    o.conmon_path = "/bin/true";
    o.conmon_state_dir = JoinPath(dir_, "conmon");
    return OciRuntime(o);
  }

  std::string dir_;
};

TEST_F(OciRuntimeTest, ReadExitFile) {
  EXPECT_EQ(OciRuntime::ReadExitFile(dir_, "c1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "c1"), "137").ok());
  auto code = OciRuntime::ReadExitFile(dir_, "c1");
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 137);
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "c2"), "").ok());
  EXPECT_EQ(OciRuntime::ReadExitFile(dir_, "c2").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "c3"), "garbage").ok());
  EXPECT_EQ(OciRuntime::ReadExitFile(dir_, "c3").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(OciRuntimeTest, ReadyNamesMissingBinary) {
  OciRuntimeOptions o;
  o.runtime_path = "berth-no-such-runtime";
  OciRuntime rt(o);
  absl::Status s = rt.Ready();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("berth-no-such-runtime"), std::string::npos) << s;
  EXPECT_TRUE(Runtime().Ready().ok());
}

TEST_F(OciRuntimeTest, StateParsesJsonAndMapsNotFound) {
  OciRuntime rt = Runtime();
  auto st = rt.State("c1");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, "running");
  EXPECT_EQ(st->pid, 42);
  auto missing = rt.State("c2");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("c2: container does not exist"), std::string::npos)
      << missing.status();
}

TEST_F(OciRuntimeTest, KillAndDeleteOfGoneContainerAreOk) {
  OciRuntime rt = Runtime();
  EXPECT_TRUE(rt.Kill("c1", 15).ok());
  EXPECT_TRUE(rt.Delete("c1").ok());
  absl::Status s = rt.Start("c1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("cannot start a container that has stopped"), std::string::npos) << s;
}

TEST_F(OciRuntimeTest, UpdateResourcesFeedsJsonOnStdin) {
  OciRuntime rt = Runtime();
  ASSERT_TRUE(rt.UpdateResources("c1", R"({"pids":{"limit":10}})").ok());
  auto got = ReadFile(JoinPath(dir_, "update.json"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, R"({"pids":{"limit":10}})");
}

TEST_F(OciRuntimeTest, CreateValidatesOptions) {
  OciRuntime rt = Runtime();
  CreateOptions c;
  c.id = "a/b";
  c.bundle = dir_;
  c.exit_dir = dir_;
  EXPECT_EQ(rt.Create(c).status().code(), absl::StatusCode::kInvalidArgument);
  OciRuntime no_state(OciRuntimeOptions{});
  c.id = "c1";
  EXPECT_EQ(no_state.Create(c).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::cri::oci
