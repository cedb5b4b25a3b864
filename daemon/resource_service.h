// ResourceService: the service layer between the HTTP handlers and the
// store. It decodes and validates request bodies (api/decode), applies the
// server-side rules of the Kubernetes API (namespace must exist and match,
// immutable fields, merge patch, the runtime finalizer on Sandboxes) and
// calls the store. Every method blocks on SQLite: call from worker threads.
//
// Thread-safe.
#ifndef SBX_DAEMON_RESOURCE_SERVICE_H_
#define SBX_DAEMON_RESOURCE_SERVICE_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/kinds.h"
#include "api/object.h"
#include "daemon/garbage_collector.h"
#include "store/store.h"

namespace sbx::daemon {

struct ListQuery {
  std::string namespace_;  // empty = all namespaces
  std::string label_selector;
  std::string field_selector;  // metadata.name=X, metadata.namespace=Y
};

class ResourceService {
 public:
  // Admission: a last check of a decoded object against the state of the
  // host (images present, referenced Secrets exist) before create/update.
  using Admission = std::function<Status(const api::Object&)>;

  explicit ResourceService(store::Store& store, Admission admission = nullptr)
      : store_(store), admission_(std::move(admission)) {}

  Result<api::Object> Get(const api::KindInfo& kind, const std::string& ns, const std::string& name);
  // A Kubernetes list object ({kind: SandboxList, metadata.resourceVersion, items}).
  Result<api::Json> List(const api::KindInfo& kind, const ListQuery& query);
  Result<api::Object> Create(const api::KindInfo& kind, const std::string& ns, std::string_view body);
  Result<api::Object> Update(const api::KindInfo& kind, const std::string& ns,
                             const std::string& name, std::string_view body);
  Result<api::Object> Patch(const api::KindInfo& kind, const std::string& ns,
                            const std::string& name, std::string_view body,
                            std::string_view content_type);
  Result<api::Object> UpdateStatus(const api::KindInfo& kind, const std::string& ns,
                                   const std::string& name, std::string_view body);
  // Deletes with the options' propagation policy and preconditions (see
  // DeleteWithPropagation); the dependents are the garbage collector's.
  Result<api::Object> Delete(const api::KindInfo& kind, const std::string& ns,
                             const std::string& name, const DeleteOptions& options = {});
  // Core v1 EventList for a namespace; field selector on involvedObject.uid/name/kind.
  Result<api::Json> ListEvents(const std::string& ns, const std::string& field_selector);

  // Creates the namespace if it does not exist (the daemon makes "default").
  Status EnsureNamespace(const std::string& name);

  // A filter for list and watch from a label and a field selector.
  static Result<std::function<bool(const api::Object&)>> MakeFilter(const ListQuery& query);

 private:
  Result<api::Object> DecodeBody(const api::KindInfo& kind, const std::string& ns,
                                 std::string_view body);
  Result<api::Object> UpdateDecoded(const api::KindInfo& kind, api::Object obj);

  store::Store& store_;
  Admission admission_;
};

// The DeleteOptions of a DELETE request, as the Kubernetes API server reads
// them: from the body when it is not empty (a metav1.DeleteOptions object:
// kind, apiVersion, propagationPolicy, orphanDependents, preconditions.uid,
// preconditions.resourceVersion, gracePeriodSeconds, dryRun), else from the
// query parameters propagationPolicy, orphanDependents, gracePeriodSeconds
// and dryRun. gracePeriodSeconds is accepted and has no effect (sbx deletes
// as soon as the finalizers allow); a dry run is refused. Errors:
// InvalidArgument naming the field, e.g.
//   propagationPolicy: Unsupported value: "Sideways": supported values: ...
Result<DeleteOptions> ParseDeleteOptions(
    std::string_view body, const std::vector<std::pair<std::string, std::string>>& query);

// "sandboxes.agents.x-k8s.io" or "secrets".
std::string QualifiedResource(const api::KindInfo& kind);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_RESOURCE_SERVICE_H_
