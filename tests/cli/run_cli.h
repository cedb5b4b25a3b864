// Runs the whole CLI (cli::Main) in-process against a socket and captures
// what it prints.
#ifndef SBX_TESTS_CLI_RUN_CLI_H_
#define SBX_TESTS_CLI_RUN_CLI_H_

#include <fcntl.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/time.h"

namespace sbx::cli::testing {

struct CliResult {
  int rc = -1;
  std::string out;
  std::string err;
};

// `stdin_text` is fed through a pipe (it must fit the pipe buffer).
inline CliResult RunCli(std::vector<std::string> args, const std::string& socket,
                        const std::string& stdin_text = "", const Clock* clock = nullptr) {
  std::ostringstream out, err;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  (void)!::write(p[1], stdin_text.data(), stdin_text.size());
  ::close(p[1]);
  Env env;
  env.out = &out;
  env.err = &err;
  env.stdin_fd = p[0];
  env.socket_env = socket;
  env.clock = clock;
  CliResult r;
  r.rc = Main(args, env);
  ::close(p[0]);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace sbx::cli::testing

#endif  // SBX_TESTS_CLI_RUN_CLI_H_
