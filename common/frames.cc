#include "common/frames.h"

namespace sbx::frames {

std::string Encode(Channel channel, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  uint32_t n = static_cast<uint32_t>(payload.size());
  out += static_cast<char>(channel);
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(payload);
  return out;
}

std::optional<Frame> Decoder::Next(bool* error) {
  *error = false;
  size_t avail = buffer_.size() - offset_;
  if (avail < kHeaderSize) return std::nullopt;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  uint32_t n = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
  if (n > kMaxPayload) {
    *error = true;
    return std::nullopt;
  }
  if (avail < kHeaderSize + n) return std::nullopt;
  Frame f{static_cast<Channel>(p[0]), buffer_.substr(offset_ + kHeaderSize, n)};
  offset_ += kHeaderSize + n;
  if (offset_ > 65536 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return f;
}

}  // namespace sbx::frames
