// ApiServer: the Kubernetes-style REST API of sbxd, on top of HttpServer.
//
// Transport only: it parses the URL into (kind, namespace, name,
// subresource), hands blocking work (store, image store, runsc) to the
// worker pool through ResourceService and the session classes, and writes
// the answer. Errors become Kubernetes Status objects via http_status.
//
// Paths:
//   /version, /healthz
//   /api/v1/namespaces[/{name}]
//   /api/v1/namespaces/{ns}/{secrets|configmaps|events}[/{name}]
//   /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status|exec|log]]
//   /apis/{group}/{version}/{plural}                  (all namespaces)
//   /apis/sbx.dev/v1/images[/import|/pull|/prune|/{ref}]
//   /apis/sbx.dev/v1/registries/{login|logout}
//
// Loop-affine: Handle() runs on the loop thread.
#ifndef SBX_DAEMON_API_SERVER_H_
#define SBX_DAEMON_API_SERVER_H_

#include <memory>
#include <string>

#include "api/object.h"
#include "api/pod_validation.h"
#include "common/thread_set.h"
#include "common/time.h"
#include "daemon/event_loop.h"
#include "daemon/http_server.h"
#include "daemon/image_service.h"
#include "daemon/resource_service.h"
#include "daemon/runtime.h"
#include "daemon/sandbox_controller.h"
#include "oci/image_puller.h"
#include "oci/image_store.h"
#include "oci/registry_client.h"
#include "store/store.h"

namespace sbx::daemon {

struct ApiDeps {
  store::Store& store;
  oci::ImageStore& images;
  SandboxRuntime& runtime;
  SandboxController& controller;
  EventLoop& loop;
  WorkerPool& pool;
  const Clock& clock;
  api::Json version;  // served at /version
  api::PodPolicy pod_policy;
  // Registry pulls, collection and logins; null: not offered (404).
  ImageService* image_service = nullptr;
  oci::ImagePuller* puller = nullptr;
  oci::RegistryClient* registry = nullptr;
  std::string auth_file;  // where `sbx login` stores credentials (0600)
};

class ApiServer {
 public:
  explicit ApiServer(ApiDeps deps);
  // Waits for the threads of pulls and log follows in progress: stop the
  // HTTP server (which closes their responses) and cancel the registry
  // client first, so that they end.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;
  void Handle(HttpRequest req, std::shared_ptr<HttpResponder> resp);

  // True for requests whose body is spooled to a file (image import).
  static bool SpoolBody(const HttpRequest& req);

 private:
  struct Route;
  void Dispatch(const Route& route, HttpRequest req, std::shared_ptr<HttpResponder> resp);
  void HandleWatch(const Route& route, const HttpRequest& req, std::shared_ptr<HttpResponder> resp);
  void HandleExec(const Route& route, const HttpRequest& req, std::shared_ptr<HttpResponder> resp);
  void HandleLog(const Route& route, const HttpRequest& req, std::shared_ptr<HttpResponder> resp);
  void HandlePortForward(const Route& route, const HttpRequest& req, std::shared_ptr<HttpResponder> resp);
  Status Admit(const api::Object& obj);
  void HandleImages(const std::string& rest, HttpRequest req, std::shared_ptr<HttpResponder> resp);
  void HandlePull(const HttpRequest& req, std::shared_ptr<HttpResponder> resp);
  void HandleRegistries(const std::string& rest, HttpRequest req,
                        std::shared_ptr<HttpResponder> resp);

  ApiDeps deps_;
  ResourceService service_;
  // Work that outlives a request's handler: pulls and log follows.
  ThreadSet background_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_API_SERVER_H_
