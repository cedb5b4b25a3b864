// DecodeObject, ValidateUpdate and version conversion.
#include "api/decode.h"

#include <set>

#include "api/kinds.h"
#include "api/schema.h"
#include "api/validation.h"
#include "common/base64.h"
#include "common/strings.h"

namespace sbx::api {

namespace {

using Errors = std::vector<std::string>;

std::string QualifiedKind(const KindInfo& k) {
  return k.group.empty() ? k.kind : k.kind + "." + k.group;
}

std::string VersionOf(std::string_view api_version) {
  auto slash = api_version.find('/');
  return std::string(slash == std::string_view::npos ? api_version : api_version.substr(slash + 1));
}

Status InvalidStatus(const KindInfo& k, const std::string& name, const Errors& errors) {
  return Invalid(QualifiedKind(k) + " " + Json(name).dump() + " is invalid: " + Join(errors, "; "));
}

std::string Idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string Key(const std::string& path, const std::string& key) { return path + "[" + key + "]"; }


void AddAll(const std::string& path, std::string_view value, const std::vector<std::string>& whys,
            Errors* errors) {
  for (const auto& why : whys) errors->push_back(FieldInvalid(path, value, why));
}

// ---- metadata ----

// Sandbox names become hostnames, so they are held to DNS labels.
bool NameIsLabel(const KindInfo& k) { return k.kind == "Sandbox" || k.kind == "Namespace"; }

std::vector<std::string> ValidateName(const KindInfo& k, std::string_view name) {
  return NameIsLabel(k) ? IsDns1123Label(name) : IsDns1123Subdomain(name);
}

void ValidateMetadata(const KindInfo& k, const Json& meta, Errors* errors) {
  std::string name = StringField(meta, "name");
  std::string generate_name = StringField(meta, "generateName");
  if (name.empty() && generate_name.empty()) {
    errors->push_back(FieldRequired("metadata.name", "name or generateName is required"));
  }
  if (!name.empty()) AddAll("metadata.name", name, ValidateName(k, name), errors);
  if (!generate_name.empty()) {
    // A generated name ends in a random suffix: a trailing '-' is fine here.
    std::string masked = generate_name;
    if (masked.size() > 1 && masked.back() == '-') masked.back() = 'a';
    AddAll("metadata.generateName", generate_name, ValidateName(k, masked), errors);
  }
  std::string ns = StringField(meta, "namespace");
  if (k.namespaced && !ns.empty()) AddAll("metadata.namespace", ns, IsDns1123Label(ns), errors);
  ValidateLabels(StringMap(Field(meta, "labels")), "metadata.labels", errors);
  ValidateAnnotations(StringMap(Field(meta, "annotations")), "metadata.annotations", errors);
  const Json& finalizers = Field(meta, "finalizers");
  if (finalizers.is_array()) {
    for (size_t i = 0; i < finalizers.size(); ++i) {
      std::string f = finalizers[i].get<std::string>();
      AddAll(Idx("metadata.finalizers", i), f, IsQualifiedName(f), errors);
    }
  }
  const Json& owners = Field(meta, "ownerReferences");
  if (owners.is_array()) {
    int controllers = 0;
    for (size_t i = 0; i < owners.size(); ++i) {
      std::string p = Idx("metadata.ownerReferences", i);
      if (StringField(owners[i], "uid").empty()) {
        errors->push_back(FieldInvalid(p + ".uid", "", "uid must not be empty"));
      }
      if (StringField(owners[i], "name").empty()) {
        errors->push_back(FieldInvalid(p + ".name", "", "name must not be empty"));
      }
      if (Field(owners[i], "controller") == true) ++controllers;
    }
    if (controllers > 1) {
      errors->push_back(
          "metadata.ownerReferences: Invalid value: []: Only one reference can "
          "have Controller set to true");
    }
  }
}

// ---- pod spec ----

void ValidateEnvVar(const Json& env, const std::string& p, Errors* errors) {
  std::string name = StringField(env, "name");
  if (name.empty()) {
    errors->push_back(FieldRequired(p + ".name"));
  } else {
    AddAll(p + ".name", name, IsEnvVarName(name), errors);
  }
  const Json& from = Field(env, "valueFrom");
  if (!from.is_object()) return;
  if (!StringField(env, "value").empty()) {
    errors->push_back(
        FieldInvalid(p + ".valueFrom", "", "may not be specified when `value` is not empty"));
  }
  int sources = 0;
  for (const char* s :
       {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"}) {
    if (from.contains(s)) ++sources;
  }
  if (sources == 0) {
    errors->push_back(FieldInvalid(p + ".valueFrom", "",
                                   "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                   "`configMapKeyRef` or `secretKeyRef`"));
  } else if (sources > 1) {
    errors->push_back(
        FieldInvalid(p + ".valueFrom", "", "may not have more than one field specified at a time"));
  }
  for (const char* s : {"configMapKeyRef", "secretKeyRef"}) {
    const Json& ref = Field(from, s);
    if (!ref.is_object()) continue;
    std::string rp = p + ".valueFrom." + s;
    std::string ref_name = StringField(ref, "name");
    if (ref_name.empty()) {
      errors->push_back(FieldRequired(rp + ".name"));
    } else {
      AddAll(rp + ".name", ref_name, IsDns1123Subdomain(ref_name), errors);
    }
    std::string key = StringField(ref, "key");
    if (key.empty()) {
      errors->push_back(FieldRequired(rp + ".key"));
    } else {
      AddAll(rp + ".key", key, IsConfigMapKey(key), errors);
    }
  }
}

void ValidateContainer(const Json& c, const std::string& p, const std::set<std::string>& volumes,
                       Errors* errors) {
  if (StringField(c, "image").empty()) errors->push_back(FieldRequired(p + ".image"));
  const Json& env = Field(c, "env");
  if (env.is_array()) {
    for (size_t i = 0; i < env.size(); ++i) ValidateEnvVar(env[i], Idx(p + ".env", i), errors);
  }
  const Json& ports = Field(c, "ports");
  if (ports.is_array()) {
    for (size_t i = 0; i < ports.size(); ++i) {
      std::string pp = Idx(p + ".ports", i);
      const Json& port = Field(ports[i], "containerPort");
      if (port.is_number_integer() && (port.get<int64_t>() < 1 || port.get<int64_t>() > 65535)) {
        errors->push_back(pp + ".containerPort: Invalid value: " + port.dump() +
                          ": must be between 1 and 65535, inclusive");
      }
      std::string proto = StringField(ports[i], "protocol");
      if (!proto.empty() && proto != "TCP" && proto != "UDP" && proto != "SCTP") {
        errors->push_back(FieldNotSupported(pp + ".protocol", proto, {"SCTP", "TCP", "UDP"}));
      }
    }
  }
  const Json& mounts = Field(c, "volumeMounts");
  if (mounts.is_array()) {
    for (size_t i = 0; i < mounts.size(); ++i) {
      std::string mp = Idx(p + ".volumeMounts", i);
      std::string name = StringField(mounts[i], "name");
      if (!volumes.count(name)) {
        errors->push_back(mp + ".name: Not found: " + Json(name).dump());
      }
      if (StringField(mounts[i], "mountPath").empty()) {
        errors->push_back(FieldRequired(mp + ".mountPath"));
      }
    }
  }
}

// `extra_volumes`: names that become pod volumes without being listed in the
// pod spec (volumeClaimTemplates).
void ValidatePodSpec(const Json& spec, const std::string& p,
                     const std::set<std::string>& extra_volumes, Errors* errors) {
  std::set<std::string> volumes = extra_volumes;
  const Json& vols = Field(spec, "volumes");
  if (vols.is_array()) {
    for (size_t i = 0; i < vols.size(); ++i) {
      std::string vp = Idx(p + ".volumes", i) + ".name";
      std::string name = StringField(vols[i], "name");
      if (name.empty()) {
        errors->push_back(FieldRequired(vp));
        continue;
      }
      AddAll(vp, name, IsDns1123Label(name), errors);
      if (!volumes.insert(name).second && !extra_volumes.count(name)) {
        errors->push_back(FieldDuplicate(vp, name));
      }
    }
  }
  const Json& containers = Field(spec, "containers");
  if (!containers.is_array() || containers.empty()) {
    errors->push_back(FieldRequired(p + ".containers"));
  }
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    const Json& cs = Field(spec, list);
    if (!cs.is_array()) continue;
    for (size_t i = 0; i < cs.size(); ++i) {
      std::string cp = Idx(p + "." + list, i);
      std::string name = StringField(cs[i], "name");
      if (name.empty()) {
        errors->push_back(FieldRequired(cp + ".name"));
      } else {
        AddAll(cp + ".name", name, IsDns1123Label(name), errors);
        if (!names.insert(name).second) errors->push_back(FieldDuplicate(cp + ".name", name));
      }
      ValidateContainer(cs[i], cp, volumes, errors);
    }
  }
  std::string restart = StringField(spec, "restartPolicy");
  if (!restart.empty() && restart != "Always" && restart != "OnFailure" && restart != "Never") {
    errors->push_back(
        FieldNotSupported(p + ".restartPolicy", restart, {"Always", "OnFailure", "Never"}));
  }
}

std::set<std::string> ValidateVolumeClaimTemplates(const Json& vcts, const std::string& p,
                                                   Errors* errors) {
  std::set<std::string> names;
  if (!vcts.is_array()) return names;
  for (size_t i = 0; i < vcts.size(); ++i) {
    std::string np = Idx(p, i) + ".metadata.name";
    std::string name = StringField(Field(vcts[i], "metadata"), "name");
    if (name.empty()) {
      errors->push_back(FieldRequired(np));
      continue;
    }
    AddAll(np, name, IsDns1123Label(name), errors);
    if (!names.insert(name).second) errors->push_back(FieldDuplicate(np, name));
    const Json& meta = Field(vcts[i], "metadata");
    ValidateLabels(StringMap(Field(meta, "labels")), Idx(p, i) + ".metadata.labels", errors);
    ValidateAnnotations(StringMap(Field(meta, "annotations")), Idx(p, i) + ".metadata.annotations",
                        errors);
  }
  return names;
}

// SandboxBlueprint: the spec of Sandbox and of SandboxTemplate.
void ValidateBlueprint(const Json& spec, Errors* errors) {
  std::set<std::string> vct_names = ValidateVolumeClaimTemplates(
      Field(spec, "volumeClaimTemplates"), "spec.volumeClaimTemplates", errors);
  const Json& tmpl = Field(spec, "podTemplate");
  const Json& meta = Field(tmpl, "metadata");
  ValidateLabels(StringMap(Field(meta, "labels")), "spec.podTemplate.metadata.labels", errors);
  ValidateAnnotations(StringMap(Field(meta, "annotations")),
                      "spec.podTemplate.metadata.annotations", errors);
  ValidatePodSpec(Field(tmpl, "spec"), "spec.podTemplate.spec", vct_names, errors);
}

void ValidateRefName(const Json& ref, const std::string& p, Errors* errors) {
  std::string name = StringField(ref, "name");
  if (name.empty()) {
    errors->push_back(FieldRequired(p + ".name"));
  } else {
    AddAll(p + ".name", name, IsDns1123Subdomain(name), errors);
  }
}

// ---- core kinds ----

// Checks data keys (and, when `binary`, that values are base64); returns the
// decoded size.
size_t ValidateDataMap(const Json& data, const std::string& p, bool binary, Errors* errors) {
  size_t total = 0;
  if (!data.is_object()) return 0;
  for (const auto& [k, v] : data.items()) {
    AddAll(Key(p, k), k, IsConfigMapKey(k), errors);
    const std::string& s = v.get_ref<const std::string&>();
    if (binary) {
      auto decoded = Base64Decode(s);
      if (!decoded.ok()) {
        // Secret values are not echoed back.
        errors->push_back(Key(p, k) + ": Invalid value: " + decoded.status().message());
        continue;
      }
      total += decoded->size();
    } else {
      total += s.size();
    }
  }
  return total;
}

void ValidateSecret(const Json& doc, Errors* errors) {
  size_t total = ValidateDataMap(Field(doc, "data"), "data", true, errors);
  if (total > kMaxConfigDataSize) {
    errors->push_back("data: Too long: must have at most " + std::to_string(kMaxConfigDataSize) +
                      " bytes");
  }
  std::string type = StringField(doc, "type");
  auto require = [&](const char* key) {
    if (!Field(doc, "data").contains(key)) errors->push_back(FieldRequired(Key("data", key)));
  };
  if (type == "kubernetes.io/tls") {
    require("tls.crt");
    require("tls.key");
  } else if (type == "kubernetes.io/dockerconfigjson") {
    require(".dockerconfigjson");
  } else if (type == "kubernetes.io/dockercfg") {
    require(".dockercfg");
  } else if (type == "kubernetes.io/ssh-auth") {
    require("ssh-privatekey");
  }
}

void ValidateConfigMap(const Json& doc, Errors* errors) {
  const Json& data = Field(doc, "data");
  const Json& binary = Field(doc, "binaryData");
  size_t total = ValidateDataMap(data, "data", false, errors) +
                 ValidateDataMap(binary, "binaryData", true, errors);
  if (data.is_object() && binary.is_object()) {
    for (const auto& [k, v] : binary.items()) {
      if (data.contains(k)) {
        errors->push_back(
            FieldInvalid(Key("data", k), k, "duplicate of key present in binaryData"));
      }
    }
  }
  if (total > kMaxConfigDataSize) {
    errors->push_back("[]: Too long: must have at most " + std::to_string(kMaxConfigDataSize) +
                      " bytes");
  }
}

// What the API server does to a Secret before validation: stringData is a
// write-only convenience that overrides data.
void MergeStringData(Json* doc) {
  auto it = doc->find("stringData");
  if (it == doc->end()) return;
  if (it->is_object() && !it->empty()) {
    Json& data = (*doc)["data"];
    if (!data.is_object()) data = Json::object();
    for (const auto& [k, v] : it->items()) {
      data[k] = Base64Encode(v.get<std::string>());
    }
  }
  doc->erase("stringData");
}

void ValidateSemantics(const KindInfo& k, const Json& doc, Errors* errors) {
  ValidateMetadata(k, Field(doc, "metadata"), errors);
  const Json& spec = Field(doc, "spec");
  if (k.kind == "Sandbox" || k.kind == "SandboxTemplate") {
    ValidateBlueprint(spec, errors);
  } else if (k.kind == "SandboxClaim") {
    ValidateRefName(Field(spec, "warmPoolRef"), "spec.warmPoolRef", errors);
    const Json& meta = Field(spec, "additionalPodMetadata");
    ValidateLabels(StringMap(Field(meta, "labels")), "spec.additionalPodMetadata.labels", errors);
    ValidateAnnotations(StringMap(Field(meta, "annotations")),
                        "spec.additionalPodMetadata.annotations", errors);
    const Json& env = Field(spec, "env");
    if (env.is_array()) {
      for (size_t i = 0; i < env.size(); ++i) {
        std::string name = StringField(env[i], "name");
        AddAll(Idx("spec.env", i) + ".name", name, IsEnvVarName(name), errors);
      }
    }
    ValidateVolumeClaimTemplates(Field(spec, "volumeClaimTemplates"), "spec.volumeClaimTemplates",
                                 errors);
  } else if (k.kind == "SandboxWarmPool") {
    ValidateRefName(Field(spec, "sandboxTemplateRef"), "spec.sandboxTemplateRef", errors);
  } else if (k.kind == "Secret") {
    ValidateSecret(doc, errors);
  } else if (k.kind == "ConfigMap") {
    ValidateConfigMap(doc, errors);
  }
}

// ---- conversion from v1alpha1 ----

void ConvertSandboxFromV1alpha1(Json* doc, Errors* errors) {
  Json& spec = (*doc)["spec"];
  if (spec.is_object()) {
    int64_t replicas = 1;
    if (auto r = spec.find("replicas"); r != spec.end()) {
      if (r->is_number_integer()) replicas = r->get<int64_t>();
      spec.erase(r);
    }
    if (replicas != 0 && replicas != 1) {
      errors->push_back("spec.replicas: Invalid value: " + std::to_string(replicas) +
                        ": must be 0 or 1");
    }
    spec["operatingMode"] = replicas == 0 ? "Suspended" : "Running";
  }
  if (auto st = doc->find("status"); st != doc->end() && st->is_object()) {
    st->erase("replicas");
  }
}

// v1alpha1 claims named a template and optionally a pool; v1beta1 claims name
// a pool only (its template is used for cold starts). A named pool maps
// directly; "none" (cold start) maps to the pool upstream's migration creates
// for the template, `shadow-pool-<template>`, which must exist with
// replicas: 0. "default" (any pool of the template) has no v1beta1
// equivalent and is refused.
void ConvertClaimFromV1alpha1(Json* doc, Errors* errors) {
  Json& spec = (*doc)["spec"];
  if (!spec.is_object()) return;
  std::string tmpl = StringField(Field(spec, "sandboxTemplateRef"), "name");
  std::string pool = StringField(spec, "warmpool");
  if (pool.empty()) pool = "default";
  if (pool == "default") {
    errors->push_back(FieldInvalid(
        "spec.warmpool", pool,
        "cannot be converted to extensions.agents.x-k8s.io/v1beta1, which needs a named "
        "SandboxWarmPool: set spec.warmpool to the pool's name, or use v1beta1 "
        "spec.warmPoolRef.name"));
  } else if (pool == "none") {
    spec["warmPoolRef"] = {{"name", "shadow-pool-" + tmpl}};
  } else {
    spec["warmPoolRef"] = {{"name", pool}};
  }
  spec.erase("sandboxTemplateRef");
  spec.erase("warmpool");
}

// Converts `doc` from `from_version` to the storage version in place,
// appending what cannot be converted to `errors`.
void ConvertToStorage(const KindInfo& k, const std::string& from_version, Json* doc,
                      Errors* errors) {
  (*doc)["apiVersion"] = k.ApiVersion();
  if (from_version == k.version) return;
  if (k.kind == "Sandbox") {
    ConvertSandboxFromV1alpha1(doc, errors);
  } else if (k.kind == "SandboxClaim") {
    ConvertClaimFromV1alpha1(doc, errors);
  }
  // SandboxTemplate and SandboxWarmPool: v1alpha1 is a field-for-field subset.
}

std::string NameOf(const Json& doc) { return StringField(Field(doc, "metadata"), "name"); }

Status SchemaStatus(const KindInfo& k, const std::string& version, const Json& doc,
                    const SchemaFindings& f) {
  if (!f.unknown_fields.empty()) {
    std::vector<std::string> parts;
    for (const auto& u : f.unknown_fields) parts.push_back("unknown field " + Json(u).dump());
    return InvalidArgument(k.kind + " in version " + Json(version).dump() +
                           " cannot be handled as a " + k.kind +
                           ": strict decoding error: " + Join(parts, ", "));
  }
  if (!f.errors.empty()) return InvalidStatus(k, NameOf(doc), f.errors);
  return Status::Ok();
}

}  // namespace

Result<Object> DecodeObject(const Json& input) {
  if (!input.is_object()) return InvalidArgument("object must be a mapping");
  std::vector<std::string> missing;
  for (const char* f : {"apiVersion", "kind"}) {
    auto it = input.find(f);
    if (it == input.end() || it->is_null() || (it->is_string() && it->empty())) {
      missing.push_back(std::string(f) + " not set");
    } else if (!it->is_string()) {
      missing.push_back(std::string(f) + " must be a string");
    }
  }
  if (!missing.empty()) return InvalidArgument(Join(missing, ", "));
  const std::string api_version = input["apiVersion"].get<std::string>();
  const std::string kind = input["kind"].get<std::string>();
  const KindInfo* info = FindKindByApiVersion(api_version, kind);
  if (info == nullptr) {
    return InvalidArgument("no kind " + Json(kind).dump() + " is registered for version " +
                           Json(api_version).dump());
  }
  const std::string version = VersionOf(api_version);
  const Json* schema = FindSchema(info->kind, version);
  if (schema == nullptr) {
    return Internal("no schema for " + info->kind + " " + version);
  }

  Json doc = input;
  SBX_RETURN_IF_ERROR(SchemaStatus(*info, version, doc, CheckAgainstSchema(*schema, &doc)));

  Errors errors;
  ConvertToStorage(*info, version, &doc, &errors);
  if (!errors.empty()) return InvalidStatus(*info, NameOf(doc), errors);
  if (version != info->version) {
    const Json* storage = FindSchema(info->kind, info->version);
    if (storage == nullptr) return Internal("no schema for " + info->kind + " " + info->version);
    SBX_RETURN_IF_ERROR(
        SchemaStatus(*info, info->version, doc, CheckAgainstSchema(*storage, &doc)));
  }

  if (!info->namespaced) {
    // As the API server: a namespace on a cluster-scoped object is ignored.
    if (auto m = doc.find("metadata"); m != doc.end() && m->is_object()) m->erase("namespace");
  }
  if (info->kind == "Secret") MergeStringData(&doc);
  ValidateSemantics(*info, doc, &errors);
  if (!errors.empty()) return InvalidStatus(*info, NameOf(doc), errors);

  auto obj = Object::FromJson(doc);
  if (!obj.ok()) return Status(Code::kInvalid, obj.status().message());
  return obj;
}

Status ValidateUpdate(const Object& old_obj, const Object& new_obj) {
  const KindInfo* info = FindKindByApiVersion(new_obj.api_version, new_obj.kind);
  if (info == nullptr) {
    return InvalidArgument("no kind " + Json(new_obj.kind).dump() + " is registered for version " +
                           Json(new_obj.api_version).dump());
  }
  Errors errors;
  const char kImmutable[] = "field is immutable";
  if (old_obj.metadata.name != new_obj.metadata.name) {
    errors.push_back(FieldInvalid("metadata.name", new_obj.metadata.name, kImmutable));
  }
  if (old_obj.metadata.namespace_ != new_obj.metadata.namespace_) {
    errors.push_back(FieldInvalid("metadata.namespace", new_obj.metadata.namespace_, kImmutable));
  }
  if (info->kind == "Sandbox") {
    const Json& o = Field(Field(old_obj.body, "spec"), "volumeClaimTemplates");
    const Json& n = Field(Field(new_obj.body, "spec"), "volumeClaimTemplates");
    if (o != n) {
      errors.push_back("spec: Invalid value: \"object\": volumeClaimTemplates is immutable");
    }
  }
  if (info->kind == "Secret" || info->kind == "ConfigMap") {
    if (Field(old_obj.body, "immutable") == true) {
      const char kWhenImmutable[] = "field is immutable when `immutable` is set";
      for (const char* f : {"data", "binaryData", "stringData"}) {
        if (Field(old_obj.body, f) != Field(new_obj.body, f)) {
          errors.push_back(FieldForbidden(f, kWhenImmutable));
        }
      }
      if (Field(new_obj.body, "immutable") != true) {
        errors.push_back(FieldForbidden("immutable", kWhenImmutable));
      }
    }
    if (info->kind == "Secret") {
      std::string o = StringField(old_obj.body, "type"), n = StringField(new_obj.body, "type");
      if (o != n) errors.push_back(FieldInvalid("type", n, kImmutable));
    }
  }
  if (!errors.empty()) return InvalidStatus(*info, new_obj.metadata.name, errors);
  return Status::Ok();
}

Json ConvertSandboxToVersion(const Json& v1beta1_doc, std::string_view version) {
  Json doc = v1beta1_doc;
  const KindInfo* info = FindKind("Sandbox");
  doc["apiVersion"] = info->group + "/" + std::string(version);
  if (version != "v1alpha1") return doc;
  if (auto spec = doc.find("spec"); spec != doc.end() && spec->is_object()) {
    bool suspended = StringField(*spec, "operatingMode") == "Suspended";
    spec->erase("operatingMode");
    (*spec)["replicas"] = suspended ? 0 : 1;
  }
  if (auto st = doc.find("status"); st != doc.end() && st->is_object()) {
    st->erase("nodeName");
    // v1alpha1 counted the sandbox's pods: one while it has an address.
    const Json& ips = Field(*st, "podIPs");
    (*st)["replicas"] = ips.is_array() && !ips.empty() ? 1 : 0;
  }
  return doc;
}

}  // namespace sbx::api
