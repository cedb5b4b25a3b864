#include "daemon/image_service.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "api/extensions.h"
#include "api/object.h"
#include "common/log.h"
#include "common/strings.h"
#include "oci/reference.h"

namespace sbx::daemon {
namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Seconds(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3fs", std::chrono::duration<double>(d).count());
  return buf;
}

// Percent of the file system holding `path` in use, as the kubelet counts it
// (capacity minus what an unprivileged writer could still use).
std::optional<double> DiskUsagePercent(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0 || st.f_blocks == 0) return std::nullopt;
  return 100.0 * static_cast<double>(st.f_blocks - st.f_bavail) / static_cast<double>(st.f_blocks);
}

}  // namespace

Result<PullPolicy> EffectivePullPolicy(const std::string& policy, const std::string& image) {
  if (policy == "Always") return PullPolicy::kAlways;
  if (policy == "IfNotPresent") return PullPolicy::kIfNotPresent;
  if (policy == "Never") return PullPolicy::kNever;
  if (!policy.empty()) {
    return InvalidArgument("imagePullPolicy: Unsupported value: " + Quote(policy) +
                           ": supported values: \"Always\", \"IfNotPresent\", \"Never\"");
  }
  auto ref = oci::ParseImageReference(image);
  if (!ref.ok()) return ref.status();
  if (!ref->digest.empty()) return PullPolicy::kIfNotPresent;
  // Kubernetes looks at the tag as written: none, or "latest", means Always.
  return ref->tag == "latest" ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
}

std::string WaitingReason(ImageCheck::State state) {
  switch (state) {
    case ImageCheck::State::kReady: return "";
    case ImageCheck::State::kPulling: return "ContainerCreating";
    case ImageCheck::State::kFailed: return "ErrImagePull";
    case ImageCheck::State::kBackOff: return "ImagePullBackOff";
    case ImageCheck::State::kNeverPull: return "ErrImageNeverPull";
  }
  return "";
}

bool ImagesInUse::Uses(const oci::ImageRecord& r) const {
  if (by_id.count(r.id) != 0) return true;
  return std::any_of(r.names.begin(), r.names.end(),
                     [&](const std::string& n) { return by_name.count(n) != 0; });
}

std::string DescribeImageUser(const std::string& user) {
  size_t slash = user.find('/');
  if (slash != std::string::npos && user.find('/', slash + 1) != std::string::npos) {
    return user.substr(0, slash) + " " + user.substr(slash + 1);
  }
  return "sandbox " + user;
}

ImagesInUse FindImagesInUse(store::Store& store, const oci::ImageStore& images) {
  ImagesInUse u;
  auto add = [](std::vector<std::string>& users, const std::string& who) {
    if (users.empty() || users.back() != who) users.push_back(who);
  };
  auto scan = [&](const char* group, const char* kind) {
    auto list = store.List(group, kind, {});
    if (!list.ok()) return;
    for (const api::Object& o : list->items) {
      std::string who =
          kind == std::string_view("Sandbox") ? o.Key() : ToLower(kind) + "/" + o.Key();
      const api::Json& spec = api::Field(api::Field(api::Field(o.body, "spec"), "podTemplate"),
                                         "spec");
      for (const char* field : {"initContainers", "containers"}) {
        const api::Json& cs = api::Field(spec, field);
        if (!cs.is_array()) continue;
        for (const api::Json& c : cs) {
          std::string image = api::StringField(c, "image");
          if (image.empty()) continue;
          if (auto r = images.Resolve(image); r.ok()) add(u.by_id[r->id], who);
          if (auto ref = oci::ParseImageReference(image); ref.ok()) {
            add(u.by_name[ref->String()], who);
          }
        }
      }
    }
  };
  scan("agents.x-k8s.io", "Sandbox");
  scan(api::kExtensionsGroup, api::kTemplateKind);
  return u;
}

struct ImageService::Pull {
  bool done = false;
  Result<oci::ImageRecord> result = Internal("pull in progress");
  TimePoint started;
  TimePoint finished;
  std::set<std::string> waiting;  // owner keys to enqueue when done
};

struct ImageService::Owner {
  std::shared_ptr<Pull> pull;  // started or joined, until its result is seen
  std::optional<oci::ImageRecord> pulled;
  int failures = 0;
  TimePoint retry_at;
  std::string last_error;
  bool backoff_reported = false;
  bool never_reported = false;
};

ImageService::ImageService(oci::ImageStore& images, oci::ImagePuller& puller, store::Store& store,
                           const Clock& clock, ImageServiceOptions options,
                           std::function<void(const std::vector<std::string>&)> on_pulled)
    : images_(images),
      puller_(puller),
      store_(store),
      clock_(clock),
      options_(options),
      on_pulled_(std::move(on_pulled)) {
  gc_high_ = options_.gc_high_percent;
  gc_low_ = options_.gc_low_percent;
  gc_thread_ = std::thread([this] { GcLoop(); });
}

ImageService::~ImageService() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  pull_threads_.JoinAll();
  if (gc_thread_.joinable()) gc_thread_.join();
}

ImageCheck ImageService::Ensure(const std::string& uid, const std::string& key,
                                const std::string& image, PullPolicy policy) {
  ImageCheck out;
  auto present = images_.Resolve(image);
  std::lock_guard<std::mutex> l(mu_);
  Owner& o = owners_[uid + "\n" + image];
  if (policy == PullPolicy::kNever ||
      (policy == PullPolicy::kIfNotPresent && present.ok() && !o.pull)) {
    if (present.ok()) {
      out.image = *present;
      return out;
    }
    out.state = ImageCheck::State::kNeverPull;
    out.message = "Container image " + Quote(image) + " is not present with pull policy of Never";
    if (!o.never_reported) {
      o.never_reported = true;
      out.event_type = "Warning";
      out.event_reason = "ErrImageNeverPull";
      out.event_message = out.message;
    }
    return out;
  }
  if (o.pulled) {
    out.image = o.pulled;
    return out;
  }
  TimePoint now = clock_.Now();
  if (o.pull && o.pull->done) {
    std::shared_ptr<Pull> p = std::move(o.pull);
    if (p->result.ok()) {
      o.pulled = *p->result;
      o.failures = 0;
      out.image = o.pulled;
      out.event_type = "Normal";
      out.event_reason = "Pulled";
      out.event_message = "Successfully pulled image " + Quote(image) + " in " +
                          Seconds(p->finished - p->started) +
                          ". Image size: " + std::to_string(p->result->size_bytes) + " bytes.";
      return out;
    }
    ++o.failures;
    std::chrono::milliseconds delay = std::min<std::chrono::milliseconds>(
        options_.backoff_initial * (1 << std::min(o.failures - 1, 10)),
                          options_.backoff_max);
    o.retry_at = now + delay;
    o.last_error = p->result.status().message();
    o.backoff_reported = false;
    out.state = ImageCheck::State::kFailed;
    out.retry_in = delay;
    out.message = "Failed to pull image " + Quote(image) + ": " + o.last_error;
    out.event_type = "Warning";
    out.event_reason = "Failed";
    out.event_message = out.message;
    return out;
  }
  if (o.pull) {
    o.pull->waiting.insert(key);
    out.state = ImageCheck::State::kPulling;
    out.message = "Pulling image " + Quote(image);
    return out;
  }
  if (o.failures > 0 && now < o.retry_at) {
    out.state = ImageCheck::State::kBackOff;
    out.retry_in = std::chrono::duration_cast<std::chrono::milliseconds>(o.retry_at - now);
    out.message = "Back-off pulling image " + Quote(image) + ": " + o.last_error;
    if (!o.backoff_reported) {
      o.backoff_reported = true;
      out.event_type = "Normal";
      out.event_reason = "BackOff";
      out.event_message = "Back-off pulling image " + Quote(image);
    }
    return out;
  }
  if (stopping_) {
    out.state = ImageCheck::State::kPulling;
    out.message = "Pulling image " + Quote(image);
    return out;
  }
  auto it = pulls_.find(image);
  if (it == pulls_.end()) {
    auto p = std::make_shared<Pull>();
    p->started = now;
    it = pulls_.emplace(image, p).first;
    StartPull(image);
  }
  it->second->waiting.insert(key);
  o.pull = it->second;
  out.state = ImageCheck::State::kPulling;
  out.message = "Pulling image " + Quote(image);
  out.event_type = "Normal";
  out.event_reason = "Pulling";
  out.event_message = out.message;
  return out;
}

void ImageService::StartPull(const std::string& image) {
  // mu_ is held.
  pull_threads_.Start([this, image] {
    Result<oci::ImageRecord> r = puller_.Pull(image);
    if (!r.ok()) {
      SBX_LOG(kWarning).With("image", image)
          << "image pull " << image << ": " << r.status().message();
    }
    std::vector<std::string> waiting;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = pulls_.find(image);
      if (it != pulls_.end()) {
        it->second->done = true;
        it->second->result = r;
        it->second->finished = clock_.Now();
        waiting.assign(it->second->waiting.begin(), it->second->waiting.end());
        pulls_.erase(it);
      }
    }
    if (on_pulled_ && !waiting.empty()) on_pulled_(waiting);
    if (r.ok()) {  // the collector looks at the disk again
      std::lock_guard<std::mutex> l(mu_);
      gc_kick_ = true;
      cv_.notify_all();
    }
  });
}

void ImageService::Forget(const std::string& uid) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = owners_.lower_bound(uid + "\n");
       it != owners_.end() && it->first.starts_with(uid + "\n");) {
    it = owners_.erase(it);
  }
}

Result<std::vector<oci::ImageRecord>> ImageService::Prune(bool all) {
  ImagesInUse in_use = FindImagesInUse(store_, images_);
  return images_.Prune([&](const oci::ImageRecord& r) {
    return !in_use.Uses(r) && (all || r.names.empty());
  });
}

void ImageService::SetGcThresholds(int high_percent, int low_percent) {
  {
    std::lock_guard<std::mutex> l(mu_);
    gc_high_ = high_percent;
    gc_low_ = low_percent;
    gc_kick_ = true;
  }
  cv_.notify_all();
}

void ImageService::CollectIfFull() {
  const int high = gc_high_, low = gc_low_;
  if (high >= 100) return;
  auto usage = DiskUsagePercent(images_.root());
  if (!usage || *usage <= high) return;
  SBX_LOG(kInfo) << "image collection: disk " << static_cast<int>(*usage) << "% used (high " << high
                 << "%, low " << low << "%)";
  ImagesInUse in_use = FindImagesInUse(store_, images_);
  std::vector<oci::ImageRecord> candidates;
  for (const oci::ImageRecord& r : images_.List()) {
    if (!in_use.Uses(r)) candidates.push_back(r);
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const oci::ImageRecord& a, const oci::ImageRecord& b) {
              return a.created_at < b.created_at;
            });
  for (const oci::ImageRecord& victim : candidates) {
    auto now_usage = DiskUsagePercent(images_.root());
    if (!now_usage || *now_usage <= low) break;
    auto removed = images_.Prune([&](const oci::ImageRecord& r) { return r.id == victim.id; });
    if (!removed.ok()) {
      SBX_LOG(kWarning) << "image collection: " << removed.status().message();
      break;
    }
  }
  if (auto after = DiskUsagePercent(images_.root()); after && *after > low) {
    SBX_LOG(kWarning) << "image collection: disk still " << static_cast<int>(*after)
                      << "% used; the remaining images are in use";
  }
}

void ImageService::GcLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    gc_kick_ = false;
    l.unlock();
    CollectIfFull();
    l.lock();
    cv_.wait_for(l, options_.gc_interval, [this] { return stopping_ || gc_kick_; });
  }
}

}  // namespace sbx::daemon
