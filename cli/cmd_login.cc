// sbx login|logout: credentials for image registries, kept by sbxd.
//
// The CLI only collects them: sbxd checks them against the registry and
// stores them (login) or forgets them (logout). The password comes from -p,
// from stdin (--password-stdin) or from a prompt with echo off; it goes into
// the request body and nowhere else. In particular it never reaches the
// output or an error message: a server message that quotes it is redacted.
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/printer.h"
#include "cli/prompt.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

constexpr std::string_view kRegistriesPath = "/apis/sbx.dev/v1/registries";
constexpr std::string_view kDefaultServer = "docker.io";

// A local failure of login, worded as docker words it.
int FailLogin(Invocation& inv, std::string_view message) {
  inv.out().flush();
  inv.err() << "Error: " << message << "\n";
  return 1;
}

// The status with every occurrence of the password in its message masked.
Status Redacted(const Status& status, const std::string& password) {
  if (password.empty()) return status;
  constexpr std::string_view kMask = "********";
  std::string message = status.message();
  for (size_t at = message.find(password); at != std::string::npos;
       at = message.find(password, at + kMask.size())) {
    message.replace(at, password.size(), kMask);
  }
  return Status(status.code(), std::move(message));
}

int RunLogin(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() > 1) return inv.Fail("expected 'login [SERVER]'.");
  const std::string server = args.empty() ? std::string(kDefaultServer) : args.front();
  std::string username = inv.flags.String("username");
  const bool from_flag = inv.flags.Has("password");
  const bool from_stdin = inv.flags.Bool("password-stdin");
  if (from_flag && from_stdin) {
    return FailLogin(inv, "--password and --password-stdin are mutually exclusive");
  }
  if (from_stdin && username.empty()) {
    return FailLogin(inv, "--password-stdin needs --username: stdin holds the password");
  }

  std::string password;
  if (from_flag) {
    inv.err() << "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n";
    password = inv.flags.String("password");
  } else if (from_stdin) {
    Result<std::string> read = ReadAll(inv.env.stdin_fd);
    if (!read.ok()) return FailLogin(inv, read.status().message());
    password = std::move(read).value();
    if (password.ends_with('\n')) password.pop_back();
    if (password.ends_with('\r')) password.pop_back();
  }

  const bool prompt_password = !from_flag && !from_stdin;
  if (prompt_password || username.empty()) {
    int in = inv.env.stdin_fd;
    if (!IsTerminal(in)) {
      return FailLogin(inv, prompt_password ? "cannot prompt for a password: stdin is not a "
                                              "terminal (use --password-stdin)"
                                            : "cannot prompt for a username: stdin is not a "
                                              "terminal (use --username)");
    }
    if (username.empty()) {
      inv.out() << "Username: " << std::flush;
      Result<std::optional<std::string>> line = ReadLine(in);
      if (!line.ok()) return FailLogin(inv, line.status().message());
      if (line->has_value()) username = std::string(Trim(**line));
    }
    if (username.empty()) return FailLogin(inv, "a username is required");
    if (prompt_password) {
      inv.out() << "Password: " << std::flush;
      Result<std::optional<std::string>> line = ReadSecretLine(in);
      if (!line.ok()) return FailLogin(inv, line.status().message());
      if (line->has_value()) password = std::move(**line);
    }
  }
  if (password.empty()) return FailLogin(inv, "a password is required");

  Result<Json> answer =
      inv.client.PostJson(std::string(kRegistriesPath) + "/login",
                          Json{{"server", server}, {"username", username}, {"password", password}});
  if (!answer.ok()) return inv.FailRequest(Redacted(answer.status(), password));
  inv.out() << "Login Succeeded\n";
  return 0;
}

int RunLogout(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() > 1) return inv.Fail("expected 'logout [SERVER]'.");
  const std::string server = args.empty() ? std::string(kDefaultServer) : args.front();
  Result<Json> answer =
      inv.client.PostJson(std::string(kRegistriesPath) + "/logout", Json{{"server", server}});
  if (!answer.ok()) {
    // As docker: logging out twice is not an error.
    if (answer.status().code() == Code::kNotFound && !IsTransportError(answer.status())) {
      inv.out() << "Not logged in to " << server << "\n";
      return 0;
    }
    return inv.FailRequest(answer.status());
  }
  inv.out() << "Removing login credentials for " << server << "\n";
  return 0;
}

}  // namespace

std::vector<Verb> LoginVerbs() {
  return {
      Verb{"login",
           "Log in to an image registry",
           R"(Log in to an image registry, so that sbxd can pull private images from it.
sbxd checks the credentials with the registry and keeps them; SERVER
defaults to docker.io.

Without --password or --password-stdin, the password is asked for on the
terminal (and the username too, without --username). --password-stdin reads
it from standard input, for scripts; --password puts it on the command line,
where other users of the machine can see it.

Examples:
  sbx login registry.example.com -u alice
  cat token.txt | sbx login ghcr.io -u alice --password-stdin

Usage:
  sbx login [SERVER] [-u USERNAME] [-p PASSWORD | --password-stdin] [options]
)",
           {{"username", 'u', FlagType::kString, "", "Username."},
            {"password", 'p', FlagType::kString, "", "Password (insecure: see --password-stdin)."},
            {"password-stdin", 0, FlagType::kBool, "", "Read the password from stdin."}},
           RunLogin},
      Verb{"logout",
           "Log out from an image registry",
           R"(Make sbxd forget its credentials for an image registry. SERVER defaults to
docker.io.

Examples:
  sbx logout registry.example.com

Usage:
  sbx logout [SERVER] [options]
)",
           {},
           RunLogout},
  };
}

}  // namespace sbx::cli
