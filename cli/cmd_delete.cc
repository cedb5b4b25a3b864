// sbx delete KIND NAME... | KIND/NAME... | -f FILE|DIR|-
// Deletion is two-phase on the server: DELETE returns while the runtime is
// torn down, so by default we wait (watch) until the object is really gone.
#include <set>

#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

struct Target {
  api::KindInfo kind;
  std::string ns;
  std::string name;
};

// Targets from the positional arguments; prints the error and returns
// nullopt on a usage error.
std::optional<std::vector<Target>> TargetsFromArgs(Invocation& inv) {
  std::optional<std::vector<NamedObject>> objects = ResolveNamedObjects(inv);
  if (!objects) return std::nullopt;
  std::vector<Target> targets;
  for (const auto& o : *objects) targets.push_back({*o.kind, o.ns, o.name});
  return targets;
}

std::optional<std::vector<Target>> TargetsFromFiles(Invocation& inv) {
  if (!inv.flags.args.empty()) {
    inv.Fail("resource arguments cannot be combined with -f");
    return std::nullopt;
  }
  Result<std::vector<Manifest>> manifests =
      ReadManifests(inv.flags.Strings("filename"), inv.env.stdin_fd);
  if (!manifests.ok()) {
    inv.Fail(manifests.status().message());
    return std::nullopt;
  }
  std::vector<Target> targets;
  for (const auto& m : *manifests) {
    Result<api::KindInfo> kind = KindOfManifest(m);
    if (!kind.ok()) {
      inv.Fail(kind.status().message());
      return std::nullopt;
    }
    Result<std::string> ns = NamespaceOfManifest(inv, *kind, m);
    if (!ns.ok()) {
      inv.Fail(ns.status().message());
      return std::nullopt;
    }
    std::string name;
    if (m.object.contains("metadata") && m.object["metadata"].is_object()) {
      name = m.object["metadata"].value("name", "");
    }
    if (name.empty()) {
      inv.Fail("resource name may not be empty (in \"" + m.source + "\")");
      return std::nullopt;
    }
    targets.push_back({*kind, *ns, name});
  }
  if (targets.empty()) {
    inv.Fail("no objects passed to delete");
    return std::nullopt;
  }
  return targets;
}

// kubectl's --cascade: background, foreground or orphan, or the legacy
// booleans (true is background, false orphan), which still work but warn.
// nullopt after printing the error.
std::optional<std::string> CascadePolicy(Invocation& inv) {
  const std::string value = inv.flags.String("cascade");
  if (value == "background") return "Background";
  if (value == "foreground") return "Foreground";
  if (value == "orphan") return "Orphan";
  // Go's strconv.ParseBool spellings.
  static const std::set<std::string> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
  static const std::set<std::string> kFalse = {"0", "f", "F", "FALSE", "false", "False"};
  if (kTrue.count(value) || kFalse.count(value)) {
    const bool cascade = kTrue.count(value) > 0;
    inv.err() << "warning: --cascade=" << (cascade ? "true" : "false")
              << " is deprecated (boolean value) and can be replaced with --cascade="
              << (cascade ? "background" : "orphan") << ".\n";
    return cascade ? "Background" : "Orphan";
  }
  inv.Fail("invalid cascade value (" + value +
           "). Must be \"background\", \"foreground\", or \"orphan\"");
  return std::nullopt;
}

int RunDelete(Invocation& inv) {
  std::optional<std::string> cascade = CascadePolicy(inv);
  if (!cascade) return 1;
  bool from_files = inv.flags.Has("filename");
  std::optional<std::vector<Target>> targets =
      from_files ? TargetsFromFiles(inv) : TargetsFromArgs(inv);
  if (!targets) return 1;
  bool ignore_not_found = inv.flags.Bool("ignore-not-found");
  bool wait = inv.flags.Bool("wait");
  Deadline deadline = std::chrono::steady_clock::now() + inv.flags.Duration("timeout");

  int rc = 0;
  std::vector<std::pair<const Target*, std::string>> deleted;  // target, uid
  for (const auto& t : *targets) {
    Result<Json> gone = inv.client.Delete(t.kind, t.ns, t.name, DeleteOptions{*cascade});
    if (!gone.ok()) {
      if (ignore_not_found && gone.status().code() == Code::kNotFound &&
          !IsTransportError(gone.status())) {
        continue;
      }
      rc = inv.FailRequest(gone.status());
      continue;
    }
    inv.out() << KindDisplayName(t.kind) << " \"" << t.name << "\" deleted\n";
    inv.out().flush();
    std::string uid;
    if (gone->contains("metadata") && (*gone)["metadata"].is_object()) {
      uid = (*gone)["metadata"].value("uid", "");
    }
    deleted.emplace_back(&t, uid);
  }
  if (!wait) return rc;
  for (const auto& [t, uid] : deleted) {
    Result<bool> done = WaitForObject(
        inv.client, t->kind, t->ns, t->name, deadline, [uid = uid](const Json* object) {
          if (!object) return true;
          // A new object under the same name.
          return !uid.empty() &&
                 object->value(Json::json_pointer("/metadata/uid"), std::string()) != uid;
        });
    if (!done.ok()) {
      rc = inv.FailRequest(done.status());
    } else if (!*done) {
      rc = inv.Fail("timed out waiting for the condition on " + t->kind.plural + "/" + t->name);
    }
  }
  return rc;
}

}  // namespace

Verb DeleteVerb() {
  return Verb{"delete",
              "Delete objects by kind and name, or by file",
              R"(Delete objects by kind and name, or those named in manifest files.

sbxd deletes in two phases: the object is marked for deletion while its
sandbox is torn down, then it is removed. By default this command waits until
the objects are gone (--wait=false returns at once). A missing object is a
NotFound error unless --ignore-not-found is given.

Objects owned by a deleted object (through metadata.ownerReferences, e.g. the
Sandbox of a SandboxClaim) are deleted too, as --cascade says: background
(the default) removes the object at once and its dependents after it;
foreground keeps the object, marked for deletion, until its dependents are
gone; orphan removes the object and leaves its dependents without it as owner.

Examples:
  # Delete a sandbox and wait until its runtime is gone
  sbx delete sandbox my-sandbox

  # Delete what a manifest created, without waiting
  sbx delete -f sandbox.yaml --wait=false

  # Delete a claim and wait until its sandbox is gone as well
  sbx delete sandboxclaim my-claim --cascade=foreground

  # Delete a warm pool but keep its sandboxes
  sbx delete swp my-pool --cascade=orphan

Usage:
  sbx delete (KIND NAME... | KIND/NAME... | -f FILENAME) [options]
)",
              {{"filename", 'f', FlagType::kStringList, "",
                "Files or directories with the objects to delete, or - for stdin."},
               {"wait", 0, FlagType::kBool, "true", "Wait until the objects are gone."},
               {"timeout", 0, FlagType::kDuration, "60s", "How long to wait for the deletion."},
               {"ignore-not-found", 0, FlagType::kBool, "", "Treat a missing object as deleted."},
               {"cascade", 0, FlagType::kString, "background",
                "What happens to the objects' dependents: background, foreground or orphan."}},
              RunDelete};
}

}  // namespace sbx::cli
