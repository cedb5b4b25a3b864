// Answers typed by the user on standard input: a confirmation, a user name,
// a password with the terminal's echo turned off.
//
// Every function takes the descriptor to read, so tests feed answers through
// a pipe. Reads are unbuffered (one byte at a time for lines), so nothing
// behind the answer is consumed: `--password-stdin` and a later prompt can
// share a descriptor.
#ifndef SBX_CLI_PROMPT_H_
#define SBX_CLI_PROMPT_H_

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sbx::cli {

bool IsTerminal(int fd);

// One line without its "\n" (or "\r\n"); nullopt at end of input before any
// byte. A last line without a newline is returned as it is.
Result<std::optional<std::string>> ReadLine(int fd);

// Everything up to the end of input.
Result<std::string> ReadAll(int fd);

// ReadLine with the terminal's echo off. The previous terminal settings are
// restored before returning, and also if SIGINT, SIGTERM or SIGHUP ends the
// process while the line is read. `fd` must be a terminal.
Result<std::optional<std::string>> ReadSecretLine(int fd);

// Whether a confirmation answer means yes: "y" or "yes" in any case,
// surrounding blanks ignored.
bool IsYes(std::string_view answer);

}  // namespace sbx::cli

#endif  // SBX_CLI_PROMPT_H_
