#include "daemon/sandbox_controller.h"

#include <algorithm>

#include "api/core.h"
#include "api/kinds.h"
#include "common/log.h"
#include "oci/user.h"

namespace sbx::daemon {

namespace {

constexpr char kGroup[] = "agents.x-k8s.io";

const api::Json* FirstContainerStatus(const api::Sandbox& sb) {
  const auto& cs = sb.status.container_statuses;
  if (cs.is_array() && !cs.empty()) return &cs[0];
  return nullptr;
}

int RestartCount(const api::Sandbox& sb) {
  const api::Json* cs = FirstContainerStatus(sb);
  if (cs == nullptr) return 0;
  return cs->value("restartCount", 0);
}

api::Condition MakeCondition(const api::Sandbox& sb, std::string type, std::string status,
                             std::string reason, std::string message) {
  api::Condition c;
  c.type = std::move(type);
  c.status = std::move(status);
  c.reason = std::move(reason);
  c.message = std::move(message);
  c.observed_generation = sb.metadata.generation;
  return c;
}

std::string ExitMessage(int code) {
  if (code < 0) return "container exited with an unknown code (it stopped while sbxd was down)";
  if (code > 128 && code < 160) {
    return "container was killed by signal " + std::to_string(code - 128);
  }
  return "container exited with code " + std::to_string(code);
}

}  // namespace

SandboxController::SandboxController(store::Store& store, oci::ImageStore& images,
                                     SandboxRuntime& runtime, const Clock& clock,
                                     ControllerOptions options)
    : store_(store), images_(images), runtime_(runtime), clock_(clock), options_(options) {}

SandboxController::~SandboxController() { Stop(); }

void SandboxController::Start() {
  queue_ = std::make_unique<WorkQueue>(options_.workers,
                                       [this](const std::string& key) { Reconcile(key); });
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    const auto& o = ev.object;
    if (o.kind == "Sandbox") {
      Enqueue(o.metadata.namespace_ + "/" + o.metadata.name);
    } else if (o.kind == "Secret" || o.kind == "ConfigMap") {
      // A sandbox waiting for a referenced Secret or ConfigMap retries.
      EnqueueAll();
    }
  });
  EnqueueAll();
}

void SandboxController::Stop() {
  if (subscription_ != 0) {
    store_.Unsubscribe(subscription_);
    subscription_ = 0;
  }
  queue_.reset();
}

void SandboxController::Enqueue(const std::string& key) {
  if (queue_) queue_->Add(key);
}

void SandboxController::EnqueueAll() {
  auto list = store_.List(kGroup, "Sandbox", {});
  if (!list.ok()) {
    SBX_LOG(kError) << "list sandboxes: " << list.status().ToString();
    return;
  }
  for (const auto& o : list->items) Enqueue(o.metadata.namespace_ + "/" + o.metadata.name);
}

void SandboxController::OnRuntimeExit(const std::string& uid) {
  std::string key;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = key_by_uid_.find(uid);
    if (it == key_by_uid_.end()) return;
    key = it->second;
  }
  Enqueue(key);
}

void SandboxController::Reconcile(const std::string& key) {
  auto slash = key.find('/');
  store::ObjectKey ok{kGroup, "Sandbox", key.substr(0, slash), key.substr(slash + 1)};
  auto obj = store_.Get(ok);
  if (!obj.ok()) {
    if (obj.status().code() != Code::kNotFound) {
      SBX_LOG(kError) << "reconcile " << key << ": " << obj.status().ToString();
      queue_->AddAfter(key, std::chrono::seconds(1));
    }
    return;
  }
  auto sb = api::Sandbox::FromObject(*obj);
  if (!sb.ok()) {
    SBX_LOG(kError) << "reconcile " << key << ": " << sb.status().ToString();
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    key_by_uid_[sb->metadata.uid] = key;
  }
  Status s = ReconcileSandbox(*sb);
  if (!s.ok()) {
    SBX_LOG(kWarning) << "reconcile " << key << ": " << s.ToString();
    if (s.code() == Code::kConflict) {
      queue_->Add(key);
    } else {
      queue_->AddAfter(key, std::chrono::seconds(2));
    }
  }
}

Status SandboxController::Teardown(api::Sandbox& sb) {
  SBX_RETURN_IF_ERROR(runtime_.Remove(sb.metadata.uid));
  {
    std::lock_guard<std::mutex> l(mu_);
    key_by_uid_.erase(sb.metadata.uid);
    backoff_until_.erase(sb.metadata.uid);
  }
  // Drop our finalizer; the store removes the object when none remain.
  for (int attempt = 0; attempt < 5; ++attempt) {
    store::ObjectKey key{kGroup, "Sandbox", sb.metadata.namespace_, sb.metadata.name};
    auto cur = store_.Get(key);
    if (!cur.ok()) return cur.status().code() == Code::kNotFound ? Status::Ok() : cur.status();
    auto& f = cur->metadata.finalizers;
    auto it = std::find(f.begin(), f.end(), kRuntimeFinalizer);
    if (it == f.end()) return Status::Ok();
    f.erase(it);
    auto up = store_.Update(*cur);
    if (up.ok()) return Status::Ok();
    if (up.status().code() != Code::kConflict) return up.status();
  }
  return Conflict("remove finalizer: too many conflicts");
}

Status SandboxController::ReconcileSandbox(api::Sandbox& sb) {
  const std::string& uid = sb.metadata.uid;
  if (sb.metadata.deletion_timestamp) return Teardown(sb);

  TimePoint now = clock_.Now();
  auto& conds = sb.status.conditions;

  // Expiry (upstream §3.1): stop the runtime; Delete removes the object,
  // Retain keeps it with conditions only. A shutdownTime moved into the
  // future revives the sandbox through the normal path below.
  if (sb.spec.shutdown_time && now >= *sb.spec.shutdown_time) {
    SBX_RETURN_IF_ERROR(runtime_.Stop(uid));
    if (sb.spec.shutdown_policy == "Delete") {
      Event(sb, "Normal", "SandboxExpired", "shutdownTime reached; deleting the sandbox");
      auto d = store_.Delete({kGroup, "Sandbox", sb.metadata.namespace_, sb.metadata.name},
                             sb.metadata.uid);
      return d.ok() || d.status().code() == Code::kNotFound ? Status::Ok() : d.status();
    }
    const api::Condition* ready = api::FindCondition(conds, "Ready");
    if (ready == nullptr || ready->reason != "SandboxExpired") {
      Event(sb, "Normal", "SandboxExpired", "shutdownTime reached; the sandbox was stopped");
    }
    std::vector<api::Condition> kept = conds;
    sb.status = api::SandboxStatus{};
    sb.status.conditions = kept;
    api::SetCondition(&sb.status.conditions,
                      MakeCondition(sb, "Ready", "False", "SandboxExpired", "Sandbox has expired"),
                      now);
    return WriteStatus(sb);
  }
  if (sb.spec.shutdown_time) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*sb.spec.shutdown_time - now);
    queue_->AddAfter(sb.metadata.namespace_ + "/" + sb.metadata.name,
                     std::max(left, std::chrono::milliseconds(10)));
  }

  const std::string& rc = sb.spec.pod_template.spec.runtime_class_name;
  if (!rc.empty() && rc != "gvisor") {
    SBX_RETURN_IF_ERROR(runtime_.Stop(uid));
    std::string msg = "Error seen: runtimeClassName \"" + rc +
                      "\" is not supported: sbx runs every sandbox in gVisor (leave "
                      "runtimeClassName unset or set it to \"gvisor\")";
    const api::Condition* ready = api::FindCondition(conds, "Ready");
    if (ready == nullptr || ready->message != msg) Event(sb, "Warning", "UnsupportedRuntimeClass", msg);
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", "ReconcilerError", msg), now);
    api::SetCondition(&conds, MakeCondition(sb, "Suspended", "False", "NotSuspended", ""), now);
    return WriteStatus(sb);
  }

  if (sb.spec.operating_mode == "Suspended") {
    auto run = runtime_.Get(uid);
    SBX_RETURN_IF_ERROR(runtime_.Stop(uid));
    if (run && !run->exited) Event(sb, "Normal", "Suspended", "sandbox suspended; runtime stopped");
    sb.status.pod_ips.clear();
    sb.status.node_name.clear();
    sb.status.container_statuses = api::Json::array();
    api::RemoveCondition(&conds, "Finished");
    {
      std::lock_guard<std::mutex> l(mu_);
      backoff_until_.erase(uid);
    }
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "SandboxSuspended", "Sandbox is suspended"),
                      now);
    api::SetCondition(&conds, MakeCondition(sb, "Suspended", "True", "PodTerminated", ""), now);
    return WriteStatus(sb);
  }

  auto run = runtime_.Get(uid);
  if (run && run->exited) return HandleExit(sb, *run);
  if (run) {
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "True", "DependenciesReady", ""), now);
    api::SetCondition(&conds, MakeCondition(sb, "Suspended", "False", "NotSuspended", ""), now);
    return WriteStatus(sb);
  }

  // No runtime. A sandbox that finished for good stays finished.
  if (const api::Condition* f = api::FindCondition(conds, "Finished"); f && f->status == "True") {
    return WriteStatus(sb);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = backoff_until_.find(uid);
    if (it != backoff_until_.end() && it->second > now) {
      queue_->AddAfter(sb.metadata.namespace_ + "/" + sb.metadata.name,
                       std::chrono::duration_cast<std::chrono::milliseconds>(it->second - now));
      return Status::Ok();
    }
  }
  return StartRuntime(sb);
}

Status SandboxController::HandleExit(api::Sandbox& sb, const ContainerRun& run) {
  const std::string& uid = sb.metadata.uid;
  TimePoint now = clock_.Now();
  SBX_RETURN_IF_ERROR(runtime_.Stop(uid));
  runtime_.ClearExit(uid);

  const int code = run.exit_code;
  const auto& c0 = sb.spec.pod_template.spec.containers.at(0);
  std::string policy = sb.spec.pod_template.spec.restart_policy;
  if (policy.empty()) policy = "Always";
  const bool restart = policy == "Always" || (policy == "OnFailure" && code != 0);

  api::Json terminated = {{"exitCode", code},
                          {"reason", code == 0 ? "Completed" : "Error"},
                          {"message", ExitMessage(code)},
                          {"startedAt", FormatRfc3339(run.started_at)},
                          {"finishedAt", FormatRfc3339(run.finished_at)},
                          {"containerID", "runsc://" + run.container_id}};
  int restarts = RestartCount(sb);
  api::Json cs = {{"name", c0.name},
                  {"image", c0.image},
                  {"ready", false},
                  {"started", false},
                  {"restartCount", restarts},
                  {"containerID", "runsc://" + run.container_id}};
  auto& conds = sb.status.conditions;
  if (!restart) {
    cs["state"] = {{"terminated", terminated}};
    sb.status.container_statuses = api::Json::array({cs});
    std::string reason = code == 0 ? "PodSucceeded" : "PodFailed";
    Event(sb, code == 0 ? "Normal" : "Warning", code == 0 ? "Completed" : "Failed",
          ExitMessage(code));
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", reason, ExitMessage(code)), now);
    api::SetCondition(&conds, MakeCondition(sb, "Finished", "True", reason, ExitMessage(code)), now);
    return WriteStatus(sb);
  }

  // Restart with Kubernetes' crash-loop back-off: 10 s doubling to 5 min,
  // reset once a run lasted long enough.
  auto ran = run.finished_at - run.started_at;
  int exponent = ran >= options_.backoff_reset_after ? 0 : std::min(restarts, 10);
  auto delay = std::min(options_.backoff_initial * (1 << exponent), options_.backoff_max);
  {
    std::lock_guard<std::mutex> l(mu_);
    backoff_until_[uid] = now + delay;
  }
  cs["restartCount"] = restarts + 1;
  cs["lastState"] = {{"terminated", terminated}};
  std::string msg = "back-off " + std::to_string(delay.count() / 1000) +
                    "s restarting failed container=" + c0.name;
  cs["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", msg}}}};
  sb.status.container_statuses = api::Json::array({cs});
  Event(sb, "Warning", "BackOff", ExitMessage(code) + "; " + msg);
  api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", "DependenciesNotReady", msg), now);
  queue_->AddAfter(sb.metadata.namespace_ + "/" + sb.metadata.name, delay);
  return WriteStatus(sb);
}

Result<LaunchSpec> SandboxController::BuildLaunch(const api::Sandbox& sb,
                                                  api::Json* waiting) {
  const auto& spec = sb.spec.pod_template.spec;
  auto fail = [&](std::string reason, Status s) -> Status {
    *waiting = {{"reason", reason}, {"message", s.message()}};
    return s;
  };
  if (spec.containers.size() != 1 || !spec.init_containers.empty()) {
    return fail("CreateContainerConfigError",
                Invalid("spec.podTemplate.spec: only a single container without initContainers "
                        "is supported by this version of sbx"));
  }
  const api::Container& c = spec.containers[0];
  auto image = images_.Resolve(c.image);
  if (!image.ok()) {
    return fail("ErrImageNeverPull",
                NotFound("container image \"" + c.image +
                         "\" is not present in the local image store (import it with "
                         "`sbx image import`)"));
  }

  std::vector<std::pair<std::string, std::string>> env;
  const std::string& ns = sb.metadata.namespace_;
  for (const auto& e : c.env) {
    if (e.value) {
      env.emplace_back(e.name, *e.value);
      continue;
    }
    if (!e.value_from) {
      env.emplace_back(e.name, "");
      continue;
    }
    const auto& src = *e.value_from;
    const api::KeySelector* sel = nullptr;
    std::string kind;
    if (src.secret_key_ref) {
      sel = &*src.secret_key_ref;
      kind = "Secret";
    } else if (src.config_map_key_ref) {
      sel = &*src.config_map_key_ref;
      kind = "ConfigMap";
    } else {
      return fail("CreateContainerConfigError",
                  Invalid("env " + e.name + ": only secretKeyRef and configMapKeyRef are "
                          "supported in valueFrom"));
    }
    auto obj = store_.Get({"", kind, ns, sel->name});
    Result<std::string> value = obj.ok() ? (kind == "Secret" ? api::SecretValue(*obj, sel->key)
                                                             : api::ConfigMapValue(*obj, sel->key))
                                         : Result<std::string>(obj.status());
    if (!value.ok()) {
      if (sel->optional) continue;
      std::string what = kind == "Secret" ? "secret" : "configmap";
      if (!obj.ok()) {
        return fail("CreateContainerConfigError", NotFound(what + " \"" + sel->name + "\" not found"));
      }
      return fail("CreateContainerConfigError",
                  NotFound("couldn't find key " + sel->key + " in " + kind + " " + ns + "/" + sel->name));
    }
    env.emplace_back(e.name, *value);
  }

  auto args = oci::ResolveArgs(image->config.entrypoint, image->config.cmd, c.command, c.args);
  if (!args.ok()) return fail("CreateContainerConfigError", args.status());
  auto user = oci::ResolveUser(image->rootfs_dir, image->config.user);
  if (!user.ok()) return fail("CreateContainerConfigError", user.status());

  LaunchSpec launch;
  launch.container_name = c.name;
  oci::BundleSpec& b = launch.bundle;
  b.rootfs = image->rootfs_dir;
  b.args = std::move(*args);
  b.env = oci::MergeEnv(image->config.env, env);
  b.cwd = !c.working_dir.empty() ? c.working_dir
          : !image->config.working_dir.empty() ? image->config.working_dir
                                               : "/";
  b.user = std::move(*user);
  b.hostname = sb.metadata.name;
  b.annotations["io.kubernetes.cri.container-name"] = c.name;
  b.annotations["sbx.sandbox.uid"] = sb.metadata.uid;
  return launch;
}

Status SandboxController::StartRuntime(api::Sandbox& sb) {
  TimePoint now = clock_.Now();
  auto& conds = sb.status.conditions;
  const auto& c0 = sb.spec.pod_template.spec.containers.at(0);
  api::Json cs = {{"name", c0.name},
                  {"image", c0.image},
                  {"ready", false},
                  {"started", false},
                  {"restartCount", RestartCount(sb)}};
  if (const api::Json* old = FirstContainerStatus(sb); old && old->contains("lastState")) {
    cs["lastState"] = (*old)["lastState"];
  }
  api::SetCondition(&conds, MakeCondition(sb, "Suspended", "False", "NotSuspended", ""), now);

  api::Json waiting;
  auto launch = BuildLaunch(sb, &waiting);
  if (!launch.ok()) {
    const api::Json* old = FirstContainerStatus(sb);
    bool same = old && old->contains("state") && (*old)["state"].contains("waiting") &&
                (*old)["state"]["waiting"] == waiting;
    if (!same) Event(sb, "Warning", waiting.value("reason", "Failed"), launch.status().message());
    cs["state"] = {{"waiting", waiting}};
    sb.status.container_statuses = api::Json::array({cs});
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "DependenciesNotReady",
                                    launch.status().message()),
                      now);
    SBX_RETURN_IF_ERROR(WriteStatus(sb));
    // Retried on Secret/ConfigMap changes and image imports; also slowly.
    queue_->AddAfter(sb.metadata.namespace_ + "/" + sb.metadata.name, std::chrono::seconds(30));
    return Status::Ok();
  }

  Status s = runtime_.Start(sb.metadata.uid, *launch);
  if (!s.ok()) {
    Event(sb, "Warning", "FailedCreate", s.message());
    cs["state"] = {{"waiting", {{"reason", "RunContainerError"}, {"message", s.message()}}}};
    sb.status.container_statuses = api::Json::array({cs});
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "ReconcilerError", "Error seen: " + s.message()),
                      now);
    {
      std::lock_guard<std::mutex> l(mu_);
      backoff_until_[sb.metadata.uid] = now + options_.backoff_initial;
    }
    SBX_RETURN_IF_ERROR(WriteStatus(sb));
    queue_->AddAfter(sb.metadata.namespace_ + "/" + sb.metadata.name, options_.backoff_initial);
    return Status::Ok();
  }
  auto run = runtime_.Get(sb.metadata.uid);
  cs["ready"] = true;
  cs["started"] = true;
  cs["containerID"] = "runsc://" + oci::ContainerIdFor(sb.metadata.uid);
  cs["state"] = {{"running", {{"startedAt", FormatRfc3339(run ? run->started_at : now)}}}};
  sb.status.container_statuses = api::Json::array({cs});
  api::RemoveCondition(&conds, "Finished");
  api::SetCondition(&conds, MakeCondition(sb, "Ready", "True", "DependenciesReady", ""), now);
  SBX_RETURN_IF_ERROR(WriteStatus(sb));
  Event(sb, "Normal", "Started", "Started container " + c0.name + " in gVisor sandbox " +
                                     oci::ContainerIdFor(sb.metadata.uid));
  // An exit that raced the status write is picked up on the next pass.
  if (auto r = runtime_.Get(sb.metadata.uid); r && r->exited) Enqueue(sb.metadata.namespace_ + "/" + sb.metadata.name);
  return Status::Ok();
}

Status SandboxController::WriteStatus(const api::Sandbox& sb) {
  api::Object desired = sb.ToObject();
  store::ObjectKey key{kGroup, "Sandbox", sb.metadata.namespace_, sb.metadata.name};
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = store_.Get(key);
    if (!cur.ok()) return cur.status().code() == Code::kNotFound ? Status::Ok() : cur.status();
    if (cur->metadata.uid != sb.metadata.uid) return Status::Ok();
    api::Json want = desired.body.value("status", api::Json::object());
    if (cur->body.value("status", api::Json::object()) == want) return Status::Ok();
    cur->body["status"] = want;
    auto up = store_.UpdateStatus(*cur);
    if (up.ok()) return Status::Ok();
    if (up.status().code() != Code::kConflict) return up.status();
  }
  return Conflict("write status: too many conflicts");
}

void SandboxController::Event(const api::Sandbox& sb, std::string_view type,
                              std::string_view reason, std::string_view message) {
  auto r = store_.RecordEvent(sb.ToObject(), type, reason, message);
  if (!r.ok()) SBX_LOG(kWarning) << "record event: " << r.status().ToString();
}

}  // namespace sbx::daemon
