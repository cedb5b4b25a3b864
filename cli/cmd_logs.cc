// sbx logs NAME [-c CONTAINER] [-f] [--tail N]: the container's output as
// sbxd reads it from the files the sandbox writes, copied to stdout as it
// arrives (unbuffered, so -f is live).
#include <unistd.h>

#include <cerrno>

#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

int RunLogs(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() != 1) return inv.Fail("expected 'logs NAME [-c CONTAINER]'.");
  std::optional<std::string> target = inv.SandboxTarget(args.front(), "logs");
  if (!target) return 1;
  const std::string& name = *target;
  std::vector<std::pair<std::string, std::string>> q;
  if (inv.flags.Has("container")) q.emplace_back("container", inv.flags.String("container"));
  if (inv.flags.Bool("follow")) q.emplace_back("follow", "true");
  if (int64_t tail = inv.flags.Int("tail"); tail >= 0) {
    q.emplace_back("tailLines", std::to_string(tail));
  }
  HttpRequest request;
  request.target = ResourcePath(*api::FindKind("sandboxes"), inv.ns, name, "log") + QueryString(q);
  int out_fd = inv.env.stdout_fd;
  bool out_closed = false;
  Result<StreamResult> result = inv.client.Stream(request, [&](std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(out_fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        out_closed = true;  // e.g. `sbx logs -f x | head`: stop quietly
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  });
  if (!result.ok()) return inv.FailRequest(result.status());
  int code = result->response.status_code;
  if (!out_closed && (code < 200 || code >= 300)) {
    return inv.FailRequest(StatusFromResponse(result->response));
  }
  return 0;
}

}  // namespace

Verb LogsVerb() {
  return Verb{
      "logs",
      "Print the output of a sandbox's container",
      R"(Print what a sandbox's container wrote to its standard output and error.

The output is kept in files that the sandbox holds, so it survives restarts
of sbxd. With -f the command keeps printing new output until the container
stops or the command is interrupted.

Examples:
  # The whole log of the first container
  sbx logs my-sandbox

  # Follow the last 20 lines of container "main"
  sbx logs my-sandbox -c main -f --tail 20

Usage:
  sbx logs NAME [-c CONTAINER] [-f] [--tail N] [options]
)",
      {{"container", 'c', FlagType::kString, "", "Container name; defaults to the first."},
       {"follow", 'f', FlagType::kBool, "", "Keep streaming new output."},
       {"tail", 0, FlagType::kInt, "-1", "Lines of recent output to show; -1 shows everything."}},
      RunLogs};
}

}  // namespace sbx::cli
