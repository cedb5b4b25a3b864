// Pod spec semantics, following k8s.io/kubernetes/pkg/apis/core/validation
// where sbx supports a feature, and refusing the features it does not.
#include "api/pod_validation.h"

#include <arpa/inet.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "api/quantity.h"
#include "api/schema.h"
#include "api/validation.h"
#include "common/strings.h"

namespace sbx::api {

namespace {

using Errors = std::vector<std::string>;

// ---- JSON access and message helpers ----

bool Has(const Json& obj, const char* key) { return !Field(obj, key).is_null(); }


std::optional<int64_t> IntField(const Json& obj, const char* key) {
  const Json& v = Field(obj, key);
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    return u > uint64_t{std::numeric_limits<int64_t>::max()} ? std::numeric_limits<int64_t>::max()
                                                             : static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

std::string Idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string Sub(const std::string& path, std::string_view key) {
  return path + "[" + std::string(key) + "]";
}

// "<path>: Invalid value: <v>" with numbers bare, as Kubernetes prints them.
std::string InvalidJson(const std::string& path, const Json& value, const std::string& why) {
  return path + ": Invalid value: " + FieldValueString(value) + ": " + why;
}

std::string NotFoundValue(const std::string& path, std::string_view value) {
  return path + ": Not found: " + FieldValueString(Json(std::string(value)));
}

// NotSupported for a feature that has no list of alternatives worth printing.
std::string Unsupported(const std::string& path, std::string_view value, const std::string& why) {
  return path + ": Unsupported value: " + FieldValueString(Json(std::string(value))) + ": " + why;
}

void AddAll(const std::string& path, std::string_view value, const std::vector<std::string>& whys,
            Errors* errors) {
  for (const auto& why : whys) errors->push_back(FieldInvalid(path, value, why));
}

// Reports `obj.key` when present and below `min`.
void CheckAtLeast(const Json& obj, const char* key, int64_t min, const std::string& path,
                  Errors* errors) {
  std::optional<int64_t> v = IntField(obj, key);
  if (v && *v < min) {
    errors->push_back(InvalidJson(path + "." + key, Json(*v),
                                  "must be greater than or equal to " + std::to_string(min)));
  }
}

void CheckId(const Json& obj, const char* key, const std::string& path, Errors* errors) {
  std::optional<int64_t> v = IntField(obj, key);
  if (v && (*v < 0 || *v > std::numeric_limits<int32_t>::max())) {
    errors->push_back(
        InvalidJson(path + "." + key, Json(*v), "must be between 0 and 2147483647, inclusive"));
  }
}

// A file mode for a volume file: 0..0777 (octal).
void CheckMode(const Json& obj, const char* key, const std::string& path, Errors* errors) {
  std::optional<int64_t> v = IntField(obj, key);
  if (v && (*v < 0 || *v > 0777)) {
    errors->push_back(InvalidJson(path + "." + key, Json(*v),
                                  "must be a number between 0 and 0777 (octal), both inclusive"));
  }
}

// Volumes and probes take exactly one of several members (`present`, in
// order); the second and later ones are reported. Returns false when none is.
bool CheckExactlyOne(const std::vector<std::string>& present, const std::string& path,
                     const std::string& what, Errors* errors) {
  if (present.empty()) {
    errors->push_back(FieldRequired(path, "must specify a " + what));
    return false;
  }
  for (size_t i = 1; i < present.size(); ++i) {
    errors->push_back(
        FieldForbidden(path + "." + present[i], "may not specify more than 1 " + what));
  }
  return true;
}

// ---- paths ----

bool HasBackstep(std::string_view value) {
  for (const auto& part : Split(value, '/')) {
    if (part == "..") return true;
  }
  return false;
}

// A path inside a volume or profile directory: relative, never climbing out.
void CheckDescendingPath(const std::string& value, const std::string& path, Errors* errors) {
  if (value.starts_with('/'))
    errors->push_back(FieldInvalid(path, value, "must be a relative path"));
  if (HasBackstep(value)) errors->push_back(FieldInvalid(path, value, "must not contain '..'"));
}

// As CheckDescendingPath, and not a name that the atomic writer of
// configMap/secret volumes reserves ("..data", "..2024_...").
void CheckItemPath(const std::string& value, const std::string& path, Errors* errors) {
  CheckDescendingPath(value, path, errors);
  if (value.size() >= 2 && value.starts_with("..")) {
    errors->push_back(FieldInvalid(path, value, "must not start with '..'"));
  }
}

// The components of an absolute path without "" and "." parts; "/a//b/" and
// "/a/b" are the same. Callers check for ".." first.
std::vector<std::string> PathParts(std::string_view value) {
  std::vector<std::string> parts;
  for (auto& part : Split(value, '/')) {
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
  }
  return parts;
}

// Absolute, without "..": returns false after reporting otherwise.
bool CheckAbsolutePath(const std::string& value, const std::string& path, Errors* errors) {
  bool ok = true;
  if (!value.starts_with('/')) {
    errors->push_back(FieldInvalid(path, value, "must be an absolute path"));
    ok = false;
  }
  if (HasBackstep(value)) {
    errors->push_back(FieldInvalid(path, value, "must not contain '..'"));
    ok = false;
  }
  return ok;
}

bool IsUnder(const std::vector<std::string>& path, const std::vector<std::string>& prefix) {
  if (prefix.size() > path.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (path[i] != prefix[i]) return false;
  }
  return true;
}

// ---- quantities ----

const std::vector<std::string> kResourceNames = {"cpu", "ephemeral-storage", "memory"};

// A quantity is written as a string ("500m") or a bare number (2, 0.5).
std::optional<std::string> QuantityText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return std::nullopt;
}

// The quantity at `path` in thousandths (`milli`) or units, or nullopt after
// reporting it as malformed or negative.
std::optional<int64_t> CheckQuantity(const Json& v, const std::string& path, bool milli,
                                     Errors* errors) {
  std::optional<std::string> text = QuantityText(v);
  if (!text) {
    errors->push_back(InvalidJson(path, v, "must be a quantity such as \"500m\" or \"1Gi\""));
    return std::nullopt;
  }
  Result<int64_t> q = milli ? ParseQuantityMilli(*text) : ParseQuantityValue(*text);
  if (!q.ok()) {
    // The parser's reason follows its own "quantity \"...\": " prefix.
    const std::string& m = q.status().message();
    size_t colon = m.rfind(": ");
    std::string why = colon == std::string::npos ? m : m.substr(colon + 2);
    errors->push_back(
        FieldInvalid(path, *text, "must be a quantity such as \"500m\" or \"1Gi\" (" + why + ")"));
    return std::nullopt;
  }
  // Milli rounds towards +infinity, so "-0.0001" reads as 0: look at the sign.
  bool negative = *q < 0;
  if (!negative && text->starts_with('-')) {
    Result<int64_t> magnitude = ParseQuantityMilli(text->substr(1));
    negative = magnitude.ok() && *magnitude > 0;
  }
  if (negative) {
    errors->push_back(FieldInvalid(path, *text, "must be greater than or equal to 0"));
    return std::nullopt;
  }
  return *q;
}

// ---- volumes ----

const std::vector<std::string> kVolumeSources = {"configMap", "emptyDir", "hostPath", "secret"};

void CheckKeyToPaths(const Json& items, const std::string& path, Errors* errors) {
  if (!items.is_array()) return;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string ip = Idx(path, i);
    if (StringField(items[i], "key").empty()) errors->push_back(FieldRequired(ip + ".key"));
    std::string file = StringField(items[i], "path");
    if (file.empty()) {
      errors->push_back(FieldRequired(ip + ".path"));
    } else {
      CheckItemPath(file, ip + ".path", errors);
    }
    CheckMode(items[i], "mode", ip, errors);
  }
}

void CheckEmptyDir(const Json& src, const std::string& path, Errors* errors) {
  std::string medium = StringField(src, "medium");
  if (!medium.empty() && medium != "Memory") {
    errors->push_back(FieldNotSupported(path + ".medium", medium, {"", "Memory"}));
  }
  if (Has(src, "sizeLimit"))
    CheckQuantity(Field(src, "sizeLimit"), path + ".sizeLimit", false, errors);
}

// configMap (`name_key` "name") and secret ("secretName") volumes.
void CheckObjectVolume(const Json& src, const char* name_key, const std::string& path,
                       Errors* errors) {
  std::string name = StringField(src, name_key);
  std::string np = path + "." + name_key;
  if (name.empty()) {
    errors->push_back(FieldRequired(np));
  } else {
    AddAll(np, name, IsDns1123Subdomain(name), errors);
  }
  CheckKeyToPaths(Field(src, "items"), path + ".items", errors);
  CheckMode(src, "defaultMode", path, errors);
}

void CheckHostPath(const Json& src, const std::string& path, const PodPolicy& policy,
                   Errors* errors) {
  static const std::vector<std::string> kTypes = {
      "",     "BlockDevice",  "CharDevice", "Directory", "DirectoryOrCreate",
      "File", "FileOrCreate", "Socket"};
  std::string type = StringField(src, "type");
  bool known_type = false;
  for (const auto& t : kTypes) known_type = known_type || t == type;
  if (!known_type) errors->push_back(FieldNotSupported(path + ".type", type, kTypes));

  std::string host = StringField(src, "path");
  std::string pp = path + ".path";
  if (policy.host_path_prefixes.empty()) {
    errors->push_back(
        FieldForbidden(path, "hostPath volumes are not allowed by the daemon's configuration"));
    return;
  }
  if (host.empty()) {
    errors->push_back(FieldRequired(pp));
    return;
  }
  if (!CheckAbsolutePath(host, pp, errors)) return;
  std::vector<std::string> parts = PathParts(host);
  for (const auto& prefix : policy.host_path_prefixes) {
    if (prefix.starts_with('/') && !HasBackstep(prefix) && IsUnder(parts, PathParts(prefix))) {
      return;
    }
  }
  errors->push_back(FieldForbidden(pp, "\"" + host +
                                           "\" is not under a host path the daemon's "
                                           "configuration allows (" +
                                           Join(policy.host_path_prefixes, ", ") + ")"));
}

// Validates one entry of `volumes` apart from its name.
void CheckVolumeSource(const Json& vol, const std::string& path, const std::string& vct_path,
                       const PodPolicy& policy, Errors* errors) {
  std::vector<std::string> sources;
  if (vol.is_object()) {
    for (const auto& [key, value] : vol.items()) {
      if (key != "name" && !value.is_null()) sources.push_back(key);
    }
  }
  if (!CheckExactlyOne(sources, path, "volume type", errors)) return;
  for (const auto& source : sources) {
    std::string sp = path + "." + source;
    const Json& src = Field(vol, source.c_str());
    if (source == "emptyDir") {
      CheckEmptyDir(src, sp, errors);
    } else if (source == "configMap") {
      CheckObjectVolume(src, "name", sp, errors);
    } else if (source == "secret") {
      CheckObjectVolume(src, "secretName", sp, errors);
    } else if (source == "hostPath") {
      CheckHostPath(src, sp, policy, errors);
    } else {
      std::string e = FieldNotSupported(sp, source, kVolumeSources);
      if (source == "persistentVolumeClaim") {
        e += " (persistent volumes are declared in " + vct_path +
             " and mounted by the claim template's name)";
      }
      errors->push_back(e);
    }
  }
}

// Returns the valid claim template names; reports clashes with `volumes`
// (name -> path of that volume's name).
std::set<std::string> CheckVolumeClaimTemplates(const Json& vcts, const std::string& path,
                                                const std::map<std::string, std::string>& volumes,
                                                Errors* errors) {
  std::set<std::string> names;
  if (!vcts.is_array()) return names;
  for (size_t i = 0; i < vcts.size(); ++i) {
    std::string vp = Idx(path, i);
    std::string np = vp + ".metadata.name";
    std::string name = StringField(Field(vcts[i], "metadata"), "name");
    if (name.empty()) {
      errors->push_back(FieldRequired(np));
    } else {
      AddAll(np, name, IsDns1123Label(name), errors);
      if (!names.insert(name).second) {
        errors->push_back(FieldDuplicate(np, name));
      } else if (auto it = volumes.find(name); it != volumes.end()) {
        errors->push_back(FieldDuplicate(np, name) + ": also the name of " + it->second);
      }
    }
    const Json& spec = Field(vcts[i], "spec");
    std::string mode = StringField(spec, "volumeMode");
    if (!mode.empty() && mode != "Filesystem") {
      errors->push_back(FieldNotSupported(vp + ".spec.volumeMode", mode, {"Filesystem"}));
    }
    std::string sp = vp + ".spec.resources.requests.storage";
    const Json& storage = Field(Field(Field(spec, "resources"), "requests"), "storage");
    if (storage.is_null()) {
      errors->push_back(FieldRequired(sp));
    } else if (std::optional<int64_t> bytes = CheckQuantity(storage, sp, false, errors);
               bytes && *bytes <= 0) {
      errors->push_back(InvalidJson(sp, storage, "must be greater than zero"));
    }
  }
  return names;
}

// ---- containers ----

// IANA service names, as Kubernetes checks named ports.
std::vector<std::string> IsValidPortName(std::string_view name) {
  std::vector<std::string> errs;
  if (name.size() > 15) errs.push_back("must be no more than 15 characters");
  bool letter = false, bad = false;
  for (char c : name) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!(c >= '0' && c <= '9') && c != '-') {
      bad = true;
    }
  }
  if (bad) errs.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!letter) errs.push_back("must contain at least one letter (a-z)");
  if (name.find("--") != std::string_view::npos) {
    errs.push_back("must not contain consecutive hyphens");
  }
  if (!name.empty() && (name.front() == '-' || name.back() == '-')) {
    errs.push_back("must not begin or end with a hyphen");
  }
  return errs;
}

// Returns the container's port names.
std::set<std::string> CheckPorts(const Json& ports, const std::string& path, Errors* errors) {
  std::set<std::string> names;
  if (!ports.is_array()) return names;
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string pp = Idx(path, i);
    std::optional<int64_t> port = IntField(ports[i], "containerPort");
    if (!port || *port == 0) {
      errors->push_back(FieldRequired(pp + ".containerPort"));
    } else if (*port < 1 || *port > 65535) {
      errors->push_back(InvalidJson(pp + ".containerPort", Json(*port),
                                    "must be between 1 and 65535, inclusive"));
    }
    std::optional<int64_t> host_port = IntField(ports[i], "hostPort");
    if (host_port && (*host_port < 0 || *host_port > 65535)) {
      errors->push_back(InvalidJson(pp + ".hostPort", Json(*host_port),
                                    "must be between 1 and 65535, inclusive"));
    }
    if (std::string ip = StringField(ports[i], "hostIP"); !ip.empty()) {
      unsigned char buf[16];
      if (::inet_pton(AF_INET, ip.c_str(), buf) != 1 && ::inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
        errors->push_back(InvalidJson(pp + ".hostIP", Json(ip), "must be a valid IP address"));
      }
    }
    std::string name = StringField(ports[i], "name");
    if (!name.empty()) {
      AddAll(pp + ".name", name, IsValidPortName(name), errors);
      if (!names.insert(name).second) errors->push_back(FieldDuplicate(pp + ".name", name));
    }
    std::string proto = StringField(ports[i], "protocol");
    if (!proto.empty() && proto != "TCP" && proto != "UDP" && proto != "SCTP") {
      errors->push_back(FieldNotSupported(pp + ".protocol", proto, {"SCTP", "TCP", "UDP"}));
    }
  }
  return names;
}

// Env var sources' object references: a ConfigMap or Secret name and key.
void CheckKeyRef(const Json& ref, const std::string& path, Errors* errors) {
  std::string name = StringField(ref, "name");
  if (name.empty()) {
    errors->push_back(FieldRequired(path + ".name"));
  } else {
    AddAll(path + ".name", name, IsDns1123Subdomain(name), errors);
  }
  std::string key = StringField(ref, "key");
  if (key.empty()) {
    errors->push_back(FieldRequired(path + ".key"));
  } else {
    AddAll(path + ".key", key, IsConfigMapKey(key), errors);
  }
}

void CheckFieldRef(const Json& ref, const std::string& path, Errors* errors) {
  static const std::vector<std::string> kPaths = {
      "metadata.annotations", "metadata.labels", "metadata.name",           "metadata.namespace",
      "metadata.uid",         "spec.nodeName",   "spec.serviceAccountName", "status.hostIP",
      "status.podIP",         "status.podIPs"};
  std::string api_version = StringField(ref, "apiVersion");
  if (!api_version.empty() && api_version != "v1") {
    errors->push_back(FieldNotSupported(path + ".apiVersion", api_version, {"v1"}));
  }
  std::string fp = path + ".fieldPath";
  std::string field = StringField(ref, "fieldPath");
  if (field.empty()) {
    errors->push_back(FieldRequired(fp));
    return;
  }
  // metadata.labels['key'] and metadata.annotations['key'] name one entry.
  for (const char* map : {"metadata.labels", "metadata.annotations"}) {
    std::string open = std::string(map) + "['";
    if (field.starts_with(open) && field.ends_with("']") && field.size() > open.size() + 2) {
      std::string key = field.substr(open.size(), field.size() - open.size() - 2);
      bool labels = std::string_view(map) == "metadata.labels";
      AddAll(fp, field, IsQualifiedName(labels ? key : ToLower(key)), errors);
      return;
    }
  }
  bool known = false;
  for (const auto& p : kPaths) {
    known = known || (p == field && p != "metadata.labels" && p != "metadata.annotations");
  }
  if (!known) {
    std::vector<std::string> supported;
    for (const auto& p : kPaths) {
      supported.push_back(p == "metadata.labels" || p == "metadata.annotations" ? p + "['<KEY>']"
                                                                                : p);
    }
    errors->push_back(FieldNotSupported(fp, field, supported));
  }
}

void CheckResourceFieldRef(const Json& ref, const std::string& path, Errors* errors) {
  static const std::vector<std::string> kResources = {
      "limits.cpu",   "limits.ephemeral-storage",   "limits.memory",
      "requests.cpu", "requests.ephemeral-storage", "requests.memory"};
  std::string resource = StringField(ref, "resource");
  if (resource.empty()) {
    errors->push_back(FieldRequired(path + ".resource"));
  } else {
    bool known = false;
    for (const auto& r : kResources) known = known || r == resource;
    if (!known) errors->push_back(FieldNotSupported(path + ".resource", resource, kResources));
  }
  if (Has(ref, "divisor")) {
    std::optional<int64_t> d =
        CheckQuantity(Field(ref, "divisor"), path + ".divisor", true, errors);
    if (d && *d == 0) {
      errors->push_back(
          InvalidJson(path + ".divisor", Field(ref, "divisor"), "must be greater than zero"));
    }
  }
}

void CheckEnv(const Json& env, const std::string& path, Errors* errors) {
  if (!env.is_array()) return;
  for (size_t i = 0; i < env.size(); ++i) {
    std::string p = Idx(path, i);
    std::string name = StringField(env[i], "name");
    if (name.empty()) {
      errors->push_back(FieldRequired(p + ".name"));
    } else {
      AddAll(p + ".name", name, IsEnvVarName(name), errors);
    }
    const Json& from = Field(env[i], "valueFrom");
    if (from.is_null()) continue;
    std::string fp = p + ".valueFrom";
    if (!StringField(env[i], "value").empty()) {
      errors->push_back(FieldInvalid(fp, "", "may not be specified when `value` is not empty"));
    }
    int sources = 0;
    for (const char* s :
         {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"}) {
      if (Has(from, s)) ++sources;
    }
    if (sources == 0) {
      errors->push_back(FieldInvalid(fp, "",
                                     "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                     "`configMapKeyRef` or `secretKeyRef`"));
    } else if (sources > 1) {
      errors->push_back(
          FieldInvalid(fp, "", "may not have more than one field specified at a time"));
    }
    if (Has(from, "fieldRef")) CheckFieldRef(Field(from, "fieldRef"), fp + ".fieldRef", errors);
    if (Has(from, "resourceFieldRef")) {
      CheckResourceFieldRef(Field(from, "resourceFieldRef"), fp + ".resourceFieldRef", errors);
    }
    for (const char* s : {"configMapKeyRef", "secretKeyRef"}) {
      if (Has(from, s)) CheckKeyRef(Field(from, s), fp + "." + s, errors);
    }
    if (Has(from, "fileKeyRef")) {
      errors->push_back(
          FieldNotSupported(fp + ".fileKeyRef", "fileKeyRef",
                            {"configMapKeyRef", "fieldRef", "resourceFieldRef", "secretKeyRef"}));
    }
  }
}

void CheckEnvFrom(const Json& env_from, const std::string& path, Errors* errors) {
  if (!env_from.is_array()) return;
  for (size_t i = 0; i < env_from.size(); ++i) {
    std::string p = Idx(path, i);
    const Json& e = env_from[i];
    int sources = 0;
    for (const char* s : {"configMapRef", "secretRef"}) {
      if (!Has(e, s)) continue;
      ++sources;
      std::string name = StringField(Field(e, s), "name");
      std::string np = p + "." + s + ".name";
      if (name.empty()) {
        errors->push_back(FieldRequired(np));
      } else {
        AddAll(np, name, IsDns1123Subdomain(name), errors);
      }
    }
    if (sources == 0) {
      errors->push_back(FieldInvalid(p, "", "must specify one of: `configMapRef` or `secretRef`"));
    } else if (sources > 1) {
      errors->push_back(FieldForbidden(p, "may not have more than one field specified at a time"));
    }
    std::string prefix = StringField(e, "prefix");
    if (!prefix.empty()) AddAll(p + ".prefix", prefix, IsEnvVarName(prefix), errors);
  }
}

void CheckResources(const Json& resources, const std::string& path, Errors* errors) {
  // name -> parsed value (millicores for cpu, bytes otherwise), per list.
  std::map<std::string, int64_t> parsed[2];
  const char* lists[2] = {"requests", "limits"};
  for (int l = 0; l < 2; ++l) {
    const Json& list = Field(resources, lists[l]);
    if (!list.is_object()) continue;
    for (const auto& [name, value] : list.items()) {
      std::string rp = Sub(path + "." + lists[l], name);
      bool known = false;
      for (const auto& r : kResourceNames) known = known || r == name;
      if (!known) {
        errors->push_back(FieldNotSupported(rp, name, kResourceNames));
        continue;
      }
      std::optional<int64_t> q = CheckQuantity(value, rp, name == "cpu", errors);
      if (q) parsed[l][name] = *q;
    }
  }
  for (const auto& [name, request] : parsed[0]) {
    auto limit = parsed[1].find(name);
    if (limit == parsed[1].end() || request <= limit->second) continue;
    const Json& limit_json = Field(Field(resources, "limits"), name.c_str());
    std::string limit_text = QuantityText(limit_json).value_or("");
    errors->push_back(InvalidJson(
        Sub(path + ".requests", name), Field(Field(resources, "requests"), name.c_str()),
        "must be less than or equal to " + name + " limit of " + limit_text));
  }
}

// Volume mounts name a pod volume or a claim template; `mountable` holds both.
void CheckVolumeMounts(const Json& mounts, const std::string& path,
                       const std::set<std::string>& mountable, Errors* errors) {
  if (!mounts.is_array()) return;
  std::set<std::vector<std::string>> mount_points;
  for (size_t i = 0; i < mounts.size(); ++i) {
    std::string mp = Idx(path, i);
    const Json& m = mounts[i];
    std::string name = StringField(m, "name");
    if (name.empty()) {
      errors->push_back(FieldRequired(mp + ".name"));
    } else if (!mountable.count(name)) {
      errors->push_back(NotFoundValue(mp + ".name", name));
    }
    std::string target = StringField(m, "mountPath");
    if (target.empty()) {
      errors->push_back(FieldRequired(mp + ".mountPath"));
    } else if (CheckAbsolutePath(target, mp + ".mountPath", errors)) {
      if (IsUnder(PathParts(target), {".sbx"})) {
        // sbx mounts its exec loader there (daemon/pod_builder.h kExecDir).
        errors->push_back(FieldForbidden(mp + ".mountPath", "/.sbx is reserved for sbx"));
      } else if (!mount_points.insert(PathParts(target)).second) {
        errors->push_back(FieldDuplicate(mp + ".mountPath", target));
      }
    }
    std::string sub = StringField(m, "subPath");
    if (!sub.empty()) CheckDescendingPath(sub, mp + ".subPath", errors);
    std::string expr = StringField(m, "subPathExpr");
    if (!expr.empty()) {
      errors->push_back(
          Unsupported(mp + ".subPathExpr", expr, "subPathExpr is not supported, use subPath"));
    }
  }
}

// Capability names as OCI runtimes take them: "NET_ADMIN" or "CAP_NET_ADMIN"
// (any case), and "ALL".
bool IsCapabilityName(std::string_view name) {
  if (name.empty() || name.size() > 64 || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

void CheckSeccomp(const Json& profile, const std::string& path, Errors* errors) {
  std::string type = StringField(profile, "type");
  std::string local = StringField(profile, "localhostProfile");
  std::string lp = path + ".localhostProfile";
  if (type.empty()) {
    errors->push_back(FieldRequired(path + ".type"));
  } else if (type != "RuntimeDefault" && type != "Localhost" && type != "Unconfined") {
    errors->push_back(
        FieldNotSupported(path + ".type", type, {"Localhost", "RuntimeDefault", "Unconfined"}));
  }
  if (type == "Localhost") {
    if (local.empty()) {
      errors->push_back(FieldRequired(lp, "must be set when seccomp type is Localhost"));
    } else {
      CheckDescendingPath(local, lp, errors);
    }
  } else if (Has(profile, "localhostProfile")) {
    errors->push_back(FieldInvalid(lp, local, "can only be set when seccomp type is Localhost"));
  }
}

// Fields shared by the pod's and a container's securityContext.
void CheckCommonSecurityContext(const Json& sc, const std::string& path, Errors* errors) {
  CheckId(sc, "runAsUser", path, errors);
  CheckId(sc, "runAsGroup", path, errors);
  if (Has(sc, "seccompProfile")) {
    CheckSeccomp(Field(sc, "seccompProfile"), path + ".seccompProfile", errors);
  }
}

void CheckPodSecurityContext(const Json& sc, const std::string& path, Errors* errors) {
  if (!sc.is_object()) return;
  CheckCommonSecurityContext(sc, path, errors);
  CheckId(sc, "fsGroup", path, errors);
  const Json& groups = Field(sc, "supplementalGroups");
  if (groups.is_array()) {
    for (size_t i = 0; i < groups.size(); ++i) {
      if (!groups[i].is_number_integer()) continue;
      int64_t g = groups[i].get<int64_t>();
      if (g < 0 || g > std::numeric_limits<int32_t>::max()) {
        errors->push_back(InvalidJson(Idx(path + ".supplementalGroups", i), groups[i],
                                      "must be between 0 and 2147483647, inclusive"));
      }
    }
  }
  std::string policy = StringField(sc, "fsGroupChangePolicy");
  if (!policy.empty() && policy != "OnRootMismatch" && policy != "Always") {
    errors->push_back(
        FieldNotSupported(path + ".fsGroupChangePolicy", policy, {"Always", "OnRootMismatch"}));
  }
}

void CheckContainerSecurityContext(const Json& sc, const std::string& path, Errors* errors) {
  if (!sc.is_object()) return;
  CheckCommonSecurityContext(sc, path, errors);
  bool privileged = Field(sc, "privileged") == true;
  if (privileged) {
    errors->push_back(
        FieldForbidden(path + ".privileged", "privileged containers are not supported"));
  }
  bool adds_sys_admin = false;
  const Json& caps = Field(sc, "capabilities");
  for (const char* list : {"add", "drop"}) {
    const Json& names = Field(caps, list);
    if (!names.is_array()) continue;
    for (size_t i = 0; i < names.size(); ++i) {
      std::string name = names[i].is_string() ? names[i].get<std::string>() : "";
      if (!IsCapabilityName(name)) {
        errors->push_back(FieldInvalid(Idx(path + ".capabilities." + list, i), name,
                                       "must be a capability name such as \"NET_ADMIN\" or "
                                       "\"CAP_NET_ADMIN\""));
      }
      std::string lower = ToLower(name);
      if (std::string_view(list) == "add" && (lower == "sys_admin" || lower == "cap_sys_admin")) {
        adds_sys_admin = true;
      }
    }
  }
  if (Field(sc, "allowPrivilegeEscalation") == false && adds_sys_admin) {
    errors->push_back(FieldInvalid(path, "",
                                   "cannot set `allowPrivilegeEscalation` to false and "
                                   "`capabilities.Add` CAP_SYS_ADMIN"));
  }
}

enum class ProbeKind { kLiveness, kReadiness, kStartup };

void CheckProbePort(const Json& handler, const std::string& path,
                    const std::set<std::string>& port_names, Errors* errors) {
  const Json& port = Field(handler, "port");
  std::string pp = path + ".port";
  if (port.is_null()) {
    errors->push_back(FieldRequired(pp));
  } else if (port.is_number_integer()) {
    int64_t n = port.get<int64_t>();
    if (n < 1 || n > 65535) {
      errors->push_back(InvalidJson(pp, port, "must be between 1 and 65535, inclusive"));
    }
  } else if (port.is_string()) {
    std::string name = port.get<std::string>();
    std::vector<std::string> whys = IsValidPortName(name);
    AddAll(pp, name, whys, errors);
    if (whys.empty() && !port_names.count(name)) {
      errors->push_back(FieldInvalid(pp, name, "must be the name of one of the container's ports"));
    }
  }
}

void CheckProbe(const Json& probe, ProbeKind kind, const std::string& path,
                const std::set<std::string>& port_names, Errors* errors) {
  std::vector<std::string> handlers;
  for (const char* h : {"exec", "httpGet", "tcpSocket", "grpc"}) {
    if (Has(probe, h)) handlers.push_back(h);
  }
  CheckExactlyOne(handlers, path, "handler type", errors);
  for (const auto& h : handlers) {
    std::string hp = path + "." + h;
    const Json& handler = Field(probe, h.c_str());
    if (h == "exec") {
      const Json& command = Field(handler, "command");
      if (!command.is_array() || command.empty()) errors->push_back(FieldRequired(hp + ".command"));
    } else if (h == "httpGet") {
      CheckProbePort(handler, hp, port_names, errors);
      std::string scheme = StringField(handler, "scheme");
      if (!scheme.empty() && scheme != "HTTP" && scheme != "HTTPS") {
        errors->push_back(FieldNotSupported(hp + ".scheme", scheme, {"HTTP", "HTTPS"}));
      }
    } else if (h == "tcpSocket") {
      CheckProbePort(handler, hp, port_names, errors);
    } else {
      errors->push_back(FieldNotSupported(hp, h, {"exec", "httpGet", "tcpSocket"}));
    }
  }
  CheckAtLeast(probe, "initialDelaySeconds", 0, path, errors);
  for (const char* f :
       {"periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"}) {
    CheckAtLeast(probe, f, 1, path, errors);
  }
  std::optional<int64_t> success = IntField(probe, "successThreshold");
  if (kind != ProbeKind::kReadiness && success && *success != 1) {
    errors->push_back(InvalidJson(path + ".successThreshold", Json(*success), "must be 1"));
  }
  std::optional<int64_t> grace = IntField(probe, "terminationGracePeriodSeconds");
  if (grace && *grace <= 0) {
    errors->push_back(InvalidJson(path + ".terminationGracePeriodSeconds", Json(*grace),
                                  "must be greater than 0"));
  }
}

struct ContainerContext {
  bool init = false;
  std::set<std::string> mountable;  // pod volume and claim template names
};

void CheckContainer(const Json& c, const std::string& p, const ContainerContext& ctx,
                    Errors* errors) {
  if (StringField(c, "image").empty()) errors->push_back(FieldRequired(p + ".image"));

  // restartPolicy on a container is only the sidecar form of an init container.
  std::string restart = StringField(c, "restartPolicy");
  bool restartable = false;
  if (Has(c, "restartPolicy")) {
    if (!ctx.init) {
      errors->push_back(
          FieldForbidden(p + ".restartPolicy", "may not be set for non init containers"));
    } else if (restart != "Always") {
      errors->push_back(FieldNotSupported(p + ".restartPolicy", restart, {"Always"}));
    } else {
      restartable = true;
    }
  }

  std::set<std::string> port_names = CheckPorts(Field(c, "ports"), p + ".ports", errors);
  CheckEnv(Field(c, "env"), p + ".env", errors);
  CheckEnvFrom(Field(c, "envFrom"), p + ".envFrom", errors);
  CheckResources(Field(c, "resources"), p + ".resources", errors);
  CheckVolumeMounts(Field(c, "volumeMounts"), p + ".volumeMounts", ctx.mountable, errors);
  CheckContainerSecurityContext(Field(c, "securityContext"), p + ".securityContext", errors);

  const std::pair<const char*, ProbeKind> probes[] = {{"livenessProbe", ProbeKind::kLiveness},
                                                      {"readinessProbe", ProbeKind::kReadiness},
                                                      {"startupProbe", ProbeKind::kStartup}};
  for (const auto& [key, kind] : probes) {
    if (!Has(c, key)) continue;
    std::string pp = p + "." + key;
    if (ctx.init && !restartable) {
      errors->push_back(
          FieldForbidden(pp, "may not be set for init containers without restartPolicy=Always"));
      continue;
    }
    CheckProbe(Field(c, key), kind, pp, port_names, errors);
  }
}

}  // namespace

Status ValidatePodSpec(const Json& pod_spec, const Json& volume_claim_templates,
                       const std::string& path, const std::string& vct_path,
                       const PodPolicy& policy) {
  Errors errors;

  std::map<std::string, std::string> volumes;  // name -> path of its name field
  const Json& vols = Field(pod_spec, "volumes");
  if (vols.is_array()) {
    for (size_t i = 0; i < vols.size(); ++i) {
      std::string vp = Idx(path + ".volumes", i);
      std::string name = StringField(vols[i], "name");
      if (name.empty()) {
        errors.push_back(FieldRequired(vp + ".name"));
      } else {
        AddAll(vp + ".name", name, IsDns1123Label(name), &errors);
        if (!volumes.emplace(name, vp + ".name").second) {
          errors.push_back(FieldDuplicate(vp + ".name", name));
        }
      }
      CheckVolumeSource(vols[i], vp, vct_path, policy, &errors);
    }
  }

  ContainerContext ctx;
  ctx.mountable = CheckVolumeClaimTemplates(volume_claim_templates, vct_path, volumes, &errors);
  for (const auto& [name, unused] : volumes) ctx.mountable.insert(name);

  const Json& containers = Field(pod_spec, "containers");
  if (!containers.is_array() || containers.empty()) {
    errors.push_back(FieldRequired(path + ".containers"));
  }
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    const Json& cs = Field(pod_spec, list);
    if (!cs.is_array()) continue;
    ctx.init = std::string_view(list) == "initContainers";
    for (size_t i = 0; i < cs.size(); ++i) {
      std::string cp = Idx(path + "." + list, i);
      std::string name = StringField(cs[i], "name");
      if (name.empty()) {
        errors.push_back(FieldRequired(cp + ".name"));
      } else {
        AddAll(cp + ".name", name, IsDns1123Label(name), &errors);
        if (!names.insert(name).second) errors.push_back(FieldDuplicate(cp + ".name", name));
      }
      CheckContainer(cs[i], cp, ctx, &errors);
    }
  }

  CheckPodSecurityContext(Field(pod_spec, "securityContext"), path + ".securityContext", &errors);
  std::string restart = StringField(pod_spec, "restartPolicy");
  if (!restart.empty() && restart != "Always" && restart != "OnFailure" && restart != "Never") {
    errors.push_back(
        FieldNotSupported(path + ".restartPolicy", restart, {"Always", "OnFailure", "Never"}));
  }

  if (errors.empty()) return Status::Ok();
  return Invalid(Join(errors, "; "));
}

}  // namespace sbx::api
