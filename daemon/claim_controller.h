// ClaimController binds each SandboxClaim to a Sandbox (reference §3.4).
//
// Resolution order on each pass: the Sandbox the claim is already bound to
// (status.sandbox.name / the sandbox-name annotation); a Sandbox named like
// the claim that the claim controls (an earlier cold start); otherwise a
// Ready member of the claim's warm pool, adopted; otherwise, after waiting
// up to `warm_wait` for a member to become Ready (not at all when the pool
// has replicas 0), a cold start: a new Sandbox named like the claim.
//
// Adoption is an ownership transfer in one store transaction — the member's
// labels, owner reference and pod metadata, the claim's annotation and its
// status (Ready forwarded from the member) — with no runsc call: the pod
// keeps running. The transaction re-checks that the pool still owns the
// member and that it is Ready, so two claims can never take the same
// member, and a crash leaves either the whole transfer or none of it.
//
// A bound claim forwards its Sandbox's Ready and Finished conditions and
// pod IPs, keeps the Sandbox's pod metadata in line with the template and
// spec.additionalPodMetadata, and expires as spec.lifecycle says
// (shutdownTime, ttlSecondsAfterFinished; Delete, DeleteForeground, Retain).
//
// Thread-safe; runs its own worker threads.
#ifndef SBX_DAEMON_CLAIM_CONTROLLER_H_
#define SBX_DAEMON_CLAIM_CONTROLLER_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/extensions.h"
#include "api/object.h"
#include "common/time.h"
#include "daemon/sandbox_index.h"
#include "daemon/workqueue.h"
#include "store/store.h"

namespace sbx::daemon {

struct ClaimOptions {
  size_t workers = 4;
  // How long a claim waits for a warm member to become Ready before it is
  // cold-started.
  std::chrono::milliseconds warm_wait{2000};
  // Label domains spec.additionalPodMetadata.labels may use (subdomains too).
  std::vector<std::string> allowed_label_domains{"sandbox.users.io"};
};

class ClaimController {
 public:
  // All references must outlive the controller. Register before
  // index.Start(): the constructor adds a listener to `index`.
  ClaimController(store::Store& store, SandboxIndex& index, const Clock& clock,
                  ClaimOptions options);
  ~ClaimController();

  void Start();
  void Stop();
  void Enqueue(const std::string& key);
  // Replaces warm_wait and allowed_label_domains (configuration reload); the
  // next reconcile of each claim uses them.
  void SetOptions(std::chrono::milliseconds warm_wait,
                  std::vector<std::string> allowed_label_domains);

 private:
  struct Pass;

  void OnSandbox(const SandboxSummary* old, const SandboxSummary* now);
  void Reconcile(const std::string& key);
  Status ReconcileClaim(Pass& p);
  Status Expire(Pass& p);
  Status Bind(Pass& p);
  // Tries to adopt a Ready member; returns whether the claim is now bound.
  Result<bool> AdoptWarm(Pass& p, const api::Object& pool, const api::Object& tmpl);
  Status ColdStart(Pass& p, const api::Object& tmpl);
  // Forwards the sandbox's Ready and Finished to the claim and keeps its pod
  // metadata in line with the template and the claim.
  Status Forward(Pass& p, const api::Object& sandbox, const api::Object* tmpl,
                 bool just_created = false);
  Status Reject(Pass& p, const std::string& reason, const std::string& message);
  Status WriteStatus(Pass& p);
  void Event(const api::Object& claim, std::string_view type, std::string_view reason,
             const std::string& message);
  void WaitForPool(const std::string& pool_key, const std::string& claim_key, bool waiting);

  store::Store& store_;
  SandboxIndex& index_;
  const Clock& clock_;
  std::mutex options_mu_;
  ClaimOptions options_;  // warm_wait, allowed_label_domains guarded by options_mu_

  std::mutex mu_;
  std::set<std::string> reserved_;                               // member uids being adopted
  std::map<std::string, std::set<std::string>> waiting_by_pool_;  // pool key -> claim keys
  uint64_t subscription_ = 0;
  std::unique_ptr<WorkQueue> queue_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_CLAIM_CONTROLLER_H_
