// sbx apply -f FILE|DIR|- : create each object, or replace it with the
// manifest (optimistic concurrency: the live resourceVersion is sent and a
// Conflict is retried with a fresh read).
#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

constexpr int kMaxAttempts = 5;

std::string NameOf(const Json& object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return "";
  return object["metadata"].value("name", "");
}

std::string ResourceVersionOf(const Json& object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return "";
  return object["metadata"].value("resourceVersion", "");
}

// Applies one document; prints its outcome. Returns false if it failed.
bool ApplyOne(Invocation& inv, const Manifest& manifest) {
  std::string context = "error when applying \"" + manifest.source + "\"";
  Result<api::KindInfo> kind = KindOfManifest(manifest);
  if (!kind.ok()) {
    inv.Fail(kind.status().message());
    return false;
  }
  Result<std::string> ns = NamespaceOfManifest(inv, *kind, manifest);
  if (!ns.ok()) {
    inv.Fail(ns.status().message());
    return false;
  }
  std::string name = NameOf(manifest.object);
  if (name.empty()) {
    inv.Fail(context + ": resource name may not be empty");
    return false;
  }
  Json desired = manifest.object;
  if (kind->namespaced) desired["metadata"]["namespace"] = *ns;
  std::string display = KindDisplayName(*kind) + "/" + name;

  Status last;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Result<Json> live = inv.client.Get(*kind, *ns, name);
    if (!live.ok() && live.status().code() == Code::kNotFound && !IsTransportError(live.status())) {
      Result<Json> created = inv.client.Create(*kind, *ns, desired);
      if (created.ok()) {
        inv.out() << display << " created\n";
        return true;
      }
      last = created.status();
      if (last.code() == Code::kAlreadyExists) continue;  // lost a race with another writer
      break;
    }
    if (!live.ok()) {
      last = live.status();
      break;
    }
    std::string live_version = ResourceVersionOf(*live);
    Json update = desired;
    update["metadata"]["resourceVersion"] = live_version;
    Result<Json> updated = inv.client.Update(*kind, *ns, name, update);
    if (updated.ok()) {
      bool same = ResourceVersionOf(*updated) == live_version;
      inv.out() << display << (same ? " unchanged" : " configured") << "\n";
      return true;
    }
    last = updated.status();
    if (last.code() != Code::kConflict) break;
  }
  inv.FailRequest(last, context);
  return false;
}

int RunApply(Invocation& inv) {
  std::vector<std::string> files = inv.flags.Strings("filename");
  if (files.empty()) {
    return inv.Fail("must specify one of -f and -k");
  }
  if (!inv.flags.args.empty()) {
    return inv.Fail("unexpected arguments: " + inv.flags.args.front() + " (use -f to name files)");
  }
  Result<std::vector<Manifest>> manifests = ReadManifests(files, inv.env.stdin_fd);
  if (!manifests.ok()) return inv.Fail(manifests.status().message());
  if (manifests->empty()) return inv.Fail("no objects passed to apply");
  bool all_ok = true;
  for (const auto& m : *manifests) {
    if (!ApplyOne(inv, m)) all_ok = false;
  }
  return all_ok ? 0 : 1;
}

}  // namespace

Verb ApplyVerb() {
  return Verb{"apply",
              "Create or update objects from files or stdin",
              R"(Apply a configuration to objects by file name or stdin.

Each document is created if it does not exist, otherwise replaced by the
manifest (the server keeps status and metadata it owns). YAML and JSON are
accepted; a directory applies its *.yaml, *.yml and *.json files in name
order (not recursively); "-" reads standard input.

Prints "<kind>/<name> created", "configured", or "unchanged". Every document
is tried; the exit status is 1 if any failed.

Examples:
  # Apply the Sandbox in sandbox.yaml
  sbx apply -f sandbox.yaml

  # Apply every manifest in a directory, in namespace team-a
  sbx apply -n team-a -f ./manifests/

  # Apply from standard input
  cat sandbox.yaml | sbx apply -f -

Usage:
  sbx apply (-f FILENAME | -f DIR | -f -) [options]
)",
              {{"filename", 'f', FlagType::kStringList, "",
                "The files or directories that contain the objects to apply, or - for stdin."}},
              RunApply};
}

}  // namespace sbx::cli
