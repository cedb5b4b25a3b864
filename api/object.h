// The generic object: Kubernetes type and object metadata, typed; the rest of
// the body (spec, status, data, ...) as JSON, validated against the kind's
// schema by api/decode before it gets here.
//
// Object is what the store persists and the HTTP API serves. Typed views of
// particular kinds (api/sandbox.h, api/core.h) convert to and from Object in
// one place each.
#ifndef SBX_API_OBJECT_H_
#define SBX_API_OBJECT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/time.h"

namespace sbx::api {

using Json = nlohmann::json;

struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
  bool block_owner_deletion = false;
  bool operator==(const OwnerReference&) const = default;
};

struct ObjectMeta {
  std::string name;
  std::string generate_name;
  std::string namespace_;  // empty for cluster-scoped kinds
  std::string uid;
  std::string resource_version;  // decimal string, as Kubernetes serves it
  int64_t generation = 0;
  std::optional<TimePoint> creation_timestamp;
  std::optional<TimePoint> deletion_timestamp;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  std::vector<OwnerReference> owner_references;
  bool operator==(const ObjectMeta&) const = default;
};

Json ObjectMetaToJson(const ObjectMeta& m);
// Strictness (unknown fields) is checked by the schema before this runs;
// this only converts types and reports a bad timestamp with its path.
Result<ObjectMeta> ObjectMetaFromJson(const Json& j, const std::string& path = "metadata");

struct Object {
  std::string api_version;  // "agents.x-k8s.io/v1beta1", "v1"
  std::string kind;         // "Sandbox"
  ObjectMeta metadata;
  // Every other top-level field: spec, status, data, stringData, type, ...
  Json body = Json::object();

  Json ToJson() const;
  // Splits apiVersion/kind/metadata from the rest. No schema validation.
  static Result<Object> FromJson(const Json& j);

  // "default/name" or "name" for cluster-scoped objects.
  std::string Key() const;
};

// Reading untyped JSON (pod specs, container specs): the member `key` of an
// object, or null when `obj` is not an object or has no such member.
const Json& Field(const Json& obj, const char* key);
// The member as a string; "" when absent or not a string.
std::string StringField(const Json& obj, const char* key);
// The string members of a JSON object (labels, annotations); others skipped.
std::map<std::string, std::string> StringMap(const Json& obj);

}  // namespace sbx::api

#endif  // SBX_API_OBJECT_H_
