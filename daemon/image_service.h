// ImageService: images for pods, as the kubelet's image manager does it.
//
// The controller asks, for each container of a pod it is about to start,
// whether its image is ready under the container's imagePullPolicy (Always,
// IfNotPresent, Never; defaulted by tag as Kubernetes does: Always for
// ":latest" or no tag, IfNotPresent otherwise). A missing image starts a pull
// in the background; the answer is then "pulling", and the sandboxes that
// asked are enqueued again when it ends. A failed pull backs off per sandbox
// and image (10 s doubling to 5 min by default): ErrImagePull first, then
// ImagePullBackOff until the next attempt. Each answer carries the event to
// record, once, as the kubelet records Pulling / Pulled / Failed / BackOff.
//
// It also collects images: Prune removes what no Sandbox or SandboxTemplate
// refers to, and a background check removes the oldest unused images while
// the image store's file system is fuller than the high threshold, down to
// the low one.
//
// Thread safety: all methods may be called from any thread.
#ifndef SBX_DAEMON_IMAGE_SERVICE_H_
#define SBX_DAEMON_IMAGE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_set.h"
#include "common/time.h"
#include "oci/image_puller.h"
#include "oci/image_store.h"
#include "store/store.h"

namespace sbx::daemon {

enum class PullPolicy { kAlways, kIfNotPresent, kNever };

// The container's imagePullPolicy, or Kubernetes' default for the image.
// InvalidArgument for a policy that is none of the three.
Result<PullPolicy> EffectivePullPolicy(const std::string& policy, const std::string& image);

struct ImageCheck {
  enum class State {
    kReady,      // image holds the record to run
    kPulling,    // a pull is under way; the owner is enqueued when it ends
    kFailed,     // the last pull failed (ErrImagePull)
    kBackOff,    // waiting before the next attempt (ImagePullBackOff)
    kNeverPull,  // Never and not present (ErrImageNeverPull)
  };
  State state = State::kReady;
  std::optional<oci::ImageRecord> image;
  std::string message;  // for the container's waiting state
  // kFailed / kBackOff: when to ask again.
  std::chrono::milliseconds retry_in{0};
  // An event to record now ("Normal"/"Warning", reason, message); empty
  // reason when there is nothing new.
  std::string event_type, event_reason, event_message;
};

// The waiting reason a container shows in this state ("ErrImagePull", ...);
// "ContainerCreating" while pulling.
std::string WaitingReason(ImageCheck::State state);

struct ImageServiceOptions {
  std::chrono::milliseconds backoff_initial{10000};
  std::chrono::milliseconds backoff_max{300000};
  // Disk usage (percent of the image store's file system) above which unused
  // images are removed, oldest first, until usage is at most the low mark.
  // 100 turns automatic collection off.
  int gc_high_percent = 85;
  int gc_low_percent = 80;
  std::chrono::milliseconds gc_interval{60000};
};

// Images referred to by the containers and init containers of Sandboxes and
// SandboxTemplates, by normalised name and by image ID. A user is named as
// `sbx image ls` shows it: "ns/name" for a Sandbox,
// "sandboxtemplate/ns/name" for a template.
struct ImagesInUse {
  std::map<std::string, std::vector<std::string>> by_id;    // image ID -> users
  std::map<std::string, std::vector<std::string>> by_name;  // normalised ref -> users
  bool Uses(const oci::ImageRecord& r) const;
};
ImagesInUse FindImagesInUse(store::Store& store, const oci::ImageStore& images);
// "sandbox ns/name" or "sandboxtemplate ns/name", for messages.
std::string DescribeImageUser(const std::string& user);

class ImageService {
 public:
  // Borrowed references must outlive the service. `on_pulled` is called on a
  // pull thread with the owners ("ns/name" keys) waiting for that pull.
  ImageService(oci::ImageStore& images, oci::ImagePuller& puller, store::Store& store,
               const Clock& clock, ImageServiceOptions options,
               std::function<void(const std::vector<std::string>&)> on_pulled);
  // Waits for the pulls in progress (callers cancel the registry client first).
  ~ImageService();
  ImageService(const ImageService&) = delete;
  ImageService& operator=(const ImageService&) = delete;

  // For one container image of the pod of sandbox `uid` (`key` = "ns/name").
  ImageCheck Ensure(const std::string& uid, const std::string& key, const std::string& image,
                    PullPolicy policy);
  // The pod started (or the sandbox went away): the next start pulls afresh
  // under Always, and back-off state is dropped.
  void Forget(const std::string& uid);

  // Removes unused images: unnamed ones, or all unused with `all`.
  Result<std::vector<oci::ImageRecord>> Prune(bool all);
  // One round of automatic collection (also run by the background thread).
  void CollectIfFull();
  // Changes the automatic collection thresholds (configuration reload) and
  // looks at the disk at once.
  void SetGcThresholds(int high_percent, int low_percent);

 private:
  struct Pull;   // one pull in progress or finished, shared by its owners
  struct Owner;  // one sandbox's view of one image
  void StartPull(const std::string& image);
  void GcLoop();

  oci::ImageStore& images_;
  oci::ImagePuller& puller_;
  store::Store& store_;
  const Clock& clock_;
  ImageServiceOptions options_;
  std::function<void(const std::vector<std::string>&)> on_pulled_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool gc_kick_ = false;
  // The thresholds in force (SetGcThresholds); options_ holds the first ones.
  std::atomic<int> gc_high_{85}, gc_low_{80};           // a pull ended: look at the disk now
  std::map<std::string, std::shared_ptr<Pull>> pulls_;  // by image as written
  std::map<std::string, Owner> owners_;                 // by uid + "\n" + image
  ThreadSet pull_threads_;
  std::thread gc_thread_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_IMAGE_SERVICE_H_
