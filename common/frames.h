// The framing of an upgraded exec/attach stream between sbx and sbxd.
//
// After "101 Switching Protocols" (Upgrade: sbx-stream.v1) both sides send
// frames: one byte channel, four bytes big-endian payload length, payload.
// Channels follow Kubernetes' remotecommand numbering:
//   0 stdin  (client -> server; an empty payload means end of input)
//   1 stdout (server -> client)
//   2 stderr (server -> client)
//   3 status (server -> client, last frame: JSON {"exitCode": N} or a
//             Kubernetes Status object when the command could not run)
//   4 resize (client -> server, JSON {"width": W, "height": H}; reserved)
#ifndef SBX_COMMON_FRAMES_H_
#define SBX_COMMON_FRAMES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sbx::frames {

enum Channel : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kStatus = 3, kResize = 4 };

constexpr size_t kHeaderSize = 5;
constexpr size_t kMaxPayload = 1 << 20;
constexpr std::string_view kUpgradeProtocol = "sbx-stream.v1";

std::string Encode(Channel channel, std::string_view payload);

struct Frame {
  Channel channel;
  std::string payload;
};

// Accumulates bytes and yields complete frames.
class Decoder {
 public:
  void Feed(std::string_view data) { buffer_.append(data); }
  // Next complete frame, or nullopt if more bytes are needed. Sets *error on
  // an oversized frame (the stream is then unusable).
  std::optional<Frame> Next(bool* error);

 private:
  std::string buffer_;
  size_t offset_ = 0;
};

}  // namespace sbx::frames

#endif  // SBX_COMMON_FRAMES_H_
