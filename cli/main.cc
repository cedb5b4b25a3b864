// The sbx executable: the process around cli::Main.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // A closed stdout or socket is reported by write(); it must not kill us
  // before the remote exit status is known.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  sbx::cli::Env env;
  if (const char* s = std::getenv("SBX_SOCKET")) env.socket_env = s;
  env.stdout_is_terminal = ::isatty(env.stdout_fd) == 1;
  return sbx::cli::Main(args, env);
}
