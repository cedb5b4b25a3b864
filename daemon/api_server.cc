#include "daemon/api_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <limits>
#include <thread>

#include "api/decode.h"
#include "api/pod_validation.h"
#include "common/fs.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/random.h"
#include "common/strings.h"
#include "daemon/dial.h"
#include "daemon/http_status.h"
#include "daemon/image_service.h"
#include "daemon/network_policy.h"
#include "daemon/pod_builder.h"
#include "daemon/port_forward.h"
#include "daemon/process.h"
#include "oci/reference.h"

namespace sbx::daemon {

namespace {

constexpr char kJson[] = "application/json";
constexpr char kImagesPrefix[] = "/apis/sbx.dev/v1/images";
constexpr char kRegistriesPrefix[] = "/apis/sbx.dev/v1/registries";

void SendJson(const std::shared_ptr<HttpResponder>& resp, int code, const api::Json& body) {
  resp->Send(code, kJson, body.dump() + "\n");
}

void SendError(const std::shared_ptr<HttpResponder>& resp, const Status& s,
               std::string_view kind = "", std::string_view name = "") {
  SendJson(resp, HttpCodeFor(s.code()), StatusBody(s, kind, name));
}

template <typename T>
void SendResult(const std::shared_ptr<HttpResponder>& resp, const Result<T>& r, int ok_code) {
  if (!r.ok()) return SendError(resp, r.status());
  if constexpr (std::is_same_v<T, api::Object>) {
    SendJson(resp, ok_code, r->ToJson());
  } else {
    SendJson(resp, ok_code, *r);
  }
}

bool Truthy(std::string_view v) { return v == "true" || v == "1"; }

const char* WatchType(store::WatchEventType t) {
  switch (t) {
    case store::WatchEventType::kAdded: return "ADDED";
    case store::WatchEventType::kModified: return "MODIFIED";
    case store::WatchEventType::kDeleted: return "DELETED";
  }
  return "MODIFIED";
}

std::string WatchLine(const char* type, const api::Json& object) {
  return api::Json{{"type", type}, {"object", object}}.dump() + "\n";
}

}  // namespace

// ---- The scale subresource of SandboxWarmPools ----
//
// As the CRD declares it: an autoscaling/v1 Scale whose spec.replicas is the
// pool's .spec.replicas and whose status is the pool's .status.replicas and
// .status.selector, so kubectl scale, an HPA or KEDA drive pools unchanged.
// Writes change only .spec.replicas, through ResourceService (validation,
// generation, optimistic concurrency on metadata.resourceVersion if given).
namespace {

constexpr char kScaleApiVersion[] = "autoscaling/v1";

api::Json ScaleOf(const api::Object& obj) {
  const api::Json full = obj.ToJson();
  api::Json meta = api::Json::object();
  for (const char* key : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (const api::Json& v = api::Field(api::Field(full, "metadata"), key); !v.is_null()) {
      meta[key] = v;
    }
  }
  const api::Json& replicas = api::Field(api::Field(full, "spec"), "replicas");
  const api::Json& status = api::Field(full, "status");
  api::Json scale = {
      {"kind", "Scale"},
      {"apiVersion", kScaleApiVersion},
      {"metadata", meta},
      {"spec", {{"replicas", replicas.is_number_integer() ? replicas : api::Json(0)}}},
      {"status", {{"replicas", 0}}}};
  if (const api::Json& r = api::Field(status, "replicas"); r.is_number_integer()) {
    scale["status"]["replicas"] = r;
  }
  if (std::string selector = api::StringField(status, "selector"); !selector.empty()) {
    scale["status"]["selector"] = selector;
  }
  return scale;
}

// The replicas a Scale asks for, checked as the API server checks a Scale
// (an absent spec.replicas is 0, as Go decodes it).
Result<int64_t> ScaleReplicas(const api::Json& scale, const std::string& name) {
  if (!scale.is_object()) {
    return InvalidArgument("the body of a scale request must be a Scale object");
  }
  std::string api_version = api::StringField(scale, "apiVersion");
  std::string kind = api::StringField(scale, "kind");
  if ((!api_version.empty() && api_version != kScaleApiVersion) ||
      (!kind.empty() && kind != "Scale")) {
    return InvalidArgument("the body of a scale request must be an autoscaling/v1 Scale, not " +
                           api_version + " " + kind);
  }
  std::string body_name = api::StringField(api::Field(scale, "metadata"), "name");
  if (!body_name.empty() && body_name != name) {
    return InvalidArgument("the name of the object (" + body_name +
                           ") does not match the name on the URL (" + name + ")");
  }
  const api::Json& replicas = api::Field(api::Field(scale, "spec"), "replicas");
  if (replicas.is_null()) return 0;
  std::string invalid = "Scale.autoscaling \"" + name +
                        "\" is invalid: spec.replicas: Invalid value: " + replicas.dump() + ": ";
  if (!replicas.is_number_integer()) return Invalid(invalid + "must be an integer");
  int64_t n = replicas.get<int64_t>();
  if (n < 0) return Invalid(invalid + "must be greater than or equal to 0");
  if (n > std::numeric_limits<int32_t>::max()) return Invalid(invalid + "must fit in int32");
  return n;
}

// GET, PUT (a whole Scale) and PATCH (a merge patch of the Scale).
Result<api::Json> ServeScale(ResourceService& service, const api::KindInfo& kind,
                             const std::string& ns, const std::string& name,
                             const HttpRequest& req) {
  const std::string& m = req.method;
  if (m != "GET" && m != "PUT" && m != "PATCH") {
    return InvalidArgument("method " + m + " not allowed on the scale subresource");
  }
  SBX_ASSIGN_OR_RETURN(api::Object current, service.Get(kind, ns, name));
  api::Json scale = ScaleOf(current);
  if (m == "GET") return scale;

  api::Json body;
  try {
    body = api::Json::parse(req.body);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("invalid JSON body: ") + e.what());
  }
  api::Json wanted;
  if (m == "PUT") {
    wanted = std::move(body);
  } else {
    auto ct = req.headers.find("content-type");
    std::string type = ct == req.headers.end() ? "" : ct->second;
    std::string media(Trim(type.substr(0, type.find(';'))));
    // A Scale has no lists, so a strategic merge patch is a merge patch.
    if (media != "application/merge-patch+json" &&
        media != "application/strategic-merge-patch+json" && media != "application/json") {
      return InvalidArgument("unsupported patch type \"" + type +
                             "\" for scale: use application/merge-patch+json");
    }
    if (!body.is_object()) return InvalidArgument("merge patch must be a JSON object");
    wanted = scale;
    wanted.merge_patch(body);
  }
  SBX_ASSIGN_OR_RETURN(int64_t replicas, ScaleReplicas(wanted, name));
  // Only a resourceVersion the client sent is a precondition; PATCH starts
  // from the current Scale, whose version is not the client's.
  const api::Json& source = m == "PUT" ? wanted : body;
  std::string pinned = api::StringField(api::Field(source, "metadata"), "resourceVersion");
  if (pinned.empty() && scale["spec"]["replicas"] == replicas) return scale;
  api::Json patch = {{"spec", {{"replicas", replicas}}}};
  if (!pinned.empty()) patch["metadata"] = {{"resourceVersion", pinned}};
  SBX_ASSIGN_OR_RETURN(api::Object updated,
                       service.Patch(kind, ns, name, patch.dump(), "application/merge-patch+json"));
  return ScaleOf(updated);
}

}  // namespace

struct ApiServer::Route {
  const api::KindInfo* kind = nullptr;
  std::string version;  // as requested
  std::string namespace_;
  std::string name;
  std::string subresource;
};

ApiServer::ApiServer(ApiDeps deps)
    : deps_(std::move(deps)),
      service_(deps_.store, [this](const api::Object& o) { return Admit(o); }) {}

ApiServer::~ApiServer() { background_.JoinAll(); }

// Refuses a Sandbox whose image is not in the local store or whose env
// refers to a Secret or ConfigMap that does not exist, so that the mistake
// is reported to the client instead of surfacing later as a stuck sandbox.
Status ApiServer::Admit(const api::Object& obj) {
  if (obj.kind == "SandboxTemplate") {
    // A blueprint: its pod must be one sbx can run, but its images and
    // Secrets may arrive later (a warm pool backs off until they do).
    const api::Json& spec = api::Field(obj.body, "spec");
    Status s = api::ValidatePodSpec(api::Field(api::Field(spec, "podTemplate"), "spec"),
                                    api::Field(spec, "volumeClaimTemplates"),
                                    "spec.podTemplate.spec", "spec.volumeClaimTemplates",
                                    deps_.pod_policy);
    if (s.ok()) {
      if (const api::Json& np = api::Field(spec, "networkPolicy"); !np.is_null()) {
        s = ParseNetworkPolicy(np, "spec.networkPolicy").status();
      }
    }
    if (s.ok()) return s;
    return Invalid("SandboxTemplate.extensions.agents.x-k8s.io \"" + obj.metadata.name +
                   "\" is invalid: " + s.message());
  }
  if (obj.kind != "Sandbox") return Status::Ok();
  SBX_ASSIGN_OR_RETURN(auto sb, api::Sandbox::FromObject(obj));
  std::vector<std::string> errors;
  if (Status s = api::ValidatePodSpec(sb.spec.pod_template.spec.raw, sb.spec.volume_claim_templates,
                                      "spec.podTemplate.spec", "spec.volumeClaimTemplates",
                                      deps_.pod_policy);
      !s.ok()) {
    errors.push_back(s.message());
  }
  std::vector<std::pair<const api::Container*, std::string>> all;
  for (const char* list : {"initContainers", "containers"}) {
    const auto& cs = std::string(list) == "containers" ? sb.spec.pod_template.spec.containers
                                                       : sb.spec.pod_template.spec.init_containers;
    for (size_t i = 0; i < cs.size(); ++i) {
      all.emplace_back(&cs[i], "spec.podTemplate.spec." + std::string(list) + "[" +
                                   std::to_string(i) + "]");
    }
  }
  for (const auto& [cp, path] : all) {
    const auto& c = *cp;
    if (auto ref = oci::ParseImageReference(c.image); !ref.ok()) {
      errors.push_back(path + ".image: Invalid value: " + ref.status().message());
    } else if (auto policy = EffectivePullPolicy(c.image_pull_policy, c.image); !policy.ok()) {
      errors.push_back(path + "." + policy.status().message());
    } else if (*policy == PullPolicy::kNever && !deps_.images.Resolve(c.image).ok()) {
      errors.push_back(path + ".image: Not found: \"" + c.image +
                       "\" is not in the local image store and imagePullPolicy is Never "
                       "(pull it with `sbx image pull` or import it with `sbx image import`)");
    }
    for (size_t k = 0; k < c.env.size(); ++k) {
      const auto& e = c.env[k];
      if (!e.value_from) continue;
      const api::KeySelector* sel = nullptr;
      std::string kind, field;
      if (e.value_from->secret_key_ref) {
        sel = &*e.value_from->secret_key_ref;
        kind = "Secret";
        field = "secretKeyRef";
      } else if (e.value_from->config_map_key_ref) {
        sel = &*e.value_from->config_map_key_ref;
        kind = "ConfigMap";
        field = "configMapKeyRef";
      }
      if (sel == nullptr || sel->optional) continue;
      if (!deps_.store.Get({"", kind, obj.metadata.namespace_, sel->name}).ok()) {
        errors.push_back(path + ".env[" + std::to_string(k) + "].valueFrom." + field +
                         ".name: Not found: " + (kind == "Secret" ? "secret" : "configmap") +
                         " \"" + sel->name + "\" not found");
      }
    }
  }
  if (errors.empty()) return Status::Ok();
  std::string msg = "Sandbox.agents.x-k8s.io \"" + obj.metadata.name + "\" is invalid: ";
  for (size_t i = 0; i < errors.size(); ++i) msg += (i ? "; " : "") + errors[i];
  return Invalid(msg);
}

bool ApiServer::SpoolBody(const HttpRequest& req) {
  return req.method == "POST" && req.path == std::string(kImagesPrefix) + "/import";
}

void ApiServer::Handle(HttpRequest req, std::shared_ptr<HttpResponder> resp) {
  const std::string path = req.path;
  SBX_LOG(kDebug).With("method", req.method).With("path", path) << "api: request";
  if (path == "/version" || path == "/healthz" || path == "/readyz") {
    if (req.method != "GET") return SendError(resp, InvalidArgument("method not allowed"));
    if (path == "/version") return SendJson(resp, 200, deps_.version);
    return resp->Send(200, "text/plain", "ok");
  }
  if (path == kImagesPrefix || path.starts_with(std::string(kImagesPrefix) + "/")) {
    return HandleImages(path.substr(sizeof(kImagesPrefix) - 1), std::move(req), resp);
  }
  if (path.starts_with(std::string(kRegistriesPrefix) + "/")) {
    return HandleRegistries(path.substr(sizeof(kRegistriesPrefix) - 1), std::move(req), resp);
  }

  // /api/v1/... or /apis/{group}/{version}/...
  std::vector<std::string> seg;
  for (auto& s : Split(path, '/')) {
    if (!s.empty()) seg.push_back(s);
  }
  Route route;
  std::string group;
  size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
    route.version = "v1";
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    group = seg[1];
    route.version = seg[2];
    i = 3;
  } else {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  std::string plural;
  if (i < seg.size() && seg[i] == "namespaces" && i + 2 < seg.size()) {
    route.namespace_ = seg[i + 1];
    plural = seg[i + 2];
    i += 3;
  } else if (i < seg.size()) {
    plural = seg[i];
    i += 1;
  }
  if (i < seg.size()) route.name = seg[i++];
  if (i < seg.size()) route.subresource = seg[i++];
  if (i < seg.size() || plural.empty()) {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  route.kind = api::FindKindByResource(group, plural);
  if (route.kind == nullptr ||
      api::FindKindByApiVersion(group.empty() ? route.version : group + "/" + route.version,
                                route.kind->kind) == nullptr) {
    return SendError(resp, NotFound("the server could not find the requested resource (" +
                                    plural + ")"));
  }
  if (!route.kind->namespaced && !route.namespace_.empty()) {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  Dispatch(route, std::move(req), resp);
}

void ApiServer::Dispatch(const Route& route, HttpRequest req, std::shared_ptr<HttpResponder> resp) {
  const api::KindInfo& kind = *route.kind;
  const std::string& m = req.method;
  if (route.name.empty()) {
    if (m == "GET" && Truthy(req.QueryValue("watch"))) return HandleWatch(route, req, resp);
    if (m == "GET") {
      if (kind.kind == "Event") {
        deps_.pool.Submit([this, route, req = std::move(req), resp] {
          SendResult(resp, service_.ListEvents(route.namespace_, req.QueryValue("fieldSelector")), 200);
        });
        return;
      }
      deps_.pool.Submit([this, route, req = std::move(req), resp] {
        ListQuery q{route.namespace_, req.QueryValue("labelSelector"), req.QueryValue("fieldSelector")};
        SendResult(resp, service_.List(*route.kind, q), 200);
      });
      return;
    }
    if (m == "POST") {
      if (kind.namespaced && route.namespace_.empty()) {
        return SendError(resp, InvalidArgument("a namespace is required to create " + kind.plural));
      }
      deps_.pool.Submit([this, route, req = std::move(req), resp] {
        SendResult(resp, service_.Create(*route.kind, route.namespace_, req.body), 201);
      });
      return;
    }
    return SendError(resp, InvalidArgument("method " + m + " not allowed on a collection"));
  }
  if (kind.namespaced && route.namespace_.empty()) {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  if (route.subresource == "exec" && kind.kind == "Sandbox") return HandleExec(route, req, resp);
  if (route.subresource == "log" && kind.kind == "Sandbox") return HandleLog(route, req, resp);
  if (route.subresource == "portforward" && kind.kind == "Sandbox") {
    return HandlePortForward(route, req, resp);
  }
  if (route.subresource == "scale" && kind.kind == "SandboxWarmPool") {
    deps_.pool.Submit([this, route, req = std::move(req), resp] {
      SendResult(resp, ServeScale(service_, *route.kind, route.namespace_, route.name, req), 200);
    });
    return;
  }
  if (!route.subresource.empty() && route.subresource != "status") {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  const bool status = route.subresource == "status";
  deps_.pool.Submit([this, route, status, req = std::move(req), resp] {
    const api::KindInfo& kind = *route.kind;
    const std::string& m = req.method;
    if (m == "GET") return SendResult(resp, service_.Get(kind, route.namespace_, route.name), 200);
    if (m == "PUT" && status) {
      return SendResult(resp, service_.UpdateStatus(kind, route.namespace_, route.name, req.body), 200);
    }
    if (m == "PUT") {
      return SendResult(resp, service_.Update(kind, route.namespace_, route.name, req.body), 200);
    }
    if (m == "PATCH" && !status) {
      auto ct = req.headers.find("content-type");
      return SendResult(resp,
                        service_.Patch(kind, route.namespace_, route.name, req.body,
                                       ct == req.headers.end() ? "" : ct->second),
                        200);
    }
    if (m == "DELETE" && !status) {
      auto options = ParseDeleteOptions(req.body, req.query);
      if (!options.ok()) return SendError(resp, options.status());
      return SendResult(resp, service_.Delete(kind, route.namespace_, route.name, *options), 200);
    }
    SendError(resp, InvalidArgument("method " + m + " not allowed"));
  });
}

// A watch: subscribe first (buffering), then replay the list or the log
// from the requested resourceVersion, then stream live events — no event is
// lost or sent twice between the two phases.
void ApiServer::HandleWatch(const Route& route, const HttpRequest& req,
                            std::shared_ptr<HttpResponder> resp) {
  ListQuery q{route.namespace_, req.QueryValue("labelSelector"), req.QueryValue("fieldSelector")};
  auto filter = ResourceService::MakeFilter(q);
  if (!filter.ok()) return SendError(resp, filter.status());
  int64_t from = 0;
  if (std::string rv = req.QueryValue("resourceVersion"); !rv.empty()) {
    try {
      from = std::stoll(rv);
    } catch (...) {
      return SendError(resp, InvalidArgument("invalid resourceVersion \"" + rv + "\""));
    }
  }
  struct Session {
    std::mutex mu;
    bool replaying = true;
    int64_t last_sent = 0;
    std::vector<store::WatchEvent> buffered;
    uint64_t sub = 0;
    std::atomic<bool> done{false};
  };
  auto session = std::make_shared<Session>();
  const api::KindInfo* kind = route.kind;
  std::string ns = route.namespace_;
  auto matches = [kind, ns, f = *filter](const api::Object& o) {
    return o.kind == kind->kind && o.api_version == kind->ApiVersion() &&
           (ns.empty() || o.metadata.namespace_ == ns) && f(o);
  };
  auto send = [resp, session](const store::WatchEvent& ev) {
    if (ev.resource_version <= session->last_sent) return;
    session->last_sent = ev.resource_version;
    resp->Write(WatchLine(WatchType(ev.type), ev.object.ToJson()));
  };
  resp->StartStream(200, kJson);
  session->sub = deps_.store.Subscribe([session, matches, send](const store::WatchEvent& ev) {
    if (session->done || !matches(ev.object)) return;
    std::lock_guard<std::mutex> l(session->mu);
    if (session->replaying) {
      session->buffered.push_back(ev);
    } else {
      send(ev);
    }
  });
  store::Store& store = deps_.store;
  resp->OnClose([session, &store] {
    if (!session->done.exchange(true)) store.Unsubscribe(session->sub);
  });
  int timeout = std::atoi(req.QueryValue("timeoutSeconds").c_str());
  if (timeout > 0) {
    deps_.loop.AddTimer(std::chrono::seconds(timeout), [resp] { resp->End(); });
  }
  deps_.pool.Submit([this, session, kind, q, from, matches, send, resp] {
    std::vector<store::WatchEvent> replay;
    if (from == 0) {
      store::ListOptions opts;
      opts.namespace_ = q.namespace_;
      opts.filter = matches;
      auto list = deps_.store.List(kind->group, kind->kind, opts);
      if (!list.ok()) {
        resp->Write(WatchLine("ERROR", StatusBody(list.status())));
        return resp->End();
      }
      for (auto& o : list->items) {
        replay.push_back({store::WatchEventType::kAdded, std::stoll(o.metadata.resource_version), o});
      }
      std::lock_guard<std::mutex> l(session->mu);
      for (auto& ev : replay) {
        resp->Write(WatchLine("ADDED", ev.object.ToJson()));
      }
      session->last_sent = list->resource_version;
    } else {
      auto events = deps_.store.EventsSince(from, kind->group, kind->kind);
      if (!events.ok()) {
        resp->Write(WatchLine("ERROR", StatusBody(events.status())));
        return resp->End();
      }
      std::lock_guard<std::mutex> l(session->mu);
      session->last_sent = from;
      for (auto& ev : *events) {
        if (matches(ev.object)) send(ev);
      }
    }
    std::lock_guard<std::mutex> l(session->mu);
    for (auto& ev : session->buffered) send(ev);
    session->buffered.clear();
    session->replaying = false;
  });
}

namespace {
// Containers, init containers and sidecars all have logs and can be exec'd.
bool IsPodContainer(const api::Sandbox& sb, const std::string& name) {
  for (const auto* list : {&sb.spec.pod_template.spec.containers,
                           &sb.spec.pod_template.spec.init_containers}) {
    for (const auto& c : *list) {
      if (c.name == name) return true;
    }
  }
  return false;
}

// exec and portforward: POST (or GET) on an upgraded connection.
Status CheckStreamRequest(const HttpRequest& req, const std::string& verb) {
  if (req.method != "POST" && req.method != "GET") return InvalidArgument(verb + " needs POST");
  auto upgrade = req.headers.find("upgrade");
  if (upgrade == req.headers.end() || upgrade->second != frames::kUpgradeProtocol) {
    return InvalidArgument(verb + " needs an upgraded connection (Upgrade: " +
                           std::string(frames::kUpgradeProtocol) + ")");
  }
  return Status::Ok();
}
}  // namespace

void ApiServer::HandleExec(const Route& route, const HttpRequest& req,
                           std::shared_ptr<HttpResponder> resp) {
  if (Status s = CheckStreamRequest(req, "exec"); !s.ok()) return SendError(resp, s);
  std::vector<std::string> command = req.QueryValues("command");
  if (command.empty()) return SendError(resp, InvalidArgument("command: Required value"));
  std::string container = req.QueryValue("container");
  bool want_stdin = Truthy(req.QueryValue("stdin"));
  bool tty = Truthy(req.QueryValue("tty"));

  deps_.pool.Submit([this, route, command, container, want_stdin, tty, resp] {
    auto obj = service_.Get(*route.kind, route.namespace_, route.name);
    if (!obj.ok()) return SendError(resp, obj.status());
    const std::string uid = obj->metadata.uid;
    auto sb = api::Sandbox::FromObject(*obj);
    if (!sb.ok()) return SendError(resp, sb.status());
    std::string name = container;
    if (name.empty() && !sb->spec.pod_template.spec.containers.empty()) {
      name = sb->spec.pod_template.spec.containers[0].name;
    }
    if (!IsPodContainer(*sb, name)) {
      return SendError(resp, NotFound("container " + name + " is not valid for sandbox " +
                                      route.name));
    }
    auto pod = deps_.runtime.Get(uid);
    const ContainerRun* run = nullptr;
    if (pod && !pod->exited) {
      auto it = pod->containers.find(name);
      if (it != pod->containers.end() && !it->second.exited) run = &it->second;
    }
    if (run == nullptr) {
      return SendError(resp, FailedPrecondition("container " + name + " of sandbox " +
                                                route.namespace_ + "/" + route.name +
                                                " is not running"));
    }
    // The command runs as the container's process does (user, env, cwd,
    // capabilities, no_new_privs, seccomp profile), as `kubectl exec` does.
    auto process = deps_.runtime.ProcessTemplate(uid, name);
    if (!process.ok()) return SendError(resp, process.status());
    auto has_seccomp = deps_.runtime.HasSeccomp(uid, name);
    if (!has_seccomp.ok()) return SendError(resp, has_seccomp.status());
    (*process)["args"] = *has_seccomp ? SeccompExecArgv(command) : command;
    (*process)["terminal"] = tty;
    oci::RunscExec exec;
    exec.process_json_path = JoinPath(deps_.runtime.ContainerBundleDir(uid, name),
                                      "exec-" + RandomHex(8) + ".json");
    if (Status s = WriteFileAtomic(exec.process_json_path, process->dump(), 0600); !s.ok()) {
      return SendError(resp, s);
    }
    Reaper::SpawnOptions opts;
    opts.argv = deps_.runtime.runsc().Exec(run->container_id, exec);
    const std::string process_file = exec.process_json_path;
    deps_.loop.Post([this, opts, want_stdin, resp, process_file] {
      if (resp->closed()) {
        (void)RemoveAll(process_file);
        return;
      }
      auto proc_holder = std::make_shared<std::unique_ptr<StreamingProcess>>();
      auto proc = StreamingProcess::Start(
          deps_.loop, opts,
          [resp](int fd, std::string_view data) {
            resp->WriteRaw(frames::Encode(fd == 2 ? frames::kStderr : frames::kStdout, data));
          },
          [resp, proc_holder, process_file](ExitStatus st) {
            (void)RemoveAll(process_file);
            resp->WriteRaw(frames::Encode(frames::kStatus,
                                          api::Json{{"exitCode", st.Code()}}.dump()));
            resp->Close();
          });
      if (!proc.ok()) {
        (void)RemoveAll(process_file);
        return SendError(resp, proc.status());
      }
      *proc_holder = std::move(*proc);
      if (!want_stdin) (*proc_holder)->CloseStdin();
      auto decoder = std::make_shared<frames::Decoder>();
      std::weak_ptr<std::unique_ptr<StreamingProcess>> weak = proc_holder;
      resp->Upgrade(
          frames::kUpgradeProtocol,
          [decoder, weak, resp](std::string_view data) {
            auto p = weak.lock();
            if (!p || !*p) return;
            decoder->Feed(data);
            bool error = false;
            while (auto f = decoder->Next(&error)) {
              if (f->channel != frames::kStdin) continue;
              if (f->payload.empty()) {
                (*p)->CloseStdin();
              } else {
                (*p)->WriteStdin(std::move(f->payload));
              }
            }
            if (error) resp->Close();
          },
          [proc_holder] {
            // The client went away: stop the command.
            if (*proc_holder) (*proc_holder)->Kill(SIGKILL);
          });
    });
  });
}

void ApiServer::HandlePortForward(const Route& route, const HttpRequest& req,
                                  std::shared_ptr<HttpResponder> resp) {
  if (Status s = CheckStreamRequest(req, "portforward"); !s.ok()) return SendError(resp, s);
  const std::string port_text = req.QueryValue("port");
  int port = 0;
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      (port = std::atoi(port_text.c_str())) < 1 || port > 65535) {
    return SendError(resp, InvalidArgument("port: Invalid value: \"" + port_text +
                                           "\": must be a port number between 1 and 65535"));
  }
  deps_.pool.Submit([this, route, port, resp] {
    auto obj = service_.Get(*route.kind, route.namespace_, route.name);
    if (!obj.ok()) return SendError(resp, obj.status());
    auto pod = deps_.runtime.Get(obj->metadata.uid);
    if (!pod || pod->exited) {
      return SendError(resp, FailedPrecondition("sandbox " + route.namespace_ + "/" + route.name +
                                                " is not running"));
    }
    if (pod->ips.empty()) {
      return SendError(resp, FailedPrecondition("sandbox " + route.namespace_ + "/" + route.name +
                                                " has no network: port forwarding needs the annotation "
                                                "sbx.dev/network: sandbox"));
    }
    auto fd = DialTcp(pod->ips.front(), port, std::chrono::seconds(10));
    if (!fd.ok()) return SendError(resp, Unavailable(fd.status().message()));
    int raw = *fd;
    deps_.loop.Post([this, raw, resp] {
      if (resp->closed()) {
        ::close(raw);
        return;
      }
      StartPortForward(deps_.loop, raw, resp);
    });
  });
}

void ApiServer::HandleLog(const Route& route, const HttpRequest& req,
                          std::shared_ptr<HttpResponder> resp) {
  if (req.method != "GET") return SendError(resp, InvalidArgument("log needs GET"));
  bool follow = Truthy(req.QueryValue("follow"));
  long tail = -1;
  if (std::string t = req.QueryValue("tailLines"); !t.empty()) tail = std::atol(t.c_str());
  std::string container = req.QueryValue("container");
  deps_.pool.Submit([this, route, follow, tail, container, resp] {
    auto obj = service_.Get(*route.kind, route.namespace_, route.name);
    if (!obj.ok()) return SendError(resp, obj.status());
    auto sb = api::Sandbox::FromObject(*obj);
    if (!sb.ok()) return SendError(resp, sb.status());
    const auto& containers = sb->spec.pod_template.spec.containers;
    std::string name = container;
    if (name.empty() && !containers.empty()) name = containers[0].name;
    if (!IsPodContainer(*sb, name)) {
      return SendError(resp, NotFound("container " + name + " is not valid for sandbox " + route.name));
    }
    std::string path = deps_.runtime.LogPath(obj->metadata.uid, name);
    std::string text;
    if (auto r = ReadFile(path); r.ok()) text = std::move(*r);
    // Following continues exactly where this read ended.
    const size_t read_size = text.size();
    if (tail >= 0) {
      size_t pos = text.size();
      if (pos > 0 && text.back() == '\n') --pos;
      long lines = 0;
      while (pos > 0 && lines < tail) {
        size_t nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) {
          pos = 0;
          break;
        }
        ++lines;
        if (lines == tail) {
          pos = nl + 1;
          break;
        }
        pos = nl;
      }
      text = tail == 0 ? std::string() : text.substr(pos);
    }
    if (!follow) return resp->Send(200, "text/plain", std::move(text));
    resp->StartStream(200, "text/plain");
    if (!text.empty()) resp->Write(text);
    // Follow: poll the file for growth until the client leaves or the
    // sandbox is gone. The file is appended by the sandbox itself.
    background_.Start([resp, path, read_size] {
      size_t off = read_size;
      while (!resp->closed()) {
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) break;
        if (static_cast<size_t>(st.st_size) > off) {
          std::ifstream in(path, std::ios::binary);
          in.seekg(static_cast<std::streamoff>(off));
          std::string chunk(static_cast<size_t>(st.st_size) - off, '\0');
          in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
          chunk.resize(static_cast<size_t>(in.gcount()));
          off += chunk.size();
          if (!resp->Write(std::move(chunk))) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      resp->End();
    });
  });
}

void ApiServer::HandleImages(const std::string& rest, HttpRequest req,
                             std::shared_ptr<HttpResponder> resp) {
  // Which sandboxes and templates use which image, by image id and by the
  // normalised name they refer to.
  auto in_use = [this]() { return FindImagesInUse(deps_.store, deps_.images); };
  auto to_json = [](const oci::ImageRecord& r, const std::vector<std::string>& users) {
    return api::Json{{"names", r.names},
                     {"id", r.id},
                     {"manifestDigest", r.manifest_digest},
                     {"size", r.size_bytes},
                     {"unpackedSize", r.unpacked_bytes},
                     {"created", FormatRfc3339(r.created_at)},
                     {"inUseBy", users}};
  };
  if (rest.empty() && req.method == "GET") {
    deps_.pool.Submit([this, resp, in_use, to_json] {
      auto users = in_use();
      auto images = deps_.images.List();
      // Blob bytes an image shares with others, and those only it has.
      auto sizes = deps_.images.BlobSizes();
      std::map<std::string, int> blob_users;
      for (const auto& r : images) {
        for (const auto& b : r.blobs) ++blob_users[b];
      }
      api::Json items = api::Json::array();
      for (const auto& r : images) {
        api::Json j = to_json(r, users.by_id[r.id]);
        int64_t shared = 0, unique = 0;
        for (const auto& b : r.blobs) (blob_users[b] > 1 ? shared : unique) += sizes[b];
        j["sharedSize"] = shared;
        j["uniqueSize"] = unique;
        items.push_back(std::move(j));
      }
      SendJson(resp, 200, {{"kind", "ImageList"}, {"apiVersion", "sbx.dev/v1"}, {"items", items}});
    });
    return;
  }
  if (rest == "/import" && req.method == "POST") {
    deps_.pool.Submit([this, resp, req = std::move(req), to_json] {
      std::string path = req.body_file;
      std::string tmp;
      if (path.empty()) {
        tmp = JoinPath(deps_.images.root(), "upload-" + std::to_string(MonotonicMillis()) + ".tar");
        if (Status s = WriteFileAtomic(tmp, req.body, 0600); !s.ok()) return SendError(resp, s);
        path = tmp;
      }
      auto r = deps_.images.Import(path, req.QueryValue("name"));
      if (!tmp.empty()) (void)RemoveAll(tmp);
      if (!req.body_file.empty()) (void)RemoveAll(req.body_file);
      if (!r.ok()) return SendError(resp, r.status());
      api::Json items = api::Json::array();
      for (const auto& rec : *r) items.push_back(to_json(rec, {}));
      SendJson(resp, 200, {{"kind", "ImageList"}, {"apiVersion", "sbx.dev/v1"}, {"items", items}});
      // Sandboxes waiting for this image retry now.
      deps_.controller.EnqueueAll();
    });
    return;
  }
  if (rest == "/pull" && req.method == "POST") return HandlePull(req, resp);
  if (rest == "/prune" && req.method == "POST") {
    if (deps_.image_service == nullptr) {
      return SendError(resp, NotFound("image collection is not enabled"));
    }
    bool all = req.QueryValue("all") == "true" || req.QueryValue("all") == "1";
    deps_.pool.Submit([this, resp, all] {
      auto before = deps_.images.BlobSizes();
      auto removed = deps_.image_service->Prune(all);
      if (!removed.ok()) return SendError(resp, removed.status());
      auto after = deps_.images.BlobSizes();
      int64_t reclaimed = 0;
      for (const auto& [digest, size] : before) {
        if (after.count(digest) == 0) reclaimed += size;
      }
      api::Json items = api::Json::array();
      for (const auto& r : *removed) {
        reclaimed += r.unpacked_bytes;
        items.push_back({{"id", r.id}, {"names", r.names}});
      }
      SendJson(resp, 200, {{"kind", "ImagePruneReport"}, {"apiVersion", "sbx.dev/v1"},
                           {"deleted", items}, {"spaceReclaimed", reclaimed}});
    });
    return;
  }
  if (rest.size() > 1 && req.method == "DELETE") {
    std::string ref = UrlDecode(rest.substr(1), false);
    deps_.pool.Submit([this, resp, ref, in_use] {
      auto img = deps_.images.Resolve(ref);
      if (!img.ok()) return SendError(resp, img.status());
      auto users = in_use();
      // A name a sandbox refers to stays; so does the content of an image in
      // use, unless another name keeps it.
      auto parsed = oci::ParseImageReference(ref);
      bool by_name = parsed.ok() && std::find(img->names.begin(), img->names.end(),
                                              parsed->String()) != img->names.end();
      const auto& name_users = by_name ? users.by_name[parsed->String()] : users.by_name[""];
      const auto& id_users = users.by_id[img->id];
      const std::vector<std::string>* blocking = nullptr;
      if (!name_users.empty()) blocking = &name_users;
      else if ((!by_name || img->names.size() <= 1) && !id_users.empty()) blocking = &id_users;
      if (blocking != nullptr) {
        return SendError(resp, Conflict("image \"" + ref + "\" is in use by " +
                                        DescribeImageUser(blocking->front())));
      }
      Status s = deps_.images.Remove(ref);
      if (!s.ok()) return SendError(resp, s);
      SendJson(resp, 200, {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Success"},
                           {"details", {{"name", ref}, {"kind", "images"}}}});
    });
    return;
  }
  SendError(resp, NotFound("the server could not find the requested resource"));
}

void ApiServer::HandlePull(const HttpRequest& req, std::shared_ptr<HttpResponder> resp) {
  if (deps_.puller == nullptr) return SendError(resp, NotFound("registry pulls are not enabled"));
  std::string ref = req.QueryValue("ref");
  if (ref.empty()) return SendError(resp, InvalidArgument("ref: required (the image to pull)"));
  if (auto parsed = oci::ParseImageReference(ref); !parsed.ok()) {
    return SendError(resp, parsed.status());
  }
  // Progress as JSON lines, then the image or the error as the last line.
  resp->StartStream(200, "application/x-ndjson");
  background_.Start([this, resp, ref] {
    auto observer = [resp](const oci::PullProgress& p) {
      api::Json layers = api::Json::array();
      for (const auto& l : p.layers) {
        layers.push_back(
            {{"digest", l.digest}, {"size", l.size}, {"done", l.done}, {"cached", l.cached}});
      }
      resp->Write(api::Json{{"kind", "PullProgress"},
                            {"phase", std::string(oci::PhaseName(p.phase))},
                            {"reference", p.reference},
                            {"manifestDigest", p.manifest_digest},
                            {"layers", layers}}
                      .dump() +
                  "\n");
    };
    auto r = deps_.puller->Pull(ref, observer);
    if (r.ok()) {
      resp->Write(api::Json{{"kind", "Image"},
                            {"names", r->names},
                            {"id", r->id},
                            {"manifestDigest", r->manifest_digest},
                            {"size", r->size_bytes},
                            {"unpackedSize", r->unpacked_bytes}}
                      .dump() +
                  "\n");
      // Sandboxes waiting for this image retry now.
      deps_.controller.EnqueueAll();
    } else {
      resp->Write(StatusBody(r.status(), "", "").dump() + "\n");
    }
    resp->End();
  });
}

void ApiServer::HandleRegistries(const std::string& rest, HttpRequest req,
                                 std::shared_ptr<HttpResponder> resp) {
  if (deps_.registry == nullptr || deps_.auth_file.empty()) {
    return SendError(resp, NotFound("registry logins are not enabled"));
  }
  if (req.method != "POST" || (rest != "/login" && rest != "/logout")) {
    return SendError(resp, NotFound("the server could not find the requested resource"));
  }
  api::Json body = api::Json::parse(req.body, nullptr, false);
  if (!body.is_object()) return SendError(resp, InvalidArgument("request body: want a JSON object"));
  std::string server = body.value("server", "");
  if (!body["server"].is_string() || server.empty()) {
    return SendError(resp, InvalidArgument("server: required (a registry host)"));
  }
  std::string registry = oci::CanonicalRegistryHost(server);
  if (rest == "/logout") {
    deps_.pool.Submit([this, resp, registry] {
      auto erased = oci::CredentialStore::Erase(deps_.auth_file, registry);
      if (!erased.ok()) return SendError(resp, erased.status());
      if (!*erased) return SendError(resp, NotFound("not logged in to " + registry));
      SBX_LOG(kInfo) << "registry: logged out of " << registry;
      SendJson(resp, 200, {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Success"},
                           {"message", "Removing login credentials for " + registry}});
    });
    return;
  }
  oci::RegistryCredential cred;
  for (const char* field : {"username", "password"}) {
    if (!body.contains(field) || !body[field].is_string() ||
        body[field].get<std::string>().empty()) {
      return SendError(resp, InvalidArgument(std::string(field) + ": required"));
    }
  }
  cred.username = body["username"].get<std::string>();
  cred.password = body["password"].get<std::string>();
  deps_.pool.Submit([this, resp, registry, cred] {
    if (Status s = deps_.registry->CheckLogin(registry, cred); !s.ok()) {
      return SendError(resp, s);
    }
    if (Status s = oci::CredentialStore::Save(deps_.auth_file, registry, cred); !s.ok()) {
      return SendError(resp, s);
    }
    SBX_LOG(kInfo) << "registry: logged in to " << registry << " as " << cred.username;
    SendJson(resp, 200, {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Success"},
                         {"message", "Login Succeeded"}});
  });
}

}  // namespace sbx::daemon
