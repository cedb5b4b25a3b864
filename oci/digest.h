// SHA-256 digests in the OCI form "sha256:<64 lower-case hex>".
//
// Sha256 hashes a stream incrementally (OpenSSL EVP); the helpers hash a
// buffer, a file or an open descriptor. Thread safety: a Sha256 object is
// used by one thread at a time; the free functions are reentrant.
#ifndef SBX_OCI_DIGEST_H_
#define SBX_OCI_DIGEST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sbx::oci {

inline constexpr std::string_view kSha256Prefix = "sha256:";

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Finishes the hash and returns "sha256:<hex>". The object must not be
  // updated afterwards.
  std::string Digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of a buffer.
std::string Sha256Digest(std::string_view data);

// "sha256:<hex>" of a whole file. `size` (optional) receives the byte count.
Result<std::string> Sha256File(const std::string& path, int64_t* size = nullptr);
// Same, reading an open descriptor from its current offset to the end.
Result<std::string> Sha256Fd(int fd, int64_t* size = nullptr);

// Lower-case hex of raw bytes.
std::string HexEncode(std::string_view bytes);
bool IsLowerHex(std::string_view s);

// Checks "sha256:<64 lower-case hex>" and returns the hex part (the blob's
// file name). Other algorithms are refused: InvalidArgument naming the digest.
Result<std::string> ValidateDigest(std::string_view digest);

}  // namespace sbx::oci

#endif  // SBX_OCI_DIGEST_H_
