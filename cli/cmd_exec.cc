// sbx exec NAME [-c CONTAINER] [-i] -- CMD ARGS...
//
// One upgraded connection carries the whole session (common/frames.h).
// Output is written the moment a frame is complete, stdin is forwarded as it
// is read; a single poll() loop drives both directions, so nothing waits on
// a timer: latency is one socket round trip on top of the command itself.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "cli/commands.h"
#include "cli/printer.h"
#include "common/frames.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

Status SendFrame(int fd, frames::Channel channel, std::string_view payload) {
  std::string frame = frames::Encode(channel, payload);
  std::string_view rest = frame;
  while (!rest.empty()) {
    ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("send stdin", errno);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// The last frame: {"exitCode": N}, or a Kubernetes Status (Success, or a
// Failure that is either a non-zero exit code or an error running it).
Result<int> ExitCodeFromStatusFrame(const std::string& payload) {
  Json j;
  try {
    j = Json::parse(payload);
  } catch (const Json::exception&) {
    return Internal("the server sent an invalid exit status: " + payload);
  }
  if (j.contains("exitCode") && j["exitCode"].is_number_integer()) {
    return j["exitCode"].get<int>();
  }
  if (j.value("kind", "") == "Status") {
    if (j.value("status", "") == "Success") return 0;
    const Json& causes = j.value(Json::json_pointer("/details/causes"), Json::array());
    for (const auto& c : causes) {
      if (c.value("reason", "") == "ExitCode") {
        try {
          return std::stoi(c.value("message", ""));
        } catch (const std::exception&) {
          break;
        }
      }
    }
    HttpResponse as_response;
    as_response.status_code = j.value("code", 500);
    as_response.body = payload;
    return StatusFromResponse(as_response);
  }
  return Internal("the server sent an exit status without an exit code: " + payload);
}

void WriteAllFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a closed stdout must not end the session before its status
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

Status ClosedEarly() {
  return Unavailable(std::string(kConnectionLostPrefix) +
                     "the stream ended before the command's exit status");
}

int RunExecVerb(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.empty()) return inv.Fail("expected 'exec NAME -- COMMAND [args...]'.");
  ExecRequest request;
  std::optional<std::string> target = inv.SandboxTarget(args.front(), "exec");
  if (!target) return 1;
  request.name = *target;
  request.command = inv.flags.passthrough;
  if (!inv.flags.saw_double_dash) {
    request.command.assign(args.begin() + 1, args.end());
  } else if (args.size() > 1) {
    return inv.Fail("unexpected arguments before '--': " +
                    Join(std::vector<std::string>(args.begin() + 1, args.end()), " "));
  }
  if (request.command.empty()) {
    return inv.Fail("you must specify at least one command for the container");
  }
  request.ns = inv.ns;
  request.container = inv.flags.String("container");
  request.stdin = inv.flags.Bool("stdin");

  ExecIo io;
  io.stdin_fd = inv.env.stdin_fd;
  int out_fd = inv.env.stdout_fd;
  int err_fd = inv.env.stderr_fd;
  io.on_stdout = [out_fd](std::string_view d) { WriteAllFd(out_fd, d); };
  io.on_stderr = [err_fd](std::string_view d) { WriteAllFd(err_fd, d); };
  Result<int> code = RunExec(inv.client, request, io);
  if (!code.ok()) return inv.FailRequest(code.status());
  return *code;
}

}  // namespace

Result<int> RunExec(Client& client, const ExecRequest& request, const ExecIo& io) {
  std::vector<std::pair<std::string, std::string>> q;
  if (!request.container.empty()) q.emplace_back("container", request.container);
  for (const auto& arg : request.command) q.emplace_back("command", arg);
  q.emplace_back("stdin", request.stdin ? "true" : "false");
  q.emplace_back("tty", "false");
  HttpRequest http;
  http.method = "POST";
  http.target =
      ResourcePath(*api::FindKind("sandboxes"), request.ns, request.name, "exec") + QueryString(q);
  SBX_ASSIGN_OR_RETURN(UpgradedStream stream,
                       client.Upgrade(std::move(http), frames::kUpgradeProtocol));
  int sock = stream.fd.get();

  frames::Decoder decoder;
  decoder.Feed(stream.leftover);
  bool stdin_open = request.stdin && io.stdin_fd >= 0;
  char buf[64 * 1024];
  for (;;) {
    bool bad = false;
    while (std::optional<frames::Frame> f = decoder.Next(&bad)) {
      switch (f->channel) {
        case frames::kStdout:
          if (io.on_stdout) io.on_stdout(f->payload);
          break;
        case frames::kStderr:
          if (io.on_stderr) io.on_stderr(f->payload);
          break;
        case frames::kStatus:
          return ExitCodeFromStatusFrame(f->payload);
        default:
          break;  // channels a client does not receive are ignored
      }
    }
    if (bad) return Internal("the server sent an oversized frame");

    pollfd fds[2] = {{sock, POLLIN, 0}, {io.stdin_fd, POLLIN, 0}};
    int r = ::poll(fds, stdin_open ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll", errno);
    }
    if (fds[0].revents) {
      ssize_t n = ::recv(sock, buf, sizeof(buf), 0);
      if (n < 0 && errno != EINTR) return ClosedEarly();
      if (n == 0) return ClosedEarly();
      if (n > 0) decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    if (stdin_open && fds[1].revents) {
      ssize_t n = ::read(io.stdin_fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      // End of input (or an unreadable stdin) is an empty frame. A failed
      // send means the server stopped reading; its status frame explains.
      if (n > 0) {
        if (!SendFrame(sock, frames::kStdin, std::string_view(buf, static_cast<size_t>(n))).ok()) {
          stdin_open = false;
        }
      } else {
        stdin_open = false;
        (void)SendFrame(sock, frames::kStdin, "").ok();
      }
    }
  }
}

Verb ExecVerb() {
  return Verb{
      "exec",
      "Run a command in a sandbox",
      R"(Run a command in a running sandbox's container, streaming its standard
output and error as they are produced, and exit with the command's exit code.

With -i, standard input is forwarded until it ends. The container defaults
to the sandbox's first container. sandboxclaim/NAME runs the command in the
sandbox bound to that claim.

Examples:
  # Print the kernel gVisor presents
  sbx exec my-sandbox -- cat /proc/version

  # Run a command in the sandbox a claim was given
  sbx exec sandboxclaim/task-42 -- python3 -V

  # Pipe a script into a shell in container "main"
  sbx exec -i my-sandbox -c main -- sh < script.sh

Usage:
  sbx exec NAME [-c CONTAINER] [-i] -- COMMAND [args...] [options]
)",
      {{"container", 'c', FlagType::kString, "", "Container name; defaults to the first."},
       {"stdin", 'i', FlagType::kBool, "", "Pass standard input to the command."},
       {"tty", 't', FlagType::kBool, "", "Accepted for kubectl compatibility; no TTY yet."}},
      RunExecVerb};
}

}  // namespace sbx::cli
