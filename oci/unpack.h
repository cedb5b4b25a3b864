// Safe unpacking of image layers (and of image archives) with libarchive.
//
// Input is untrusted. The unpacker reads tar streams compressed with gzip,
// zstd or nothing (libarchive autodetects), and:
//   - refuses entries whose path is absolute or has a ".." component;
//   - never writes through a symlink: every parent directory is opened
//     component by component with O_NOFOLLOW from a descriptor of the root, so
//     an entry "a/b" where "a" is a symlink (to "/etc", "../../etc", anywhere)
//     is refused rather than followed. Symlink entries themselves are created
//     as-is: absolute targets are normal in images and mean "inside the
//     container root";
//   - refuses hardlinks whose target is outside the root or does not exist
//     yet (in this or a lower layer), and device nodes (char and block);
//   - applies OCI whiteouts: ".wh.NAME" deletes NAME from lower layers,
//     ".wh..wh..opq" hides everything lower layers put in its directory;
//   - preserves mode bits (setuid included), numeric owner (when running as
//     root) and modification times; extended attributes are ignored.
// Errors in the input are InvalidArgument naming the entry; file-system
// failures are Internal. On error the destination is left half-written: the
// caller unpacks into a private directory and discards it.
//
// Thread safety: reentrant; concurrent unpacks must use different roots.
#ifndef SBX_OCI_UNPACK_H_
#define SBX_OCI_UNPACK_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace sbx::oci {

struct UnpackStats {
  int64_t entries = 0;     // archive entries applied, whiteouts included
  int64_t files = 0;       // regular files written
  int64_t file_bytes = 0;  // bytes of regular files written
  int64_t whiteouts = 0;   // whiteout and opaque markers applied
};

struct UnpackOptions {
  // Layers: true. Image archives (docker save, OCI layout tars) are plain
  // trees, where a ".wh." name is just a name.
  bool apply_whiteouts = true;
};

// Applies one layer blob on top of rootfs_dir (which must exist).
Status UnpackLayer(const std::string& blob_path, const std::string& rootfs_dir,
                   UnpackStats* stats = nullptr);

// Same rules, any tar archive into dest_dir.
Status UnpackArchive(const std::string& archive_path, const std::string& dest_dir,
                     const UnpackOptions& options, UnpackStats* stats = nullptr);

// "sha256:<hex>" of the layer after decompression: the layer's diff ID, as
// listed in the image config's rootfs.diff_ids.
Result<std::string> LayerDiffId(const std::string& blob_path);

}  // namespace sbx::oci

#endif  // SBX_OCI_UNPACK_H_
