// Port forwarding: one TCP connection to a port of a sandbox, carried over
// an upgraded API connection (Upgrade: sbx-stream.v1), the way `kubectl
// port-forward` carries one over the API server. `sbx port-forward` opens one
// API connection per accepted local connection.
//
// Frames (common/frames.h) on the upgraded connection:
//   0  client -> sandbox bytes; an empty payload: the client sent all it will
//      (the TCP connection's write side is shut down)
//   1  sandbox -> client bytes; an empty payload: the sandbox sent all
//   3  status, the last frame: {"error": "..."} when the connection broke
// The API connection closes once both directions are finished.
//
// Flow control both ways: reading from the sandbox stops while more than
// kHighWater bytes wait for the client, and reading from the client stops
// while more than kHighWater bytes wait for the sandbox.
#ifndef SBX_DAEMON_PORT_FORWARD_H_
#define SBX_DAEMON_PORT_FORWARD_H_

#include <memory>

#include "daemon/event_loop.h"
#include "daemon/http_server.h"

namespace sbx::daemon {

// Loop thread only. Takes the connected socket `fd` (daemon/dial.h), sends 101 on `resp` and
// forwards until both sides are done or either goes away.
void StartPortForward(EventLoop& loop, int fd, std::shared_ptr<HttpResponder> resp);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_PORT_FORWARD_H_
