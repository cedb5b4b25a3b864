// The exec stream client against a fake sbxd speaking common/frames.h.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/frames.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::RunCli;

void SwitchProtocols(int fd) {
  FakeServer::Send(fd,
                   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   "Upgrade: sbx-stream.v1\r\n\r\n");
}

void SendFrame(int fd, frames::Channel c, std::string_view payload) {
  FakeServer::Send(fd, frames::Encode(c, payload));
}

// Reads stdin frames until the empty one; returns their concatenation.
std::string ReadStdin(int fd, std::string leftover) {
  frames::Decoder d;
  d.Feed(leftover);
  std::string got;
  char buf[4096];
  for (;;) {
    bool bad = false;
    while (auto f = d.Next(&bad)) {
      EXPECT_EQ(f->channel, frames::kStdin);
      if (f->payload.empty()) return got;
      got += f->payload;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return got + "<closed>";
    d.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

struct Captured {
  std::string out;
  std::string err;
};

Result<int> Exec(const std::string& socket, ExecRequest request, Captured* c, int stdin_fd = -1) {
  Client client(socket);
  ExecIo io;
  io.stdin_fd = stdin_fd;
  io.on_stdout = [c](std::string_view d) { c->out += d; };
  io.on_stderr = [c](std::string_view d) { c->err += d; };
  return RunExec(client, request, io);
}

TEST(ExecTest, StreamsOutputAndReturnsTheExitCode) {
  FakeServer server([](const FakeRequest& r, int fd) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.headers.at("upgrade"), "sbx-stream.v1");
    EXPECT_EQ(r.headers.at("connection"), "Upgrade");
    SwitchProtocols(fd);
    SendFrame(fd, frames::kStdout, "hello ");
    SendFrame(fd, frames::kStderr, "warning\n");
    SendFrame(fd, frames::kStdout, "world\n");
    SendFrame(fd, frames::kStatus, R"({"exitCode":3})");
  });
  Captured c;
  Result<int> code = Exec(server.socket_path(), {"default", "sb1", "", {"sh", "-c", "x"}}, &c);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ(c.out, "hello world\n");
  EXPECT_EQ(c.err, "warning\n");
  EXPECT_EQ(server.requests()[0].target,
            "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sb1/exec"
            "?command=sh&command=-c&command=x&stdin=false&tty=false");
}

TEST(ExecTest, FramesSplitAcrossReadsAreReassembled) {
  FakeServer server([](const FakeRequest&, int fd) {
    std::string bytes = frames::Encode(frames::kStdout, std::string(100000, 'x')) +
                        frames::Encode(frames::kStatus, R"({"exitCode":0})");
    // The head and the first bytes of the stream in one write, then the rest
    // dribbled out.
    FakeServer::Send(fd,
                     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     "Upgrade: sbx-stream.v1\r\n\r\n" +
                         bytes.substr(0, 3));
    for (size_t i = 3; i < bytes.size(); i += 7777) FakeServer::Send(fd, bytes.substr(i, 7777));
  });
  Captured c;
  Result<int> code = Exec(server.socket_path(), {"default", "sb1", "", {"true"}}, &c);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(c.out, std::string(100000, 'x'));
}

TEST(ExecTest, ForwardsStdinAndSignalsEndOfInput) {
  std::string received;
  FakeServer server([&](const FakeRequest& r, int fd) {
    EXPECT_NE(r.target.find("stdin=true"), std::string::npos);
    EXPECT_NE(r.target.find("container=main"), std::string::npos);
    SwitchProtocols(fd);
    received = ReadStdin(fd, r.leftover);
    SendFrame(fd, frames::kStdout, received);
    SendFrame(fd, frames::kStatus, R"({"exitCode":0})");
  });
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "line one\nline two\n", 18), 18);
  ::close(p[1]);
  Captured c;
  Result<int> code =
      Exec(server.socket_path(), {"default", "sb1", "main", {"cat"}, /*stdin=*/true}, &c, p[0]);
  ::close(p[0]);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(received, "line one\nline two\n");
  EXPECT_EQ(c.out, "line one\nline two\n");
}

TEST(ExecTest, StatusObjectsAreExitCodesOrErrors) {
  struct Case {
    std::string status;
    bool ok;
    int code;
    std::string message;
  } cases[] = {
      {R"({"kind":"Status","status":"Success"})", true, 0, ""},
      {R"({"kind":"Status","status":"Failure","reason":"NonZeroExitCode",
           "details":{"causes":[{"reason":"ExitCode","message":"42"}]}})",
       true, 42, ""},
      {R"({"kind":"Status","status":"Failure","reason":"NotFound","code":404,
           "message":"container \"x\" not found"})",
       false, 0, "container \"x\" not found"},
  };
  for (const auto& c : cases) {
    FakeServer server([&](const FakeRequest&, int fd) {
      SwitchProtocols(fd);
      SendFrame(fd, frames::kStatus, c.status);
    });
    Captured out;
    Result<int> code = Exec(server.socket_path(), {"default", "sb1", "", {"x"}}, &out);
    ASSERT_EQ(code.ok(), c.ok) << c.status;
    if (c.ok) {
      EXPECT_EQ(*code, c.code);
    } else {
      EXPECT_EQ(code.status().code(), Code::kNotFound);
      EXPECT_EQ(code.status().message(), c.message);
    }
  }
}

TEST(ExecTest, StreamEndingWithoutStatusIsAnError) {
  FakeServer server([](const FakeRequest&, int fd) {
    SwitchProtocols(fd);
    SendFrame(fd, frames::kStdout, "partial");
  });
  Captured c;
  Result<int> code = Exec(server.socket_path(), {"default", "sb1", "", {"x"}}, &c);
  ASSERT_FALSE(code.ok());
  EXPECT_EQ(c.out, "partial");
  EXPECT_EQ(code.status().message(),
            "error: lost connection to the server: the stream ended before the command's exit "
            "status");
}

TEST(ExecCommandTest, ExitsWithTheRemoteCodeAndPrintsRefusals) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.target.find("/sandboxes/missing/") != std::string::npos) {
      FakeServer::SendStatus(fd, 404, "NotFound",
                             "sandboxes.agents.x-k8s.io \"missing\" not found");
      return;
    }
    SwitchProtocols(fd);
    SendFrame(fd, frames::kStatus, R"({"exitCode":7})");
  });
  auto r = RunCli({"exec", "sb1", "--", "false"}, server.socket_path());
  EXPECT_EQ(r.rc, 7);
  r = RunCli({"exec", "missing", "--", "true"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "Error from server (NotFound): sandboxes.agents.x-k8s.io \"missing\" not found\n");
}

TEST(ExecCommandTest, UsageErrorsSendNothing) {
  FakeServer server([](const FakeRequest&, int) {});
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"exec"}, "error: expected 'exec NAME -- COMMAND [args...]'.\n"},
      {{"exec", "sb1"}, "error: you must specify at least one command for the container\n"},
      {{"exec", "sb1", "--"}, "error: you must specify at least one command for the container\n"},
      {{"exec", "sb1", "--bad", "--", "ls"},
       "error: unknown flag: --bad\nSee 'sbx exec --help' for usage.\n"},
      {{"exec", "secret/x", "--", "ls"},
       "error: exec is only supported for sandboxes and sandbox claims, not \"secret\"\n"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, server.socket_path());
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.err, c.err);
  }
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace sbx::cli
