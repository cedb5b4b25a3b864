// A stand-in for sbxd in CLI unit tests: a thread that accepts connections
// on a Unix socket in a temporary directory, parses each request and hands
// it to a test-supplied handler, which writes whatever bytes it likes.
// Requests are recorded for the test to inspect.
#ifndef SBX_TESTS_CLI_FAKE_SERVER_H_
#define SBX_TESTS_CLI_FAKE_SERVER_H_

#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sbx::cli::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
  std::string leftover;                        // bytes after the head of an Upgrade request
};

class FakeServer {
 public:
  // Writes the response (or anything else) to fd; the connection is closed
  // when the handler returns. Runs on the server thread.
  using Handler = std::function<void(const FakeRequest& request, int fd)>;

  explicit FakeServer(Handler handler);
  ~FakeServer();

  const std::string& socket_path() const { return socket_path_; }
  std::vector<FakeRequest> requests() const;

  // Response helpers.
  static void Send(int fd, std::string_view bytes);
  static void SendJson(int fd, int code, const nlohmann::json& body);
  static void SendStatus(int fd, int code, const std::string& reason, const std::string& message);
  // A chunked 200 response head; then SendChunk for each piece, then
  // SendChunk(fd, "") to end.
  static void SendChunkedHead(int fd, std::string_view content_type);
  static void SendChunk(int fd, std::string_view data);

 private:
  void Serve();

  Handler handler_;
  std::string dir_;
  std::string socket_path_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  mutable std::mutex mu_;
  std::vector<FakeRequest> requests_;
  std::thread thread_;
};

// A path -> handler table for the common case of canned JSON answers.
// Unmatched requests get a 404 Status. Keys are "METHOD target".
class Routes {
 public:
  void Json(const std::string& method_and_target, int code, nlohmann::json body);
  void Status(const std::string& method_and_target, int code, const std::string& reason,
              const std::string& message);
  // Answers in turn, the last one repeating.
  void Sequence(const std::string& method_and_target,
                std::vector<std::pair<int, nlohmann::json>> answers);
  FakeServer::Handler Handler();

 private:
  struct Route {
    std::vector<std::pair<int, nlohmann::json>> answers;
    size_t next = 0;
  };
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::map<std::string, Route>> routes_ =
      std::make_shared<std::map<std::string, Route>>();
};

nlohmann::json StatusBody(int code, const std::string& reason, const std::string& message);

}  // namespace sbx::cli::testing

#endif  // SBX_TESTS_CLI_FAKE_SERVER_H_
