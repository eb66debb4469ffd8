// RuntimeFixture plus berth's CRI gRPC server on <dir>/berth.sock (fake ImageService) and
// the upstream crictl (BERTH_CRICTL, built by tests/cluster) pointed at it.
#ifndef BERTH_TESTS_INTEGRATION_CRICTL_FIXTURE_H_
#define BERTH_TESTS_INTEGRATION_CRICTL_FIXTURE_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cri/server/cri_server.h"
#include "cri/testing/fake_cri.h"
#include "tests/integration/runtime_fixture.h"

namespace berth::cri::runtime {

class CrictlFixture : public RuntimeFixture {
 protected:
  // Fails the test (fatal) when crictl is missing; then SetUpRuntime(tag, applets).
  void SetUpCrictl(const std::string& tag, const std::vector<std::string>& applets) {
    ASSERT_TRUE(PathExists(BERTH_CRICTL))
        << BERTH_CRICTL << " missing: run tests/cluster/build.sh crictl";
    SetUpRuntime(tag, applets);
  }
  // Serves the CRI on <dir>/berth.sock over rt_ and writes crictl's config (timeout 60 s).
  void StartCriServer() {
    socket_ = dir_ + "/berth.sock";
    cri_ = std::make_unique<server::CriServer>(rt_.get(), &image_service_,
                                               server::CriServerOptions{.socket_path = socket_});
    ASSERT_TRUE(cri_->Start().ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/crictl.yaml", "runtime-endpoint: unix://" + socket_ +
                                                           "\nimage-endpoint: unix://" + socket_ +
                                                           "\ntimeout: 60\n")
                    .ok());
  }
  // Stops the CRI server, then TearDownRuntime().
  void TearDownCrictl() {
    cri_.reset();
    TearDownRuntime();
  }
  // crictl's argv for `args` against this server (per-call --timeout `rpc_timeout`).
  std::vector<std::string> CrictlArgv(const std::vector<std::string>& args,
                                      const std::string& rpc_timeout = "20s") {
    std::vector<std::string> argv = {
        BERTH_CRICTL, "--config", dir_ + "/crictl.yaml", "--runtime-endpoint", "unix://" + socket_,
        "--timeout",  rpc_timeout};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  // Runs crictl with `input` on stdin within `timeout`; an expectation fails if it cannot run.
  RunResult Crictl(const std::vector<std::string>& args, const std::string& input = "",
                   std::chrono::milliseconds timeout = std::chrono::seconds(60),
                   const std::string& rpc_timeout = "20s") {
    auto r = berth::Run(CrictlArgv(args, rpc_timeout), input, timeout);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }

  std::string socket_;
  cri::testing::FakeImageService image_service_;
  std::unique_ptr<server::CriServer> cri_;
};

}  // namespace berth::cri::runtime

#endif  // BERTH_TESTS_INTEGRATION_CRICTL_FIXTURE_H_
