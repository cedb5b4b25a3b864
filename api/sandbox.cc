#include "api/sandbox.h"

#include <algorithm>
#include <cstdio>

namespace sbx::api {

namespace {

// ---- reading ----

class Reader {
 public:
  explicit Reader(const Json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  const Json* Get(const char* key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string Path(const char* key) const { return path_ + "." + key; }

  Status String(const char* key, std::string* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return InvalidArgument(Path(key) + ": must be a string");
    *out = v->get<std::string>();
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return InvalidArgument(Path(key) + ": must be a boolean");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Strings(const char* key, std::vector<std::string>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_array()) return InvalidArgument(Path(key) + ": must be a list");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return InvalidArgument(Path(key) + "[" + std::to_string(i) + "]: must be a string");
      }
      out->push_back((*v)[i].get<std::string>());
    }
    return Status::Ok();
  }
  Status StringMap(const char* key, std::map<std::string, std::string>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return InvalidArgument(Path(key) + ": must be an object");
    for (const auto& [k, s] : v->items()) {
      if (!s.is_string()) return InvalidArgument(Path(key) + "[" + k + "]: must be a string");
      (*out)[k] = s.get<std::string>();
    }
    return Status::Ok();
  }
  Status Time(const char* key, std::optional<TimePoint>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return InvalidArgument(Path(key) + ": must be a string");
    auto t = ParseRfc3339(v->get<std::string>());
    if (!t.ok()) return t.status().Annotate(Path(key));
    *out = *t;
    return Status::Ok();
  }

 private:
  const Json& obj_;
  std::string path_;
};

Result<KeySelector> ReadKeySelector(const Json& j, const std::string& path) {
  Reader r(j, path);
  KeySelector k;
  SBX_RETURN_IF_ERROR(r.String("name", &k.name));
  SBX_RETURN_IF_ERROR(r.String("key", &k.key));
  SBX_RETURN_IF_ERROR(r.Bool("optional", &k.optional));
  return k;
}

Result<EnvVar> ReadEnvVar(const Json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  Reader r(j, path);
  EnvVar e;
  SBX_RETURN_IF_ERROR(r.String("name", &e.name));
  if (r.Get("value") != nullptr) {
    std::string v;
    SBX_RETURN_IF_ERROR(r.String("value", &v));
    e.value = v;
  }
  if (const Json* from = r.Get("valueFrom")) {
    EnvVarSource s;
    std::string fp = r.Path("valueFrom");
    if (!from->is_object()) return InvalidArgument(fp + ": must be an object");
    if (auto it = from->find("secretKeyRef"); it != from->end() && !it->is_null()) {
      SBX_ASSIGN_OR_RETURN(s.secret_key_ref, ReadKeySelector(*it, fp + ".secretKeyRef"));
    }
    if (auto it = from->find("configMapKeyRef"); it != from->end() && !it->is_null()) {
      SBX_ASSIGN_OR_RETURN(s.config_map_key_ref, ReadKeySelector(*it, fp + ".configMapKeyRef"));
    }
    s.field_ref = from->value("fieldRef", Json());
    s.resource_field_ref = from->value("resourceFieldRef", Json());
    e.value_from = std::move(s);
  }
  return e;
}

Result<Container> ReadContainer(const Json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  Reader r(j, path);
  Container c;
  c.raw = j;
  SBX_RETURN_IF_ERROR(r.String("name", &c.name));
  SBX_RETURN_IF_ERROR(r.String("image", &c.image));
  SBX_RETURN_IF_ERROR(r.String("workingDir", &c.working_dir));
  SBX_RETURN_IF_ERROR(r.String("imagePullPolicy", &c.image_pull_policy));
  SBX_RETURN_IF_ERROR(r.Strings("command", &c.command));
  SBX_RETURN_IF_ERROR(r.Strings("args", &c.args));
  SBX_RETURN_IF_ERROR(r.Bool("tty", &c.tty));
  SBX_RETURN_IF_ERROR(r.Bool("stdin", &c.stdin));
  if (const Json* env = r.Get("env")) {
    if (!env->is_array()) return InvalidArgument(r.Path("env") + ": must be a list");
    for (size_t i = 0; i < env->size(); ++i) {
      SBX_ASSIGN_OR_RETURN(EnvVar e,
                           ReadEnvVar((*env)[i], r.Path("env") + "[" + std::to_string(i) + "]"));
      c.env.push_back(std::move(e));
    }
  }
  return c;
}

Status ReadContainers(const Reader& r, const char* key, std::vector<Container>* out) {
  const Json* list = r.Get(key);
  if (list == nullptr) return Status::Ok();
  if (!list->is_array()) return InvalidArgument(r.Path(key) + ": must be a list");
  for (size_t i = 0; i < list->size(); ++i) {
    SBX_ASSIGN_OR_RETURN(Container c,
                         ReadContainer((*list)[i], r.Path(key) + "[" + std::to_string(i) + "]"));
    out->push_back(std::move(c));
  }
  return Status::Ok();
}

Result<PodSpec> ReadPodSpec(const Json& j, const std::string& path) {
  PodSpec p;
  if (j.is_null()) return p;
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  Reader r(j, path);
  p.raw = j;
  SBX_RETURN_IF_ERROR(ReadContainers(r, "containers", &p.containers));
  SBX_RETURN_IF_ERROR(ReadContainers(r, "initContainers", &p.init_containers));
  SBX_RETURN_IF_ERROR(r.String("restartPolicy", &p.restart_policy));
  SBX_RETURN_IF_ERROR(r.String("runtimeClassName", &p.runtime_class_name));
  SBX_RETURN_IF_ERROR(r.String("hostname", &p.hostname));
  return p;
}

// ---- writing ----
//
// Setters keep an explicitly empty value that was in the input, so that an
// unchanged view writes back exactly what it read.

void SetString(Json* obj, const char* key, const std::string& v) {
  if (!v.empty() || obj->contains(key)) (*obj)[key] = v;
}

void SetBool(Json* obj, const char* key, bool v) {
  if (v || obj->contains(key)) (*obj)[key] = v;
}

void SetStrings(Json* obj, const char* key, const std::vector<std::string>& v) {
  if (!v.empty() || obj->contains(key)) (*obj)[key] = v;
}

void SetKeySelector(Json* obj, const char* key, const std::optional<KeySelector>& k) {
  if (!k) {
    obj->erase(key);
    return;
  }
  Json& out = (*obj)[key];
  if (!out.is_object()) out = Json::object();
  // `name` is always present once defaulted.
  out["name"] = k->name;
  out["key"] = k->key;
  SetBool(&out, "optional", k->optional);
}

void SetJson(Json* obj, const char* key, const Json& v) {
  if (v.is_null()) {
    obj->erase(key);
  } else {
    (*obj)[key] = v;
  }
}

Json EnvVarToJson(const EnvVar& e, Json out) {
  if (!out.is_object()) out = Json::object();
  out["name"] = e.name;
  if (e.value) {
    out["value"] = *e.value;
  } else {
    out.erase("value");
  }
  if (!e.value_from) {
    out.erase("valueFrom");
    return out;
  }
  Json& from = out["valueFrom"];
  if (!from.is_object()) from = Json::object();
  SetKeySelector(&from, "secretKeyRef", e.value_from->secret_key_ref);
  SetKeySelector(&from, "configMapKeyRef", e.value_from->config_map_key_ref);
  SetJson(&from, "fieldRef", e.value_from->field_ref);
  SetJson(&from, "resourceFieldRef", e.value_from->resource_field_ref);
  return out;
}

Json ContainerToJson(const Container& c) {
  Json out = c.raw.is_object() ? c.raw : Json::object();
  out["name"] = c.name;
  SetString(&out, "image", c.image);
  SetString(&out, "workingDir", c.working_dir);
  SetString(&out, "imagePullPolicy", c.image_pull_policy);
  SetStrings(&out, "command", c.command);
  SetStrings(&out, "args", c.args);
  SetBool(&out, "tty", c.tty);
  SetBool(&out, "stdin", c.stdin);
  if (!c.env.empty() || out.contains("env")) {
    // Entries keep their untyped fields (fileKeyRef, ...) when they still
    // describe the same variable.
    const Json old = out.value("env", Json::array());
    Json env = Json::array();
    for (size_t i = 0; i < c.env.size(); ++i) {
      Json base;
      if (i < old.size() && old[i].is_object() && old[i].value("name", "") == c.env[i].name) {
        base = old[i];
      }
      env.push_back(EnvVarToJson(c.env[i], std::move(base)));
    }
    out["env"] = std::move(env);
  }
  return out;
}

Json ContainersToJson(const std::vector<Container>& cs) {
  Json out = Json::array();
  for (const auto& c : cs) out.push_back(ContainerToJson(c));
  return out;
}

Json PodSpecToJson(const PodSpec& p) {
  Json out = p.raw.is_object() ? p.raw : Json::object();
  out["containers"] = ContainersToJson(p.containers);
  if (!p.init_containers.empty() || out.contains("initContainers")) {
    out["initContainers"] = ContainersToJson(p.init_containers);
  }
  SetString(&out, "restartPolicy", p.restart_policy);
  SetString(&out, "runtimeClassName", p.runtime_class_name);
  SetString(&out, "hostname", p.hostname);
  return out;
}

}  // namespace

std::string NameHash(std::string_view name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : name) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", h);
  return buf;
}

Json ConditionToJson(const Condition& c) {
  Json j = {{"type", c.type},
            {"status", c.status},
            {"lastTransitionTime", FormatRfc3339(c.last_transition_time)},
            {"reason", c.reason},
            {"message", c.message}};
  if (c.observed_generation != 0) j["observedGeneration"] = c.observed_generation;
  return j;
}

Result<Condition> ConditionFromJson(const Json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  Reader r(j, path);
  Condition c;
  SBX_RETURN_IF_ERROR(r.String("type", &c.type));
  SBX_RETURN_IF_ERROR(r.String("status", &c.status));
  SBX_RETURN_IF_ERROR(r.String("reason", &c.reason));
  SBX_RETURN_IF_ERROR(r.String("message", &c.message));
  if (const Json* g = r.Get("observedGeneration")) {
    if (!g->is_number_integer()) {
      return InvalidArgument(r.Path("observedGeneration") + ": must be an integer");
    }
    c.observed_generation = g->get<int64_t>();
  }
  std::optional<TimePoint> t;
  SBX_RETURN_IF_ERROR(r.Time("lastTransitionTime", &t));
  if (t) c.last_transition_time = *t;
  return c;
}

Result<Sandbox> Sandbox::FromObject(const Object& obj) {
  if (obj.kind != kSandboxKind || obj.api_version != kSandboxApiVersion) {
    return InvalidArgument("not a " + std::string(kSandboxApiVersion) +
                           " Sandbox: " + obj.api_version + " " + obj.kind);
  }
  Sandbox s;
  s.metadata = obj.metadata;
  Json spec_json = obj.body.value("spec", Json::object());
  Reader spec(spec_json, "spec");
  if (const Json* tmpl = spec.Get("podTemplate")) {
    Reader t(*tmpl, "spec.podTemplate");
    if (const Json* meta = t.Get("metadata")) {
      s.spec.pod_template.raw_metadata = *meta;
      Reader m(*meta, "spec.podTemplate.metadata");
      SBX_RETURN_IF_ERROR(m.StringMap("labels", &s.spec.pod_template.labels));
      SBX_RETURN_IF_ERROR(m.StringMap("annotations", &s.spec.pod_template.annotations));
    }
    SBX_ASSIGN_OR_RETURN(s.spec.pod_template.spec,
                         ReadPodSpec(tmpl->value("spec", Json()), "spec.podTemplate.spec"));
  }
  if (const Json* v = spec.Get("volumeClaimTemplates")) s.spec.volume_claim_templates = *v;
  if (spec.Get("service") != nullptr) {
    bool b = false;
    SBX_RETURN_IF_ERROR(spec.Bool("service", &b));
    s.spec.service = b;
  }
  SBX_RETURN_IF_ERROR(spec.Time("shutdownTime", &s.spec.shutdown_time));
  SBX_RETURN_IF_ERROR(spec.String("shutdownPolicy", &s.spec.shutdown_policy));
  SBX_RETURN_IF_ERROR(spec.String("operatingMode", &s.spec.operating_mode));

  Json status_json = obj.body.value("status", Json::object());
  Reader st(status_json, "status");
  SBX_RETURN_IF_ERROR(st.String("serviceFQDN", &s.status.service_fqdn));
  SBX_RETURN_IF_ERROR(st.String("service", &s.status.service));
  SBX_RETURN_IF_ERROR(st.String("selector", &s.status.selector));
  SBX_RETURN_IF_ERROR(st.String("nodeName", &s.status.node_name));
  SBX_RETURN_IF_ERROR(st.Strings("podIPs", &s.status.pod_ips));
  if (const Json* conds = st.Get("conditions")) {
    if (!conds->is_array()) return InvalidArgument("status.conditions: must be a list");
    for (size_t i = 0; i < conds->size(); ++i) {
      SBX_ASSIGN_OR_RETURN(
          Condition c,
          ConditionFromJson((*conds)[i], "status.conditions[" + std::to_string(i) + "]"));
      s.status.conditions.push_back(std::move(c));
    }
  }
  if (const Json* cs = st.Get("containerStatuses")) {
    if (!cs->is_array()) return InvalidArgument("status.containerStatuses: must be a list");
    s.status.container_statuses = *cs;
  }
  if (const Json* cs = st.Get("initContainerStatuses")) {
    if (!cs->is_array()) return InvalidArgument("status.initContainerStatuses: must be a list");
    s.status.init_container_statuses = *cs;
  }
  return s;
}

Object Sandbox::ToObject() const {
  Object o;
  o.api_version = kSandboxApiVersion;
  o.kind = kSandboxKind;
  o.metadata = metadata;

  Json tmpl = Json::object();
  const PodTemplate& pt = spec.pod_template;
  if (!pt.labels.empty() || !pt.annotations.empty() || !pt.raw_metadata.is_null()) {
    Json meta = pt.raw_metadata.is_object() ? pt.raw_metadata : Json::object();
    meta.erase("labels");
    meta.erase("annotations");
    bool had_labels = pt.raw_metadata.is_object() && pt.raw_metadata.contains("labels");
    bool had_annotations = pt.raw_metadata.is_object() && pt.raw_metadata.contains("annotations");
    if (!pt.labels.empty() || had_labels) meta["labels"] = pt.labels;
    if (!pt.annotations.empty() || had_annotations) meta["annotations"] = pt.annotations;
    tmpl["metadata"] = std::move(meta);
  }
  tmpl["spec"] = PodSpecToJson(pt.spec);

  Json spec_json = Json::object();
  spec_json["podTemplate"] = std::move(tmpl);
  if (!spec.volume_claim_templates.is_null()) {
    spec_json["volumeClaimTemplates"] = spec.volume_claim_templates;
  }
  if (spec.service) spec_json["service"] = *spec.service;
  if (spec.shutdown_time) spec_json["shutdownTime"] = FormatRfc3339(*spec.shutdown_time);
  if (!spec.shutdown_policy.empty()) spec_json["shutdownPolicy"] = spec.shutdown_policy;
  if (!spec.operating_mode.empty()) spec_json["operatingMode"] = spec.operating_mode;
  o.body["spec"] = std::move(spec_json);

  Json st = Json::object();
  if (!status.service_fqdn.empty()) st["serviceFQDN"] = status.service_fqdn;
  if (!status.service.empty()) st["service"] = status.service;
  if (!status.selector.empty()) st["selector"] = status.selector;
  if (!status.node_name.empty()) st["nodeName"] = status.node_name;
  if (!status.pod_ips.empty()) st["podIPs"] = status.pod_ips;
  if (!status.conditions.empty()) {
    Json conds = Json::array();
    for (const auto& c : status.conditions) conds.push_back(ConditionToJson(c));
    st["conditions"] = std::move(conds);
  }
  if (status.container_statuses.is_array() && !status.container_statuses.empty()) {
    st["containerStatuses"] = status.container_statuses;
  }
  if (status.init_container_statuses.is_array() && !status.init_container_statuses.empty()) {
    st["initContainerStatuses"] = status.init_container_statuses;
  }
  if (!st.empty()) o.body["status"] = std::move(st);
  return o;
}

bool SetCondition(std::vector<Condition>* conditions, Condition c, TimePoint now) {
  auto it = std::find_if(conditions->begin(), conditions->end(),
                         [&](const Condition& x) { return x.type == c.type; });
  if (c.last_transition_time == TimePoint()) c.last_transition_time = now;
  if (it == conditions->end()) {
    conditions->push_back(std::move(c));
    return true;
  }
  bool changed = false;
  if (it->status != c.status) {
    it->status = c.status;
    it->last_transition_time = c.last_transition_time;
    changed = true;
  }
  if (it->reason != c.reason) {
    it->reason = c.reason;
    changed = true;
  }
  if (it->message != c.message) {
    it->message = c.message;
    changed = true;
  }
  if (it->observed_generation != c.observed_generation) {
    it->observed_generation = c.observed_generation;
    changed = true;
  }
  return changed;
}

const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type) {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

bool RemoveCondition(std::vector<Condition>* conditions, std::string_view type) {
  auto it = std::remove_if(conditions->begin(), conditions->end(),
                           [&](const Condition& c) { return c.type == type; });
  bool removed = it != conditions->end();
  conditions->erase(it, conditions->end());
  return removed;
}

}  // namespace sbx::api
