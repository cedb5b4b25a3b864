// sbx wait KIND/NAME --for=condition=C[=V] | --for=delete [--timeout=D]
// and WaitForObject, which `delete --wait` shares: GET, then watch from the
// returned resourceVersion until the predicate holds or time runs out.
#include "cli/commands.h"
#include "cli/printer.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

std::string MetaField(const Json& object, const char* key) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return "";
  const Json& v = object["metadata"].value(key, Json());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return "";
}

struct WaitFor {
  bool for_delete = false;
  std::string condition;  // compared case-insensitively, as kubectl does
  std::string value = "True";
};

Result<WaitFor> ParseFor(const std::string& spec) {
  WaitFor w;
  if (spec == "delete") {
    w.for_delete = true;
    return w;
  }
  if (spec.starts_with("condition=")) {
    std::string rest = spec.substr(10);
    size_t eq = rest.find('=');
    w.condition = rest.substr(0, eq);
    if (eq != std::string::npos) w.value = rest.substr(eq + 1);
    if (!w.condition.empty() && !w.value.empty()) return w;
  }
  return InvalidArgument("unrecognized condition: \"" + spec +
                         "\" (use --for=condition=NAME[=VALUE] or --for=delete)");
}

// A condition counts only once the controller has seen the current spec:
// a condition with an older observedGeneration describes an older spec.
bool ConditionMet(const Json& object, const WaitFor& w) {
  const Json* conditions = nullptr;
  if (object.contains("status") && object["status"].is_object() &&
      object["status"].contains("conditions")) {
    conditions = &object["status"]["conditions"];
  }
  if (!conditions || !conditions->is_array()) return false;
  int64_t generation = 0;
  if (object.contains("metadata") && object["metadata"].is_object()) {
    generation = object["metadata"].value("generation", int64_t{0});
  }
  for (const auto& c : *conditions) {
    if (!c.is_object() || ToLower(c.value("type", "")) != ToLower(w.condition)) continue;
    if (c.contains("observedGeneration") && c["observedGeneration"].is_number_integer() &&
        c["observedGeneration"].get<int64_t>() < generation) {
      return false;
    }
    return ToLower(c.value("status", "")) == ToLower(w.value);
  }
  return false;
}

int RunWait(Invocation& inv) {
  std::vector<std::string> args = inv.flags.args;
  if (args.empty()) return inv.Fail("resource(s) were provided, but no name was specified");
  // KIND/NAME [KIND/NAME...] or KIND NAME [NAME...]
  std::vector<std::pair<std::string, std::string>> targets;
  if (args.front().find('/') != std::string::npos) {
    for (const auto& a : args) {
      size_t slash = a.find('/');
      if (slash == std::string::npos) {
        return inv.Fail("arguments in resource/name form must have a single resource and name");
      }
      targets.emplace_back(a.substr(0, slash), a.substr(slash + 1));
    }
  } else {
    if (args.size() < 2) return inv.Fail("resource(s) were provided, but no name was specified");
    for (size_t i = 1; i < args.size(); ++i) targets.emplace_back(args.front(), args[i]);
  }
  if (!inv.flags.Has("for")) return inv.Fail("--for must be specified");
  Result<WaitFor> wait_for = ParseFor(inv.flags.String("for"));
  if (!wait_for.ok()) return inv.Fail(wait_for.status().message());

  Deadline deadline = std::chrono::steady_clock::now() + inv.flags.Duration("timeout");
  int rc = 0;
  for (const auto& [kind_name, name] : targets) {
    const api::KindInfo* kind = inv.ResolveKind(kind_name);
    if (!kind) return 1;
    std::string ns = inv.NamespaceFor(*kind);
    Result<bool> met =
        WaitForObject(inv.client, *kind, ns, name, deadline, [&](const Json* object) {
          if (wait_for->for_delete) return object == nullptr;
          return object && ConditionMet(*object, *wait_for);
        });
    if (!met.ok()) {
      rc = inv.FailRequest(met.status());
      continue;
    }
    if (!*met) {
      rc = inv.Fail("timed out waiting for the condition on " + kind->plural + "/" + name);
      continue;
    }
    inv.out() << KindDisplayName(*kind) << "/" << name << " condition met\n";
    inv.out().flush();
  }
  return rc;
}

}  // namespace

Result<bool> WaitForObject(Client& client, const api::KindInfo& kind, std::string_view ns,
                           std::string_view name, std::optional<Deadline> deadline,
                           const std::function<bool(const Json* object)>& done) {
  for (;;) {
    std::string resource_version;
    std::string uid;
    Result<Json> current = client.Get(kind, ns, name);
    if (!current.ok()) {
      if (current.status().code() != Code::kNotFound || IsTransportError(current.status())) {
        return current.status();
      }
      if (done(nullptr)) return true;
      return current.status();
    }
    if (done(&*current)) return true;
    resource_version = MetaField(*current, "resourceVersion");
    uid = MetaField(*current, "uid");
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;

    WatchOptions watch;
    watch.resource_version = resource_version;
    watch.field_selector = "metadata.name=" + std::string(name);
    watch.deadline = deadline;
    bool met = false;
    Status error;
    Result<WatchEnd> end = client.Watch(kind, ns, watch, [&](const WatchEvent& event) {
      if (event.type == "ERROR") {
        // 410 Gone: the resourceVersion is too old; start over from a GET.
        if (event.object.value("code", 0) != 410) {
          error = Status(Code::kInternal, event.object.value("message", "watch failed"));
        }
        return false;
      }
      if (MetaField(event.object, "name") != name) return true;
      // The same name with another uid is a new object: the old one is gone.
      bool gone =
          event.type == "DELETED" || (!uid.empty() && MetaField(event.object, "uid") != uid);
      met = gone ? done(nullptr) : done(&event.object);
      return !met;
    });
    if (!end.ok()) {
      if (end.status().code() == Code::kGone) continue;
      return end.status();
    }
    if (!error.ok()) return error;
    if (met) return true;
    if (*end == WatchEnd::kTimedOut) return false;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
    // The watch ended early (410, server restart): read the state again.
  }
}

Verb WaitVerb() {
  return Verb{"wait",
              "Wait for a condition on one or many objects",
              R"(Wait until a condition of an object has a value, or until the object is gone.

--for=condition=NAME waits for the condition's status to be True;
--for=condition=NAME=VALUE for another value (False, Unknown). A condition
counts only if its observedGeneration is not older than the object's
generation. --for=delete waits until the object no longer exists.

Prints "<kind>/<name> condition met". On timeout prints
"error: timed out waiting for the condition on <plural>/<name>" and exits 1.

Examples:
  # Wait until a sandbox is Ready
  sbx wait sandbox/my-sandbox --for=condition=Ready --timeout=60s

  # Wait until it is gone
  sbx wait sandbox/my-sandbox --for=delete

Usage:
  sbx wait (KIND/NAME... | KIND NAME...) --for=condition=NAME[=VALUE]|delete [options]
)",
              {{"for", 0, FlagType::kString, "",
                "The condition to wait on: condition=NAME[=VALUE] or delete."},
               {"timeout", 0, FlagType::kDuration, "30s",
                "How long to wait before giving up; 0 checks once."}},
              RunWait};
}

}  // namespace sbx::cli
