// Pulling images from registries into the image store.
//
// A pull resolves the reference to a manifest (through an image index or a
// Docker manifest list, picking linux/<host architecture>), fetches the config
// and the layers the store does not have yet (several at a time), verifying
// every blob's size and digest as it streams into a private staging
// directory, and hands the result to ImageStore::Add, which unpacks it with the
// safe unpacker and makes it visible in one step. Nothing half-downloaded is
// ever visible: an interrupted pull leaves only its staging directory, which
// the store wipes when it opens.
//
// Concurrent pulls of the same reference share one pull: the second caller
// waits for the first and gets its result (and its progress from then on).
//
// Thread safety: Pull may be called from any number of threads.
#ifndef SBX_OCI_IMAGE_PULLER_H_
#define SBX_OCI_IMAGE_PULLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "oci/image_store.h"
#include "oci/registry_client.h"

namespace sbx::oci {

struct PullProgress {
  enum class Phase { kResolving, kDownloading, kUnpacking, kDone };
  std::string reference;  // normalised
  Phase phase = Phase::kResolving;
  std::string manifest_digest;
  struct Blob {
    std::string digest;
    int64_t size = 0;
    int64_t done = 0;     // bytes received (size when cached)
    bool cached = false;  // already in the store
  };
  std::vector<Blob> layers;
};

std::string_view PhaseName(PullProgress::Phase phase);

// Called on the pulling threads, a few times a second at most and at every
// phase change; must not block for long.
using PullObserver = std::function<void(const PullProgress&)>;

struct PullerOptions {
  std::string architecture;  // empty: this host's
  std::string variant;       // with architecture
  int parallel_layers = 4;
};

class ImagePuller {
 public:
  // `store` and `client` are borrowed and must outlive the puller.
  ImagePuller(ImageStore& store, RegistryClient& client, PullerOptions options = {});
  ~ImagePuller();
  ImagePuller(const ImagePuller&) = delete;
  ImagePuller& operator=(const ImagePuller&) = delete;

  // Pulls `reference` ("busybox", "ghcr.io/a/b:1", "x@sha256:...") and names
  // the stored image after it. Errors name the reference; a reference that
  // does not parse is InvalidArgument.
  Result<ImageRecord> Pull(const std::string& reference, const PullObserver& observer = nullptr);
  // Layers fetched at once by pulls that start from now on (at least 1).
  void SetParallelLayers(int n);

 private:
  struct InFlight;
  Result<ImageRecord> DoPull(const ImageReference& ref, InFlight& flight);

  ImageStore& store_;
  RegistryClient& client_;
  PullerOptions options_;
  std::atomic<int> parallel_layers_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // by normalised reference
};

}  // namespace sbx::oci

#endif  // SBX_OCI_IMAGE_PULLER_H_
