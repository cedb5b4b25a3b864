#include "oci/image_puller.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/reference.h"

namespace sbx::oci {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kProgressInterval = std::chrono::milliseconds(200);

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

std::string_view PhaseName(PullProgress::Phase phase) {
  switch (phase) {
    case PullProgress::Phase::kResolving: return "resolving";
    case PullProgress::Phase::kDownloading: return "downloading";
    case PullProgress::Phase::kUnpacking: return "unpacking";
    case PullProgress::Phase::kDone: return "done";
  }
  return "unknown";
}

struct ImagePuller::InFlight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Result<ImageRecord> result = Internal("pull not finished");
  std::vector<PullObserver> observers;
  PullProgress progress;
  SteadyClock::time_point last_report{};

  // Reports the progress to every observer; `force` for phase changes.
  void Report(bool force) {
    std::vector<PullObserver> to_call;
    PullProgress snapshot;
    {
      std::lock_guard<std::mutex> l(mu);
      auto now = SteadyClock::now();
      if (!force && now - last_report < kProgressInterval) return;
      last_report = now;
      to_call = observers;
      snapshot = progress;
    }
    for (const PullObserver& o : to_call) o(snapshot);
  }
};

ImagePuller::ImagePuller(ImageStore& store, RegistryClient& client, PullerOptions options)
    : store_(store), client_(client), options_(std::move(options)) {
  if (options_.architecture.empty()) {
    options_.architecture = HostArchitecture();
    options_.variant = HostVariant();
  }
  options_.parallel_layers = std::max(1, options_.parallel_layers);
  parallel_layers_ = options_.parallel_layers;
}

ImagePuller::~ImagePuller() = default;

Result<ImageRecord> ImagePuller::Pull(const std::string& reference, const PullObserver& observer) {
  Result<ImageReference> ref = ParseImageReference(reference);
  if (!ref.ok()) return ref.status();
  std::string key = ref->String();
  std::shared_ptr<InFlight> flight;
  bool owner = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      flight = std::make_shared<InFlight>();
      flight->progress.reference = key;
      in_flight_[key] = flight;
      owner = true;
    } else {
      flight = it->second;
    }
  }
  if (observer) {
    std::lock_guard<std::mutex> l(flight->mu);
    flight->observers.push_back(observer);
  }
  if (!owner) {
    std::unique_lock<std::mutex> l(flight->mu);
    flight->cv.wait(l, [&] { return flight->done; });
    return flight->result;
  }
  Result<ImageRecord> result = DoPull(*ref, *flight);
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.erase(key);
  }
  {
    std::lock_guard<std::mutex> l(flight->mu);
    flight->result = result;
    flight->done = true;
    if (result.ok()) flight->progress.phase = PullProgress::Phase::kDone;
  }
  if (result.ok()) flight->Report(true);
  flight->cv.notify_all();
  return result;
}

void ImagePuller::SetParallelLayers(int n) { parallel_layers_ = std::max(1, n); }

Result<ImageRecord> ImagePuller::DoPull(const ImageReference& ref, InFlight& flight) {
  auto set_phase = [&](PullProgress::Phase phase) {
    {
      std::lock_guard<std::mutex> l(flight.mu);
      flight.progress.phase = phase;
    }
    flight.Report(true);
  };
  set_phase(PullProgress::Phase::kResolving);
  SBX_ASSIGN_OR_RETURN(std::string staging, store_.NewStagingDir("pull"));
  ScopedRemoveAll cleanup(staging, "image pull");

  std::vector<StagedBlob> documents;  // index, manifest, config: written to staging
  auto stage_bytes = [&](const std::string& digest, const std::string& body) -> Result<StagedBlob> {
    if (auto stored = store_.StoredBlob(digest)) {
      return StagedBlob{digest, *stored, static_cast<int64_t>(body.size())};
    }
    StagedBlob b{digest, JoinPath(staging, digest.substr(kSha256Prefix.size())),
                 static_cast<int64_t>(body.size())};
    SBX_RETURN_IF_ERROR(WriteFileAtomic(b.path, body, 0644));
    return b;
  };

  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  SBX_ASSIGN_OR_RETURN(FetchedManifest top, client_.GetManifest(ref, reference));
  FetchedManifest manifest = top;
  if (IsIndexType(top.media_type)) {
    std::string what = "index " + top.digest;
    SBX_ASSIGN_OR_RETURN(std::vector<Descriptor> entries, ParseImageIndex(top.body, what));
    SBX_ASSIGN_OR_RETURN(Descriptor chosen,
                         PickPlatform(entries, options_.architecture, options_.variant, what));
    SBX_ASSIGN_OR_RETURN(documents.emplace_back(), stage_bytes(top.digest, top.body));
    SBX_ASSIGN_OR_RETURN(manifest, client_.GetManifest(ref, chosen.digest));
    if (!IsManifestType(manifest.media_type)) {
      return InvalidArgument(what + ": entry " + chosen.digest + " is a " +
                             Quote(manifest.media_type) + ", not an image manifest");
    }
  }
  std::string what = "manifest " + manifest.digest;
  SBX_ASSIGN_OR_RETURN(ImageManifest m, ParseImageManifest(manifest.body, what));
  SBX_ASSIGN_OR_RETURN(documents.emplace_back(), stage_bytes(manifest.digest, manifest.body));
  {
    std::lock_guard<std::mutex> l(flight.mu);
    flight.progress.manifest_digest = manifest.digest;
  }

  SourceImage image;
  image.names = {ref.String()};
  image.manifest_digest = manifest.digest;
  image.config_digest = m.config.digest;

  // The config: small, verified like any blob.
  if (m.config.size > kMaxManifestBytes) {
    return TooLarge("config " + m.config.digest + " is " + std::to_string(m.config.size) +
                    " bytes; the limit is " + std::to_string(kMaxManifestBytes));
  }
  std::string config_path;
  if (auto stored = store_.StoredBlob(m.config.digest)) {
    config_path = *stored;
  } else {
    config_path = JoinPath(staging, m.config.digest.substr(kSha256Prefix.size()));
    SBX_RETURN_IF_ERROR(client_.GetBlob(ref, m.config.digest, m.config.size, config_path));
  }
  SBX_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path));
  SBX_ASSIGN_OR_RETURN(ParsedImageConfig parsed, ParseImageConfig(config_text));
  if (!parsed.config.os.empty() && parsed.config.os != "linux") {
    return InvalidArgument(what + ": image is for " + Quote(parsed.config.os) +
                           "; only linux images run");
  }
  if (!parsed.config.architecture.empty() && parsed.config.architecture != options_.architecture) {
    return InvalidArgument(what + ": image is for linux/" + parsed.config.architecture +
                           "; this host runs linux/" + options_.architecture);
  }
  if (!parsed.diff_ids.empty() && parsed.diff_ids.size() != m.layers.size()) {
    return InvalidArgument(what + ": config lists " + std::to_string(parsed.diff_ids.size()) +
                           " diff_ids for " + std::to_string(m.layers.size()) + " layers");
  }
  image.config = parsed.config;
  documents.push_back({m.config.digest, config_path, m.config.size});

  // Layers: the store's copies where it has them, the rest downloaded.
  std::vector<StagedBlob> layers(m.layers.size());
  std::vector<size_t> to_fetch;
  {
    std::lock_guard<std::mutex> l(flight.mu);
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const Descriptor& d = m.layers[i];
      PullProgress::Blob b{d.digest, d.size, 0, false};
      if (auto stored = store_.StoredBlob(d.digest)) {
        layers[i] = {d.digest, *stored, d.size};
        b.cached = true;
        b.done = d.size;
      } else {
        layers[i] = {d.digest, JoinPath(staging, d.digest.substr(kSha256Prefix.size())), d.size};
        // The same blob twice in one image is fetched once.
        bool dup = std::any_of(to_fetch.begin(), to_fetch.end(),
                               [&](size_t j) { return m.layers[j].digest == d.digest; });
        if (!dup) to_fetch.push_back(i);
      }
      flight.progress.layers.push_back(b);
    }
  }
  set_phase(PullProgress::Phase::kDownloading);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  Status first_error;
  auto worker = [&] {
    for (;;) {
      size_t k = next.fetch_add(1);
      if (k >= to_fetch.size() || failed.load()) return;
      size_t i = to_fetch[k];
      const Descriptor& d = m.layers[i];
      std::string partial = layers[i].path + ".partial";
      Status s = client_.GetBlob(ref, d.digest, d.size, partial, [&, i](int64_t bytes) {
        {
          std::lock_guard<std::mutex> l(flight.mu);
          flight.progress.layers[i].done = bytes;
        }
        flight.Report(false);
      });
      if (s.ok() && ::rename(partial.c_str(), layers[i].path.c_str()) != 0) {
        s = ErrnoStatus("rename " + partial, errno);
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(error_mu);
        if (first_error.ok()) first_error = s.Annotate("layer " + d.digest);
        failed = true;
        return;
      }
    }
  };
  size_t n_threads =
      std::min<size_t>(static_cast<size_t>(parallel_layers_.load()), to_fetch.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  if (n_threads > 0) worker();
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;

  image.layers = layers;
  image.blobs = documents;
  for (const StagedBlob& b : layers) {
    if (std::none_of(image.blobs.begin(), image.blobs.end(),
                     [&](const StagedBlob& x) { return x.digest == b.digest; })) {
      image.blobs.push_back(b);
    }
  }
  set_phase(PullProgress::Phase::kUnpacking);
  return store_.Add(image, staging);
}

}  // namespace sbx::oci
