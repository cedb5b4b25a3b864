#include "daemon/container_env.h"

#include <unistd.h>

#include <climits>
#include <map>

#include "api/core.h"
#include "common/strings.h"

namespace sbx::daemon {
namespace {

using api::Json;
using Env = std::vector<std::pair<std::string, std::string>>;

// Kubernetes' IsEnvVarName (without RelaxedEnvironmentVariableValidation).
bool IsEnvVarName(std::string_view s) {
  auto first = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_';
  };
  if (s.empty() || !first(s[0])) return false;
  for (char c : s.substr(1)) {
    if (!first(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

void SetVar(Env* env, const std::string& name, std::string value) {
  for (auto& [n, v] : *env) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  env->emplace_back(name, std::move(value));
}

std::optional<std::string> FindVar(const Env& env, std::string_view name) {
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return std::nullopt;
}

std::string Quote(const std::string& s) { return Json(s).dump(); }

std::string LowerKind(const std::string& kind) { return kind == "Secret" ? "secret" : "configmap"; }

// The string member `key` of object j: nullopt when absent or null.
Result<std::optional<std::string>> OptionalString(const Json& j, const char* key,
                                                  const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Invalid(path + "." + key + ": must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<bool> OptionalFlag(const Json& j, const std::string& path) {
  auto it = j.find("optional");
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Invalid(path + ".optional: must be a boolean");
  return it->get<bool>();
}

Result<std::string> RequiredString(const Json& j, const char* key, const std::string& path) {
  SBX_ASSIGN_OR_RETURN(std::optional<std::string> v, OptionalString(j, key, path));
  if (!v || v->empty()) return Invalid(path + "." + key + ": Required value");
  return *v;
}

// Secrets and ConfigMaps read through EnvSources, each at most once per
// container as the kubelet caches them.
class ObjectCache {
 public:
  explicit ObjectCache(const EnvSources& sources) : sources_(sources) {}

  // nullptr when the object does not exist.
  Result<const api::Object*> Get(const std::string& kind, const std::string& name) {
    auto key = std::make_pair(kind, name);
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      if (!sources_.get) return Internal("no source for " + kind + " objects");
      Result<api::Object> obj = sources_.get(kind, name);
      if (!obj.ok() && obj.status().code() != Code::kNotFound) return obj.status();
      it = objects_
               .emplace(key, obj.ok() ? std::optional<api::Object>(std::move(obj).value())
                                      : std::nullopt)
               .first;
    }
    return it->second ? &*it->second : nullptr;
  }

 private:
  const EnvSources& sources_;
  std::map<std::pair<std::string, std::string>, std::optional<api::Object>> objects_;
};

// data of a ConfigMap as strings, or decoded data of a Secret; key order.
Result<std::vector<std::pair<std::string, std::string>>> ObjectData(const api::Object& obj) {
  std::vector<std::pair<std::string, std::string>> out;
  auto data = obj.body.find("data");
  if (data == obj.body.end() || !data->is_object()) return out;
  for (const auto& [key, value] : data->items()) {
    if (obj.kind == "Secret") {
      SBX_ASSIGN_OR_RETURN(std::string v, api::SecretValue(obj, key));
      out.emplace_back(key, std::move(v));
    } else if (value.is_string()) {
      out.emplace_back(key, value.get<std::string>());
    }
  }
  return out;
}

class EnvResolver {
 public:
  EnvResolver(const api::Sandbox& sb, const std::string& container_path, const EnvSources& sources,
              std::vector<std::string>* warnings)
      : sb_(sb), path_(container_path), sources_(sources), warnings_(warnings), cache_(sources) {}

  Result<Env> Resolve(const Json& container) {
    if (!container.is_object()) return Invalid(path_ + ": must be an object");
    if (auto it = container.find("envFrom"); it != container.end() && !it->is_null()) {
      if (!it->is_array()) return Invalid(path_ + ".envFrom: must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        SBX_RETURN_IF_ERROR(EnvFrom((*it)[i], path_ + ".envFrom[" + std::to_string(i) + "]"));
      }
    }
    if (auto it = container.find("env"); it != container.end() && !it->is_null()) {
      if (!it->is_array()) return Invalid(path_ + ".env: must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        SBX_RETURN_IF_ERROR(Var((*it)[i], path_ + ".env[" + std::to_string(i) + "]"));
      }
    }
    return std::move(env_);
  }

 private:
  Status EnvFrom(const Json& e, const std::string& path) {
    if (!e.is_object()) return Invalid(path + ": must be an object");
    SBX_ASSIGN_OR_RETURN(std::optional<std::string> prefix, OptionalString(e, "prefix", path));
    const bool cm = e.contains("configMapRef") && !e["configMapRef"].is_null();
    const bool secret = e.contains("secretRef") && !e["secretRef"].is_null();
    if (cm == secret) {
      return Invalid(path + (cm ? ": may not have more than one field specified at a time"
                                : ": must specify one of: `configMapRef` or `secretRef`"));
    }
    const std::string kind = cm ? "ConfigMap" : "Secret";
    const std::string ref_path = path + (cm ? ".configMapRef" : ".secretRef");
    const Json& ref = e[cm ? "configMapRef" : "secretRef"];
    if (!ref.is_object()) return Invalid(ref_path + ": must be an object");
    SBX_ASSIGN_OR_RETURN(std::string name, RequiredString(ref, "name", ref_path));
    SBX_ASSIGN_OR_RETURN(bool optional, OptionalFlag(ref, ref_path));

    auto obj = cache_.Get(kind, name);
    if (!obj.ok()) return obj.status().Annotate(ref_path);
    if (*obj == nullptr) {
      if (optional) return Status::Ok();
      return NotFound(ref_path + ": " + LowerKind(kind) + " " + Quote(name) + " not found");
    }
    auto data = ObjectData(**obj);
    if (!data.ok()) return data.status().Annotate(ref_path);
    std::vector<std::string> invalid;
    for (auto& [key, value] : *data) {
      std::string var = prefix.value_or("") + key;
      if (!IsEnvVarName(var)) {
        invalid.push_back(std::move(var));
        continue;
      }
      SetVar(&env_, var, std::move(value));
    }
    if (!invalid.empty() && warnings_ != nullptr) {
      warnings_->push_back("Keys [" + Join(invalid, ", ") + "] from the EnvFrom " +
                           LowerKind(kind) + " " + sb_.metadata.namespace_ + "/" + name +
                           " were skipped since they are considered invalid environment "
                           "variable names.");
    }
    return Status::Ok();
  }

  Status Var(const Json& e, const std::string& path) {
    if (!e.is_object()) return Invalid(path + ": must be an object");
    SBX_ASSIGN_OR_RETURN(std::string name, RequiredString(e, "name", path));
    SBX_ASSIGN_OR_RETURN(std::optional<std::string> value, OptionalString(e, "value", path));
    const bool has_from = e.contains("valueFrom") && !e["valueFrom"].is_null();
    if (value && !value->empty()) {
      if (has_from) {
        return Invalid(path +
                       ".valueFrom: Invalid value: \"\": may not be specified when "
                       "`value` is not empty");
      }
      SetVar(&env_, name,
             ExpandVar(*value, [this](std::string_view n) { return FindVar(env_, n); }));
      return Status::Ok();
    }
    if (!has_from) {
      SetVar(&env_, name, "");
      return Status::Ok();
    }
    SBX_ASSIGN_OR_RETURN(std::optional<std::string> from,
                         ValueFrom(e["valueFrom"], path + ".valueFrom"));
    if (from) SetVar(&env_, name, std::move(*from));
    return Status::Ok();
  }

  // nullopt: an optional reference to something missing; the variable is
  // left out.
  Result<std::optional<std::string>> ValueFrom(const Json& from, const std::string& path) {
    if (!from.is_object()) return Invalid(path + ": must be an object");
    static const char* const kSources[] = {"fieldRef", "resourceFieldRef", "configMapKeyRef",
                                           "secretKeyRef"};
    const char* source = nullptr;
    for (const char* s : kSources) {
      if (!from.contains(s) || from[s].is_null()) continue;
      if (source != nullptr) {
        return Invalid(path +
                       ": Invalid value: \"\": may not have more than one field specified "
                       "at a time");
      }
      source = s;
    }
    if (source == nullptr) {
      return Invalid(path +
                     ": Invalid value: \"\": must specify one of: `fieldRef`, "
                     "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
    }
    const std::string ref_path = path + "." + source;
    const Json& ref = from[source];
    if (!ref.is_object()) return Invalid(ref_path + ": must be an object");
    const std::string_view s = source;
    if (s == "fieldRef") {
      SBX_ASSIGN_OR_RETURN(std::string v, FieldRef(ref, ref_path));
      return std::optional<std::string>(std::move(v));
    }
    if (s == "resourceFieldRef") {
      if (!sources_.resource_field) {
        return Invalid(ref_path + ": resourceFieldRef is not supported here");
      }
      SBX_ASSIGN_OR_RETURN(std::string v, sources_.resource_field(ref, ref_path));
      return std::optional<std::string>(std::move(v));
    }
    return KeyRef(s == "secretKeyRef" ? "Secret" : "ConfigMap", ref, ref_path);
  }

  Result<std::optional<std::string>> KeyRef(const std::string& kind, const Json& ref,
                                            const std::string& path) {
    SBX_ASSIGN_OR_RETURN(std::string name, RequiredString(ref, "name", path));
    SBX_ASSIGN_OR_RETURN(std::string key, RequiredString(ref, "key", path));
    SBX_ASSIGN_OR_RETURN(bool optional, OptionalFlag(ref, path));
    auto obj = cache_.Get(kind, name);
    if (!obj.ok()) return obj.status().Annotate(path);
    if (*obj == nullptr) {
      if (optional) return std::optional<std::string>();
      return NotFound(path + ": " + LowerKind(kind) + " " + Quote(name) + " not found");
    }
    const Json* data = nullptr;
    if (auto it = (*obj)->body.find("data"); it != (*obj)->body.end() && it->is_object()) {
      data = &*it;
    }
    if (data == nullptr || !data->contains(key)) {
      if (optional) return std::optional<std::string>();
      return NotFound(path + ": couldn't find key " + key + " in " + kind + " " +
                      sb_.metadata.namespace_ + "/" + name);
    }
    if (kind == "Secret") {
      auto v = api::SecretValue(**obj, key);
      if (!v.ok()) return v.status().Annotate(path);
      return std::optional<std::string>(std::move(v).value());
    }
    if (!(*data)[key].is_string()) return Internal(path + ": data[" + key + "] is not a string");
    return std::optional<std::string>((*data)[key].get<std::string>());
  }

  Result<std::string> FieldRef(const Json& ref, const std::string& path) {
    SBX_ASSIGN_OR_RETURN(std::optional<std::string> api_version,
                         OptionalString(ref, "apiVersion", path));
    if (api_version && !api_version->empty() && *api_version != "v1") {
      return Invalid(path + ".apiVersion: Unsupported value: " + Quote(*api_version) +
                     ": supported values: \"v1\"");
    }
    SBX_ASSIGN_OR_RETURN(std::string field, RequiredString(ref, "fieldPath", path));
    const api::PodTemplate& pod = sb_.spec.pod_template;
    if (field == "metadata.name") {
      auto it = sb_.metadata.annotations.find(api::kPodNameAnnotation);
      return it != sb_.metadata.annotations.end() && !it->second.empty() ? it->second
                                                                         : sb_.metadata.name;
    }
    if (field == "metadata.namespace") return sb_.metadata.namespace_;
    if (field == "metadata.uid") return sb_.metadata.uid;
    if (auto key = Subscript(field, "metadata.labels")) {
      if (*key == api::kSandboxNameHashLabel) return api::NameHash(sb_.metadata.name);
      auto it = pod.labels.find(*key);
      return it == pod.labels.end() ? std::string() : it->second;
    }
    if (auto key = Subscript(field, "metadata.annotations")) {
      auto it = pod.annotations.find(*key);
      return it == pod.annotations.end() ? std::string() : it->second;
    }
    if (field == "spec.nodeName") {
      if (!sb_.status.node_name.empty()) return sb_.status.node_name;
      char host[HOST_NAME_MAX + 1] = {};
      if (::gethostname(host, sizeof(host) - 1) != 0) return std::string();
      return std::string(host);
    }
    if (field == "spec.serviceAccountName") {
      const Json& spec = pod.spec.raw;
      for (const char* key : {"serviceAccountName", "serviceAccount"}) {
        if (spec.is_object() && spec.contains(key) && spec[key].is_string() &&
            !spec[key].get<std::string>().empty()) {
          return spec[key].get<std::string>();
        }
      }
      return std::string("default");
    }
    if (field == "status.podIP" || field == "status.podIPs") return sources_.pod_ip;
    if (field == "status.hostIP" || field == "status.hostIPs") return sources_.host_ip;
    return Invalid(path + ".fieldPath: Unsupported value: " + Quote(field) +
                   ": supported values: \"metadata.annotations['<key>']\", "
                   "\"metadata.labels['<key>']\", \"metadata.name\", \"metadata.namespace\", "
                   "\"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", "
                   "\"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"");
  }

  // "metadata.labels['k']" -> "k" for prefix "metadata.labels".
  static std::optional<std::string> Subscript(std::string_view field, std::string_view prefix) {
    if (!field.starts_with(prefix)) return std::nullopt;
    std::string_view rest = field.substr(prefix.size());
    if (rest.size() < 4 || !rest.starts_with("['") || !rest.ends_with("']")) return std::nullopt;
    return std::string(rest.substr(2, rest.size() - 4));
  }

  const api::Sandbox& sb_;
  const std::string& path_;
  const EnvSources& sources_;
  std::vector<std::string>* warnings_;
  ObjectCache cache_;
  Env env_;
};

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ResolveContainerEnv(
    const api::Sandbox& sb, const api::Json& container, const std::string& container_path,
    const EnvSources& sources, std::vector<std::string>* warnings) {
  return EnvResolver(sb, container_path, sources, warnings).Resolve(container);
}

std::vector<std::string> ExpandVars(const std::vector<std::string>& in,
                                    const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> out;
  out.reserve(in.size());
  auto lookup = [&env](std::string_view name) { return FindVar(env, name); };
  for (const std::string& s : in) out.push_back(ExpandVar(s, lookup));
  return out;
}

std::string ExpandVar(std::string_view in,
                      const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '$' || i + 1 == in.size()) {
      out += in[i++];
      continue;
    }
    const char next = in[i + 1];
    if (next == '$') {  // escaped operator
      out += '$';
      i += 2;
      continue;
    }
    if (next != '(') {  // an operator that starts no reference
      out += '$';
      out += next;
      i += 2;
      continue;
    }
    size_t close = in.find(')', i + 2);
    if (close == std::string_view::npos) {  // unterminated: kept as written
      out += "$(";
      i += 2;
      continue;
    }
    std::string_view name = in.substr(i + 2, close - i - 2);
    if (std::optional<std::string> value = lookup(name)) {
      out += *value;
    } else {
      out.append(in.substr(i, close + 1 - i));
    }
    i = close + 1;
  }
  return out;
}

}  // namespace sbx::daemon
