#include "oci/image_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/random.h"
#include "oci/digest.h"
#include "oci/layer_path.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/unpack.h"

namespace sbx::oci {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kOciLayoutFile = "oci-layout";
constexpr std::string_view kOciIndexFile = "index.json";
constexpr std::string_view kDockerManifestFile = "manifest.json";
constexpr std::string_view kBlobDir = "blobs/sha256/";

constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";
constexpr std::string_view kAnnotationContainerdName = "io.containerd.image.name";

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Images for other systems would unpack but never run.
Status CheckOs(const ImageConfig& config, const std::string& what) {
  if (!config.os.empty() && config.os != "linux") {
    return InvalidArgument(what + ": image is for " + Quote(config.os) + "; only linux images run");
  }
  return Status::Ok();
}

// Image references named by an index.json entry's annotations.
Result<std::vector<std::string>> NamesFromAnnotations(const Descriptor& d,
                                                      const std::string& where) {
  auto get = [&](std::string_view key) {
    auto it = d.annotations.find(std::string(key));
    return it == d.annotations.end() ? std::string() : it->second;
  };
  std::string containerd_name = get(kAnnotationContainerdName);
  std::string ref_name = get(kAnnotationRefName);
  // containerd writes the tag alone in ref.name; other tools a full name.
  bool ref_name_is_tag = !ref_name.empty() && ref_name.find_first_of("/:@") == std::string::npos;
  std::string text;
  if (!containerd_name.empty()) {
    text = containerd_name;
    size_t slash = text.rfind('/');
    bool has_tag = text.find('@') != std::string::npos ||
                   text.find(':', slash == std::string::npos ? 0 : slash) != std::string::npos;
    if (!has_tag && ref_name_is_tag) text += ":" + ref_name;
  } else if (!ref_name.empty() && !ref_name_is_tag) {
    text = ref_name;
  }
  if (text.empty()) return std::vector<std::string>{};
  Result<ImageReference> ref = ParseImageReference(text);
  if (!ref.ok()) return ref.status().Annotate(where + ".annotations");
  return std::vector<std::string>{ref->String()};
}

// Reads an open file to the end, hashing it, copying it to out_fd if valid.
Result<std::string> HashAndCopy(int in_fd, int out_fd) {
  Sha256 hash;
  std::string buf(1 << 16, '\0');
  for (;;) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out_fd, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", errno);
      }
      done += w;
    }
  }
  return hash.Digest();
}

std::string LayerMediaTypeByMagic(const std::string& path) {
  std::string head(4, '\0');
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ssize_t n = fd.valid() ? ::read(fd.get(), head.data(), head.size()) : 0;
  if (n >= 2 && head[0] == '\x1f' && head[1] == '\x8b') return std::string(kOciLayerGzipType);
  if (n == 4 && head == std::string("\x28\xb5\x2f\xfd", 4)) return std::string(kOciLayerZstdType);
  return std::string(kOciLayerTarType);
}

// "blobs/sha256/<hex>" and "<hex>.json" name their digest; other paths don't.
std::string DigestFromPath(std::string_view path) {
  std::string_view base = path;
  if (base.starts_with(kBlobDir)) {
    base.remove_prefix(kBlobDir.size());
  } else if (base.ends_with(".json")) {
    base.remove_suffix(5);
  } else {
    return "";
  }
  if (base.size() != 64 || !IsLowerHex(base)) return "";
  return std::string(kSha256Prefix) + std::string(base);
}

class SourceReader {
 public:
  SourceReader(UniqueFd root, std::string staging_dir, SourceOptions options)
      : root_(std::move(root)),
        staging_dir_(std::move(staging_dir)),
        options_(std::move(options)) {}

  Result<std::vector<SourceImage>> ReadOciLayout();
  Result<std::vector<SourceImage>> ReadDockerArchive();
  bool Has(std::string_view rel_path) const {
    return OpenFileInRoot(root_.get(), std::string(rel_path)).status().code() != Code::kNotFound;
  }

 private:
  Result<SourceImage> ReadManifest(const Descriptor& d);
  Result<Descriptor> PickPlatform(const Descriptor& index, const std::string& where);
  Result<std::string> ReadTopFile(std::string_view rel_path);
  // Verifies a file of the source against expected_digest (when not empty)
  // and expected_size (when >= 0) and places a copy in staging.
  Result<StagedBlob> Stage(const std::string& rel_path, const std::string& expected_digest,
                           int64_t expected_size, int64_t limit, const std::string& what);
  Result<StagedBlob> StageBytes(std::string_view data);
  Result<std::string> ReadStagedJson(const Descriptor& d, const std::string& what);
  void Merge(SourceImage image, std::vector<std::string> names, std::vector<SourceImage>* out);

  UniqueFd root_;
  std::string staging_dir_;
  SourceOptions options_;
  std::map<std::string, StagedBlob> staged_;  // by digest
};

Result<std::string> SourceReader::ReadTopFile(std::string_view rel_path) {
  std::string what(rel_path);
  Result<UniqueFd> fd = OpenFileInRoot(root_.get(), what);
  if (!fd.ok()) return fd.status().Annotate(what);
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus("stat " + what, errno);
  if (st.st_size > kMaxManifestBytes) {
    return TooLarge(what + " is " + std::to_string(st.st_size) + " bytes; the limit is " +
                    std::to_string(kMaxManifestBytes));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd->get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + what, errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

Result<StagedBlob> SourceReader::Stage(const std::string& rel_path,
                                       const std::string& expected_digest, int64_t expected_size,
                                       int64_t limit, const std::string& what) {
  std::string label = what + " " + (expected_digest.empty() ? rel_path : expected_digest);
  if (!expected_digest.empty()) {
    if (auto it = staged_.find(expected_digest); it != staged_.end()) {
      if (expected_size >= 0 && it->second.size != expected_size) {
        return InvalidArgument("size mismatch for " + label + ": descriptor says " +
                               std::to_string(expected_size) + " bytes, blob has " +
                               std::to_string(it->second.size));
      }
      return it->second;
    }
  }
  Result<UniqueFd> in = OpenFileInRoot(root_.get(), rel_path);
  if (!in.ok()) {
    if (in.status().code() == Code::kNotFound) {
      return InvalidArgument(label + " is missing from the image (" + rel_path + ")");
    }
    return in.status().Annotate(label);
  }
  struct stat st;
  if (::fstat(in->get(), &st) != 0) return ErrnoStatus("stat " + rel_path, errno);
  if (expected_size >= 0 && st.st_size < expected_size) {
    return InvalidArgument(label + " is truncated: " + std::to_string(st.st_size) + " of " +
                           std::to_string(expected_size) + " bytes");
  }
  if (expected_size >= 0 && st.st_size != expected_size) {
    return InvalidArgument("size mismatch for " + label + ": descriptor says " +
                           std::to_string(expected_size) + " bytes, blob has " +
                           std::to_string(st.st_size));
  }
  if (limit >= 0 && st.st_size > limit) {
    return TooLarge(label + " is " + std::to_string(st.st_size) + " bytes; the limit is " +
                    std::to_string(limit));
  }

  std::string tmp = JoinPath(staging_dir_, "incoming-" + RandomHex(8));
  std::string digest;
  bool linked = false;
  if (options_.source_is_private) {
    // Hash in place and link the very inode that was hashed: no copy.
    SBX_ASSIGN_OR_RETURN(digest, Sha256Fd(in->get()));
    std::string proc = "/proc/self/fd/" + std::to_string(in->get());
    linked = ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) == 0;
    if (!linked && ::lseek(in->get(), 0, SEEK_SET) != 0) {
      return ErrnoStatus("seek " + rel_path, errno);
    }
  }
  if (!linked) {
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out.valid()) return ErrnoStatus("create " + tmp, errno);
    Result<std::string> copied = HashAndCopy(in->get(), out.get());
    if (!copied.ok()) return copied.status().Annotate("copy " + rel_path);
    digest = *copied;
  }
  if (!expected_digest.empty() && digest != expected_digest) {
    ::unlink(tmp.c_str());
    return InvalidArgument("digest mismatch for " + expected_digest + ": " + what + " " + rel_path +
                           " hashes to " + digest);
  }
  StagedBlob blob{digest, JoinPath(staging_dir_, digest.substr(kSha256Prefix.size())),
                  static_cast<int64_t>(st.st_size)};
  if (::rename(tmp.c_str(), blob.path.c_str()) != 0) {
    return ErrnoStatus("rename " + tmp + " to " + blob.path, errno);
  }
  staged_[digest] = blob;
  return blob;
}

Result<StagedBlob> SourceReader::StageBytes(std::string_view data) {
  std::string digest = Sha256Digest(data);
  StagedBlob blob{digest, JoinPath(staging_dir_, digest.substr(kSha256Prefix.size())),
                  static_cast<int64_t>(data.size())};
  SBX_RETURN_IF_ERROR(WriteFileAtomic(blob.path, data));
  staged_[digest] = blob;
  return blob;
}

Result<std::string> SourceReader::ReadStagedJson(const Descriptor& d, const std::string& what) {
  if (d.size > kMaxManifestBytes) {
    return TooLarge(what + " " + d.digest + " is " + std::to_string(d.size) +
                    " bytes; the limit is " + std::to_string(kMaxManifestBytes));
  }
  std::string rel = std::string(kBlobDir) + d.digest.substr(kSha256Prefix.size());
  SBX_ASSIGN_OR_RETURN(StagedBlob blob, Stage(rel, d.digest, d.size, kMaxManifestBytes, what));
  return ReadFile(blob.path);
}

void SourceReader::Merge(SourceImage image, std::vector<std::string> names,
                         std::vector<SourceImage>* out) {
  SourceImage* target = nullptr;
  for (SourceImage& existing : *out) {
    if (existing.manifest_digest == image.manifest_digest) target = &existing;
  }
  if (target == nullptr) {
    out->push_back(std::move(image));
    target = &out->back();
  }
  for (std::string& n : names) {
    if (std::find(target->names.begin(), target->names.end(), n) == target->names.end()) {
      target->names.push_back(std::move(n));
    }
  }
}

Result<SourceImage> SourceReader::ReadManifest(const Descriptor& d) {
  SBX_ASSIGN_OR_RETURN(std::string text, ReadStagedJson(d, "manifest"));
  std::string what = "manifest " + d.digest;
  SBX_ASSIGN_OR_RETURN(ImageManifest m, ParseImageManifest(text, what));
  SourceImage image;
  image.manifest_digest = d.digest;
  image.blobs.push_back(staged_.at(d.digest));

  SBX_ASSIGN_OR_RETURN(std::string config_text, ReadStagedJson(m.config, "config"));
  SBX_ASSIGN_OR_RETURN(ParsedImageConfig parsed, ParseImageConfig(config_text));
  SBX_RETURN_IF_ERROR(CheckOs(parsed.config, what));
  image.config_digest = m.config.digest;
  image.config = std::move(parsed.config);
  image.blobs.push_back(staged_.at(m.config.digest));

  for (const Descriptor& ld : m.layers) {
    std::string rel = std::string(kBlobDir) + ld.digest.substr(kSha256Prefix.size());
    SBX_ASSIGN_OR_RETURN(StagedBlob blob, Stage(rel, ld.digest, ld.size, -1, "layer"));
    image.layers.push_back(blob);
    if (std::none_of(image.blobs.begin(), image.blobs.end(),
                     [&](const StagedBlob& b) { return b.digest == blob.digest; })) {
      image.blobs.push_back(blob);
    }
  }
  if (!parsed.diff_ids.empty() && parsed.diff_ids.size() != image.layers.size()) {
    return InvalidArgument(what + ": config lists " + std::to_string(parsed.diff_ids.size()) +
                           " diff_ids for " + std::to_string(image.layers.size()) + " layers");
  }
  return image;
}

Result<Descriptor> SourceReader::PickPlatform(const Descriptor& index, const std::string& where) {
  SBX_ASSIGN_OR_RETURN(std::string text, ReadStagedJson(index, "index"));
  std::string what = "index " + index.digest;
  SBX_ASSIGN_OR_RETURN(std::vector<Descriptor> manifests, ParseImageIndex(text, what));
  Result<Descriptor> d =
      oci::PickPlatform(manifests, options_.architecture, options_.variant, what);
  if (!d.ok()) return d.status().Annotate(where);
  return d;
}

Result<std::vector<SourceImage>> SourceReader::ReadOciLayout() {
  SBX_ASSIGN_OR_RETURN(std::string layout_text, ReadTopFile(kOciLayoutFile));
  SBX_ASSIGN_OR_RETURN(Json layout, ParseJsonDocument(layout_text, "oci-layout"));
  std::string version = layout.is_object() ? layout.value("imageLayoutVersion", "") : "";
  if (version != "1.0.0") {
    return InvalidArgument("oci-layout: unsupported imageLayoutVersion " + Quote(version));
  }
  SBX_ASSIGN_OR_RETURN(std::string index_text, ReadTopFile(kOciIndexFile));
  SBX_ASSIGN_OR_RETURN(Json index, ParseJsonDocument(index_text, "index.json"));
  if (!index.is_object()) return InvalidArgument("index.json: want a JSON object");
  if (index.value("schemaVersion", 0) != 2) {
    return InvalidArgument("index.json: schemaVersion must be 2");
  }
  auto manifests = index.find("manifests");
  if (manifests == index.end() || !manifests->is_array() || manifests->empty()) {
    return InvalidArgument("index.json: manifests: want a non-empty array");
  }
  std::vector<SourceImage> out;
  for (size_t i = 0; i < manifests->size(); ++i) {
    std::string where = "index.json manifests[" + std::to_string(i) + "]";
    SBX_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*manifests)[i], where));
    SBX_ASSIGN_OR_RETURN(std::vector<std::string> names, NamesFromAnnotations(d, where));
    if (IsIndexType(d.media_type)) {
      SBX_ASSIGN_OR_RETURN(Descriptor chosen, PickPlatform(d, where));
      SBX_ASSIGN_OR_RETURN(SourceImage image, ReadManifest(chosen));
      Merge(std::move(image), std::move(names), &out);
    } else if (IsManifestType(d.media_type)) {
      // Layouts may list one manifest per platform directly.
      if (!d.architecture.empty() && d.architecture != options_.architecture) {
        SBX_LOG(kInfo) << "image import: skipping " << d.digest << " for " << d.os << "/"
                       << d.architecture;
        continue;
      }
      SBX_ASSIGN_OR_RETURN(SourceImage image, ReadManifest(d));
      Merge(std::move(image), std::move(names), &out);
    } else {
      return InvalidArgument(where + ": unsupported media type " + Quote(d.media_type));
    }
  }
  if (out.empty()) {
    return InvalidArgument("index.json has no image for linux/" + options_.architecture);
  }
  return out;
}

Result<std::vector<SourceImage>> SourceReader::ReadDockerArchive() {
  SBX_ASSIGN_OR_RETURN(std::string text, ReadTopFile(kDockerManifestFile));
  SBX_ASSIGN_OR_RETURN(Json manifest, ParseJsonDocument(text, "manifest.json"));
  if (!manifest.is_array() || manifest.empty()) {
    return InvalidArgument("manifest.json: want a non-empty array");
  }
  std::vector<SourceImage> out;
  for (size_t i = 0; i < manifest.size(); ++i) {
    std::string where = "manifest.json[" + std::to_string(i) + "]";
    const Json& entry = manifest[i];
    if (!entry.is_object()) return InvalidArgument(where + ": want an object");
    auto config_path = entry.find("Config");
    if (config_path == entry.end() || !config_path->is_string()) {
      return InvalidArgument(where + ".Config: want a string");
    }
    auto layer_paths = entry.find("Layers");
    if (layer_paths == entry.end() || !layer_paths->is_array()) {
      return InvalidArgument(where + ".Layers: want an array of strings");
    }
    std::vector<std::string> names;
    if (auto tags = entry.find("RepoTags"); tags != entry.end() && !tags->is_null()) {
      if (!tags->is_array()) return InvalidArgument(where + ".RepoTags: want an array of strings");
      for (const Json& t : *tags) {
        if (!t.is_string()) return InvalidArgument(where + ".RepoTags: want an array of strings");
        Result<ImageReference> ref = ParseImageReference(t.get<std::string>());
        if (!ref.ok()) return ref.status().Annotate(where + ".RepoTags");
        names.push_back(ref->String());
      }
    }

    SourceImage image;
    std::string cpath = config_path->get<std::string>();
    SBX_ASSIGN_OR_RETURN(StagedBlob config_blob,
                         Stage(cpath, DigestFromPath(cpath), -1, kMaxManifestBytes, "config"));
    SBX_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_blob.path));
    SBX_ASSIGN_OR_RETURN(ParsedImageConfig parsed, ParseImageConfig(config_text));
    SBX_RETURN_IF_ERROR(CheckOs(parsed.config, where));
    image.config_digest = config_blob.digest;
    image.config = std::move(parsed.config);
    if (parsed.diff_ids.size() != layer_paths->size()) {
      return InvalidArgument(where + ": config lists " + std::to_string(parsed.diff_ids.size()) +
                             " diff_ids for " + std::to_string(layer_paths->size()) + " layers");
    }

    Json layer_descriptors = Json::array();
    for (size_t l = 0; l < layer_paths->size(); ++l) {
      const Json& p = (*layer_paths)[l];
      std::string lwhere = where + ".Layers[" + std::to_string(l) + "]";
      if (!p.is_string()) return InvalidArgument(lwhere + ": want a string");
      std::string lpath = p.get<std::string>();
      SBX_ASSIGN_OR_RETURN(StagedBlob blob, Stage(lpath, DigestFromPath(lpath), -1, -1, "layer"));
      // The archive names layers by their uncompressed digest (diff ID).
      const std::string& diff_id = parsed.diff_ids[l];
      std::string media_type = std::string(kOciLayerTarType);
      if (blob.digest != diff_id) {
        SBX_ASSIGN_OR_RETURN(std::string actual, LayerDiffId(blob.path));
        if (actual != diff_id) {
          return InvalidArgument("digest mismatch for " + diff_id + ": layer " + lpath +
                                 " hashes to " + actual);
        }
        media_type = LayerMediaTypeByMagic(blob.path);
      }
      image.layers.push_back(blob);
      layer_descriptors.push_back(
          Json{{"mediaType", media_type}, {"digest", blob.digest}, {"size", blob.size}});
    }
    // Docker computes the same kind of manifest when it pushes.
    Json synthesized = {
        {"schemaVersion", 2},
        {"mediaType", kOciManifestType},
        {"config",
         {{"mediaType", kOciConfigType}, {"digest", config_blob.digest}, {"size", config_blob.size}}},
        {"layers", std::move(layer_descriptors)},
    };
    SBX_ASSIGN_OR_RETURN(StagedBlob manifest_blob, StageBytes(synthesized.dump()));
    image.manifest_digest = manifest_blob.digest;
    image.blobs.push_back(manifest_blob);
    image.blobs.push_back(config_blob);
    for (const StagedBlob& b : image.layers) {
      if (std::none_of(image.blobs.begin(), image.blobs.end(),
                       [&](const StagedBlob& x) { return x.digest == b.digest; })) {
        image.blobs.push_back(b);
      }
    }
    Merge(std::move(image), std::move(names), &out);
  }
  return out;
}

}  // namespace

std::string HostArchitecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#else
  return "unknown";
#endif
}

Result<std::vector<SourceImage>> ReadImageSource(const std::string& source_dir,
                                                 const std::string& staging_dir,
                                                 const SourceOptions& options) {
  UniqueFd root(::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open " + source_dir, errno);
  SourceOptions opts = options;
  if (opts.architecture.empty()) {
    opts.architecture = HostArchitecture();
    opts.variant = HostVariant();
  }
  SourceReader reader(std::move(root), staging_dir, std::move(opts));
  if (reader.Has(kOciLayoutFile)) return reader.ReadOciLayout();
  if (reader.Has(kDockerManifestFile)) return reader.ReadDockerArchive();
  return InvalidArgument(
      "not an image: neither an OCI image layout (no oci-layout file) nor a docker save "
      "archive (no manifest.json)");
}

}  // namespace sbx::oci
