#include "daemon/pod_builder.h"

#include "api/extensions.h"
#include "common/fs.h"
#include "common/strings.h"
#include "daemon/container_env.h"
#include "daemon/network_policy.h"
#include "oci/bundle.h"
#include "oci/seccomp.h"

namespace sbx::daemon {

namespace {

constexpr char kPodPath[] = "spec.podTemplate.spec";
constexpr char kExecBinary[] = "exec";
constexpr char kSeccompProgram[] = "seccomp.bpf";

// Leaves an identical file alone: a running container may be reading it.
Status WriteIfChanged(const std::string& path, std::string_view data, int mode) {
  if (auto cur = ReadFile(path); cur.ok() && *cur == data) return Status::Ok();
  return WriteFileAtomic(path, data, mode);
}

}  // namespace

std::vector<std::string> SeccompExecArgv(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {JoinPath(kExecDir, kExecBinary), "--seccomp-exec",
                                   JoinPath(kExecDir, kSeccompProgram), "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

std::vector<PodContainer> PodContainers(const api::PodSpec& spec) {
  std::vector<PodContainer> out;
  for (size_t i = 0; i < spec.init_containers.size(); ++i) {
    const api::Container& c = spec.init_containers[i];
    PodContainer pc;
    pc.kind = c.raw.value("restartPolicy", std::string()) == "Always" ? PodContainer::Kind::kSidecar
                                                                     : PodContainer::Kind::kInit;
    pc.name = c.name;
    pc.path = std::string(kPodPath) + ".initContainers[" + std::to_string(i) + "]";
    pc.spec = &c;
    out.push_back(pc);
  }
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    PodContainer pc;
    pc.name = spec.containers[i].name;
    pc.path = std::string(kPodPath) + ".containers[" + std::to_string(i) + "]";
    pc.spec = &spec.containers[i];
    out.push_back(pc);
  }
  return out;
}

PodBuilder::PodBuilder(store::Store& store, oci::ImageStore& images, VolumeManager& volumes,
                       PodSettings settings)
    : store_(store), images_(images), volumes_(volumes), settings_(std::move(settings)) {}

ObjectGetter PodBuilder::Getter(const std::string& ns) const {
  return [this, ns](const std::string& kind, const std::string& name) {
    return store_.Get({"", kind, ns, name});
  };
}

Result<oci::BundleMount> PodBuilder::WriteExecSupport(const api::Json& seccomp,
                                                      const std::string& container_dir,
                                                      const std::string& source) const {
  if (settings_.pause_binary.empty()) {
    return FailedPrecondition("no sbx-pause binary configured (--pause-binary)");
  }
  SBX_ASSIGN_OR_RETURN(std::string program, oci::CompileSeccompBpf(seccomp, source));
  SBX_ASSIGN_OR_RETURN(std::string pause, ReadFile(settings_.pause_binary));
  // The container's directory holds its bundle (0700, as WriteBundle makes
  // it); only the mounted directory is open to the container's users.
  SBX_RETURN_IF_ERROR(MakeDirs(container_dir, 0700));
  const std::string dir = JoinPath(container_dir, "sbx");
  SBX_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  SBX_RETURN_IF_ERROR(WriteIfChanged(JoinPath(dir, kSeccompProgram), program, 0644));
  SBX_RETURN_IF_ERROR(WriteIfChanged(JoinPath(dir, kExecBinary), pause, 0755));
  return oci::BundleMount{kExecDir, "bind", dir, {"rbind", "ro"}};
}

Result<PodLaunch> PodBuilder::BuildPod(const api::Sandbox& sb, const std::string& sandbox_dir,
                                       PodVolumes* volumes, BuildFailure* failure) {
  const api::Json& pod_spec = sb.spec.pod_template.spec.raw;
  auto resources = PodResources(pod_spec, settings_.resources);
  if (!resources.ok()) {
    *failure = {"CreateContainerConfigError", resources.status()};
    return resources.status();
  }
  std::string network = settings_.network;
  const auto& annotations = sb.spec.pod_template.annotations;
  if (auto it = annotations.find(kNetworkAnnotation); it != annotations.end()) {
    if (it->second != "none" && it->second != "sandbox") {
      Status bad = InvalidArgument(std::string("spec.podTemplate.metadata.annotations[") +
                                   kNetworkAnnotation + "]: \"" + it->second +
                                   "\" is not a network mode (none, sandbox)");
      *failure = {"CreateContainerConfigError", bad};
      return bad;
    }
    network = it->second;
  }
  bool runsc_debug = false;
  if (auto it = annotations.find(kRunscDebugAnnotation); it != annotations.end()) {
    if (it->second != "true" && it->second != "false") {
      Status bad = InvalidArgument(std::string("spec.podTemplate.metadata.annotations[") +
                                   kRunscDebugAnnotation + "]: \"" + it->second +
                                   "\" is not \"true\" or \"false\"");
      *failure = {"CreateContainerConfigError", bad};
      return bad;
    }
    runsc_debug = it->second == "true";
  }
  std::string resolv_conf;
  if (network == "sandbox" && settings_.dns) {
    auto rc = PodResolvConf(pod_spec, settings_.cluster_dns, settings_.upstream_dns, "spec.podTemplate.spec");
    if (!rc.ok()) {
      *failure = {"CreateContainerConfigError", rc.status()};
      return rc.status();
    }
    resolv_conf = FormatResolvConf(*rc);
  }
  std::vector<PortMapping> published;
  // hostPort publications (portmap through CNI), as the kubelet collects
  // them from the containers' ports.
  const api::Json& containers = pod_spec.value("containers", api::Json::array());
  for (size_t i = 0; i < containers.size(); ++i) {
    const api::Json& ports = containers[i].value("ports", api::Json::array());
    for (size_t j = 0; j < ports.size(); ++j) {
      const api::Json& port = ports[j];
      int host_port = port.value("hostPort", 0);
      if (host_port <= 0) continue;
      const std::string field = "spec.podTemplate.spec.containers[" + std::to_string(i) + "].ports[" +
                                std::to_string(j) + "].hostPort";
      if (network != "sandbox") {
        Status bad = InvalidArgument(field + ": publishing a port needs the sandbox network (annotation " +
                                     kNetworkAnnotation + ": sandbox)");
        *failure = {"CreateContainerConfigError", bad};
        return bad;
      }
      PortMapping m;
      m.host_port = host_port;
      m.container_port = port.value("containerPort", 0);
      m.protocol = ToLower(port.value("protocol", std::string("TCP")));
      m.host_ip = port.value("hostIP", std::string());
      if (m.host_ip.empty()) m.host_ip = settings_.host_port_address;
      published.push_back(std::move(m));
    }
  }
  auto prepared = volumes_.Prepare(sb, sandbox_dir, Getter(sb.metadata.namespace_));
  if (!prepared.ok()) {
    *failure = {"ContainerCreating", prepared.status()};
    return prepared.status();
  }
  *volumes = std::move(*prepared);
  PodLaunch launch;
  launch.hostname = sb.spec.pod_template.spec.hostname.empty() ? sb.metadata.name
                                                               : sb.spec.pod_template.spec.hostname;
  launch.resources = *resources;
  launch.annotations = volumes->annotations;
  launch.network = network == "sandbox";
  launch.namespace_ = sb.metadata.namespace_;
  launch.name = sb.metadata.name;
  launch.runsc_debug = runsc_debug;
  launch.ports = std::move(published);
  launch.resolv_conf = std::move(resolv_conf);
  if (launch.network) {
    std::vector<api::Object> templates;
    store::ListOptions in_ns;
    in_ns.namespace_ = sb.metadata.namespace_;
    if (auto list = store_.List(api::kExtensionsGroup, api::kTemplateKind, in_ns); list.ok()) {
      templates = std::move(list->items);
    }
    launch.policy = PolicyBindingFor(sb, templates).ToJson();
  }
  return launch;
}

Result<ContainerLaunch> PodBuilder::BuildContainer(const api::Sandbox& sb,
                                                   const PodVolumes& volumes,
                                                   const PodContainer& pc,
                                                   const std::string& container_dir,
                                                   BuildFailure* failure,
                                                   std::vector<std::string>* warnings) {
  auto fail = [&](std::string reason, Status s) -> Status {
    *failure = {std::move(reason), s};
    return s;
  };
  const api::Container& c = *pc.spec;
  auto image = images_.Resolve(c.image);
  if (!image.ok()) {
    return fail("ErrImageNeverPull",
                NotFound("container image \"" + c.image +
                         "\" is not present in the local image store (pull it with "
                         "`sbx image pull` or import it with `sbx image import`)"));
  }

  EnvSources sources;
  sources.get = Getter(sb.metadata.namespace_);
  sources.resource_field = [&c](const api::Json& ref, const std::string& path) {
    return ResourceFieldRefValue(c.raw, ref, path);
  };
  if (!sb.status.pod_ips.empty()) sources.pod_ip = sb.status.pod_ips.front();
  auto env = ResolveContainerEnv(sb, c.raw, pc.path, sources, warnings);
  if (!env.ok()) return fail("CreateContainerConfigError", env.status());

  auto args = oci::ResolveArgs(image->config.entrypoint, image->config.cmd,
                               ExpandVars(c.command, *env), ExpandVars(c.args, *env));
  if (!args.ok()) return fail("CreateContainerConfigError", args.status());

  std::string pod_key = sb.metadata.namespace_ + "/" + sb.metadata.name;
  auto security = ResolveContainerSecurity(sb.spec.pod_template.spec.raw, c.raw, pc.path, pod_key,
                                           image->rootfs_dir, image->config.user,
                                           settings_.security);
  if (!security.ok()) return fail("CreateContainerConfigError", security.status());

  auto mounts = volumes_.MountsFor(volumes, c.raw, pc.path);
  if (!mounts.ok()) return fail("CreateContainerConfigError", mounts.status());
  if (!security->seccomp.is_null()) {
    auto exec_mount = WriteExecSupport(security->seccomp, container_dir,
                                       pc.path + ".securityContext.seccompProfile");
    if (!exec_mount.ok()) {
      return fail("CreateContainerError", exec_mount.status().Annotate("prepare exec confinement"));
    }
    mounts->push_back(std::move(*exec_mount));
  }

  ContainerLaunch launch;
  launch.name = c.name;
  launch.init = pc.kind == PodContainer::Kind::kInit;
  oci::BundleSpec& b = launch.bundle;
  b.rootfs = image->rootfs_dir;
  b.args = std::move(*args);
  b.env = oci::MergeEnv(image->config.env, *env);
  b.cwd = !c.working_dir.empty()                 ? c.working_dir
          : !image->config.working_dir.empty() ? image->config.working_dir
                                               : "/";
  b.user = security->user;
  b.readonly_rootfs = security->readonly_rootfs;
  b.no_new_privileges = security->no_new_privileges;
  b.capabilities = security->capabilities;
  b.seccomp = security->seccomp;
  b.terminal = false;
  b.hostname = sb.spec.pod_template.spec.hostname.empty() ? sb.metadata.name
                                                          : sb.spec.pod_template.spec.hostname;
  b.mounts = std::move(*mounts);
  b.annotations = volumes.annotations;
  return launch;
}

}  // namespace sbx::daemon
