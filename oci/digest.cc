#include "oci/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"

namespace sbx::oci {

struct Sha256::Impl {
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx{EVP_MD_CTX_new()};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  // Allocation or init failure of a built-in digest is not an input error.
  SBX_CHECK(impl_->ctx != nullptr);
  SBX_CHECK(EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() = default;

void Sha256::Update(std::string_view data) {
  SBX_CHECK(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) == 1);
}

std::string Sha256::Digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  SBX_CHECK(EVP_DigestFinal_ex(impl_->ctx.get(), md, &len) == 1);
  return std::string(kSha256Prefix) +
         HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string Sha256Digest(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Digest();
}

Result<std::string> Sha256Fd(int fd, int64_t* size) {
  Sha256 h;
  int64_t total = 0;
  std::string buf(1 << 16, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    total += n;
  }
  if (size != nullptr) *size = total;
  return h.Digest();
}

Result<std::string> Sha256File(const std::string& path, int64_t* size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  Result<std::string> r = Sha256Fd(fd.get(), size);
  if (!r.ok()) return r.status().Annotate(path);
  return r;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> ValidateDigest(std::string_view digest) {
  std::string quoted = "\"" + std::string(digest) + "\"";
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("invalid digest " + quoted + ": want sha256:<64 hex digits>");
  }
  if (digest.substr(0, colon + 1) != kSha256Prefix) {
    return InvalidArgument("unsupported digest algorithm in " + quoted +
                           ": only sha256 is supported");
  }
  std::string_view hex = digest.substr(colon + 1);
  if (hex.size() != 64 || !IsLowerHex(hex)) {
    return InvalidArgument("invalid digest " + quoted + ": want sha256:<64 lower-case hex digits>");
  }
  return std::string(hex);
}

}  // namespace sbx::oci
