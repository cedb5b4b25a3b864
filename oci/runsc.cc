#include "oci/runsc.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstddef>
#include <utility>

#include "common/fs.h"
#include "common/strings.h"
#include "oci/bundle.h"

namespace sbx::oci {
namespace {

std::string Flag(std::string_view name, std::string_view value) {
  std::string f = "--";
  f += name;
  f += '=';
  f += value;
  return f;
}

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgument(std::string(what) +
                           ": not JSON: " + std::string(Trim(text).substr(0, 200)));
  }
  return j;
}

Result<RunscState> StateFromJson(const Json& j, std::string_view what) {
  if (!j.is_object()) return InvalidArgument(std::string(what) + ": not an object");
  RunscState s;
  auto str = [&](const char* key, std::string* into, bool required) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      return required ? InvalidArgument(std::string(what) + "." + key + ": required")
                      : Status::Ok();
    }
    if (!it->is_string()) return InvalidArgument(std::string(what) + "." + key + ": not a string");
    *into = it->get<std::string>();
    return Status::Ok();
  };
  SBX_RETURN_IF_ERROR(str("id", &s.id, true));
  SBX_RETURN_IF_ERROR(str("status", &s.status, true));
  SBX_RETURN_IF_ERROR(str("bundle", &s.bundle, false));
  if (auto it = j.find("pid"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer())
      return InvalidArgument(std::string(what) + ".pid: not an integer");
    s.pid = it->get<int>();
  }
  if (auto it = j.find("annotations"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument(std::string(what) + ".annotations: not an object");
    for (auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return InvalidArgument(std::string(what) + ".annotations." + k + ": not a string");
      }
      s.annotations[k] = v.get<std::string>();
    }
  }
  return s;
}

// glog-style debug lines ("W1126 06:11:39.094619   12345 file.go:12] ...")
// that runsc may print with --alsologtostderr.
bool IsGlogLine(std::string_view line) {
  if (line.size() < 6) return false;
  if (std::string_view("IWEF").find(line[0]) == std::string_view::npos) return false;
  for (size_t i = 1; i < 5; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  }
  return line[5] == ' ';
}

// The last line of runsc's stderr that carries its error: blank lines and
// debug log lines are skipped; a JSON error line contributes its "msg".
std::string LastMeaningfulLine(std::string_view text) {
  std::vector<std::string> lines = Split(text, '\n');
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    std::string_view line = Trim(*it);
    if (line.empty() || IsGlogLine(line)) continue;
    if (line.front() == '{') {
      std::vector<std::string> msgs = RunscClient::ParseErrorLog(line);
      if (!msgs.empty()) return msgs.back();
    }
    return std::string(line);
  }
  return "";
}

std::string OneLine(std::string_view s) {
  std::string out;
  for (char c : Trim(s)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return out;
}

}  // namespace

RunscClient::RunscClient(RunscConfig config) : config_(std::move(config)) {
  if (!config_.root.empty()) global_flags_.push_back(Flag("root", config_.root));
  if (!config_.platform.empty()) global_flags_.push_back(Flag("platform", config_.platform));
  if (!config_.network.empty()) global_flags_.push_back(Flag("network", config_.network));
  if (!config_.overlay2.empty()) global_flags_.push_back(Flag("overlay2", config_.overlay2));
  if (config_.ignore_cgroups) global_flags_.push_back("--ignore-cgroups");
  if (config_.oci_seccomp) global_flags_.push_back("--oci-seccomp");
  extra_flags_at_ = global_flags_.size();
  for (const std::string& f : config_.extra_flags) global_flags_.push_back(f);
}

std::vector<std::string> RunscClient::Command(std::string_view subcommand, std::string_view id,
                                              std::string_view error_log) const {
  std::vector<std::string> argv;
  argv.reserve(global_flags_.size() + 8);
  argv.push_back(config_.binary);
  const auto extra = global_flags_.begin() + static_cast<std::ptrdiff_t>(extra_flags_at_);
  argv.insert(argv.end(), global_flags_.begin(), extra);
  std::string debug_dir;
  if (!id.empty() && config_.debug_log_dir_for) debug_dir = config_.debug_log_dir_for(id);
  if (debug_dir.empty()) debug_dir = config_.debug_log_dir;
  if (!debug_dir.empty()) {
    argv.push_back("--debug");
    // A trailing slash makes runsc write one file per command.
    if (debug_dir.back() != '/') debug_dir += '/';
    argv.push_back(Flag("debug-log", debug_dir));
  }
  argv.insert(argv.end(), extra, global_flags_.end());
  if (!error_log.empty()) {
    // --log only chooses where this invocation (and, for create, the
    // sandbox and gofer it starts) report errors; it is not container
    // configuration, so it may differ between calls.
    argv.push_back(Flag("log", error_log));
    argv.push_back("--log-format=json");
  }
  argv.emplace_back(subcommand);
  return argv;
}

std::string RunscClient::ErrorLogPath(std::string_view bundle_dir) {
  return JoinPath(bundle_dir, "runsc-error.log");
}

std::vector<std::string> RunscClient::BundleCommand(std::string_view subcommand,
                                                    std::string_view id,
                                                    std::string_view bundle_dir,
                                                    std::string_view pid_file) const {
  std::vector<std::string> argv = Command(subcommand, id, ErrorLogPath(bundle_dir));
  argv.push_back(Flag("bundle", bundle_dir));
  if (!pid_file.empty()) argv.push_back(Flag("pid-file", pid_file));
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::Create(std::string_view id, std::string_view bundle_dir,
                                             std::string_view pid_file) const {
  return BundleCommand("create", id, bundle_dir, pid_file);
}

std::vector<std::string> RunscClient::Start(std::string_view id, std::string_view error_log) const {
  std::vector<std::string> argv = Command("start", id, error_log);
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::Run(std::string_view id, std::string_view bundle_dir,
                                          std::string_view pid_file) const {
  return BundleCommand("run", id, bundle_dir, pid_file);
}

std::vector<std::string> RunscClient::State(std::string_view id) const {
  std::vector<std::string> argv = Command("state", id);
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::List() const {
  std::vector<std::string> argv = Command("list");
  argv.push_back("--format=json");
  return argv;
}

std::vector<std::string> RunscClient::Kill(std::string_view id, int signal, bool all) const {
  std::vector<std::string> argv = Command("kill", id);
  if (all) argv.push_back("--all");  // flags must precede the id
  argv.emplace_back(id);
  argv.push_back(std::to_string(signal));
  return argv;
}

std::vector<std::string> RunscClient::Delete(std::string_view id, bool force) const {
  std::vector<std::string> argv = Command("delete", id);
  if (force) argv.push_back("--force");
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::Exec(std::string_view id, const RunscExec& exec) const {
  std::vector<std::string> argv = Command("exec", id, exec.error_log_path);
  if (!exec.process_json_path.empty()) {
    argv.push_back(Flag("process", exec.process_json_path));
    argv.emplace_back(id);
    return argv;
  }
  if (!exec.cwd.empty()) argv.push_back(Flag("cwd", exec.cwd));
  argv.push_back(Flag("user", std::to_string(exec.uid) + ":" + std::to_string(exec.gid)));
  for (uint32_t g : exec.additional_gids)
    argv.push_back(Flag("additional-gids", std::to_string(g)));
  for (const std::string& e : exec.env) argv.push_back(Flag("env", e));
  argv.emplace_back(id);
  argv.insert(argv.end(), exec.args.begin(), exec.args.end());
  return argv;
}

std::vector<std::string> RunscClient::Wait(std::string_view id) const {
  std::vector<std::string> argv = Command("wait", id);
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::Ps(std::string_view id) const {
  std::vector<std::string> argv = Command("ps", id);
  argv.push_back("--format=json");
  argv.emplace_back(id);
  return argv;
}

std::vector<std::string> RunscClient::Version() const { return {config_.binary, "--version"}; }

std::vector<std::string> RunscClient::Flags() const { return {config_.binary, "flags"}; }

Json RunscClient::ProcessJson(const RunscExec& exec) {
  UserSpec user;
  user.uid = exec.uid;
  user.gid = exec.gid;
  user.additional_gids = exec.additional_gids;
  return ProcessSpecJson(exec.args, exec.env, exec.cwd.empty() ? "/" : exec.cwd, user, exec.tty);
}

Result<RunscState> RunscClient::ParseState(std::string_view out) {
  SBX_ASSIGN_OR_RETURN(Json j, ParseJson(out, "runsc state"));
  return StateFromJson(j, "runsc state");
}

Result<std::vector<RunscState>> RunscClient::ParseList(std::string_view out) {
  SBX_ASSIGN_OR_RETURN(Json j, ParseJson(out, "runsc list"));
  std::vector<RunscState> states;
  if (j.is_null()) return states;
  if (!j.is_array()) return InvalidArgument("runsc list: not an array");
  for (size_t i = 0; i < j.size(); ++i) {
    SBX_ASSIGN_OR_RETURN(RunscState s,
                         StateFromJson(j[i], "runsc list[" + std::to_string(i) + "]"));
    states.push_back(std::move(s));
  }
  return states;
}

Result<int> RunscClient::ParseWait(std::string_view out) {
  SBX_ASSIGN_OR_RETURN(Json j, ParseJson(out, "runsc wait"));
  if (!j.is_object()) return InvalidArgument("runsc wait: not an object");
  auto it = j.find("exitStatus");
  if (it == j.end() || !it->is_number_integer()) {
    return InvalidArgument("runsc wait.exitStatus: required integer");
  }
  return it->get<int>();
}

Result<std::vector<int>> RunscClient::ParsePs(std::string_view out) {
  SBX_ASSIGN_OR_RETURN(Json j, ParseJson(out, "runsc ps"));
  std::vector<int> pids;
  if (j.is_null()) return pids;
  if (!j.is_array()) return InvalidArgument("runsc ps: not an array");
  for (const Json& p : j) {
    if (!p.is_number_integer()) return InvalidArgument("runsc ps: pid not an integer");
    pids.push_back(p.get<int>());
  }
  return pids;
}

Result<std::string> RunscClient::ParseVersion(std::string_view out) {
  for (const std::string& raw : Split(out, '\n')) {
    std::string_view line = Trim(raw);
    constexpr std::string_view kPrefix = "runsc version ";
    if (line.substr(0, kPrefix.size()) == kPrefix) {
      std::string_view v = Trim(line.substr(kPrefix.size()));
      if (!v.empty()) return std::string(v);
    }
  }
  return InvalidArgument("runsc --version: no \"runsc version\" line in: " +
                         OneLine(out.substr(0, 200)));
}

std::vector<std::string> RunscClient::ParseErrorLog(std::string_view log) {
  // The file is a concatenation of JSON objects, possibly with newlines in
  // between; cut at top-level object boundaries, honouring strings.
  std::vector<std::string> msgs;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    char c = log[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = depth > 0;
    } else if (c == '{') {
      if (depth++ == 0) start = i;
    } else if (c == '}' && depth > 0 && --depth == 0) {
      Json j = Json::parse(log.substr(start, i - start + 1), nullptr, false);
      if (j.is_object()) {
        auto msg = j.find("msg");
        auto level = j.find("level");
        bool is_error =
            level == j.end() || (level->is_string() && (*level == "error" || *level == "fatal"));
        if (msg != j.end() && msg->is_string() && is_error) {
          std::string m = OneLine(msg->get<std::string>());
          if (!m.empty()) msgs.push_back(std::move(m));
        }
      }
    }
  }
  return msgs;
}

Status RunscClient::CommandError(std::string_view verb, const CommandResult& r,
                                 std::string_view error_log) {
  std::string context = "runsc ";
  context += verb;
  if (r.timed_out) return Unavailable(context + ": timed out");

  std::string detail;
  std::vector<std::string> msgs = ParseErrorLog(error_log);
  if (!msgs.empty()) {
    // The command's own message comes last; an earlier one from the sandbox
    // or gofer usually names the cause ("cannot read client sync file: EOF"
    // is create's view of the sandbox's "Error setting up root FS: ...").
    detail = msgs.back();
    for (const std::string& m : msgs) {
      if (m != msgs.back()) {
        detail += " (first error: " + m + ")";
        break;
      }
    }
  } else {
    detail = LastMeaningfulLine(r.err);
    if (detail.empty()) detail = LastMeaningfulLine(r.out);
  }

  std::string msg = context;
  if (r.term_signal != 0) {
    msg += ": killed by signal " + std::to_string(r.term_signal);
  } else {
    msg += ": exit " + std::to_string(r.exit_code);
  }
  if (!detail.empty()) msg += ": " + detail;

  Code code = Code::kInternal;
  if (detail.find("file does not exist") != std::string::npos ||
      detail.find("container does not exist") != std::string::npos) {
    code = Code::kNotFound;
  } else if (detail.find("already exists") != std::string::npos) {
    code = Code::kAlreadyExists;
  }
  return Status(code, std::move(msg));
}

std::string ContainerIdFor(std::string_view object_uid) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  SBX_CHECK(EVP_Digest(object_uid.data(), object_uid.size(), digest, &len, EVP_sha256(), nullptr) ==
            1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "sbx-";
  for (unsigned int i = 0; i < 14; ++i) {
    id += kHex[digest[i] >> 4];
    id += kHex[digest[i] & 0xf];
  }
  return id;
}

std::vector<std::string> WithProcSysMask(const std::vector<std::string>& argv,
                                         const std::string& mmap_min_addr) {
  std::vector<std::string> out = {
      "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
      "mount -t tmpfs -o size=64k,mode=0555 sbx-proc-sys /proc/sys && mkdir /proc/sys/vm && "
      "printf '%s\\n' \"$0\" > /proc/sys/vm/mmap_min_addr && exec \"$@\"",
      mmap_min_addr};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace sbx::oci
