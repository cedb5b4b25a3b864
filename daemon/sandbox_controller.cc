#include "daemon/sandbox_controller.h"

#include <algorithm>

#include "api/extensions.h"
#include "api/kinds.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "daemon/dns_server.h"
#include "daemon/net_probe.h"

namespace sbx::daemon {

namespace {

constexpr char kGroup[] = "agents.x-k8s.io";
constexpr auto kConfigRetry = std::chrono::seconds(30);

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

// A member of a warm pool that no claim has adopted yet.
bool IsWarmMember(const api::Sandbox& sb) {
  const api::OwnerReference* owner = api::ControllerOf(sb.metadata);
  return owner != nullptr && owner->kind == api::kWarmPoolKind;
}

std::string ExitMessage(int code) {
  if (code < 0) return "exited with an unknown code (the sandbox stopped while sbxd was down)";
  if (code > 128 && code < 160) return "was killed by signal " + std::to_string(code - 128);
  return "exited with code " + std::to_string(code);
}

api::Json Terminated(const ContainerRun& run) {
  std::string reason = run.oom_killed ? "OOMKilled" : run.exit_code == 0 ? "Completed" : "Error";
  api::Json t = {{"exitCode", run.exit_code},
                 {"reason", reason},
                 {"startedAt", FormatRfc3339(run.started_at)},
                 {"finishedAt", FormatRfc3339(run.finished_at)},
                 {"containerID", "runsc://" + run.container_id}};
  if (run.oom_killed) {
    t["message"] = "the sandbox exceeded its memory limit and was killed";
  } else {
    t["message"] = "container " + ExitMessage(run.exit_code);
  }
  return t;
}

const api::Json* FindStatus(const api::Json& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const auto& s : list) {
    if (s.is_object() && s.value("name", "") == name) return &s;
  }
  return nullptr;
}

bool IsWaitingWith(const api::Json& cs, const api::Json& waiting) {
  return cs.contains("state") && cs["state"].contains("waiting") && cs["state"]["waiting"] == waiting;
}

// PodVolumes survive an sbxd restart in the sandbox directory, so containers
// of an adopted pod restart with the same volumes.
api::Json VolumesToJson(const PodVolumes& v) {
  api::Json by_name = api::Json::object();
  for (const auto& [name, pv] : v.by_name) {
    by_name[name] = {{"kind", pv.kind},
                     {"hostPath", pv.host_path},
                     {"sizeLimit", pv.size_limit},
                     {"sizeEnforced", pv.size_enforced},
                     {"readOnly", pv.read_only}};
  }
  return {{"volumes", by_name}, {"annotations", v.annotations}, {"subpathDir", v.subpath_dir}};
}

PodVolumes VolumesFromJson(const api::Json& j) {
  PodVolumes v;
  try {
    for (const auto& [name, pv] : j.at("volumes").items()) {
      PreparedVolume p;
      p.name = name;
      p.kind = pv.value("kind", "");
      p.host_path = pv.value("hostPath", "");
      p.size_limit = pv.value("sizeLimit", int64_t{0});
      p.size_enforced = pv.value("sizeEnforced", false);
      p.read_only = pv.value("readOnly", false);
      v.by_name[name] = p;
    }
    v.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    v.subpath_dir = j.value("subpathDir", "");
  } catch (const std::exception& e) {
    SBX_LOG(kWarning) << "bad saved volume plan: " << e.what();
  }
  return v;
}

}  // namespace

struct SandboxController::Pass {
  api::Sandbox& sb;
  TimePoint now;
  std::string uid, key, policy;
  std::vector<PodContainer> containers;
  std::map<std::string, api::Json> status;  // by container name
  PodRun pod;
  PodVolumes volumes;
  std::optional<std::chrono::milliseconds> requeue;

  void RequeueIn(std::chrono::milliseconds d) {
    d = std::max(d, std::chrono::milliseconds(10));
    if (!requeue || d < *requeue) requeue = d;
  }
  const ContainerRun* Run(const std::string& name) const {
    auto it = pod.containers.find(name);
    return it == pod.containers.end() ? nullptr : &it->second;
  }
  // Writes the per-container statuses back, in pod order.
  void Assemble() {
    api::Json init = api::Json::array(), regular = api::Json::array();
    for (const auto& pc : containers) {
      (pc.kind == PodContainer::Kind::kRegular ? regular : init).push_back(status[pc.name]);
    }
    sb.status.init_container_statuses = std::move(init);
    sb.status.container_statuses = std::move(regular);
  }
};

SandboxController::SandboxController(store::Store& store, SandboxRuntime& runtime,
                                     PodBuilder& builder, VolumeManager& volumes,
                                     const Clock& clock, ControllerOptions options)
    : store_(store),
      runtime_(runtime),
      builder_(builder),
      volumes_(volumes),
      clock_(clock),
      options_(options) {}

SandboxController::~SandboxController() { Stop(); }

std::string SandboxController::KeyOf(const api::Sandbox& sb) const {
  return sb.metadata.namespace_ + "/" + sb.metadata.name;
}

void SandboxController::Start() {
  queue_ = std::make_unique<WorkQueue>(options_.workers,
                                       [this](const std::string& key) { Reconcile(key); });
  prober_ = std::make_unique<Prober>(
      clock_, [this](const Prober::Key& k, const ProbeSpec& s) { return RunProbe(k, s); },
      [this](const Prober::Key& k) { OnRuntimeExit(k.sandbox_uid); });
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    const auto& o = ev.object;
    if (o.kind == "Sandbox") {
      std::string key = o.metadata.namespace_ + "/" + o.metadata.name;
      if (ev.type == store::WatchEventType::kDeleted) {
        // Removed without our finalizer (written by something other than
        // the API): its pod must still go.
        std::lock_guard<std::mutex> l(mu_);
        removed_[key] = o;
      }
      Enqueue(key);
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
  prober_.reset();
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
  std::optional<api::Object> removed;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = removed_.find(key); it != removed_.end()) {
      removed = std::move(it->second);
      removed_.erase(it);
    }
  }
  if (!obj.ok()) {
    if (obj.status().code() != Code::kNotFound) {
      SBX_LOG(kError).With("sandbox", key)
          << "reconcile " << key << ": " << obj.status().ToString();
      queue_->AddAfter(key, std::chrono::seconds(1));
    } else if (removed) {
      TeardownRemoved(key, *removed);
    }
    return;
  }
  if (removed && removed->metadata.uid != obj->metadata.uid) TeardownRemoved(key, *removed);
  auto sb = api::Sandbox::FromObject(*obj);
  if (!sb.ok()) {
    SBX_LOG(kError).With("sandbox", key) << "reconcile " << key << ": " << sb.status().ToString();
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    key_by_uid_[sb->metadata.uid] = key;
  }
  Status s = ReconcileSandbox(*sb);
  if (!s.ok()) {
    SBX_LOG(kWarning).With("sandbox", key) << "reconcile " << key << ": " << s.ToString();
    if (s.code() == Code::kConflict) {
      queue_->Add(key);
    } else {
      queue_->AddAfter(key, std::chrono::seconds(2));
    }
  }
}

Status SandboxController::StopPod(const api::Sandbox& sb) {
  const std::string& uid = sb.metadata.uid;
  if (prober_) prober_->RemoveSandbox(uid);
  {
    std::lock_guard<std::mutex> l(mu_);
    volumes_by_uid_.erase(uid);
    for (auto it = backoff_until_.lower_bound(uid + "/");
         it != backoff_until_.end() && it->first.starts_with(uid + "/");) {
      it = it->first == uid + "/" ? std::next(it) : backoff_until_.erase(it);
    }
  }
  SBX_RETURN_IF_ERROR(runtime_.Stop(uid));
  return volumes_.Release(sb);
}

Status SandboxController::Teardown(api::Sandbox& sb) {
  SBX_RETURN_IF_ERROR(StopPod(sb));
  SBX_RETURN_IF_ERROR(runtime_.Remove(sb.metadata.uid));
  SBX_RETURN_IF_ERROR(volumes_.Delete(sb));
  if (images_ != nullptr) images_->Forget(sb.metadata.uid);
  {
    std::lock_guard<std::mutex> l(mu_);
    key_by_uid_.erase(sb.metadata.uid);
    backoff_until_.erase(sb.metadata.uid + "/");
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

void SandboxController::TeardownRemoved(const std::string& key, const api::Object& last) {
  auto sb = api::Sandbox::FromObject(last);
  if (!sb.ok()) return;
  bool known;
  {
    std::lock_guard<std::mutex> l(mu_);
    known = key_by_uid_.contains(sb->metadata.uid);
  }
  if (!known && !runtime_.Get(sb->metadata.uid)) return;
  SBX_LOG(kWarning).With("sandbox", key)
      << "sandbox " << key << " was removed without teardown; stopping its pod";
  Status s = Teardown(*sb);
  if (!s.ok()) {
    SBX_LOG(kError).With("sandbox", key)
        << "teardown of removed sandbox " << key << ": " << s.ToString();
    std::lock_guard<std::mutex> l(mu_);
    removed_.emplace(key, last);
    queue_->AddAfter(key, std::chrono::seconds(2));
  }
}

Status SandboxController::ReconcileSandbox(api::Sandbox& sb) {
  const std::string& uid = sb.metadata.uid;
  if (sb.metadata.deletion_timestamp) return Teardown(sb);

  TimePoint now = clock_.Now();
  auto& conds = sb.status.conditions;

  // Expiry (upstream §3.1): stop the pod; Delete removes the object, Retain
  // keeps it with conditions only. A shutdownTime moved into the future
  // revives the sandbox through the normal path below.
  if (sb.spec.shutdown_time && now >= *sb.spec.shutdown_time) {
    SBX_RETURN_IF_ERROR(StopPod(sb));
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
    queue_->AddAfter(KeyOf(sb), std::max(left, std::chrono::milliseconds(10)));
  }

  const std::string& rc = sb.spec.pod_template.spec.runtime_class_name;
  if (!rc.empty() && rc != "gvisor") {
    SBX_RETURN_IF_ERROR(StopPod(sb));
    std::string msg = "Error seen: runtimeClassName \"" + rc +
                      "\" is not supported: sbx runs every sandbox in gVisor (leave "
                      "runtimeClassName unset or set it to \"gvisor\")";
    const api::Condition* ready = api::FindCondition(conds, "Ready");
    if (ready == nullptr || ready->message != msg) {
      Event(sb, "Warning", "UnsupportedRuntimeClass", msg);
    }
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", "ReconcilerError", msg), now);
    api::SetCondition(&conds, MakeCondition(sb, "Suspended", "False", "NotSuspended", ""), now);
    return WriteStatus(sb);
  }

  if (sb.spec.operating_mode == "Suspended") {
    auto pod = runtime_.Get(uid);
    SBX_RETURN_IF_ERROR(StopPod(sb));
    if (pod && !pod->exited) Event(sb, "Normal", "Suspended", "sandbox suspended; pod stopped");
    sb.status.pod_ips.clear();
    sb.status.node_name.clear();
    sb.status.container_statuses = api::Json::array();
    sb.status.init_container_statuses = api::Json::array();
    api::RemoveCondition(&conds, "Finished");
    {
      std::lock_guard<std::mutex> l(mu_);
      backoff_until_.erase(uid + "/");
    }
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "SandboxSuspended", "Sandbox is suspended"),
                      now);
    api::SetCondition(&conds, MakeCondition(sb, "Suspended", "True", "PodTerminated", ""), now);
    return WriteStatus(sb);
  }
  return ReconcilePod(sb);
}

Status SandboxController::ReconcilePod(api::Sandbox& sb) {
  Pass p{sb, clock_.Now(), sb.metadata.uid, KeyOf(sb), sb.spec.pod_template.spec.restart_policy,
         {}, {}, {}, {}, std::nullopt};
  if (p.policy.empty()) p.policy = "Always";
  p.containers = PodContainers(sb.spec.pod_template.spec);
  bool has_init = false;
  for (const auto& pc : p.containers) {
    if (pc.kind != PodContainer::Kind::kRegular) has_init = true;
  }
  for (const auto& pc : p.containers) {
    const api::Json* prev = FindStatus(pc.kind == PodContainer::Kind::kRegular
                                           ? sb.status.container_statuses
                                           : sb.status.init_container_statuses,
                                       pc.name);
    api::Json cs = prev ? *prev : api::Json::object();
    if (!prev) {
      std::string reason = has_init && pc.kind == PodContainer::Kind::kRegular
                               ? "PodInitializing"
                               : "ContainerCreating";
      cs = api::Json::object();
      cs["name"] = pc.name;
      cs["ready"] = false;
      cs["started"] = false;
      cs["restartCount"] = 0;
      cs["state"] = {{"waiting", {{"reason", reason}}}};
    }
    cs["image"] = pc.spec->image;
    p.status[pc.name] = std::move(cs);
  }
  auto& conds = sb.status.conditions;
  api::SetCondition(&conds, MakeCondition(sb, "Suspended", "False", "NotSuspended", ""), p.now);

  auto pod = runtime_.Get(p.uid);
  if (pod && pod->exited) return HandlePodExit(p, *pod);
  if (pod && pod->background && !IsWarmMember(sb)) {
    // Adopted by a claim: full CPU priority from now on.
    if (Status f = runtime_.Foreground(p.uid); !f.ok()) {
      SBX_LOG(kWarning).With("sandbox", p.key) << "sandbox " << p.key << ": " << f.ToString();
    }
  }
  if (!pod) {
    // A pod that finished for good stays finished.
    if (const api::Condition* f = api::FindCondition(conds, "Finished"); f && f->status == "True") {
      return WriteStatus(sb);
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = backoff_until_.find(p.uid + "/");
      if (it != backoff_until_.end() && it->second > p.now) {
        queue_->AddAfter(p.key, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    it->second - p.now));
        return Status::Ok();
      }
    }
    SBX_RETURN_IF_ERROR(StartPod(p));
    pod = runtime_.Get(p.uid);
    if (!pod) {
      p.Assemble();
      if (p.requeue) queue_->AddAfter(p.key, *p.requeue);
      return WriteStatus(sb);
    }
  } else {
    std::lock_guard<std::mutex> l(mu_);
    auto it = volumes_by_uid_.find(p.uid);
    if (it != volumes_by_uid_.end()) {
      p.volumes = it->second;
    } else if (auto saved = ReadFile(JoinPath(runtime_.SandboxDir(p.uid), "volumes.json"));
               saved.ok()) {
      p.volumes = VolumesFromJson(api::Json::parse(*saved, nullptr, false));
      volumes_by_uid_[p.uid] = p.volumes;
    }
  }
  p.pod = *pod;

  // Init containers, one at a time; sidecars start in their turn and stay.
  bool init_done = true;
  std::vector<std::string> incomplete;
  for (const auto& pc : p.containers) {
    if (pc.kind == PodContainer::Kind::kRegular) continue;
    api::Json& cs = p.status[pc.name];
    if (pc.kind == PodContainer::Kind::kSidecar) {
      // The next init container waits until the sidecar runs and its
      // startup probe passed, as the kubelet does.
      if (!EnsureRunning(p, pc, true, true) || !p.status[pc.name].value("started", false)) {
        init_done = false;
        incomplete.push_back(pc.name);
        break;
      }
      continue;
    }
    const ContainerRun* run = p.Run(pc.name);
    if (run && run->exited && run->exit_code == 0) {
      cs["state"] = {{"terminated", Terminated(*run)}};
      cs["ready"] = true;
      cs["started"] = false;
      cs["containerID"] = "runsc://" + run->container_id;
      continue;
    }
    init_done = false;
    incomplete.push_back(pc.name);
    if (run && !run->exited) {
      cs["state"] = {{"running", {{"startedAt", FormatRfc3339(run->started_at)}}}};
      cs["started"] = true;
      cs["containerID"] = "runsc://" + run->container_id;
      break;
    }
    if (run && run->exited) {
      if (p.policy == "Never") {
        cs["state"] = {{"terminated", Terminated(*run)}};
        cs["ready"] = false;
        std::string msg = "init container " + pc.name + " " + ExitMessage(run->exit_code);
        Event(sb, "Warning", "Failed", msg);
        SBX_RETURN_IF_ERROR(StopPod(sb));
        p.Assemble();
        api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", "PodFailed", msg), p.now);
        api::SetCondition(&conds, MakeCondition(sb, "Finished", "True", "PodFailed", msg), p.now);
        return WriteStatus(sb);
      }
      RestartLater(p, pc, *run, "init container " + ExitMessage(run->exit_code));
      break;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = backoff_until_.find(p.uid + "/" + pc.name);
      if (it != backoff_until_.end() && it->second > p.now) {
        p.RequeueIn(std::chrono::duration_cast<std::chrono::milliseconds>(it->second - p.now));
        break;
      }
    }
    StartContainer(p, pc);
    break;
  }

  // Containers, once every init container completed.
  std::vector<std::string> unready;
  bool all_done = init_done;
  bool all_succeeded = true;
  if (init_done) {
    const bool restart_zero = p.policy == "Always";
    const bool restart_failed = p.policy != "Never";
    for (const auto& pc : p.containers) {
      if (pc.kind != PodContainer::Kind::kRegular) continue;
      bool running = EnsureRunning(p, pc, restart_zero, restart_failed);
      const ContainerRun* run = p.Run(pc.name);
      bool done = !running && run && run->exited;
      if (!done) all_done = false;
      if (done && run->exit_code != 0) all_succeeded = false;
      if (!running || !p.status[pc.name].value("ready", false)) unready.push_back(pc.name);
    }
  }
  for (const auto& pc : p.containers) {
    if (pc.kind == PodContainer::Kind::kSidecar && !p.status[pc.name].value("ready", false) &&
        std::find(incomplete.begin(), incomplete.end(), pc.name) == incomplete.end()) {
      unready.push_back(pc.name);
    }
  }
  p.Assemble();

  if (all_done) {
    // Every container finished and none restarts: the pod is done.
    std::string reason = all_succeeded ? "PodSucceeded" : "PodFailed";
    std::string msg = all_succeeded ? "all containers completed successfully"
                                    : "a container failed";
    for (const auto& pc : p.containers) {
      const ContainerRun* run = p.Run(pc.name);
      if (pc.kind == PodContainer::Kind::kRegular && run && run->exit_code != 0) {
        msg = "container " + pc.name + " " + ExitMessage(run->exit_code);
        break;
      }
    }
    Event(sb, all_succeeded ? "Normal" : "Warning", all_succeeded ? "Completed" : "Failed", msg);
    SBX_RETURN_IF_ERROR(StopPod(sb));
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", reason, msg), p.now);
    api::SetCondition(&conds, MakeCondition(sb, "Finished", "True", reason, msg), p.now);
    return WriteStatus(sb);
  }

  api::RemoveCondition(&conds, "Finished");
  if (!incomplete.empty()) {
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "DependenciesNotReady",
                                    "containers with incomplete status: [" +
                                        Join(incomplete, " ") + "]"),
                      p.now);
  } else if (!unready.empty()) {
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "DependenciesNotReady",
                                    "containers with unready status: [" + Join(unready, " ") + "]"),
                      p.now);
  } else {
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "True", "DependenciesReady", ""), p.now);
  }
  if (p.requeue) queue_->AddAfter(p.key, *p.requeue);
  SBX_RETURN_IF_ERROR(WriteStatus(sb));
  // An exit that raced this pass is picked up by the next.
  if (auto now = runtime_.Get(p.uid); now && now->exited) Enqueue(p.key);
  return Status::Ok();
}

bool SandboxController::ImagesReady(Pass& p) {
  if (images_ == nullptr) return true;
  api::Sandbox& sb = p.sb;
  std::vector<std::string> waiting;
  std::string first_message;
  for (const auto& pc : p.containers) {
    const api::Container& c = *pc.spec;
    auto policy = EffectivePullPolicy(c.image_pull_policy, c.image);
    if (!policy.ok()) {
      // Refused at admission; an object stored before that check lands here.
      std::string msg = pc.path + "." + policy.status().message();
      p.status[pc.name]["state"] = {
          {"waiting", {{"reason", "InvalidImageName"}, {"message", msg}}}};
      waiting.push_back(pc.name);
      if (first_message.empty()) first_message = msg;
      continue;
    }
    ImageCheck check = images_->Ensure(p.uid, p.key, c.image, *policy);
    if (!check.event_reason.empty()) {
      Event(sb, check.event_type, check.event_reason, check.event_message);
    }
    if (check.state == ImageCheck::State::kReady) continue;
    p.status[pc.name]["state"] = {
        {"waiting", {{"reason", WaitingReason(check.state)}, {"message", check.message}}}};
    waiting.push_back(pc.name);
    if (first_message.empty()) first_message = check.message;
    if (check.retry_in.count() > 0) p.RequeueIn(check.retry_in);
  }
  if (waiting.empty()) return true;
  api::SetCondition(&sb.status.conditions,
                    MakeCondition(sb, "Ready", "False", "DependenciesNotReady", first_message),
                    p.now);
  // Pulls enqueue their sandboxes when they end; this is a safety net.
  p.RequeueIn(kConfigRetry);
  return false;
}

Status SandboxController::StartPod(Pass& p) {
  api::Sandbox& sb = p.sb;
  auto& conds = sb.status.conditions;
  if (!ImagesReady(p)) return Status::Ok();
  PodVolumes volumes;
  BuildFailure failure;
  auto launch = builder_.BuildPod(sb, runtime_.SandboxDir(p.uid), &volumes, &failure);
  if (!launch.ok()) {
    api::Json waiting = {{"reason", failure.reason}, {"message", failure.status.message()}};
    bool same = !p.containers.empty() && IsWaitingWith(p.status[p.containers[0].name], waiting);
    if (!same) {
      Event(sb, "Warning", failure.reason == "ContainerCreating" ? "FailedMount" : "Failed",
            failure.status.message());
    }
    for (const auto& pc : p.containers) p.status[pc.name]["state"] = {{"waiting", waiting}};
    api::SetCondition(&conds,
                      MakeCondition(sb, "Ready", "False", "DependenciesNotReady",
                                    failure.status.message()),
                      p.now);
    // Retried on Secret/ConfigMap changes and image imports; also slowly.
    p.RequeueIn(kConfigRetry);
    return Status::Ok();
  }
  launch->background = options_.idle_warm_members && IsWarmMember(sb);
  Status s = runtime_.StartPod(p.uid, *launch);
  if (!s.ok()) {
    (void)volumes_.Release(sb);
    Event(sb, "Warning", "FailedCreatePodSandBox", s.message());
    for (const auto& pc : p.containers) {
      p.status[pc.name]["state"] = {
          {"waiting", {{"reason", "RunContainerError"}, {"message", s.message()}}}};
    }
    api::SetCondition(
        &conds, MakeCondition(sb, "Ready", "False", "ReconcilerError", "Error seen: " + s.message()),
        p.now);
    {
      std::lock_guard<std::mutex> l(mu_);
      backoff_until_[p.uid + "/"] = p.now + options_.backoff_initial;
    }
    p.RequeueIn(options_.backoff_initial);
    return Status::Ok();
  }
  for (const auto& w : volumes.warnings) Event(sb, "Warning", "VolumeLimits", w);
  (void)WriteFileAtomic(JoinPath(runtime_.SandboxDir(p.uid), "volumes.json"),
                        VolumesToJson(volumes).dump(), 0600);
  {
    std::lock_guard<std::mutex> l(mu_);
    volumes_by_uid_[p.uid] = volumes;
  }
  p.volumes = std::move(volumes);
  if (images_ != nullptr) images_->Forget(p.uid);
  if (auto run = runtime_.Get(p.uid)) sb.status.pod_ips = run->ips;
  Event(sb, "Normal", "SandboxStarted",
        "Started gVisor sandbox " + SandboxRuntime::PodId(p.uid));
  return Status::Ok();
}

bool SandboxController::EnsureRunning(Pass& p, const PodContainer& pc, bool restart_zero,
                                      bool restart_failed) {
  api::Json& cs = p.status[pc.name];
  const ContainerRun* run = p.Run(pc.name);
  Prober::Key key{p.uid, pc.name};
  if (run && !run->exited) {
    cs["state"] = {{"running", {{"startedAt", FormatRfc3339(run->started_at)}}}};
    cs["containerID"] = "runsc://" + run->container_id;
    bool added;
    {
      std::lock_guard<std::mutex> l(mu_);
      added = probed_.insert(run->container_id).second;
    }
    if (added) AddProbes(p, key, pc, run->started_at);
    Prober::State ps = prober_->Get(key);
    cs["started"] = ps.started;
    cs["ready"] = ps.started && ps.ready;
    if (!ps.restart) {
      // Not ready for a reason (a failing readiness probe): said as the
      // kubelet says it; repeats aggregate into one event's count.
      if (ps.started && !ps.ready && !ps.message.empty()) Event(p.sb, "Warning", "Unhealthy", ps.message);
      return true;
    }
    // A failed liveness or startup probe: kill, then restartPolicy decides.
    Event(p.sb, "Warning", "Unhealthy", ps.message);
    Event(p.sb, "Normal", "Killing",
          "Container " + pc.name + " failed a probe, will be restarted");
    ContainerRun dead = *run;
    dead.exited = true;
    dead.exit_code = 137;
    dead.finished_at = p.now;
    prober_->Remove(key);
    {
      std::lock_guard<std::mutex> l(mu_);
      probed_.erase(run->container_id);
    }
    if (restart_failed) {
      RestartLater(p, pc, dead, ps.message);
      return false;
    }
    (void)runtime_.RemoveContainer(p.uid, pc.name);
    cs["state"] = {{"terminated", Terminated(dead)}};
    cs["ready"] = false;
    cs["started"] = false;
    p.pod.containers[pc.name] = dead;
    return false;
  }
  if (run && run->exited) {
    prober_->Remove(key);
    {
      std::lock_guard<std::mutex> l(mu_);
      probed_.erase(run->container_id);
    }
    bool restart = run->exit_code == 0 ? restart_zero : restart_failed;
    if (restart) {
      RestartLater(p, pc, *run, "container " + ExitMessage(run->exit_code));
      return false;
    }
    cs["state"] = {{"terminated", Terminated(*run)}};
    cs["ready"] = false;
    cs["started"] = false;
    cs["containerID"] = "runsc://" + run->container_id;
    return false;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = backoff_until_.find(p.uid + "/" + pc.name);
    if (it != backoff_until_.end() && it->second > p.now) {
      p.RequeueIn(std::chrono::duration_cast<std::chrono::milliseconds>(it->second - p.now));
      return false;
    }
  }
  return StartContainer(p, pc);
}

void SandboxController::AddProbes(Pass& p, const Prober::Key& key, const PodContainer& pc,
                                  TimePoint started) {
  const bool networked = !p.pod.ips.empty();
  if (Status s = prober_->Add(key, pc.spec->raw, started, networked); !s.ok()) {
    Event(p.sb, "Warning", "Unhealthy", "container " + pc.name + ": " + s.message());
    return;
  }
  Prober::State ps = prober_->Get(key);
  if (!ps.inactive.empty()) {
    Event(p.sb, "Normal", "ProbeInactive",
          "container " + pc.name +
              ": httpGet and tcpSocket probes need the sandbox network (annotation "
              "sbx.dev/network: sandbox); without it the container counts as ready once started");
  }
}

bool SandboxController::StartContainer(Pass& p, const PodContainer& pc) {
  api::Json& cs = p.status[pc.name];
  BuildFailure failure;
  std::vector<std::string> warnings;
  auto launch = builder_.BuildContainer(p.sb, p.volumes, pc,
                                        runtime_.ContainerBundleDir(p.uid, pc.name), &failure,
                                        &warnings);
  for (const auto& w : warnings) Event(p.sb, "Warning", "InvalidEnvironmentVariableNames", w);
  if (!launch.ok()) {
    api::Json waiting = {{"reason", failure.reason}, {"message", failure.status.message()}};
    if (!IsWaitingWith(cs, waiting)) {
      Event(p.sb, "Warning", "Failed", "container " + pc.name + ": " + failure.status.message());
    }
    cs["state"] = {{"waiting", waiting}};
    cs["ready"] = false;
    cs["started"] = false;
    p.RequeueIn(kConfigRetry);
    return false;
  }
  Status s = runtime_.StartContainer(p.uid, *launch);
  if (!s.ok()) {
    Event(p.sb, "Warning", "Failed", "container " + pc.name + ": " + s.message());
    cs["state"] = {{"waiting", {{"reason", "RunContainerError"}, {"message", s.message()}}}};
    cs["ready"] = false;
    cs["started"] = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      backoff_until_[p.uid + "/" + pc.name] = p.now + options_.backoff_initial;
    }
    p.RequeueIn(options_.backoff_initial);
    return false;
  }
  if (auto pod = runtime_.Get(p.uid)) p.pod = *pod;
  const ContainerRun* run = p.Run(pc.name);
  TimePoint started = run ? run->started_at : p.now;
  std::string id = SandboxRuntime::ContainerId(p.uid, pc.name);
  cs["state"] = {{"running", {{"startedAt", FormatRfc3339(started)}}}};
  cs["containerID"] = "runsc://" + id;
  Event(p.sb, "Normal", "Started", "Started container " + pc.name);
  if (pc.kind == PodContainer::Kind::kInit) {
    cs["started"] = true;
    cs["ready"] = false;
    return true;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    probed_.insert(id);
  }
  Prober::Key key{p.uid, pc.name};
  AddProbes(p, key, pc, started);
  Prober::State ps = prober_->Get(key);
  cs["started"] = ps.started;
  cs["ready"] = ps.started && ps.ready;
  return true;
}

void SandboxController::RestartLater(Pass& p, const PodContainer& pc, ContainerRun run,
                                     const std::string& message) {
  api::Json& cs = p.status[pc.name];
  (void)runtime_.RemoveContainer(p.uid, pc.name);
  p.pod.containers.erase(pc.name);
  // Kubernetes' crash-loop back-off: 10 s doubling to 5 min, reset once a
  // run lasted long enough.
  int restarts = cs.value("restartCount", 0);
  auto ran = run.finished_at - run.started_at;
  int exponent = ran >= options_.backoff_reset_after ? 0 : std::min(restarts, 10);
  auto delay = std::min(options_.backoff_initial * (1 << exponent), options_.backoff_max);
  {
    std::lock_guard<std::mutex> l(mu_);
    backoff_until_[p.uid + "/" + pc.name] = p.now + delay;
  }
  std::string msg = "back-off " + std::to_string(delay.count() / 1000) +
                    "s restarting failed container=" + pc.name;
  cs["restartCount"] = restarts + 1;
  cs["lastState"] = {{"terminated", Terminated(run)}};
  cs["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", msg}}}};
  cs["ready"] = false;
  cs["started"] = false;
  Event(p.sb, "Warning", "BackOff", message + "; " + msg);
  p.RequeueIn(std::chrono::duration_cast<std::chrono::milliseconds>(delay));
}

Status SandboxController::HandlePodExit(Pass& p, const PodRun& pod) {
  api::Sandbox& sb = p.sb;
  auto& conds = sb.status.conditions;
  std::string what = pod.oom_killed ? "the sandbox exceeded its memory limit and was OOM-killed"
                                    : "the sandbox " + ExitMessage(pod.exit_code);
  Event(sb, "Warning", pod.oom_killed ? "OOMKilling" : "SandboxDied", what);
  SBX_RETURN_IF_ERROR(StopPod(sb));
  const bool restart = p.policy != "Never";
  int restarts = 0;
  for (const auto& pc : p.containers) restarts = std::max(restarts, p.status[pc.name].value("restartCount", 0));
  auto ran = p.now - pod.started_at;
  int exponent = ran >= options_.backoff_reset_after ? 0 : std::min(restarts, 10);
  auto delay = std::min(options_.backoff_initial * (1 << exponent), options_.backoff_max);
  std::string msg = "back-off " + std::to_string(delay.count() / 1000) + "s restarting the sandbox";
  for (const auto& pc : p.containers) {
    api::Json& cs = p.status[pc.name];
    auto it = pod.containers.find(pc.name);
    cs["ready"] = false;
    cs["started"] = false;
    if (it == pod.containers.end()) continue;
    const ContainerRun& run = it->second;
    if (!restart) {
      cs["state"] = {{"terminated", Terminated(run)}};
      continue;
    }
    if (pc.kind == PodContainer::Kind::kInit && run.exit_code == 0 && !run.oom_killed) {
      // Completed before the sandbox died; it runs again in the new pod.
      cs["lastState"] = {{"terminated", Terminated(run)}};
      cs["state"] = {{"waiting", {{"reason", "PodInitializing"}}}};
      continue;
    }
    cs["restartCount"] = cs.value("restartCount", 0) + 1;
    cs["lastState"] = {{"terminated", Terminated(run)}};
    cs["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", msg}}}};
  }
  p.Assemble();
  if (!restart) {
    api::SetCondition(&conds, MakeCondition(sb, "Ready", "False", "PodFailed", what), p.now);
    api::SetCondition(&conds, MakeCondition(sb, "Finished", "True", "PodFailed", what), p.now);
    return WriteStatus(sb);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    backoff_until_[p.uid + "/"] = p.now + delay;
  }
  api::SetCondition(&conds,
                    MakeCondition(sb, "Ready", "False", "DependenciesNotReady", what + "; " + msg),
                    p.now);
  queue_->AddAfter(p.key, std::chrono::duration_cast<std::chrono::milliseconds>(delay));
  return WriteStatus(sb);
}

ProbeOutcome SandboxController::RunProbe(const Prober::Key& key, const ProbeSpec& spec) {
  if (spec.handler != ProbeSpec::Handler::kExec) {
    auto pod = runtime_.Get(key.sandbox_uid);
    if (!pod || pod->ips.empty()) return {ProbeResult::kUnknown, "the sandbox has no address"};
    return RunNetworkProbe(spec, pod->ips.front(), std::chrono::seconds(std::max(1, spec.timeout_seconds)));
  }
  auto exec = runtime_.ExecTemplate(key.sandbox_uid, key.container);
  if (!exec.ok()) return {ProbeResult::kUnknown, exec.status().message()};
  auto has_seccomp = runtime_.HasSeccomp(key.sandbox_uid, key.container);
  if (!has_seccomp.ok()) return {ProbeResult::kUnknown, has_seccomp.status().message()};
  exec->args = *has_seccomp ? SeccompExecArgv(spec.command) : spec.command;
  oci::CommandSpec cmd;
  cmd.argv = runtime_.runsc().Exec(SandboxRuntime::ContainerId(key.sandbox_uid, key.container),
                                   *exec);
  cmd.timeout = std::chrono::seconds(std::max(1, spec.timeout_seconds));
  auto r = runtime_.runner().Run(cmd);
  if (!r.ok()) return {ProbeResult::kUnknown, r.status().message()};
  if (r->timed_out) {
    return {ProbeResult::kFailure,
            "command timed out after " + std::to_string(spec.timeout_seconds) + "s"};
  }
  if (r->exit_code == 0) return {ProbeResult::kSuccess, ""};
  std::string out = std::string(Trim(r->out + r->err));
  if (out.size() > 1024) out = out.substr(0, 1024);
  return {ProbeResult::kFailure,
          "command exited with code " + std::to_string(r->exit_code) +
              (out.empty() ? "" : ": " + out)};
}

Status SandboxController::WriteStatus(const api::Sandbox& sb) {
  // spec.service: the sandbox's stable name (the daemon's DNS answers it,
  // see dns_server.h) once it has an address.
  api::Sandbox with_service = sb;
  if (sb.spec.service.value_or(false) && !sb.status.pod_ips.empty()) {
    with_service.status.service = sb.metadata.name;
    with_service.status.service_fqdn = ServiceFqdn(sb.metadata.name, sb.metadata.namespace_);
  } else {
    with_service.status.service.clear();
    with_service.status.service_fqdn.clear();
  }
  api::Object desired = with_service.ToObject();
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
