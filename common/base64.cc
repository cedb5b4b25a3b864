#include "common/base64.h"

namespace sbx {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

Status Illegal(size_t at) {
  return InvalidArgument("illegal base64 data at input byte " + std::to_string(at));
}
}  // namespace

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  // Go's decoder, which Kubernetes uses, skips line breaks; offsets in errors
  // are into the original text.
  std::string out;
  out.reserve(text.size() / 4 * 3);
  int vals[4];
  int n = 0;    // characters in the current quantum
  int pad = 0;  // '=' seen in the current quantum
  bool done = false;
  for (size_t at = 0; at < text.size(); ++at) {
    char c = text[at];
    if (c == '\r' || c == '\n') continue;
    if (done) return Illegal(at);
    if (c == '=') {
      // Padding only in the last two positions of the final quantum.
      if (n < 2) return Illegal(at);
      vals[n++] = 0;
      ++pad;
    } else {
      if (pad > 0) return Illegal(at);
      vals[n] = DecodeChar(c);
      if (vals[n] < 0) return Illegal(at);
      ++n;
    }
    if (n == 4) {
      uint32_t v = (vals[0] << 18) | (vals[1] << 12) | (vals[2] << 6) | vals[3];
      out += char(v >> 16);
      if (pad < 2) out += char((v >> 8) & 0xff);
      if (pad < 1) out += char(v & 0xff);
      done = pad > 0;
      n = 0;
    }
  }
  if (n != 0) return Illegal(text.size());
  return out;
}

}  // namespace sbx
