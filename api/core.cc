#include "api/core.h"

#include "common/base64.h"

namespace sbx::api {

namespace {

const Json* MapValue(const Object& obj, const char* field, const std::string& key) {
  auto m = obj.body.find(field);
  if (m == obj.body.end() || !m->is_object()) return nullptr;
  auto v = m->find(key);
  if (v == m->end() || !v->is_string()) return nullptr;
  return &*v;
}

Status KeyNotFound(const Object& obj, const std::string& key) {
  return NotFound("couldn't find key " + Json(key).dump() + " in " + obj.kind + " " +
                  Json(obj.Key()).dump());
}

Result<std::string> Decode(const Object& obj, const char* field, const std::string& key,
                           const Json& v) {
  auto decoded = Base64Decode(v.get<std::string>());
  if (!decoded.ok()) {
    return decoded.status().Annotate(obj.kind + " " + Json(obj.Key()).dump() + " " + field + "[" +
                                     key + "]");
  }
  return decoded;
}

}  // namespace

Result<std::string> SecretValue(const Object& secret, const std::string& key) {
  const Json* v = MapValue(secret, "data", key);
  if (v == nullptr) return KeyNotFound(secret, key);
  return Decode(secret, "data", key, *v);
}

Result<std::string> ConfigMapValue(const Object& cm, const std::string& key) {
  if (const Json* v = MapValue(cm, "data", key)) return v->get<std::string>();
  if (const Json* v = MapValue(cm, "binaryData", key)) return Decode(cm, "binaryData", key, *v);
  return KeyNotFound(cm, key);
}

}  // namespace sbx::api
