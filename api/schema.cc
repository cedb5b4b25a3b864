#include "api/schema.h"

#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>

#include "api/kinds.h"
#include "api/schema_data.h"
#include "common/time.h"

namespace sbx::api {

namespace {

const internal::EmbeddedSchema* FindEmbedded(std::string_view name) {
  for (size_t i = 0; i < internal::kEmbeddedSchemaCount; ++i) {
    if (internal::kEmbeddedSchemas[i].name == name) return &internal::kEmbeddedSchemas[i];
  }
  return nullptr;
}

// Parses one embedded file. The files are part of the build; a parse failure
// is a build bug.
Json ParseEmbedded(const internal::EmbeddedSchema& e) { return Json::parse(e.json); }

// Root schemas are parsed on first use, one file at a time, so a process that
// only handles Secrets never parses the pod spec schemas.
const Json* LoadRootSchema(const std::string& name) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::unique_ptr<Json>, std::less<>>;
  std::lock_guard<std::mutex> l(mu);
  if (auto it = cache->find(name); it != cache->end()) return it->second.get();
  const internal::EmbeddedSchema* e = FindEmbedded(name);
  if (e == nullptr) return nullptr;
  static const Json* meta = [] {
    const internal::EmbeddedSchema* m = FindEmbedded("objectmeta");
    SBX_CHECK(m != nullptr);
    return new Json(ParseEmbedded(*m));
  }();
  auto schema = std::make_unique<Json>(ParseEmbedded(*e));
  (*schema)["properties"]["metadata"] = *meta;
  const Json* out = schema.get();
  cache->emplace(name, std::move(schema));
  return out;
}

std::string ChildPath(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::string:
      return "string";
    case Json::value_t::array:
      return "array";
    default:
      return "object";
  }
}

bool HasType(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return true;
}

// std::regex matching is recursive in the input length; longer strings are
// rejected without matching. Every pattern in the schemas guards a short
// token (quantities, condition types and reasons).
constexpr size_t kMaxPatternInput = 4096;

bool MatchesPattern(const std::string& pattern, const std::string& s) {
  static std::mutex mu;
  static std::map<std::string, std::regex> cache;
  if (s.size() > kMaxPatternInput) return false;
  const std::regex* re;
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = cache.find(pattern);
    if (it == cache.end()) {
      it = cache.emplace(pattern, std::regex(pattern, std::regex::ECMAScript)).first;
    }
    re = &it->second;
  }
  // std::regex objects are safe for concurrent const use.
  return std::regex_search(s, *re);
}

class Walker {
 public:
  explicit Walker(SchemaFindings* out) : out_(out) {}

  void Walk(const Json& schema, Json* value, const std::string& path) {
    if (value->is_null()) {
      if (!schema.value("nullable", false)) TypeError(schema, *value, path);
      return;
    }
    if (schema.value("x-kubernetes-int-or-string", false)) {
      if (!value->is_number_integer() && !value->is_string()) {
        Error(path, "Invalid value: \"" + JsonTypeName(*value) + "\": " + path +
                        " in body must be of type int-or-string: \"" + JsonTypeName(*value) + "\"");
        return;
      }
    } else if (auto t = schema.find("type"); t != schema.end() && t->is_string()) {
      if (!HasType(*value, t->get<std::string>())) {
        TypeError(schema, *value, path);
        return;
      }
    }
    CheckEnum(schema, *value, path);
    if (value->is_string()) CheckString(schema, value, path);
    if (value->is_number()) CheckNumber(schema, *value, path);
    if (value->is_object()) WalkObject(schema, value, path);
    if (value->is_array()) WalkArray(schema, value, path);
  }

 private:
  void Error(const std::string& path, const std::string& what) {
    out_->errors.push_back((path.empty() ? "<root>" : path) + ": " + what);
  }

  void TypeError(const Json& schema, const Json& value, const std::string& path) {
    std::string want = schema.value("type", std::string("object"));
    Error(path, "Invalid value: \"" + JsonTypeName(value) + "\": " + path +
                    " in body must be of type " + want + ": \"" + JsonTypeName(value) + "\"");
  }

  void CheckEnum(const Json& schema, const Json& value, const std::string& path) {
    auto e = schema.find("enum");
    if (e == schema.end() || !e->is_array()) return;
    for (const auto& allowed : *e) {
      if (allowed == value) return;
    }
    std::string supported;
    for (const auto& allowed : *e) {
      if (!supported.empty()) supported += ", ";
      supported += FieldValueString(allowed);
    }
    Error(path,
          "Unsupported value: " + FieldValueString(value) + ": supported values: " + supported);
  }

  void CheckString(const Json& schema, Json* value, const std::string& path) {
    const std::string& s = value->get_ref<const std::string&>();
    if (auto it = schema.find("maxLength"); it != schema.end() && it->is_number_unsigned()) {
      // OpenAPI lengths count characters; the schemas' limits are on ASCII tokens.
      if (s.size() > it->get<size_t>()) {
        Error(path, "Too long: may not be longer than " + std::to_string(it->get<size_t>()));
        return;
      }
    }
    if (auto it = schema.find("minLength"); it != schema.end() && it->is_number_unsigned()) {
      if (s.size() < it->get<size_t>()) {
        Error(path, "Invalid value: " + FieldValueString(s) + ": " + path +
                        " in body should be at least " + std::to_string(it->get<size_t>()) +
                        " chars long");
        return;
      }
    }
    if (auto it = schema.find("pattern"); it != schema.end() && it->is_string()) {
      if (!MatchesPattern(it->get<std::string>(), s)) {
        Error(path, "Invalid value: " + FieldValueString(s) + ": " + path +
                        " in body should match '" + it->get<std::string>() + "'");
        return;
      }
    }
    if (auto it = schema.find("format"); it != schema.end() && *it == "date-time") {
      auto t = ParseRfc3339(s);
      if (!t.ok()) {
        Error(path, "Invalid value: " + FieldValueString(s) + ": " + path +
                        " in body must be of type date-time: " + FieldValueString(s));
        return;
      }
      // Stored as metav1.Time serialises: UTC, whole seconds.
      *value = FormatRfc3339(*t);
    }
  }

  void CheckNumber(const Json& schema, const Json& v, const std::string& path) {
    double d = v.get<double>();
    if (auto it = schema.find("format"); it != schema.end() && *it == "int64" &&
                                         v.is_number_unsigned() &&
                                         v.get<uint64_t>() > uint64_t{INT64_MAX}) {
      Error(path, "Invalid value: " + v.dump() + ": " + path +
                      " in body must be of type int64: " + FieldValueString(v.dump()));
      return;
    }
    if (auto it = schema.find("format");
        it != schema.end() && *it == "int32" && v.is_number_integer()) {
      bool fits = v.is_number_unsigned()
                      ? v.get<uint64_t>() <= INT32_MAX
                      : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
      if (!fits) {
        Error(path, "Invalid value: " + v.dump() + ": " + path +
                        " in body must be of type int32: " + FieldValueString(v.dump()));
        return;
      }
    }
    if (auto it = schema.find("minimum"); it != schema.end() && it->is_number()) {
      bool exclusive = schema.value("exclusiveMinimum", false);
      double min = it->get<double>();
      if (exclusive ? d <= min : d < min) {
        Error(path, "Invalid value: " + v.dump() + ": must be greater than " +
                        std::string(exclusive ? "" : "or equal to ") + it->dump());
      }
    }
    if (auto it = schema.find("maximum"); it != schema.end() && it->is_number()) {
      bool exclusive = schema.value("exclusiveMaximum", false);
      double max = it->get<double>();
      if (exclusive ? d >= max : d > max) {
        Error(path, "Invalid value: " + v.dump() + ": must be less than " +
                        std::string(exclusive ? "" : "or equal to ") + it->dump());
      }
    }
  }

  void WalkObject(const Json& schema, Json* obj, const std::string& path) {
    const Json* props = nullptr;
    if (auto it = schema.find("properties"); it != schema.end() && it->is_object()) {
      props = &*it;
    }
    const Json* additional = nullptr;
    bool additional_allowed = false;
    if (auto it = schema.find("additionalProperties"); it != schema.end()) {
      if (it->is_object()) additional = &*it;
      if (it->is_boolean()) additional_allowed = it->get<bool>();
    }
    bool preserve = schema.value("x-kubernetes-preserve-unknown-fields", false);

    std::vector<std::string> pruned;
    for (auto& [key, child] : obj->items()) {
      if (props != nullptr) {
        if (auto p = props->find(key); p != props->end()) {
          if (child.is_null() && !p->value("nullable", false)) {
            pruned.push_back(key);
          } else {
            Walk(*p, &child, ChildPath(path, key));
          }
          continue;
        }
      }
      if (additional != nullptr) {
        Walk(*additional, &child, path + "[" + key + "]");
      } else if (!additional_allowed && !preserve) {
        out_->unknown_fields.push_back(ChildPath(path, key));
      }
    }
    for (const auto& key : pruned) obj->erase(key);

    if (props != nullptr) {
      for (auto& [key, sub] : props->items()) {
        if (obj->contains(key)) continue;
        if (auto d = sub.find("default"); d != sub.end()) {
          Json& filled = (*obj)[key] = *d;
          Walk(sub, &filled, ChildPath(path, key));
        }
      }
    }
    if (auto req = schema.find("required"); req != schema.end() && req->is_array()) {
      for (const auto& r : *req) {
        if (r.is_string() && !obj->contains(r.get<std::string>())) {
          Error(ChildPath(path, r.get<std::string>()), "Required value");
        }
      }
    }
  }

  void WalkArray(const Json& schema, Json* arr, const std::string& path) {
    if (auto it = schema.find("maxItems");
        it != schema.end() && it->is_number_unsigned() && arr->size() > it->get<size_t>()) {
      Error(path, "Too many: " + std::to_string(arr->size()) + ": must have at most " +
                      std::to_string(it->get<size_t>()) + " items");
    }
    if (auto it = schema.find("minItems");
        it != schema.end() && it->is_number_unsigned() && arr->size() < it->get<size_t>()) {
      Error(path, "Invalid value: " + std::to_string(arr->size()) + ": " + path +
                      " in body should have at least " + std::to_string(it->get<size_t>()) +
                      " items");
    }
    if (auto it = schema.find("items"); it != schema.end() && it->is_object()) {
      for (size_t i = 0; i < arr->size(); ++i) {
        Walk(*it, &(*arr)[i], path + "[" + std::to_string(i) + "]");
      }
    }
    std::string list_type = schema.value("x-kubernetes-list-type", std::string());
    if (list_type == "set") {
      std::set<Json> seen;
      for (size_t i = 0; i < arr->size(); ++i) {
        if (!seen.insert((*arr)[i]).second) {
          Error(path + "[" + std::to_string(i) + "]",
                "Duplicate value: " + FieldValueString((*arr)[i]));
        }
      }
    } else if (list_type == "map") {
      auto keys = schema.find("x-kubernetes-list-map-keys");
      if (keys == schema.end() || !keys->is_array()) return;
      std::set<Json> seen;
      for (size_t i = 0; i < arr->size(); ++i) {
        const Json& item = (*arr)[i];
        if (!item.is_object()) continue;
        Json key = Json::object();
        for (const auto& k : *keys) {
          const std::string name = k.get<std::string>();
          // Unset keys take their schema default, as the server compares them.
          if (auto v = item.find(name); v != item.end()) key[name] = *v;
        }
        if (!seen.insert(key).second) {
          Error(path + "[" + std::to_string(i) + "]", "Duplicate value: " + key.dump());
        }
      }
    }
  }

  SchemaFindings* out_;
};

}  // namespace

const Json* FindSchema(std::string_view kind, std::string_view version) {
  const KindInfo* info = FindKind(kind);
  if (info == nullptr) return nullptr;
  return LoadRootSchema(info->plural + "." + std::string(version));
}

SchemaFindings CheckAgainstSchema(const Json& schema, Json* doc) {
  SchemaFindings out;
  Walker(&out).Walk(schema, doc, "");
  return out;
}

std::string FieldValueString(const Json& v) {
  if (v.is_string()) return Json(v.get<std::string>()).dump();
  return v.dump();
}

}  // namespace sbx::api
