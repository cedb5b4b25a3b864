#include "api/object.h"

namespace sbx::api {

namespace {
Json OwnerRefToJson(const OwnerReference& r) {
  Json j = {{"apiVersion", r.api_version}, {"kind", r.kind}, {"name", r.name}, {"uid", r.uid}};
  if (r.controller) j["controller"] = true;
  if (r.block_owner_deletion) j["blockOwnerDeletion"] = true;
  return j;
}

std::string StringOr(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

Status ReadStringMap(const Json& j, const char* key, const std::string& path,
                     std::map<std::string, std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return InvalidArgument(path + "." + key + ": must be an object");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return InvalidArgument(path + "." + key + "." + k + ": must be a string");
    }
    (*out)[k] = v.get<std::string>();
  }
  return Status::Ok();
}

Result<std::optional<TimePoint>> ReadTime(const Json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<TimePoint>();
  if (!it->is_string()) return InvalidArgument(path + "." + key + ": must be a string");
  auto t = ParseRfc3339(it->get<std::string>());
  if (!t.ok()) return t.status().Annotate(path + "." + key);
  return std::optional<TimePoint>(*t);
}
}  // namespace

Json ObjectMetaToJson(const ObjectMeta& m) {
  Json j = Json::object();
  if (!m.name.empty()) j["name"] = m.name;
  if (!m.generate_name.empty()) j["generateName"] = m.generate_name;
  if (!m.namespace_.empty()) j["namespace"] = m.namespace_;
  if (!m.uid.empty()) j["uid"] = m.uid;
  if (!m.resource_version.empty()) j["resourceVersion"] = m.resource_version;
  if (m.generation != 0) j["generation"] = m.generation;
  if (m.creation_timestamp) j["creationTimestamp"] = FormatRfc3339(*m.creation_timestamp);
  if (m.deletion_timestamp) j["deletionTimestamp"] = FormatRfc3339(*m.deletion_timestamp);
  if (!m.labels.empty()) j["labels"] = m.labels;
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  if (!m.finalizers.empty()) j["finalizers"] = m.finalizers;
  if (!m.owner_references.empty()) {
    Json refs = Json::array();
    for (const auto& r : m.owner_references) refs.push_back(OwnerRefToJson(r));
    j["ownerReferences"] = std::move(refs);
  }
  return j;
}

Result<ObjectMeta> ObjectMetaFromJson(const Json& j, const std::string& path) {
  ObjectMeta m;
  if (j.is_null()) return m;
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  m.name = StringOr(j, "name");
  m.generate_name = StringOr(j, "generateName");
  m.namespace_ = StringOr(j, "namespace");
  m.uid = StringOr(j, "uid");
  if (auto it = j.find("resourceVersion"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument(path + ".resourceVersion: must be a string");
    m.resource_version = it->get<std::string>();
  }
  if (auto it = j.find("generation"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return InvalidArgument(path + ".generation: must be an integer");
    m.generation = it->get<int64_t>();
  }
  SBX_ASSIGN_OR_RETURN(m.creation_timestamp, ReadTime(j, "creationTimestamp", path));
  SBX_ASSIGN_OR_RETURN(m.deletion_timestamp, ReadTime(j, "deletionTimestamp", path));
  SBX_RETURN_IF_ERROR(ReadStringMap(j, "labels", path, &m.labels));
  SBX_RETURN_IF_ERROR(ReadStringMap(j, "annotations", path, &m.annotations));
  if (auto it = j.find("finalizers"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument(path + ".finalizers: must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return InvalidArgument(path + ".finalizers[" + std::to_string(i) + "]: must be a string");
      }
      m.finalizers.push_back((*it)[i].get<std::string>());
    }
  }
  if (auto it = j.find("ownerReferences"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument(path + ".ownerReferences: must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& r = (*it)[i];
      std::string p = path + ".ownerReferences[" + std::to_string(i) + "]";
      if (!r.is_object()) return InvalidArgument(p + ": must be an object");
      OwnerReference ref;
      ref.api_version = StringOr(r, "apiVersion");
      ref.kind = StringOr(r, "kind");
      ref.name = StringOr(r, "name");
      ref.uid = StringOr(r, "uid");
      ref.controller = r.value("controller", false);
      ref.block_owner_deletion = r.value("blockOwnerDeletion", false);
      m.owner_references.push_back(std::move(ref));
    }
  }
  return m;
}

Json Object::ToJson() const {
  Json j = Json::object();
  j["apiVersion"] = api_version;
  j["kind"] = kind;
  j["metadata"] = ObjectMetaToJson(metadata);
  for (auto& [k, v] : body.items()) j[k] = v;
  return j;
}

Result<Object> Object::FromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("object must be a JSON/YAML mapping");
  Object o;
  o.api_version = StringOr(j, "apiVersion");
  o.kind = StringOr(j, "kind");
  if (auto it = j.find("metadata"); it != j.end()) {
    SBX_ASSIGN_OR_RETURN(o.metadata, ObjectMetaFromJson(*it));
  }
  for (auto& [k, v] : j.items()) {
    if (k == "apiVersion" || k == "kind" || k == "metadata") continue;
    o.body[k] = v;
  }
  return o;
}

std::string Object::Key() const {
  if (metadata.namespace_.empty()) return metadata.name;
  return metadata.namespace_ + "/" + metadata.name;
}

const Json& Field(const Json& obj, const char* key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string StringField(const Json& obj, const char* key) {
  const Json& v = Field(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::map<std::string, std::string> StringMap(const Json& obj) {
  std::map<std::string, std::string> m;
  if (!obj.is_object()) return m;
  for (const auto& [k, v] : obj.items()) {
    if (v.is_string()) m[k] = v.get<std::string>();
  }
  return m;
}

}  // namespace sbx::api
