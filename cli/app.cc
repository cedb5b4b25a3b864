// Main(): finds the verb, parses its flags, resolves the socket and
// namespace, and runs it.
#include <algorithm>

#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

std::vector<FlagSpec> GlobalFlags() {
  return {
      {"namespace", 'n', FlagType::kString, "",
       "If present, the namespace scope for this CLI request (default \"default\")."},
      {"socket", 0, FlagType::kString, "",
       "Path of sbxd's Unix socket (default $SBX_SOCKET, else /run/sbx/sbxd.sock)."},
      {"help", 'h', FlagType::kBool, "", "Show this help."},
  };
}

std::vector<Verb> AllVerbs() {
  std::vector<Verb> verbs = {ApplyVerb(), GetVerb(),  DescribeVerb(), DeleteVerb(),     ScaleVerb(),
                             WaitVerb(),  ExecVerb(), LogsVerb(),     PortForwardVerb()};
  for (auto& v : ImageVerbs()) verbs.push_back(std::move(v));
  for (auto& v : LoginVerbs()) verbs.push_back(std::move(v));
  verbs.push_back(VersionVerb());
  return verbs;
}

std::string OverallUsage(const std::vector<Verb>& verbs) {
  std::string out =
      "sbx controls sbxd, the single-node sandbox daemon: agent-sandbox objects\n"
      "(Sandbox, SandboxTemplate, SandboxClaim, SandboxWarmPool) run in gVisor.\n\n"
      "Commands:\n";
  size_t width = 0;
  for (const auto& v : verbs) width = std::max(width, v.name.size());
  for (const auto& v : verbs) {
    out += "  " + v.name + std::string(width - v.name.size() + 3, ' ') + v.summary + "\n";
  }
  out += "\n" + FlagsUsage(GlobalFlags());
  out +=
      "Usage:\n  sbx [flags] [options]\n\n"
      "Use \"sbx <command> --help\" for more information about a given command.\n";
  return out;
}

std::string VerbUsage(const Verb& verb) {
  std::vector<FlagSpec> all = verb.flags;
  for (auto& g : GlobalFlags()) all.push_back(std::move(g));
  std::string out = verb.usage;
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "\n" + FlagsUsage(all);
  return out;
}

// Whether a token before the verb is a global flag that takes the next token
// as its value.
bool GlobalTakesValue(std::string_view token) {
  return token == "-n" || token == "--namespace" || token == "--socket";
}

}  // namespace

TimePoint Invocation::Now() const {
  static const SystemClock kSystem;
  return (env.clock ? env.clock : &kSystem)->Now();
}

int Invocation::Fail(std::string_view message) {
  err() << "error: " << message << "\n";
  return 1;
}

int Invocation::FailRequest(const Status& status, std::string_view context) {
  err() << FormatClientError(status, context) << "\n";
  return 1;
}

const api::KindInfo* Invocation::ResolveKind(std::string_view name) {
  const api::KindInfo* kind = api::FindKind(name);
  if (!kind) Fail("the server doesn't have a resource type \"" + std::string(name) + "\"");
  return kind;
}

std::optional<std::string> Invocation::SandboxTarget(const std::string& arg,
                                                    std::string_view verb) {
  auto slash = arg.find('/');
  if (slash == std::string::npos) return arg;
  const api::KindInfo* kind = api::FindKind(arg.substr(0, slash));
  std::string name = arg.substr(slash + 1);
  if (kind && kind->kind == "Sandbox") return name;
  if (!kind || kind->kind != "SandboxClaim") {
    Fail(std::string(verb) + " is only supported for sandboxes and sandbox claims, not \"" +
         arg.substr(0, slash) + "\"");
    return std::nullopt;
  }
  auto claim = client.Get(*kind, ns, name);
  if (!claim.ok()) {
    FailRequest(claim.status());
    return std::nullopt;
  }
  std::string bound = api::StringField(api::Field(api::Field(*claim, "status"), "sandbox"), "name");
  if (bound.empty()) {
    Fail("sandboxclaim \"" + name + "\" is not bound to a sandbox yet (see `sbx describe "
         "sandboxclaim " + name + "`)");
    return std::nullopt;
  }
  return bound;
}

std::vector<Json> Invocation::GetEach(const api::KindInfo& kind, std::string_view ns,
                                      const std::vector<std::string>& names, int* rc) {
  std::vector<Json> objects;
  for (const auto& name : names) {
    Result<Json> object = client.Get(kind, ns, name);
    if (!object.ok()) {
      *rc = FailRequest(object.status());
      continue;
    }
    objects.push_back(std::move(object).value());
  }
  return objects;
}

void Invocation::PrintNoResources(const api::KindInfo& kind, std::string_view ns) {
  if (!kind.namespaced || ns.empty()) {
    err() << "No resources found\n";
  } else {
    err() << "No resources found in " << ns << " namespace.\n";
  }
}

std::pair<std::string, std::vector<std::string>> SplitKindAndNames(
    const std::vector<std::string>& args) {
  std::string kind = args.empty() ? "" : args.front();
  std::vector<std::string> names;
  if (auto slash = kind.find('/'); slash != std::string::npos) {
    names.push_back(kind.substr(slash + 1));
    kind.resize(slash);
  }
  if (!args.empty()) names.insert(names.end(), args.begin() + 1, args.end());
  return {kind, names};
}

std::optional<std::vector<NamedObject>> ResolveNamedObjects(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.empty()) {
    inv.Fail("You must provide one or more resources by argument or filename.");
    return std::nullopt;
  }
  std::vector<NamedObject> objects;
  const bool slash_form = args.front().find('/') != std::string::npos;
  for (size_t i = slash_form ? 0 : 1; i < args.size(); ++i) {
    std::string kind_name = args.front();
    std::string name = args[i];
    if (slash_form) {
      size_t slash = args[i].find('/');
      if (slash == std::string::npos) {
        inv.Fail(
            "there is no need to specify a resource type as a separate argument when "
            "passing arguments in resource/name form");
        return std::nullopt;
      }
      kind_name = args[i].substr(0, slash);
      name = args[i].substr(slash + 1);
    }
    const api::KindInfo* kind = inv.ResolveKind(kind_name);
    if (!kind) return std::nullopt;
    objects.push_back({kind, inv.NamespaceFor(*kind), name});
  }
  if (objects.empty()) {
    // Resolving the kind first reports an unknown one before the missing name.
    if (!inv.ResolveKind(args.front())) return std::nullopt;
    inv.Fail("resource(s) were provided, but no name was specified");
    return std::nullopt;
  }
  return objects;
}

int Main(const std::vector<std::string>& args, Env& env) {
  std::vector<Verb> verbs = AllVerbs();

  // The verb is the first word that is not a global flag or its value.
  size_t verb_at = args.size();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.size() > 1 && a[0] == '-') {
      if (GlobalTakesValue(a)) ++i;
      continue;
    }
    verb_at = i;
    break;
  }
  if (verb_at == args.size() || args[verb_at] == "help") {
    bool asked = verb_at < args.size() ||
                 std::find(args.begin(), args.end(), "--help") != args.end() ||
                 std::find(args.begin(), args.end(), "-h") != args.end();
    *(asked ? env.out : env.err) << OverallUsage(verbs);
    return asked ? 0 : 1;
  }

  std::vector<std::string> rest(args.begin(), args.begin() + static_cast<ptrdiff_t>(verb_at));
  std::string name = args[verb_at];
  size_t next = verb_at + 1;
  if (name == "image") {
    // The subcommand is the next word that is not a flag.
    while (next < args.size() && args[next].size() > 1 && args[next][0] == '-' &&
           args[next] != "--") {
      rest.push_back(args[next]);
      if (GlobalTakesValue(args[next]) && next + 1 < args.size()) rest.push_back(args[++next]);
      ++next;
    }
    if (next < args.size() && args[next] != "--") {
      name += " " + args[next++];
    } else {
      bool asked = std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
                   std::find(rest.begin(), rest.end(), "-h") != rest.end();
      std::string text = "Manage the images in sbxd's local store.\n\nCommands:\n";
      for (const auto& v : verbs) {
        if (v.name.starts_with("image ")) text += "  " + v.name.substr(6) + "\t" + v.summary + "\n";
      }
      text += "\nUsage:\n  sbx image <command> [options]\n";
      *(asked ? env.out : env.err) << text;
      return asked ? 0 : 1;
    }
  }
  rest.insert(rest.end(), args.begin() + static_cast<ptrdiff_t>(next), args.end());

  auto verb =
      std::find_if(verbs.begin(), verbs.end(), [&](const Verb& v) { return v.name == name; });
  if (verb == verbs.end()) {
    *env.err << "error: unknown command \"" << name << "\" for \"sbx\"\n"
             << "Run 'sbx --help' for usage.\n";
    return 1;
  }

  std::vector<FlagSpec> specs = verb->flags;
  for (auto& g : GlobalFlags()) specs.push_back(std::move(g));
  Result<ParsedFlags> parsed = ParseFlags(specs, rest);
  if (!parsed.ok()) {
    *env.err << "error: " << parsed.status().message() << "\n"
             << "See 'sbx " << verb->name << " --help' for usage.\n";
    return 1;
  }
  if (parsed->Bool("help")) {
    *env.out << VerbUsage(*verb);
    return 0;
  }

  std::string socket = parsed->String("socket");
  if (socket.empty()) socket = env.socket_env;
  if (socket.empty()) socket = std::string(kDefaultSocket);
  std::string ns = parsed->String("namespace");
  bool ns_explicit = !ns.empty();
  if (ns.empty()) ns = "default";

  Invocation inv{env, std::move(parsed).value(), socket, ns, ns_explicit, Client(socket)};
  return verb->run(inv);
}

}  // namespace sbx::cli
