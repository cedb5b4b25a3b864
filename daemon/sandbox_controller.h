// SandboxController reconciles Sandbox objects with their gVisor sandboxes.
//
// Level-triggered and idempotent: each pass reads the stored Sandbox,
// compares it with what the runtime runs, takes the next step (start, stop,
// restart after back-off, tear down) and writes status and events back.
// Keys are "namespace/name"; a key is reconciled by one worker at a time.
//
// Status follows upstream agent-sandbox (Ready, Suspended, Finished with
// their reasons); the per-container detail Kubernetes keeps in a Pod's
// containerStatuses is kept in status.containerStatuses.
//
// Thread-safe; runs its own worker threads.
#ifndef SBX_DAEMON_SANDBOX_CONTROLLER_H_
#define SBX_DAEMON_SANDBOX_CONTROLLER_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "api/sandbox.h"
#include "common/time.h"
#include "daemon/runtime.h"
#include "daemon/workqueue.h"
#include "oci/image_store.h"
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
};

class SandboxController {
 public:
  // All references must outlive the controller.
  SandboxController(store::Store& store, oci::ImageStore& images, SandboxRuntime& runtime,
                    const Clock& clock, ControllerOptions options);
  ~SandboxController();

  // Subscribes to store changes and queues every stored Sandbox.
  void Start();
  void Stop();

  void Enqueue(const std::string& key);
  void EnqueueAll();
  // Called by the runtime (any thread) when a sandbox's container exits.
  void OnRuntimeExit(const std::string& uid);

 private:
  struct Pending;  // what a pass decided, before writing status

  void Reconcile(const std::string& key);
  Status ReconcileSandbox(api::Sandbox& sb);
  Status Teardown(api::Sandbox& sb);
  Status HandleExit(api::Sandbox& sb, const ContainerRun& run);
  Status StartRuntime(api::Sandbox& sb);
  Result<LaunchSpec> BuildLaunch(const api::Sandbox& sb, api::Json* waiting_reason);
  Status WriteStatus(const api::Sandbox& sb);
  void Event(const api::Sandbox& sb, std::string_view type, std::string_view reason,
             std::string_view message);

  store::Store& store_;
  oci::ImageStore& images_;
  SandboxRuntime& runtime_;
  const Clock& clock_;
  ControllerOptions options_;

  std::mutex mu_;
  std::map<std::string, std::string> key_by_uid_;
  std::map<std::string, TimePoint> backoff_until_;  // by uid
  uint64_t subscription_ = 0;
  std::unique_ptr<WorkQueue> queue_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_SANDBOX_CONTROLLER_H_
