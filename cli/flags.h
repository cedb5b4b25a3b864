// Command-line flags in the style of kubectl (spf13/pflag):
//   --name=value, --name value, -n value, -nvalue, -n=value,
//   boolean --flag / --flag=false, combined short booleans (-it),
//   "--" ends the flags: everything after it is passed through.
// Flags and positional arguments may be mixed in any order.
#ifndef SBX_CLI_FLAGS_H_
#define SBX_CLI_FLAGS_H_

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx::cli {

enum class FlagType {
  kBool,
  kString,
  kStringList,  // repeatable: -f a -f b
  kInt,
  kDuration,  // Go syntax: "60s", "1m30s", "500ms", "0"
};

struct FlagSpec {
  std::string name;    // long name without dashes: "namespace"
  char shorthand = 0;  // 'n', or 0
  FlagType type = FlagType::kString;
  std::string default_value;  // as it would be written on the command line
  std::string usage;          // one line for --help
};

class ParsedFlags {
 public:
  // Positional arguments before "--" (flags removed).
  std::vector<std::string> args;
  // Everything after "--".
  std::vector<std::string> passthrough;
  bool saw_double_dash = false;

  // Whether the flag was given on the command line.
  bool Has(std::string_view name) const;
  // The last value given, or the spec's default.
  std::string String(std::string_view name) const;
  std::vector<std::string> Strings(std::string_view name) const;
  bool Bool(std::string_view name) const;
  int64_t Int(std::string_view name) const;
  std::chrono::milliseconds Duration(std::string_view name) const;

 private:
  friend Result<ParsedFlags> ParseFlags(const std::vector<FlagSpec>& specs,
                                        const std::vector<std::string>& argv);
  const FlagSpec* Spec(std::string_view name) const;

  std::vector<FlagSpec> specs_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// Parses argv (without the program and verb). Errors name the flag as pflag
// does: "unknown flag: --x", "unknown shorthand flag: 'x' in -x",
// "flag needs an argument: --namespace", "invalid argument "abc" for
// "--tail" flag: ...".
Result<ParsedFlags> ParseFlags(const std::vector<FlagSpec>& specs,
                               const std::vector<std::string>& argv);

// Go's time.ParseDuration, to milliseconds.
Result<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

// The "Options:" section of a usage text, one flag per line.
std::string FlagsUsage(const std::vector<FlagSpec>& specs);

}  // namespace sbx::cli

#endif  // SBX_CLI_FLAGS_H_
