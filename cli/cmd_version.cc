// sbx version: this client's version, then sbxd's and the runsc it drives.
#include "cli/commands.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

int RunVersion(Invocation& inv) {
  if (!inv.flags.args.empty()) return inv.Fail("unexpected argument: " + inv.flags.args.front());
  inv.out() << "Client Version: " << kClientVersion << "\n";
  inv.out().flush();
  Result<Json> server = inv.client.GetJson("/version");
  if (!server.ok()) return inv.FailRequest(server.status());
  const Json& v = *server;
  inv.out() << "Server Version: " << v.value("gitVersion", "unknown") << "\n";
  std::string platform = v.value("platform", "");
  if (!platform.empty()) inv.out() << "Server Platform: " << platform << "\n";
  if (v.contains("runsc") && v["runsc"].is_object()) {
    const Json& runsc = v["runsc"];
    inv.out() << "runsc Version: " << runsc.value("version", "unknown") << "\n";
    std::string line = runsc.value("platform", "unknown");
    std::vector<std::string> available;
    if (runsc.contains("platforms") && runsc["platforms"].is_array()) {
      for (const auto& p : runsc["platforms"]) {
        if (p.is_string()) available.push_back(p.get<std::string>());
      }
    }
    if (!available.empty()) line += " (available: " + Join(available, ", ") + ")";
    inv.out() << "runsc Platform: " << line << "\n";
  }
  return 0;
}

}  // namespace

Verb VersionVerb() {
  return Verb{"version",
              "Print the client, server and runsc versions",
              R"(Print the version of this client, of the sbxd it talks to, and of the
runsc (gVisor) that sbxd drives, with the platform it uses and the platforms
that boot on this host.

If sbxd cannot be reached, the client version is printed, then the error, and
the exit status is 1.

Examples:
  sbx version

Usage:
  sbx version [options]
)",
              {},
              RunVersion};
}

}  // namespace sbx::cli
