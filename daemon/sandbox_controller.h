// SandboxController reconciles Sandbox objects with their gVisor pods.
//
// Level-triggered and idempotent: each pass reads the stored Sandbox,
// compares it with what the runtime runs, takes the next step and writes
// status and events back. Keys are "namespace/name"; a key is reconciled by
// one worker at a time.
//
// The pod lifecycle follows Kubernetes: the pod (a gVisor sandbox) starts
// with its volumes and cgroup limits; init containers run one at a time to
// completion (restartable init containers — sidecars — start in their turn
// and keep running); then every container starts. Exits are handled per
// container by restartPolicy with crash-loop back-off (10 s doubling to
// 5 min); probes gate readiness and restart containers. When the sandbox
// itself dies (an OOM kill takes the whole sandbox in gVisor) every
// container is terminated and the pod restarts as a whole (or fails, under
// Never). Status follows upstream agent-sandbox (Ready, Suspended, Finished)
// plus Pod-style containerStatuses / initContainerStatuses.
//
// Thread-safe; runs its own worker threads.
#ifndef SBX_DAEMON_SANDBOX_CONTROLLER_H_
#define SBX_DAEMON_SANDBOX_CONTROLLER_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/sandbox.h"
#include "common/time.h"
#include "daemon/image_service.h"
#include "daemon/pod_builder.h"
#include "daemon/prober.h"
#include "daemon/runtime.h"
#include "daemon/volumes.h"
#include "daemon/workqueue.h"
#include "store/store.h"

namespace sbx::daemon {

// Finalizer that holds a Sandbox until its runtime is torn down.
inline constexpr char kRuntimeFinalizer[] = "sbx/runtime";

struct ControllerOptions {
  size_t workers = 4;
  std::chrono::milliseconds backoff_initial{10000};
  std::chrono::milliseconds backoff_max{300000};
  // A container that ran this long without exiting resets its back-off.
  std::chrono::milliseconds backoff_reset_after{600000};
  // Warm pool members run at idle CPU priority until a claim adopts them
  // (daemon/cpu_priority.h).
  bool idle_warm_members = true;
};

class SandboxController {
 public:
  // All references must outlive the controller.
  SandboxController(store::Store& store, SandboxRuntime& runtime, PodBuilder& builder,
                    VolumeManager& volumes, const Clock& clock, ControllerOptions options);
  ~SandboxController();

  // Subscribes to store changes and queues every stored Sandbox.
  void Start();
  void Stop();

  void Enqueue(const std::string& key);
  void EnqueueAll();
  // Where images come from (pulls, pull policies); without one, images must
  // already be in the store. Set before Start; borrowed.
  void SetImageService(ImageService* images) { images_ = images; }
  // Called by the runtime (any thread) when a pod or a container exits.
  void OnRuntimeExit(const std::string& uid);

 private:
  struct Pass;  // one reconcile pass over a running pod

  void Reconcile(const std::string& key);
  Status ReconcileSandbox(api::Sandbox& sb);
  Status Teardown(api::Sandbox& sb);
  // Tears down the pod of a Sandbox that left the store without going
  // through our finalizer.
  void TeardownRemoved(const std::string& key, const api::Object& last);
  Status StopPod(const api::Sandbox& sb);
  Status ReconcilePod(api::Sandbox& sb);
  Status HandlePodExit(Pass& p, const PodRun& pod);
  Status StartPod(Pass& p);
  // Whether every container's image is ready under its pull policy; if not,
  // the containers show why (pulling, ErrImagePull, ImagePullBackOff).
  bool ImagesReady(Pass& p);
  // Runs one container that must be running (a sidecar or a container);
  // returns whether it runs now.
  bool EnsureRunning(Pass& p, const PodContainer& pc, bool restart_on_exit_zero,
                     bool restart_on_failure);
  bool StartContainer(Pass& p, const PodContainer& pc);
  void AddProbes(Pass& p, const Prober::Key& key, const PodContainer& pc, TimePoint started);
  // `run` is a copy: the pass forgets the container's record.
  void RestartLater(Pass& p, const PodContainer& pc, ContainerRun run,
                    const std::string& message);
  ProbeOutcome RunProbe(const Prober::Key& key, const ProbeSpec& spec);
  Status WriteStatus(const api::Sandbox& sb);
  void Event(const api::Sandbox& sb, std::string_view type, std::string_view reason,
             std::string_view message);
  std::string KeyOf(const api::Sandbox& sb) const;

  store::Store& store_;
  SandboxRuntime& runtime_;
  PodBuilder& builder_;
  VolumeManager& volumes_;
  const Clock& clock_;
  ControllerOptions options_;
  ImageService* images_ = nullptr;

  std::mutex mu_;
  std::map<std::string, std::string> key_by_uid_;
  std::map<std::string, TimePoint> backoff_until_;  // by "uid/container"; "uid/" is the pod
  std::map<std::string, PodVolumes> volumes_by_uid_;
  std::map<std::string, api::Object> removed_;  // by key: last state of removed sandboxes
  std::set<std::string> probed_;  // "container id" registered with the prober
  uint64_t subscription_ = 0;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<WorkQueue> queue_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_SANDBOX_CONTROLLER_H_
