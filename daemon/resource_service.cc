#include "daemon/resource_service.h"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "api/decode.h"
#include "api/selector.h"
#include "common/strings.h"
#include "daemon/sandbox_controller.h"

namespace sbx::daemon {

namespace {

constexpr int kMaxConflictRetries = 5;

bool IsSandbox(const api::KindInfo& kind) { return kind.kind == "Sandbox"; }

void EnsureRuntimeFinalizer(const api::KindInfo& kind, api::Object* obj) {
  if (!IsSandbox(kind) || obj->metadata.deletion_timestamp) return;
  auto& f = obj->metadata.finalizers;
  if (std::find(f.begin(), f.end(), kRuntimeFinalizer) == f.end()) f.push_back(kRuntimeFinalizer);
}

store::ObjectKey KeyOf(const api::KindInfo& kind, const std::string& ns, const std::string& name) {
  return store::ObjectKey{kind.group, kind.kind, kind.namespaced ? ns : "", name};
}

// "a=b,c==d" into (field, value) pairs.
Result<std::vector<std::pair<std::string, std::string>>> ParseFieldSelector(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& term : Split(text, ',')) {
    std::string_view t = Trim(term);
    if (t.empty()) continue;
    auto eq = t.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("invalid field selector term \"" + std::string(t) + "\"");
    }
    std::string_view value = t.substr(eq + 1);
    if (!value.empty() && value.front() == '=') value.remove_prefix(1);
    out.emplace_back(std::string(Trim(t.substr(0, eq))), std::string(Trim(value)));
  }
  return out;
}

constexpr char kSupportedPolicies[] =
    "supported values: \"Background\", \"Foreground\", \"Orphan\"";

Result<PropagationPolicy> ParsePropagationPolicy(const std::string& value) {
  for (auto p : {PropagationPolicy::kBackground, PropagationPolicy::kForeground,
                 PropagationPolicy::kOrphan}) {
    if (value == PropagationPolicyName(p)) return p;
  }
  return InvalidArgument("propagationPolicy: Unsupported value: " + api::Json(value).dump() + ": " +
                         kSupportedPolicies);
}

// The deprecated orphanDependents flag is propagationPolicy Orphan (true) or
// Background (false); Kubernetes refuses the two together.
Status SetPolicy(std::optional<PropagationPolicy> policy, std::optional<bool> orphan,
                 DeleteOptions* out) {
  if (policy && orphan) {
    return InvalidArgument("propagationPolicy: Invalid value: " +
                           api::Json(std::string(PropagationPolicyName(*policy))).dump() +
                           ": orphanDependents and propagationPolicy cannot be both set");
  }
  if (policy) out->propagation = *policy;
  if (orphan) {
    out->propagation = *orphan ? PropagationPolicy::kOrphan : PropagationPolicy::kBackground;
  }
  return Status::Ok();
}

Status DryRunRefused(const std::string& value) {
  return InvalidArgument("dryRun: Unsupported value: " + api::Json(value).dump() +
                         ": sbxd does not support dry-run deletes");
}

Status UnknownDeleteOptionsField(const std::string& path) {
  return InvalidArgument("DeleteOptions cannot be handled: strict decoding error: unknown field " +
                         api::Json(path).dump());
}

Status NotA(const std::string& path, const api::Json& value, const char* what) {
  return InvalidArgument(path + ": Invalid value: " + value.dump() + ": must be " + what);
}

Result<DeleteOptions> DeleteOptionsFromBody(std::string_view body) {
  api::Json j = api::Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("DeleteOptions: the request body is not valid JSON");
  if (!j.is_object()) {
    return InvalidArgument("DeleteOptions: the request body must be a JSON object");
  }
  DeleteOptions out;
  std::optional<PropagationPolicy> policy;
  std::optional<bool> orphan;
  for (const auto& [field, value] : j.items()) {
    if (value.is_null()) continue;
    if (field == "kind") {
      if (value != "DeleteOptions") {
        return InvalidArgument("kind: Unsupported value: " + value.dump() +
                               ": supported values: \"DeleteOptions\"");
      }
    } else if (field == "apiVersion") {
      if (value != "v1" && value != "meta.k8s.io/v1") {
        return InvalidArgument("apiVersion: Unsupported value: " + value.dump() +
                               ": supported values: \"v1\", \"meta.k8s.io/v1\"");
      }
    } else if (field == "propagationPolicy") {
      if (!value.is_string()) return NotA(field, value, "a string");
      SBX_ASSIGN_OR_RETURN(policy, ParsePropagationPolicy(value.get<std::string>()));
    } else if (field == "orphanDependents") {
      if (!value.is_boolean()) return NotA(field, value, "a boolean");
      orphan = value.get<bool>();
    } else if (field == "gracePeriodSeconds") {
      if (!value.is_number_integer()) return NotA(field, value, "an integer");
      if (value.get<int64_t>() < 0) return NotA(field, value, "greater than or equal to 0");
    } else if (field == "dryRun") {
      const bool strings =
          value.is_array() &&
          std::all_of(value.begin(), value.end(), [](const auto& v) { return v.is_string(); });
      if (!strings) return NotA(field, value, "a list of strings");
      if (!value.empty()) return DryRunRefused(value[0].get<std::string>());
    } else if (field == "preconditions") {
      if (!value.is_object()) return NotA(field, value, "an object");
      for (const auto& [pf, pv] : value.items()) {
        std::string path = "preconditions." + pf;
        if (pf != "uid" && pf != "resourceVersion") return UnknownDeleteOptionsField(path);
        if (pv.is_null()) continue;
        if (!pv.is_string()) return NotA(path, pv, "a string");
        (pf == "uid" ? out.precondition_uid : out.precondition_resource_version) =
            pv.get<std::string>();
      }
    } else {
      return UnknownDeleteOptionsField(field);
    }
  }
  SBX_RETURN_IF_ERROR(SetPolicy(policy, orphan, &out));
  return out;
}

Result<DeleteOptions> DeleteOptionsFromQuery(
    const std::vector<std::pair<std::string, std::string>>& query) {
  DeleteOptions out;
  std::optional<PropagationPolicy> policy;
  std::optional<bool> orphan;
  for (const auto& [name, value] : query) {
    if (name == "propagationPolicy") {
      SBX_ASSIGN_OR_RETURN(policy, ParsePropagationPolicy(value));
    } else if (name == "orphanDependents") {
      if (value != "true" && value != "false") {
        return NotA(name, api::Json(value), "true or false");
      }
      orphan = value == "true";
    } else if (name == "gracePeriodSeconds") {
      char* end = nullptr;
      long long n = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') return NotA(name, api::Json(value), "an integer");
      if (n < 0) return NotA(name, api::Json(n), "greater than or equal to 0");
    } else if (name == "dryRun") {
      if (!value.empty()) return DryRunRefused(value);
    }
  }
  SBX_RETURN_IF_ERROR(SetPolicy(policy, orphan, &out));
  return out;
}

}  // namespace

Result<DeleteOptions> ParseDeleteOptions(
    std::string_view body, const std::vector<std::pair<std::string, std::string>>& query) {
  if (!Trim(body).empty()) return DeleteOptionsFromBody(body);
  return DeleteOptionsFromQuery(query);
}

std::string QualifiedResource(const api::KindInfo& kind) {
  return kind.group.empty() ? kind.plural : kind.plural + "." + kind.group;
}

Result<std::function<bool(const api::Object&)>> ResourceService::MakeFilter(const ListQuery& q) {
  std::optional<api::LabelSelector> labels;
  if (!q.label_selector.empty()) {
    SBX_ASSIGN_OR_RETURN(auto sel, api::ParseLabelSelector(q.label_selector));
    labels = std::move(sel);
  }
  SBX_ASSIGN_OR_RETURN(auto fields, ParseFieldSelector(q.field_selector));
  for (const auto& [field, value] : fields) {
    if (field != "metadata.name" && field != "metadata.namespace") {
      return InvalidArgument("field label not supported: " + field);
    }
  }
  return std::function<bool(const api::Object&)>(
      [labels = std::move(labels), fields = std::move(fields)](const api::Object& o) {
        if (labels && !labels->Matches(o.metadata.labels)) return false;
        for (const auto& [f, v] : fields) {
          const std::string& have = f == "metadata.name" ? o.metadata.name : o.metadata.namespace_;
          if (have != v) return false;
        }
        return true;
      });
}

Result<api::Object> ResourceService::Get(const api::KindInfo& kind, const std::string& ns,
                                         const std::string& name) {
  return store_.Get(KeyOf(kind, ns, name));
}

Result<api::Json> ResourceService::List(const api::KindInfo& kind, const ListQuery& query) {
  SBX_ASSIGN_OR_RETURN(auto filter, MakeFilter(query));
  store::ListOptions opts;
  opts.namespace_ = kind.namespaced ? query.namespace_ : "";
  opts.filter = filter;
  SBX_ASSIGN_OR_RETURN(auto list, store_.List(kind.group, kind.kind, opts));
  api::Json items = api::Json::array();
  for (const auto& o : list.items) items.push_back(o.ToJson());
  return api::Json{{"kind", kind.kind + "List"},
                   {"apiVersion", kind.ApiVersion()},
                   {"metadata", {{"resourceVersion", std::to_string(list.resource_version)}}},
                   {"items", std::move(items)}};
}

Result<api::Object> ResourceService::DecodeBody(const api::KindInfo& kind, const std::string& ns,
                                                std::string_view body) {
  SBX_ASSIGN_OR_RETURN(auto docs, api::ParseDocuments(body, "request body"));
  if (docs.size() != 1) {
    return InvalidArgument("request body must hold exactly one object, found " +
                           std::to_string(docs.size()));
  }
  SBX_ASSIGN_OR_RETURN(api::Object obj, api::DecodeObject(docs[0]));
  if (obj.kind != kind.kind) {
    return InvalidArgument("the kind of the provided object (" + obj.kind +
                           ") does not match the resource in the request path (" + kind.plural +
                           ")");
  }
  if (kind.namespaced) {
    if (!obj.metadata.namespace_.empty() && obj.metadata.namespace_ != ns) {
      return InvalidArgument(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    obj.metadata.namespace_ = ns;
  } else {
    obj.metadata.namespace_.clear();
  }
  return obj;
}

Result<api::Object> ResourceService::Create(const api::KindInfo& kind, const std::string& ns,
                                            std::string_view body) {
  SBX_ASSIGN_OR_RETURN(api::Object obj, DecodeBody(kind, ns, body));
  if (kind.namespaced) {
    auto nsobj = store_.Get({"", "Namespace", "", ns});
    if (!nsobj.ok()) {
      if (nsobj.status().code() == Code::kNotFound) {
        return NotFound("namespaces \"" + ns + "\" not found");
      }
      return nsobj.status();
    }
    if (nsobj->metadata.deletion_timestamp) {
      return FailedPrecondition("namespace " + ns + " is being terminated");
    }
  }
  if (admission_) SBX_RETURN_IF_ERROR(admission_(obj));
  EnsureRuntimeFinalizer(kind, &obj);
  return store_.Create(obj);
}

Result<api::Object> ResourceService::UpdateDecoded(const api::KindInfo& kind, api::Object obj) {
  SBX_ASSIGN_OR_RETURN(api::Object old, store_.Get(KeyOf(kind, obj.metadata.namespace_,
                                                          obj.metadata.name)));
  SBX_RETURN_IF_ERROR(api::ValidateUpdate(old, obj));
  if (admission_ && old.body.value("spec", api::Json()) != obj.body.value("spec", api::Json())) {
    SBX_RETURN_IF_ERROR(admission_(obj));
  }
  // The runtime finalizer is the server's, not the client's: a manifest
  // applied again must not drop it.
  if (std::find(old.metadata.finalizers.begin(), old.metadata.finalizers.end(),
                kRuntimeFinalizer) != old.metadata.finalizers.end()) {
    EnsureRuntimeFinalizer(kind, &obj);
  }
  return store_.Update(obj);
}

Result<api::Object> ResourceService::Update(const api::KindInfo& kind, const std::string& ns,
                                            const std::string& name, std::string_view body) {
  SBX_ASSIGN_OR_RETURN(api::Object obj, DecodeBody(kind, ns, body));
  if (obj.metadata.name != name) {
    return InvalidArgument("the name of the object (" + obj.metadata.name +
                           ") does not match the name on the URL (" + name + ")");
  }
  return UpdateDecoded(kind, std::move(obj));
}

Result<api::Object> ResourceService::Patch(const api::KindInfo& kind, const std::string& ns,
                                           const std::string& name, std::string_view body,
                                           std::string_view content_type) {
  if (content_type.find("merge-patch+json") == std::string_view::npos &&
      content_type.find("application/json") == std::string_view::npos) {
    return Status(Code::kInvalidArgument,
                  "unsupported patch type \"" + std::string(content_type) +
                      "\": use application/merge-patch+json");
  }
  api::Json patch;
  try {
    patch = api::Json::parse(body);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("invalid JSON patch body: ") + e.what());
  }
  if (!patch.is_object()) return InvalidArgument("merge patch must be a JSON object");
  const bool pinned = patch.contains("metadata") && patch["metadata"].is_object() &&
                      patch["metadata"].contains("resourceVersion");
  for (int attempt = 0;; ++attempt) {
    SBX_ASSIGN_OR_RETURN(api::Object cur, store_.Get(KeyOf(kind, ns, name)));
    api::Json doc = cur.ToJson();
    doc.merge_patch(patch);
    SBX_ASSIGN_OR_RETURN(api::Object obj, DecodeBody(kind, ns, doc.dump()));
    if (obj.metadata.name != name) return InvalidArgument("metadata.name cannot be patched");
    if (!pinned) obj.metadata.resource_version = cur.metadata.resource_version;
    auto r = UpdateDecoded(kind, std::move(obj));
    if (r.ok() || pinned || r.status().code() != Code::kConflict ||
        attempt >= kMaxConflictRetries) {
      return r;
    }
  }
}

Result<api::Object> ResourceService::UpdateStatus(const api::KindInfo& kind, const std::string& ns,
                                                  const std::string& name, std::string_view body) {
  if (!kind.has_status) return NotFound(QualifiedResource(kind) + " has no status subresource");
  SBX_ASSIGN_OR_RETURN(api::Object obj, DecodeBody(kind, ns, body));
  if (obj.metadata.name != name) {
    return InvalidArgument("the name of the object does not match the name on the URL");
  }
  return store_.UpdateStatus(obj);
}

Result<api::Object> ResourceService::Delete(const api::KindInfo& kind, const std::string& ns,
                                            const std::string& name, const DeleteOptions& options) {
  if (kind.kind == "Namespace") {
    // Namespaces are deleted only when empty; sbx does not cascade.
    for (const auto& k : api::AllKinds()) {
      if (!k.namespaced || k.kind == "Event") continue;
      store::ListOptions opts;
      opts.namespace_ = name;
      SBX_ASSIGN_OR_RETURN(auto list, store_.List(k.group, k.kind, opts));
      if (!list.items.empty()) {
        return Status(Code::kConflict, "namespace \"" + name + "\" is not empty: it holds " +
                                           QualifiedResource(k) + " \"" +
                                           list.items[0].metadata.name + "\"");
      }
    }
  }
  return DeleteWithPropagation(store_, KeyOf(kind, ns, name), options);
}

Result<api::Json> ResourceService::ListEvents(const std::string& ns,
                                              const std::string& field_selector) {
  std::string uid, name, kind;
  SBX_ASSIGN_OR_RETURN(auto fields, ParseFieldSelector(field_selector));
  for (const auto& [field, value] : fields) {
    if (field == "involvedObject.uid") uid = value;
    else if (field == "involvedObject.name") name = value;
    else if (field == "involvedObject.kind") kind = value;
    else return InvalidArgument("field label not supported: " + field);
  }
  SBX_ASSIGN_OR_RETURN(auto events, store_.ListEvents(ns, uid));
  api::Json items = api::Json::array();
  for (const auto& e : events) {
    if (!name.empty() && e.involved.name != name) continue;
    if (!kind.empty() && e.involved.kind != kind) continue;
    items.push_back(e.ToObject().ToJson());
  }
  return api::Json{{"kind", "EventList"},
                   {"apiVersion", "v1"},
                   {"metadata", {{"resourceVersion", std::to_string(store_.CurrentResourceVersion())}}},
                   {"items", std::move(items)}};
}

Status ResourceService::EnsureNamespace(const std::string& name) {
  auto got = store_.Get({"", "Namespace", "", name});
  if (got.ok()) return Status::Ok();
  if (got.status().code() != Code::kNotFound) return got.status();
  api::Object ns;
  ns.api_version = "v1";
  ns.kind = "Namespace";
  ns.metadata.name = name;
  ns.body["spec"] = api::Json::object();
  auto created = store_.Create(ns);
  if (!created.ok() && created.status().code() != Code::kAlreadyExists) return created.status();
  return Status::Ok();
}

}  // namespace sbx::daemon
