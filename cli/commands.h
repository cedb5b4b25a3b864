// The verbs of `sbx` and what they share.
//
// Main() is the whole CLI as a function of its arguments and an Env (streams,
// file descriptors, SBX_SOCKET, clock), so tests run it against a fake server
// and compare its output. Each verb lives in its own cmd_<verb>.cc and is
// described by a Verb: name, usage text, flags and the function that runs it.
//
// Output conventions (kubectl's): results go to out, errors to err as
// "error: ..." (local) or "Error from server (Reason): ..." (from sbxd), and
// a verb returns the process exit code.
#ifndef SBX_CLI_COMMANDS_H_
#define SBX_CLI_COMMANDS_H_

#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/kinds.h"
#include "cli/client.h"
#include "cli/flags.h"
#include "common/time.h"

namespace sbx::cli {

inline constexpr std::string_view kDefaultSocket = "/run/sbx/sbxd.sock";
#ifndef SBX_VERSION
#define SBX_VERSION "0.0.0"
#endif
inline constexpr std::string_view kClientVersion = "v" SBX_VERSION;

// The process around the CLI.
struct Env {
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  // Raw descriptors for the streaming verbs (exec, logs, apply -f -), which
  // write unbuffered so output appears as it arrives.
  int stdin_fd = 0;
  int stdout_fd = 1;
  int stderr_fd = 2;
  // Whether stdout is a terminal: `image pull` then redraws its progress in
  // place instead of logging state changes. main() sets it; tests choose.
  bool stdout_is_terminal = false;
  std::string socket_env;        // $SBX_SOCKET, empty if unset
  const Clock* clock = nullptr;  // nullptr: the system clock
};

struct Invocation;

struct Verb {
  std::string name;             // "apply"; "image import" for subcommands
  std::string summary;          // one line for `sbx --help`
  std::string usage;            // the man-style text before "Options:"
  std::vector<FlagSpec> flags;  // the verb's own; global flags are added
  std::function<int(Invocation&)> run;
};

// One run of one verb: parsed flags and the resolved global settings.
struct Invocation {
  Env& env;
  ParsedFlags flags;
  std::string socket;  // --socket, $SBX_SOCKET, kDefaultSocket
  std::string ns;      // -n, else "default"
  bool ns_explicit = false;
  Client client;

  std::ostream& out() { return *env.out; }
  std::ostream& err() { return *env.err; }
  TimePoint Now() const;

  // Prints "error: <message>" and returns 1.
  int Fail(std::string_view message);
  // Prints a request's error as kubectl does (see FormatClientError) and
  // returns 1.
  int FailRequest(const Status& status, std::string_view context = {});
  // The kind named on the command line, or nullptr after printing
  // `error: the server doesn't have a resource type "foo"`.
  const api::KindInfo* ResolveKind(std::string_view name);
  // The sandbox a command targets: NAME, sandbox/NAME, or sandboxclaim/NAME
  // (the sandbox bound to that claim). Prints the error and returns nullopt
  // for another kind or an unbound claim; `verb` words the error.
  std::optional<std::string> SandboxTarget(const std::string& arg, std::string_view verb);
  // The namespace for a kind: "" for cluster-scoped kinds.
  std::string NamespaceFor(const api::KindInfo& kind) const { return kind.namespaced ? ns : ""; }
  // GETs each named object; a failure is printed, sets *rc to 1, and the
  // rest are still fetched.
  std::vector<Json> GetEach(const api::KindInfo& kind, std::string_view ns,
                            const std::vector<std::string>& names, int* rc);
  // "No resources found in <ns> namespace." (or without the namespace for
  // cluster-scoped kinds and all namespaces, ns empty), to err.
  void PrintNoResources(const api::KindInfo& kind, std::string_view ns);
};

// "KIND NAME..." or "KIND/NAME" (get, describe): the kind word and the names.
std::pair<std::string, std::vector<std::string>> SplitKindAndNames(
    const std::vector<std::string>& args);

// One object named on the command line, in the namespace it resolves to.
struct NamedObject {
  const api::KindInfo* kind = nullptr;
  std::string ns;
  std::string name;
};
// The objects named by the positional arguments as kubectl's resource
// builder reads them: "KIND NAME..." or "KIND/NAME..." (every argument, then).
// nullopt after printing kubectl's usage error.
std::optional<std::vector<NamedObject>> ResolveNamedObjects(Invocation& inv);

// The whole CLI. `args` excludes the program name.
int Main(const std::vector<std::string>& args, Env& env);

// Verbs, one per cmd_*.cc.
Verb ApplyVerb();
Verb GetVerb();
Verb DescribeVerb();
Verb DeleteVerb();
Verb WaitVerb();
Verb ExecVerb();
Verb LogsVerb();
Verb PortForwardVerb();
Verb ScaleVerb();
// "image import", "image pull", "image ls", "image rm", "image prune"
std::vector<Verb> ImageVerbs();
std::vector<Verb> LoginVerbs();  // "login", "logout"
Verb VersionVerb();

// ---- Pieces of verbs that tests reach directly ----

// One manifest document and the file it came from ("STDIN" for -).
struct Manifest {
  std::string source;
  Json object;
};
// Reads -f arguments: files, directories (*.yaml, *.yml, *.json, sorted, not
// recursive) and "-" (stdin_fd), each split into documents.
Result<std::vector<Manifest>> ReadManifests(const std::vector<std::string>& paths, int stdin_fd);
// The kind of a manifest, with `version` set to the version it is written in,
// so requests go to that version's path. Error (kubectl's "resource mapping
// not found" text) for an unknown apiVersion/kind.
Result<api::KindInfo> KindOfManifest(const Manifest& manifest);
// The namespace a manifest goes to: its own, else -n, "" for cluster-scoped
// kinds. An error if both are given and differ.
Result<std::string> NamespaceOfManifest(const Invocation& inv, const api::KindInfo& kind,
                                        const Manifest& manifest);

// Waits until `done` holds for the object (GET first, then a watch from the
// returned resourceVersion). `done` sees nullptr once the object is gone.
// Returns true if it held, false on timeout.
Result<bool> WaitForObject(Client& client, const api::KindInfo& kind, std::string_view ns,
                           std::string_view name, std::optional<Deadline> deadline,
                           const std::function<bool(const Json* object)>& done);

// kubectl describe's text for an object and its events (an EventList or
// null).
std::string DescribeObject(const Json& object, const Json& events, TimePoint now);

struct ExecRequest {
  std::string ns;
  std::string name;
  std::string container;
  std::vector<std::string> command;
  bool stdin = false;
};
struct ExecIo {
  int stdin_fd = -1;  // read when request.stdin
  std::function<void(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;
};
// Runs a command through the upgraded exec stream and returns its exit code.
Result<int> RunExec(Client& client, const ExecRequest& request, const ExecIo& io);

}  // namespace sbx::cli

#endif  // SBX_CLI_COMMANDS_H_
