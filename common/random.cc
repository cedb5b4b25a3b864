#include "common/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace sbx {
namespace {
void Fill(uint8_t* buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::getrandom(buf + off, n - off, 0);
    if (r < 0) {
      SBX_CHECK(errno == EINTR);
      continue;
    }
    off += static_cast<size_t>(r);
  }
}
constexpr char kHex[] = "0123456789abcdef";
}  // namespace

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> buf(bytes);
  Fill(buf.data(), bytes);
  std::string out;
  out.reserve(bytes * 2);
  for (uint8_t b : buf) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string NewUuid() {
  uint8_t b[16];
  Fill(b, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

std::string RandomNameSuffix(size_t n) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::vector<uint8_t> buf(n);
  Fill(buf.data(), n);
  std::string out;
  for (uint8_t b : buf) out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  return out;
}

}  // namespace sbx
