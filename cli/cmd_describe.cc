// sbx describe KIND [NAME]: kubectl describe's layout. The text is built
// with tab-separated cells and aligned once by Tabwrite(0, 2), as kubectl's
// describers write through a tabwriter. Secret values never appear: Secrets
// show their keys and sizes, env vars from Secrets show the reference.
#include <algorithm>

#include "api/object.h"
#include "cli/commands.h"
#include "cli/printer.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

class Text {
 public:
  // One line at an indentation level (two spaces each); '\t' separates cells.
  void Line(int level, std::string_view text) {
    out_.append(static_cast<size_t>(level) * 2, ' ');
    out_ += text;
    out_ += '\n';
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

std::string Scalar(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "<nil>";
  return v.dump();
}

using api::Field;

std::string StringField(const Json& j, const char* key) {
  const Json& v = Field(j, key);
  return v.is_null() ? "" : Scalar(v);
}

// "podTemplate" -> "Pod Template", "podIPs" -> "Pod IPs", "uid" -> "UID".
std::string Label(std::string_view field) {
  static const char* const kAcronyms[] = {"api", "uid", "id",  "ip",  "url",  "fqdn",
                                          "dns", "tls", "tcp", "udp", "http", "cpu"};
  auto upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (upper(c) && !cur.empty()) {
      // A capital starts a word after a lower-case letter, or ends an acronym
      // when lower case follows ("FQDNName"), except a plural "IPs".
      bool next_lower = i + 1 < field.size() && !upper(field[i + 1]);
      bool plural = i + 2 == field.size() && field[i + 1] == 's';
      if (!upper(field[i - 1]) || (next_lower && !plural)) {
        words.push_back(std::move(cur));
        cur.clear();
      }
    }
    cur += c;
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  auto is_acronym = [](const std::string& lower) {
    return std::find_if(std::begin(kAcronyms), std::end(kAcronyms),
                        [&](const char* a) { return lower == a; }) != std::end(kAcronyms);
  };
  auto upper_all = [](std::string w) {
    for (auto& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return w;
  };
  std::string out;
  for (auto& w : words) {
    std::string lower = ToLower(w);
    std::string stem = lower.substr(0, lower.size() - 1);
    if (is_acronym(lower)) {
      w = upper_all(lower);
    } else if (lower.back() == 's' && is_acronym(stem)) {
      w = upper_all(stem) + "s";
    } else {
      w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    }
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// kubectl's printUnstructuredContent: sorted keys, maps and lists nested.
void Generic(Text& t, int level, const Json& content, const std::vector<std::string>& skip = {}) {
  if (!content.is_object()) return;
  for (auto it = content.begin(); it != content.end(); ++it) {
    if (std::find(skip.begin(), skip.end(), it.key()) != skip.end()) continue;
    const Json& v = it.value();
    std::string label = Label(it.key());
    if (v.is_object()) {
      t.Line(level, label + ":");
      Generic(t, level + 1, v);
    } else if (v.is_array()) {
      t.Line(level, label + ":");
      for (const auto& child : v) {
        if (child.is_object()) {
          Generic(t, level + 1, child);
        } else {
          t.Line(level + 1, Scalar(child));
        }
      }
    } else {
      t.Line(level, label + ":\t" + Scalar(v));
    }
  }
}

// "Labels:  a=b" with further pairs on continuation lines, or "<none>".
void StringMap(Text& t, int level, const std::string& label, const Json& m) {
  if (!m.is_object() || m.empty()) {
    t.Line(level, label + ":\t<none>");
    return;
  }
  bool first = true;
  for (auto it = m.begin(); it != m.end(); ++it) {
    std::string pair = it.key() + "=" + Scalar(it.value());
    t.Line(level, (first ? label + ":\t" : "\t") + pair);
    first = false;
  }
}

std::string EnvValue(const Json& env) {
  const Json& from = Field(env, "valueFrom");
  if (from.is_null()) return StringField(env, "value");
  auto optional = [](const Json& ref) {
    const Json& o = Field(ref, "optional");
    return o.is_boolean() ? std::string("\tOptional: ") + (o.get<bool>() ? "true" : "false") : "";
  };
  if (const Json& ref = Field(from, "secretKeyRef"); ref.is_object()) {
    return "<set to the key '" + StringField(ref, "key") + "' in secret '" +
           StringField(ref, "name") + "'>" + optional(ref);
  }
  if (const Json& ref = Field(from, "configMapKeyRef"); ref.is_object()) {
    return "<set to the key '" + StringField(ref, "key") + "' of config map '" +
           StringField(ref, "name") + "'>" + optional(ref);
  }
  if (const Json& ref = Field(from, "fieldRef"); ref.is_object()) {
    std::string version = StringField(ref, "apiVersion");
    return "(" + (version.empty() ? std::string("v1") : version) + ":" +
           StringField(ref, "fieldPath") + ")";
  }
  return "<set from " + from.dump() + ">";
}

void Container(Text& t, int level, const Json& c) {
  t.Line(level, StringField(c, "name") + ":");
  ++level;
  t.Line(level, "Image:\t" + StringField(c, "image"));
  for (const char* list : {"command", "args"}) {
    const Json& items = Field(c, list);
    if (!items.is_array()) continue;
    t.Line(level, Label(list) + ":");
    for (const auto& a : items) t.Line(level + 1, Scalar(a));
  }
  if (!Field(c, "workingDir").is_null())
    t.Line(level, "Working Dir:\t" + StringField(c, "workingDir"));
  const Json& env = Field(c, "env");
  if (env.is_array() && !env.empty()) {
    t.Line(level, "Environment:");
    for (const auto& e : env) t.Line(level + 1, StringField(e, "name") + ":\t" + EnvValue(e));
  } else {
    t.Line(level, "Environment:\t<none>");
  }
  const Json& env_from = Field(c, "envFrom");
  if (env_from.is_array() && !env_from.empty()) {
    t.Line(level, "Environment Variables from:");
    for (const auto& e : env_from) {
      std::string prefix = StringField(e, "prefix");
      bool secret = Field(e, "secretRef").is_object();
      const Json& ref = secret ? Field(e, "secretRef") : Field(e, "configMapRef");
      std::string line = StringField(ref, "name") + "\t" + (secret ? "Secret" : "ConfigMap");
      if (!prefix.empty()) line += " with prefix '" + prefix + "'";
      t.Line(level + 1, line);
    }
  }
  Generic(t, level, c, {"name", "image", "command", "args", "workingDir", "env", "envFrom"});
}

void PodTemplate(Text& t, int level, const Json& pod_template) {
  t.Line(level, "Pod Template:");
  const Json& meta = Field(pod_template, "metadata");
  StringMap(t, level + 1, "Labels", Field(meta, "labels"));
  StringMap(t, level + 1, "Annotations", Field(meta, "annotations"));
  const Json& spec = Field(pod_template, "spec");
  for (const char* list : {"initContainers", "containers"}) {
    const Json& containers = Field(spec, list);
    if (!containers.is_array()) continue;
    t.Line(level + 1, Label(list) + ":");
    for (const auto& c : containers) Container(t, level + 2, c);
  }
  Generic(t, level + 1, spec, {"initContainers", "containers"});
}

void Conditions(Text& t, int level, const Json& conditions) {
  t.Line(level, "Conditions:");
  t.Line(level + 1, "Type\tStatus\tReason\tMessage\tLast Transition Time");
  t.Line(level + 1, "----\t------\t------\t-------\t--------------------");
  for (const auto& c : conditions) {
    t.Line(level + 1, StringField(c, "type") + "\t" + StringField(c, "status") + "\t" +
                          StringField(c, "reason") + "\t" + StringField(c, "message") + "\t" +
                          StringField(c, "lastTransitionTime"));
  }
}

void ContainerState(Text& t, int level, const char* label, const Json& state) {
  if (!state.is_object() || state.empty()) return;
  std::string which = state.begin().key();
  const Json& s = state.begin().value();
  which[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(which[0])));
  t.Line(level, std::string(label) + ":\t" + which);
  for (const auto& [key, title] :
       std::vector<std::pair<const char*, const char*>>{{"reason", "Reason"},
                                                        {"message", "Message"},
                                                        {"exitCode", "Exit Code"},
                                                        {"signal", "Signal"},
                                                        {"startedAt", "Started"},
                                                        {"finishedAt", "Finished"}}) {
    if (!Field(s, key).is_null())
      t.Line(level + 1, std::string(title) + ":\t" + StringField(s, key));
  }
}

void ContainerStatuses(Text& t, int level, const char* title, const Json& statuses) {
  t.Line(level, std::string(title) + ":");
  for (const auto& cs : statuses) {
    t.Line(level + 1, StringField(cs, "name") + ":");
    ContainerState(t, level + 2, "State", Field(cs, "state"));
    ContainerState(t, level + 2, "Last State", Field(cs, "lastState"));
    Generic(t, level + 2, cs, {"name", "state", "lastState"});
  }
}

void Spec(Text& t, const Json& object) {
  const Json& spec = Field(object, "spec");
  if (!spec.is_object()) return;
  t.Line(0, "Spec:");
  if (Field(spec, "podTemplate").is_object()) {
    Generic(t, 1, spec, {"podTemplate"});
    PodTemplate(t, 1, Field(spec, "podTemplate"));
  } else {
    Generic(t, 1, spec);
  }
}

void StatusSection(Text& t, const Json& object) {
  const Json& status = Field(object, "status");
  if (!status.is_object() || status.empty()) return;
  t.Line(0, "Status:");
  const Json& conditions = Field(status, "conditions");
  if (conditions.is_array()) Conditions(t, 1, conditions);
  const Json& init = Field(status, "initContainerStatuses");
  if (init.is_array()) ContainerStatuses(t, 1, "Init Container Statuses", init);
  const Json& statuses = Field(status, "containerStatuses");
  if (statuses.is_array()) ContainerStatuses(t, 1, "Container Statuses", statuses);
  Generic(t, 1, status, {"conditions", "initContainerStatuses", "containerStatuses"});
}

// ---- The extension kinds, laid out as kubectl's typed describers do:
// the fields a user asks about first, with upstream's defaults spelled out.

// A string field, or `fallback` when it is absent or empty.
std::string StringOr(const Json& j, const char* key, const std::string& fallback) {
  std::string v = StringField(j, key);
  return v.empty() ? fallback : v;
}

// "Conditions:" as a table, or "<none>" before the controller wrote any.
void ConditionsOrNone(Text& t, int level, const Json& object) {
  const Json& conditions = Field(Field(object, "status"), "conditions");
  if (conditions.is_array() && !conditions.empty()) {
    Conditions(t, level, conditions);
  } else {
    t.Line(level, "Conditions:\t<none>");
  }
}

// PersistentVolumeClaim templates: name, access modes, class and request,
// then anything else of the spec.
void VolumeClaimTemplates(Text& t, int level, const Json& vcts) {
  if (!vcts.is_array() || vcts.empty()) {
    t.Line(level, "Volume Claim Templates:\t<none>");
    return;
  }
  t.Line(level, "Volume Claim Templates:");
  for (const auto& vct : vcts) {
    t.Line(level + 1, StringField(Field(vct, "metadata"), "name") + ":");
    const Json& spec = Field(vct, "spec");
    std::vector<std::string> modes;
    if (const Json& m = Field(spec, "accessModes"); m.is_array()) {
      for (const auto& mode : m) modes.push_back(Scalar(mode));
    }
    t.Line(level + 2, "Access Modes:\t" + (modes.empty() ? "<none>" : Join(modes, ",")));
    t.Line(level + 2, "Storage Class:\t" + StringOr(spec, "storageClassName", "<unset>"));
    t.Line(level + 2, "Storage Request:\t" + StringOr(Field(Field(spec, "resources"), "requests"),
                                                      "storage", "<unset>"));
    Generic(t, level + 2, spec, {"accessModes", "storageClassName", "resources"});
  }
}

// "2026-01-01T02:00:00Z (in 60m)" or "(60m ago)".
std::string TimeWithDistance(const Json& timestamp, TimePoint now) {
  std::string text = Scalar(timestamp);
  Result<TimePoint> at = ParseRfc3339(text);
  if (!at.ok()) return text;
  return text + (*at >= now ? " (in " + HumanDuration(*at - now) + ")"
                            : " (" + HumanDuration(now - *at) + " ago)");
}

void ClaimBody(Text& t, const Json& object, TimePoint now) {
  const Json& spec = Field(object, "spec");
  const Json& status = Field(object, "status");
  t.Line(0, "Warm Pool:\t" + StringOr(Field(spec, "warmPoolRef"), "name", "<none>"));
  t.Line(0, "Sandbox:\t" + StringOr(Field(status, "sandbox"), "name", "<none>"));
  std::vector<std::string> ips;
  if (const Json& p = Field(Field(status, "sandbox"), "podIPs"); p.is_array()) {
    for (const auto& ip : p) ips.push_back(Scalar(ip));
  }
  t.Line(0, "Pod IPs:\t" + (ips.empty() ? "<none>" : Join(ips, ",")));
  const Json& lifecycle = Field(spec, "lifecycle");
  t.Line(0, "Lifecycle:");
  const Json& shutdown = Field(lifecycle, "shutdownTime");
  t.Line(1,
         "Shutdown Time:\t" + (shutdown.is_null() ? "<unset>" : TimeWithDistance(shutdown, now)));
  t.Line(1, "Shutdown Policy:\t" + StringOr(lifecycle, "shutdownPolicy", "Retain"));
  t.Line(1, "TTL Seconds After Finished:\t" +
                StringOr(lifecycle, "ttlSecondsAfterFinished", "<unset>"));
  if (const Json& extra = Field(spec, "additionalPodMetadata"); extra.is_object()) {
    t.Line(0, "Additional Pod Metadata:");
    StringMap(t, 1, "Labels", Field(extra, "labels"));
    StringMap(t, 1, "Annotations", Field(extra, "annotations"));
  }
  // Claim env and volume claim templates force a cold start: worth seeing.
  if (const Json& env = Field(spec, "env"); env.is_array() && !env.empty()) {
    t.Line(0, "Environment:");
    for (const auto& e : env) {
      std::string container = StringField(e, "containerName");
      t.Line(1, StringField(e, "name") + ":\t" + StringField(e, "value") +
                    (container.empty() ? "" : "\t(container " + container + ")"));
    }
  }
  if (const Json& vcts = Field(spec, "volumeClaimTemplates"); vcts.is_array() && !vcts.empty()) {
    VolumeClaimTemplates(t, 0, vcts);
  }
  ConditionsOrNone(t, 0, object);
}

void WarmPoolBody(Text& t, const Json& object) {
  const Json& spec = Field(object, "spec");
  const Json& status = Field(object, "status");
  t.Line(0, "Template:\t" + StringOr(Field(spec, "sandboxTemplateRef"), "name", "<none>"));
  t.Line(0, "Update Strategy:\t" + StringOr(Field(spec, "updateStrategy"), "type", "OnReplenish"));
  t.Line(0, "Replicas:\t" + StringOr(spec, "replicas", "1") + " desired | " +
                StringOr(status, "replicas", "0") + " current | " +
                StringOr(status, "readyReplicas", "0") + " ready");
  t.Line(0, "Selector:\t" + StringOr(status, "selector", "<none>"));
  ConditionsOrNone(t, 0, object);
}

void TemplateBody(Text& t, const Json& object) {
  const Json& spec = Field(object, "spec");
  t.Line(0,
         "Env Vars Injection Policy:\t" + StringOr(spec, "envVarsInjectionPolicy", "Disallowed"));
  t.Line(0, "Volume Claim Templates Policy:\t" +
                StringOr(spec, "volumeClaimTemplatesPolicy", "Disallowed"));
  t.Line(0, "Network Policy Management:\t" + StringOr(spec, "networkPolicyManagement", "Managed"));
  if (const Json& policy = Field(spec, "networkPolicy"); policy.is_object()) {
    t.Line(0, "Network Policy:");
    Generic(t, 1, policy);
  } else {
    // Managed without a policy is upstream's secure default; Unmanaged is none.
    bool managed = StringOr(spec, "networkPolicyManagement", "Managed") == "Managed";
    t.Line(0, std::string("Network Policy:\t") + (managed ? "<default>" : "<none>"));
  }
  t.Line(0, "Service:\t" + StringOr(spec, "service", "false"));
  PodTemplate(t, 0, Field(spec, "podTemplate"));
  VolumeClaimTemplates(t, 0, Field(spec, "volumeClaimTemplates"));
}

// Secret values stay secret: keys and sizes only (kubectl does the same).
void SecretData(Text& t, const Json& object) {
  t.Line(0, "");
  t.Line(0, "Type:\t" + (Field(object, "type").is_null() ? std::string("Opaque")
                                                         : StringField(object, "type")));
  t.Line(0, "");
  t.Line(0, "Data");
  t.Line(0, "====");
  const Json& data = Field(object, "data");
  if (!data.is_object()) return;
  for (auto it = data.begin(); it != data.end(); ++it) {
    // data values are base64: the decoded size is what kubectl shows.
    std::string b64 = Scalar(it.value());
    size_t pad = 0;
    while (pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
    size_t bytes = b64.size() / 4 * 3 - std::min<size_t>(pad, 2);
    t.Line(0, it.key() + ":\t" + std::to_string(bytes) + " bytes");
  }
}

void ConfigMapData(Text& t, const Json& object) {
  t.Line(0, "");
  t.Line(0, "Data");
  t.Line(0, "====");
  const Json& data = Field(object, "data");
  if (data.is_object()) {
    for (auto it = data.begin(); it != data.end(); ++it) {
      t.Line(0, it.key() + ":");
      t.Line(0, "----");
      for (const auto& l : Split(Scalar(it.value()), '\n')) t.Line(0, l);
    }
  }
  t.Line(0, "");
  t.Line(0, "BinaryData");
  t.Line(0, "====");
  const Json& binary = Field(object, "binaryData");
  if (binary.is_object()) {
    for (auto it = binary.begin(); it != binary.end(); ++it) t.Line(0, it.key() + ":\t<binary>");
  }
  t.Line(0, "");
}

std::string EventAge(const Json& e, TimePoint now) {
  const Json& last =
      Field(e, "lastTimestamp").is_string() ? Field(e, "lastTimestamp") : Field(e, "eventTime");
  std::string age = AgeOf(last, now);
  const Json& count = Field(e, "count");
  if (count.is_number_integer() && count.get<int64_t>() > 1) {
    age += " (x" + std::to_string(count.get<int64_t>()) + " over " +
           AgeOf(Field(e, "firstTimestamp"), now) + ")";
  }
  return age;
}

void Events(Text& t, const Json& events, TimePoint now) {
  const Json& items = Field(events, "items");
  if (!items.is_array() || items.empty()) {
    t.Line(0, "Events:\t<none>");
    return;
  }
  std::vector<const Json*> sorted;
  for (const auto& e : items) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Json* a, const Json* b) {
    return StringField(*a, "lastTimestamp") < StringField(*b, "lastTimestamp");
  });
  t.Line(0, "Events:");
  t.Line(1, "Type\tReason\tAge\tFrom\tMessage");
  t.Line(1, "----\t------\t----\t----\t-------");
  for (const Json* e : sorted) {
    const Json& source = Field(*e, "source");
    std::string from = StringField(source, "component");
    if (std::string host = StringField(source, "host"); !host.empty()) from += ", " + host;
    t.Line(1, StringField(*e, "type") + "\t" + StringField(*e, "reason") + "\t" +
                  EventAge(*e, now) + "\t" + from + "\t" + StringField(*e, "message"));
  }
}

int RunDescribe(Invocation& inv) {
  std::vector<std::string> args = inv.flags.args;
  if (args.empty()) return inv.Fail("You must specify the type of resource to describe.");
  auto [kind_name, names] = SplitKindAndNames(args);
  const api::KindInfo* kind = inv.ResolveKind(kind_name);
  if (!kind) return 1;
  std::string ns = inv.NamespaceFor(*kind);

  std::vector<Json> objects;
  int rc = 0;
  if (names.empty()) {
    Result<Json> list = inv.client.List(*kind, ns, ListOptions{inv.flags.String("selector"), ""});
    if (!list.ok()) return inv.FailRequest(list.status());
    for (auto& item : (*list)["items"]) objects.push_back(std::move(item));
    if (objects.empty()) inv.PrintNoResources(*kind, ns);
  } else {
    objects = inv.GetEach(*kind, ns, names, &rc);
  }
  const api::KindInfo* event_kind = api::FindKind("events");
  for (size_t i = 0; i < objects.size(); ++i) {
    const Json& object = objects[i];
    Json events;
    std::string uid = StringField(Field(object, "metadata"), "uid");
    if (!uid.empty() && kind != event_kind) {
      std::string event_ns = StringField(Field(object, "metadata"), "namespace");
      if (event_ns.empty()) event_ns = "default";
      // Events are best effort: the object is described without them.
      Result<Json> list =
          inv.client.List(*event_kind, event_ns, ListOptions{"", "involvedObject.uid=" + uid});
      if (list.ok()) events = std::move(list).value();
    }
    if (i > 0) inv.out() << "\n\n";
    inv.out() << DescribeObject(object, events, inv.Now());
  }
  return rc;
}

}  // namespace

std::string DescribeObject(const Json& object, const Json& events, TimePoint now) {
  Text t;
  const Json& meta = Field(object, "metadata");
  std::string kind = StringField(object, "kind");
  t.Line(0, "Name:\t" + StringField(meta, "name"));
  if (!Field(meta, "namespace").is_null())
    t.Line(0, "Namespace:\t" + StringField(meta, "namespace"));
  StringMap(t, 0, "Labels", Field(meta, "labels"));
  StringMap(t, 0, "Annotations", Field(meta, "annotations"));
  // Secrets and ConfigMaps read as kubectl's typed describers print them.
  if (kind == "Secret") {
    SecretData(t, object);
    return Tabwrite(t.str(), 0, 2);
  }
  if (kind == "ConfigMap") {
    ConfigMapData(t, object);
  } else {
    t.Line(0, "API Version:\t" + StringField(object, "apiVersion"));
    t.Line(0, "Kind:\t" + kind);
    std::vector<std::string> shown = {"name", "namespace", "labels", "annotations",
                                      "managedFields"};
    bool more = false;
    for (auto it = meta.begin(); meta.is_object() && it != meta.end(); ++it) {
      more = more || std::find(shown.begin(), shown.end(), it.key()) == shown.end();
    }
    if (more) {
      t.Line(0, "Metadata:");
      Generic(t, 1, meta, shown);
    }
    if (kind == "SandboxClaim") {
      ClaimBody(t, object, now);
    } else if (kind == "SandboxWarmPool") {
      WarmPoolBody(t, object);
    } else if (kind == "SandboxTemplate") {
      TemplateBody(t, object);
    } else {
      Spec(t, object);
      Generic(t, 0, object,
              {"apiVersion", "kind", "metadata", "spec", "status", "data", "stringData"});
      StatusSection(t, object);
    }
  }
  if (kind != "Event") Events(t, events, now);
  return Tabwrite(t.str(), 0, 2);
}

Verb DescribeVerb() {
  return Verb{"describe",
              "Show details of an object, with its events",
              R"(Show the details of one object, or of every object of a kind: metadata,
spec (a Sandbox's pod template with its containers, images, commands and
environment), status with its conditions and container states, and the
events recorded for it.

Secret values are never printed: Secrets show their keys and sizes, and
environment variables from Secrets show the reference.

Examples:
  # Describe a sandbox
  sbx describe sandbox my-sandbox

  # Describe every warm pool in namespace team-a
  sbx describe swp -n team-a

Usage:
  sbx describe KIND [NAME...] [options]
)",
              {{"selector", 'l', FlagType::kString, "", "Label selector, when no NAME is given."}},
              RunDescribe};
}

}  // namespace sbx::cli
