// Remote command (exec/attach) end to end through the in-process server: every protocol
// version's Status handling, channel numbering, stdin, resize and the v5 CLOSE signal.
#include "cri/streaming/remote_command.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/streaming/status.h"
#include "cri/streaming/testing/clients.h"
#include "cri/streaming/testing/fake_streaming_runtime.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace berth::cri::streaming {
namespace {

using testing::FakeStreamingRuntime;
using testing::SpdyClient;
using testing::WsClient;

// Prints "out" on stdout and "err" on stderr, exits 0.
int OutAndErr(int, int out, int err) {
  testing::WriteString(out, "out");
  if (err >= 0) testing::WriteString(err, "err");
  return 0;
}

class RemoteCommandTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start().ok()); }

  std::string ExecUrl(bool in, bool out, bool err, bool tty) {
    v1::ExecRequest req;
    req.set_container_id("c1");
    req.add_cmd("sh");
    req.set_stdin(in);
    req.set_stdout(out);
    req.set_stderr(err);
    req.set_tty(tty);
    auto resp = server_.GetExec(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->url() : "";
  }

  // Everything a WebSocket client receives until the server closes: data by channel, the
  // channels closed by v5 CLOSE messages (in order), and the messages' order of channels.
  struct WsResult {
    std::map<int, std::string> data;
    std::vector<int> closed;
    std::vector<int> order;
    int close_code = 0;
    bool text = false;
  };
  static WsResult ReadAll(WsClient* c, bool base64 = false) {
    WsResult r;
    while (auto m = c->Read()) {
      auto cm = ws::DecodeChannelMessage(*m, base64);
      EXPECT_TRUE(cm.ok());
      if (!cm.ok()) break;
      r.text = c->last_text();
      if (cm->channel == ws::kCloseChannel) {
        r.closed.push_back(static_cast<unsigned char>(cm->data[0]));
      } else {
        r.data[cm->channel] += cm->data;
        r.order.push_back(cm->channel);
      }
    }
    EXPECT_EQ(c->error(), testing::websocket::error::closed) << c->error().message();
    r.close_code = c->close_code();
    return r;
  }

  FakeStreamingRuntime runtime_;
  Server server_{&runtime_, ServerOptions{}};
};

TEST_F(RemoteCommandTest, WebSocketV5SendsStatusAndCloseSignals) {
  runtime_.set_script(OutAndErr);
  WsClient c;
  ASSERT_TRUE(
      c.Connect(ExecUrl(false, true, true, false), {"v5.channel.k8s.io", "v4.channel.k8s.io"})
          .ok());
  EXPECT_EQ(c.protocol(), "v5.channel.k8s.io");
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kStdout], "out");
  EXPECT_EQ(r.data[kStderr], "err");
  EXPECT_EQ(r.data[kError], ExitStatusJson(0));
  // stdout and stderr end before the status is written, the error channel after it.
  ASSERT_EQ(r.closed.size(), 3u);
  EXPECT_EQ(r.closed.back(), kError);
  EXPECT_EQ(r.order.back(), kError);
  EXPECT_EQ(r.close_code, 1000);
  EXPECT_EQ(runtime_.exec_commands(), std::vector<std::string>{"sh"});
}

TEST_F(RemoteCommandTest, WebSocketV4SendsNonZeroExitStatusWithoutCloseSignals) {
  runtime_.set_script([](int, int out, int) {
    testing::WriteString(out, "x");
    return 3;
  });
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(false, true, false, false), {"v4.channel.k8s.io"}).ok());
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kStdout], "x");
  EXPECT_TRUE(r.closed.empty());
  auto status = nlohmann::json::parse(r.data[kError], nullptr, false);
  ASSERT_TRUE(status.is_object()) << r.data[kError];
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
}

TEST_F(RemoteCommandTest, LegacyChannelProtocolSendsNoStatusOnSuccess) {
  runtime_.set_script(OutAndErr);
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(false, true, true, false), {"channel.k8s.io"}).ok());
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kStdout], "out");
  EXPECT_EQ(r.data.count(kError), 0u);  // pre-v4: nothing on the error channel on success
}

TEST_F(RemoteCommandTest, LegacyChannelProtocolSendsErrorTextOnFailure) {
  runtime_.set_script([](int, int, int) { return 2; });
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(false, true, false, false), {"channel.k8s.io"}).ok());
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kError], LegacyStatusText(ExitStatusJson(2)));
  EXPECT_FALSE(r.data[kError].empty());
}

TEST_F(RemoteCommandTest, Base64ProtocolUsesTextMessages) {
  runtime_.set_script([](int in, int out, int) {  // echoes the first chunk of stdin
    char buf[64];
    ssize_t n = read(in, buf, sizeof(buf));
    if (n > 0) testing::WriteString(out, std::string(buf, static_cast<size_t>(n)));
    return 0;
  });
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(true, true, false, false), {"base64.channel.k8s.io"}).ok());
  c.Write(ws::EncodeChannelMessage(kStdin, "hello\n", true), true);
  auto m = c.Read();
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(c.last_text());
  auto cm = ws::DecodeChannelMessage(*m, true);
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm->channel, kStdout);
  EXPECT_EQ(cm->data, "hello\n");
  WsResult r = ReadAll(&c, true);
  EXPECT_EQ(r.data.count(kError), 0u);  // pre-v4: no Status on success
}

TEST_F(RemoteCommandTest, WebSocketV5StdinCloseSignalEndsStdin) {
  runtime_.set_script([](int in, int out, int) {
    std::string got = testing::ReadAll(in);  // to EOF: needs the CLOSE signal for stdin
    testing::WriteString(out, absl::StrCat("read ", got.size()));
    return 0;
  });
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(true, true, false, false), {"v5.channel.k8s.io"}).ok());
  c.Write(ws::EncodeChannelMessage(kStdin, std::string(100000, 'a'), false));
  c.Write(ws::EncodeChannelMessage(ws::kCloseChannel, std::string(1, kStdin), false));
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kStdout], "read 100000");
  EXPECT_EQ(r.data[kError], ExitStatusJson(0));
}

TEST_F(RemoteCommandTest, TtyResizeReachesTheProcess) {
  runtime_.set_script([](int in, int out, int err) {
    testing::ReadAll(in);
    testing::WriteString(out, err < 0 ? "tty" : "no tty");
    return 0;
  });
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(true, true, false, true), {"v5.channel.k8s.io"}).ok());
  // Split across messages: objects are parsed when complete.
  c.Write(ws::EncodeChannelMessage(kResize, R"({"Width":80,)", false));
  c.Write(ws::EncodeChannelMessage(kResize, R"("Height":24}{"Width":100,"Height":50})", false));
  c.Write(ws::EncodeChannelMessage(kResize, R"({"bogus":1})", false));
  c.Write(ws::EncodeChannelMessage(ws::kCloseChannel, std::string(1, kStdin), false));
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kStdout], "tty");
  EXPECT_EQ(r.data.count(kStderr), 0u);
  EXPECT_EQ(runtime_.resizes(), (std::vector<std::pair<uint16_t, uint16_t>>{{80, 24}, {100, 50}}));
}

TEST_F(RemoteCommandTest, StartFailureIsInternalErrorStatus) {
  runtime_.set_start_error(absl::FailedPreconditionError("container c1 is not running"));
  WsClient c;
  ASSERT_TRUE(c.Connect(ExecUrl(false, true, false, false), {"v4.channel.k8s.io"}).ok());
  WsResult r = ReadAll(&c);
  EXPECT_EQ(r.data[kError], InternalErrorStatusJson("container c1 is not running"));
  EXPECT_EQ(r.data.count(kStdout), 0u);
}

TEST_F(RemoteCommandTest, SpdyStartsOnceStreamsExistAndEndsWithGoAway) {
  runtime_.set_script([](int in, int out, int err) {
    std::string got = testing::ReadAll(in);
    testing::WriteString(out, "got " + got);
    testing::WriteString(err, "e");
    return 7;
  });
  SpdyClient c;
  auto head = c.Connect(ExecUrl(true, true, true, false), {"v4.channel.k8s.io"});
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_TRUE(absl::StartsWith(*head, "HTTP/1.1 101")) << *head;
  EXPECT_TRUE(absl::StrContains(*head, "X-Stream-Protocol-Version: v4.channel.k8s.io")) << *head;
  // Streams as client-go creates them: error first, then stdin (with its data), stdout, stderr.
  c.CreateStream(1, {{"streamtype", "error"}});
  c.CreateStream(3, {{"streamtype", "stdin"}});
  c.SendData(3, "abc", true);
  c.CreateStream(5, {{"streamtype", "stdout"}});
  c.CreateStream(7, {{"streamtype", "stderr"}});
  std::map<uint32_t, std::string> data;
  std::map<uint32_t, bool> fin;
  int replies = 0;
  bool goaway = false;
  while (auto r = c.Next()) {
    if (r->frame.control) {
      if (r->frame.type == spdy::FrameType::kSynReply) ++replies;
      if (r->frame.type == spdy::FrameType::kGoAway) goaway = true;
      continue;
    }
    data[r->frame.stream_id] += r->frame.data;
    if (r->frame.fin()) fin[r->frame.stream_id] = true;
  }
  EXPECT_EQ(replies, 4);
  EXPECT_TRUE(goaway);
  EXPECT_EQ(data[5], "got abc");
  EXPECT_EQ(data[7], "e");
  EXPECT_EQ(data[1], ExitStatusJson(7));
  EXPECT_TRUE(fin[1] && fin[5] && fin[7]);
}

TEST_F(RemoteCommandTest, SpdyAttachDetachesWhenStdinEnds) {
  // An attach to a container that is not stdin_once: the client's stdin EOF ends the session
  // with success although the container keeps running (its script is still blocked).
  std::atomic<bool> release{false};
  runtime_.set_script([&release](int, int out, int) {
    testing::WriteString(out, "console");
    while (!release.load()) usleep(1000);
    return 0;
  });
  v1::AttachRequest req;
  req.set_container_id("c1");
  req.set_stdin(true);
  req.set_stdout(true);
  auto url = server_.GetAttach(req);
  ASSERT_TRUE(url.ok());
  SpdyClient c;
  ASSERT_TRUE(c.Connect(url->url(), {"v5.channel.k8s.io"}).ok());
  c.CreateStream(1, {{"streamtype", "error"}});
  c.CreateStream(3, {{"streamtype", "stdin"}});
  c.CreateStream(5, {{"streamtype", "stdout"}});
  std::string out, status;
  bool stdin_sent = false;
  while (auto r = c.Next()) {
    if (r->frame.control) continue;
    if (r->frame.stream_id == 5) out += r->frame.data;
    if (r->frame.stream_id == 1) status += r->frame.data;
    if (out == "console" && !stdin_sent) {
      c.SendData(3, "", true);
      stdin_sent = true;
    }
  }
  release = true;
  EXPECT_EQ(out, "console");
  EXPECT_EQ(status, ExitStatusJson(0));
}

TEST(HandleResize, ParsesCompleteObjectsOnly) {
  struct Recorder : StreamProcess {
    int stdin_fd() const override { return -1; }
    int stdout_fd() const override { return -1; }
    int stderr_fd() const override { return -1; }
    int exit_fd() const override { return -1; }
    absl::StatusOr<int> Wait() override { return 0; }
    void Resize(uint16_t w, uint16_t h) override { got.emplace_back(w, h); }
    void CloseStdin() override {}
    std::vector<std::pair<uint16_t, uint16_t>> got;
  } proc;
  std::string buf = R"({"Width":1,"Height":2}{"Width":3)";
  internal::HandleResize(&buf, nullptr);  // no process yet: kept
  EXPECT_EQ(buf.size(), 32u);
  internal::HandleResize(&buf, &proc);
  EXPECT_EQ(buf, R"({"Width":3)");
  buf += R"(,"Height":"x"}{"Width":5,"Height":6})";
  internal::HandleResize(&buf, &proc);
  EXPECT_EQ(buf, "");
  EXPECT_EQ(proc.got, (std::vector<std::pair<uint16_t, uint16_t>>{{1, 2}, {5, 6}}));
}

TEST(CommandOptions, ExpectedStreamsAsClientGoCreatesThem) {
  EXPECT_EQ((internal::CommandOptions{false, true, false, false}.ExpectedStreams()), 2);
  EXPECT_EQ((internal::CommandOptions{true, true, true, false}.ExpectedStreams()), 4);
  // tty: no stderr stream, a resize stream.
  EXPECT_EQ((internal::CommandOptions{true, true, true, true}.ExpectedStreams()), 4);
}

}  // namespace
}  // namespace berth::cri::streaming
