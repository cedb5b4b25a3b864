// sbx scale KIND NAME... | KIND/NAME... --replicas=N [--current-replicas=N]
// [--resource-version=V]
//
// As kubectl scale does, through the object's scale subresource (an
// autoscaling/v1 Scale): a merge patch of spec.replicas, or, with a
// precondition, GET the Scale, check it and PUT it back with its
// resourceVersion (again on a conflict, so a concurrent writer is never
// overwritten). Kinds without a scale subresource are refused by the server.
#include <thread>

#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

constexpr int kConflictAttempts = 5;

// A JSON request on the object's /scale, the server's error as a Status.
Result<Json> ScaleCall(Client& client, const NamedObject& target, std::string method,
                       const Json& body, std::string content_type) {
  HttpRequest request;
  request.method = std::move(method);
  request.target = ResourcePath(*target.kind, target.ns, target.name, "scale");
  request.headers.emplace_back("Accept", "application/json");
  if (!body.is_null()) {
    request.headers.emplace_back("Content-Type", std::move(content_type));
    request.body = body.dump();
  }
  SBX_ASSIGN_OR_RETURN(HttpResponse response, client.Do(request));
  if (response.status_code < 200 || response.status_code >= 300) {
    return StatusFromResponse(response);
  }
  Json scale = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (scale.is_discarded()) return Internal("the server's Scale is not JSON");
  return scale;
}

struct Preconditions {
  int64_t current_replicas = -1;  // -1: not checked
  std::string resource_version;   // empty: not checked
  bool any() const { return current_replicas != -1 || !resource_version.empty(); }
};

// kubectl's ScalePrecondition.validate: "Expected replicas to be 3, was 2",
// or "" when the Scale meets the preconditions.
std::string UnmetPrecondition(const Json& scale, const Preconditions& want) {
  int64_t replicas = scale.value(Json::json_pointer("/spec/replicas"), int64_t{0});
  if (want.current_replicas != -1 && replicas != want.current_replicas) {
    return "Expected replicas to be " + std::to_string(want.current_replicas) + ", was " +
           std::to_string(replicas);
  }
  std::string version = scale.value(Json::json_pointer("/metadata/resourceVersion"), "");
  if (!want.resource_version.empty() && version != want.resource_version) {
    return "Expected resource version to be " + want.resource_version + ", was " + version;
  }
  return "";
}

// Scaling one object ends in the server's answer, or in a precondition that
// does not hold (a local error, as kubectl reports it; nothing was written).
struct ScaleOutcome {
  Status server;
  std::string unmet;
};

ScaleOutcome ScaleOne(Client& client, const NamedObject& target, int64_t replicas,
                      const Preconditions& preconditions) {
  if (!preconditions.any()) {
    Json patch = {{"spec", {{"replicas", replicas}}}};
    return {ScaleCall(client, target, "PATCH", patch, "application/merge-patch+json").status(), ""};
  }
  for (int attempt = 1;; ++attempt) {
    Result<Json> scale = ScaleCall(client, target, "GET", Json(), "");
    if (!scale.ok()) return {scale.status(), ""};
    if (std::string unmet = UnmetPrecondition(*scale, preconditions); !unmet.empty()) {
      return {Status::Ok(), unmet};
    }
    (*scale)["spec"]["replicas"] = replicas;
    Result<Json> updated = ScaleCall(client, target, "PUT", *scale, "application/json");
    if (updated.ok() || updated.status().code() != Code::kConflict ||
        IsTransportError(updated.status()) || attempt == kConflictAttempts) {
      return {updated.status(), ""};
    }
    // Someone else wrote the pool in between: check the preconditions again.
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
  }
}

int RunScale(Invocation& inv) {
  const int64_t replicas = inv.flags.Int("replicas");
  if (replicas < 0) {
    return inv.Fail(
        "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0");
  }
  Preconditions preconditions;
  preconditions.current_replicas = inv.flags.Int("current-replicas");
  preconditions.resource_version = inv.flags.String("resource-version");
  if (preconditions.current_replicas < -1) {
    return inv.Fail("The --current-replicas must specify an integer of -1 or greater");
  }
  std::optional<std::vector<NamedObject>> targets = ResolveNamedObjects(inv);
  if (!targets) return 1;
  if (!preconditions.resource_version.empty() && targets->size() > 1) {
    return inv.Fail("cannot use --resource-version with multiple resources");
  }
  int rc = 0;
  for (const auto& target : *targets) {
    ScaleOutcome outcome = ScaleOne(inv.client, target, replicas, preconditions);
    if (!outcome.unmet.empty()) {
      rc = inv.Fail(outcome.unmet);
    } else if (!outcome.server.ok()) {
      rc = inv.FailRequest(outcome.server);
    } else {
      inv.out() << KindDisplayName(*target.kind) << "/" << target.name << " scaled\n";
    }
  }
  return rc;
}

}  // namespace

Verb ScaleVerb() {
  return Verb{
      "scale",
      "Set a new size for a warm pool",
      R"(Set a new size for a SandboxWarmPool: the number of ready, unclaimed
sandboxes it keeps.

The change goes through the pool's scale subresource, as kubectl scale, an
HPA or KEDA do: only spec.replicas changes. With --current-replicas or
--resource-version the size is checked first and nothing changes unless it
matches.

KIND is sandboxwarmpool (swp, sandboxwarmpools,
sandboxwarmpool.extensions.agents.x-k8s.io); KIND/NAME is accepted too.
Other kinds have no scale subresource.

Examples:
  # Keep 5 warm sandboxes in pool "hermes-pool"
  sbx scale swp hermes-pool --replicas=5

  # Drain a pool in namespace team-a (claims then start cold)
  sbx scale swp/hermes-pool --replicas=0 -n team-a

  # Grow the pool to 10 only if it is at 5 now
  sbx scale swp hermes-pool --current-replicas=5 --replicas=10

Usage:
  sbx scale KIND NAME... --replicas=COUNT [options]
)",
      {{"replicas", 0, FlagType::kInt, "-1", "The new desired number of replicas. Required."},
       {"current-replicas", 0, FlagType::kInt, "-1",
        "Precondition for current size. Requires that the current size of the resource match "
        "this value in order to scale. -1 (default) for no condition."},
       {"resource-version", 0, FlagType::kString, "",
        "Precondition for resource version. Requires that the current resource version match "
        "this value in order to scale."}},
      RunScale};
}

}  // namespace sbx::cli
