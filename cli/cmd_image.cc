// sbx image import|pull|ls|rm|prune: the local image store of sbxd.
//
// import streams the archive to sbxd with chunked encoding: a tar file as it
// is, an OCI layout directory tarred on the fly with libarchive, so neither
// is ever held in memory or written to a temporary file.
//
// pull reads sbxd's answer as it arrives: JSON lines of progress, then one
// line with the image or the error. On a terminal the progress is redrawn in
// place as docker pull does; otherwise only changes of state are printed, so
// logs stay readable.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/printer.h"
#include "cli/prompt.h"
#include "common/fs.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

constexpr std::string_view kImagesPath = "/apis/sbx.dev/v1/images";

struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// A directory tree as a tar stream, produced on demand: each Read() advances
// the archive just far enough (one header or one block of file data) to
// return some bytes.
class DirectoryTar {
 public:
  static Result<std::unique_ptr<DirectoryTar>> Open(const std::string& dir) {
    std::unique_ptr<DirectoryTar> t(new DirectoryTar());
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      t->entries_.push_back(it->path().lexically_relative(dir).string());
    }
    if (ec) return Internal("read directory " + dir + ": " + ec.message());
    std::sort(t->entries_.begin(), t->entries_.end());
    t->dir_ = dir;
    t->archive_.reset(archive_write_new());
    archive* a = t->archive_.get();
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, t.get(), nullptr, &DirectoryTar::OnWrite, nullptr) != ARCHIVE_OK) {
      return t->ArchiveError("start archive");
    }
    return t;
  }

  Result<size_t> Read(char* buf, size_t cap) {
    while (offset_ == pending_.size() && !done_) SBX_RETURN_IF_ERROR(Step());
    size_t n = std::min(cap, pending_.size() - offset_);
    std::copy_n(pending_.data() + offset_, n, buf);
    offset_ += n;
    if (offset_ == pending_.size()) {
      pending_.clear();
      offset_ = 0;
    }
    return n;
  }

 private:
  DirectoryTar() = default;

  static la_ssize_t OnWrite(archive*, void* self, const void* data, size_t n) {
    static_cast<DirectoryTar*>(self)->pending_.append(static_cast<const char*>(data), n);
    return static_cast<la_ssize_t>(n);
  }

  Status ArchiveError(std::string_view what) {
    const char* e = archive_error_string(archive_.get());
    return Internal("tar " + dir_ + ": " + std::string(what) + ": " + (e ? e : "unknown error"));
  }

  // One step: a block of the current file, the next entry's header, or the
  // end of the archive.
  Status Step() {
    archive* a = archive_.get();
    if (file_.valid()) {
      char block[64 * 1024];
      ssize_t n = ::read(file_.get(), block, sizeof(block));
      if (n < 0) {
        if (errno == EINTR) return Status::Ok();
        return ErrnoStatus("read " + current_, errno);
      }
      if (n == 0) {
        file_.Reset();
        return Status::Ok();
      }
      if (archive_write_data(a, block, static_cast<size_t>(n)) < 0) return ArchiveError("write");
      return Status::Ok();
    }
    if (next_ == entries_.size()) {
      if (archive_write_close(a) != ARCHIVE_OK) return ArchiveError("finish");
      done_ = true;
      return Status::Ok();
    }
    const std::string& rel = entries_[next_++];
    current_ = JoinPath(dir_, rel);
    struct stat st;
    if (::lstat(current_.c_str(), &st) != 0) return ErrnoStatus("stat " + current_, errno);
    std::unique_ptr<archive_entry, ArchiveEntryFree> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), rel.c_str());
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_mtime(entry.get(), st.st_mtime, 0);
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(current_.c_str(), target, sizeof(target) - 1);
      if (n < 0) return ErrnoStatus("readlink " + current_, errno);
      target[n] = '\0';
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target);
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), st.st_size);
      file_.Reset(::open(current_.c_str(), O_RDONLY | O_CLOEXEC));
      if (!file_.valid()) return ErrnoStatus("open " + current_, errno);
    } else {
      return InvalidArgument("tar " + dir_ + ": " + rel + " is not a file, directory or symlink");
    }
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK) return ArchiveError("header " + rel);
    return Status::Ok();
  }

  std::string dir_;
  std::vector<std::string> entries_;
  size_t next_ = 0;
  std::string current_;
  UniqueFd file_;
  std::unique_ptr<archive, ArchiveWriteFree> archive_;
  std::string pending_;
  size_t offset_ = 0;
  bool done_ = false;
};

// Reads a file as it is.
class FileReader {
 public:
  static Result<FileReader> Open(const std::string& path) {
    FileReader r;
    r.path_ = path;
    r.fd_.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!r.fd_.valid()) return ErrnoStatus("open " + path, errno);
    return r;
  }
  Result<size_t> Read(char* buf, size_t cap) {
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, cap);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoStatus("read " + path_, errno);
    }
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

int RunImport(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() != 1) return inv.Fail("expected 'image import PATH [--name NAME]'.");
  const std::string& path = args.front();
  if (!PathExists(path)) return inv.Fail("the path \"" + path + "\" does not exist");

  // Errors of the local side are kept apart: the client would report them
  // as a failed request.
  Status local_error;
  std::function<Result<size_t>(char*, size_t)> source;
  std::shared_ptr<DirectoryTar> tar;
  std::shared_ptr<FileReader> file;
  if (IsDirectory(path)) {
    if (!PathExists(JoinPath(path, "oci-layout")) || !PathExists(JoinPath(path, "index.json"))) {
      return inv.Fail("\"" + path + "\" is not an OCI image layout (no oci-layout and index.json)");
    }
    Result<std::unique_ptr<DirectoryTar>> opened = DirectoryTar::Open(path);
    if (!opened.ok()) return inv.Fail(opened.status().message());
    tar = std::move(opened).value();
    source = [tar](char* b, size_t n) { return tar->Read(b, n); };
  } else {
    Result<FileReader> opened = FileReader::Open(path);
    if (!opened.ok()) return inv.Fail(opened.status().message());
    file = std::make_shared<FileReader>(std::move(opened).value());
    source = [file](char* b, size_t n) { return file->Read(b, n); };
  }

  std::vector<std::pair<std::string, std::string>> q;
  if (inv.flags.Has("name")) q.emplace_back("name", inv.flags.String("name"));
  HttpRequest request;
  request.method = "POST";
  request.target = std::string(kImagesPath) + "/import" + QueryString(q);
  request.headers.emplace_back("Content-Type", "application/x-tar");
  request.body_reader = [&](char* buf, size_t cap) -> Result<size_t> {
    Result<size_t> n = source(buf, cap);
    if (!n.ok()) {
      local_error = n.status();
      return Internal("upload aborted");
    }
    return n;
  };
  Result<HttpResponse> response = inv.client.Do(request);
  if (!local_error.ok()) return inv.Fail(local_error.message());
  if (!response.ok()) return inv.FailRequest(response.status());
  if (response->status_code < 200 || response->status_code >= 300) {
    return inv.FailRequest(StatusFromResponse(*response));
  }
  Json body;
  try {
    body = Json::parse(response->body);
  } catch (const Json::exception& e) {
    return inv.FailRequest(Internal(std::string("the server returned invalid JSON: ") + e.what()));
  }
  for (const auto& image : body.value("items", Json::array())) {
    const Json names = image.value("names", Json::array());
    if (names.empty()) {
      inv.out() << "Loaded image ID: " << image.value("id", "") << "\n";
    }
    for (const auto& n : names) inv.out() << "Loaded image: " << n.get<std::string>() << "\n";
  }
  return 0;
}

std::string ShortId(const std::string& id) {
  std::string hex = id.starts_with("sha256:") ? id.substr(7) : id;
  return hex.substr(0, 12);
}

// ---- pull ----

// A layer as the daemon's last progress line described it.
struct LayerProgress {
  std::string digest;
  int64_t size = 0;
  int64_t done = 0;
  bool cached = false;
};

// One PullProgress line of sbxd's pull stream.
struct PullProgress {
  std::string phase;  // resolving, downloading, unpacking, done
  std::string reference;
  std::string manifest_digest;
  std::vector<LayerProgress> layers;
};

Result<PullProgress> ParsePullProgress(const Json& j) {
  try {
    PullProgress p;
    p.phase = j.value("phase", "");
    p.reference = j.value("reference", "");
    p.manifest_digest = j.value("manifestDigest", "");
    for (const auto& l : j.value("layers", Json::array())) {
      p.layers.push_back(LayerProgress{l.value("digest", ""), l.value("size", int64_t{0}),
                                       l.value("done", int64_t{0}), l.value("cached", false)});
    }
    return p;
  } catch (const Json::exception& e) {
    return Internal(std::string("the server sent an invalid progress line: ") + e.what());
  }
}

// kUnseen first: a value-initialised state is "not printed yet".
enum class LayerState { kUnseen, kDownloading, kCached, kComplete };

LayerState StateOf(const LayerProgress& layer, std::string_view phase) {
  if (layer.cached) return LayerState::kCached;
  // Unpacking starts when every layer is in the store, whatever the last
  // byte counts said.
  if ((layer.size > 0 && layer.done >= layer.size) || phase == "unpacking" || phase == "done") {
    return LayerState::kComplete;
  }
  return LayerState::kDownloading;
}

// "[=========>               ]" for done of size.
std::string ProgressBar(int64_t done, int64_t size) {
  constexpr int64_t kWidth = 25;
  int64_t filled = size > 0 ? std::clamp<int64_t>(done * kWidth / size, 0, kWidth) : 0;
  std::string bar = "[" + std::string(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += ">" + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
  return bar + "]";
}

// The width of the terminal on fd, 0 if unknown.
size_t TerminalColumns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

// Prints the progress of one pull to `out`, either live (a block of lines
// redrawn in place on a terminal `columns` wide, 0 if unknown) or as a log
// with a line for each change of state.
class PullProgressPrinter {
 public:
  // `out` must outlive the printer.
  PullProgressPrinter(std::ostream& out, bool live, size_t columns, std::string typed_ref)
      : out_(out), live_(live), columns_(columns), typed_ref_(std::move(typed_ref)) {}

  void Update(PullProgress progress) {
    if (progress.reference.empty()) progress.reference = typed_ref_;
    if (!started_) {
      out_ << "Pulling " << progress.reference << "\n";
      started_ = true;
    }
    last_ = std::move(progress);
    if (live_) {
      Draw();
    } else {
      Log();
    }
    out_.flush();
  }

  // The pull succeeded: shows every layer as complete.
  void Finish() {
    if (!started_) return;
    last_.phase = "done";
    Update(last_);
  }

  // Whether the store already had every layer (and there was at least one).
  bool AllCached() const {
    return !last_.layers.empty() && std::all_of(last_.layers.begin(), last_.layers.end(),
                                                [](const LayerProgress& l) { return l.cached; });
  }
  // As sbxd normalised it; empty before the first update.
  const std::string& reference() const { return last_.reference; }
  const std::string& manifest_digest() const { return last_.manifest_digest; }

 private:
  void Log() {
    for (const auto& layer : last_.layers) {
      LayerState state = StateOf(layer, last_.phase);
      LayerState& logged = logged_[layer.digest];
      if (state == logged) continue;
      logged = state;
      out_ << ShortId(layer.digest) << ": ";
      switch (state) {
        case LayerState::kCached:
          out_ << "Already exists\n";
          break;
        case LayerState::kDownloading:
          out_ << "Downloading (" << layer.size << " bytes)\n";
          break;
        case LayerState::kComplete:
          out_ << "Download complete\n";
          break;
        case LayerState::kUnseen:
          break;
      }
    }
    if (last_.phase == "unpacking" && !unpacking_logged_) {
      out_ << "Unpacking\n";
      unpacking_logged_ = true;
    }
  }

  std::string LayerLine(const LayerProgress& layer) const {
    std::string line = ShortId(layer.digest) + ": ";
    switch (StateOf(layer, last_.phase)) {
      case LayerState::kCached:
        return line + "Already exists";
      case LayerState::kComplete:
        return line + "Download complete";
      case LayerState::kDownloading:
      case LayerState::kUnseen:
        break;
    }
    if (layer.done == 0) return line + "Waiting";
    if (layer.size <= 0) return line + "Downloading " + HumanSize(layer.done);
    std::string done = HumanSize(layer.done);
    if (done.size() < 8) done.insert(0, 8 - done.size(), ' ');
    return line + "Downloading " + ProgressBar(layer.done, layer.size) + " " + done + "/" +
           HumanSize(layer.size);
  }

  // Moves the cursor up over the block drawn last and draws it anew; lines
  // are cut to the terminal's width so that none wraps and the count holds.
  void Draw() {
    std::vector<std::string> lines;
    for (const auto& layer : last_.layers) lines.push_back(LayerLine(layer));
    if (last_.phase == "resolving" && last_.layers.empty()) {
      lines.push_back("Resolving " + last_.reference);
    }
    if (last_.phase == "unpacking") lines.push_back("Unpacking");
    std::string frame;
    if (drawn_lines_ > 0) frame += "\x1b[" + std::to_string(drawn_lines_) + "A";
    for (auto& line : lines) {
      if (columns_ > 1 && line.size() >= columns_) line.resize(columns_ - 1);
      frame += "\r\x1b[2K" + line + "\n";
    }
    frame += "\x1b[J";  // what is left of a longer block drawn before
    out_ << frame;
    drawn_lines_ = lines.size();
  }

  std::ostream& out_;
  const bool live_;
  const size_t columns_;
  const std::string typed_ref_;
  PullProgress last_;
  bool started_ = false;
  std::map<std::string, LayerState> logged_;  // by digest
  bool unpacking_logged_ = false;
  size_t drawn_lines_ = 0;
};

// A pull's own failure, worded as docker words it.
int FailPull(Invocation& inv, std::string_view message) {
  inv.out().flush();
  inv.err() << "Error: " << message << "\n";
  return 1;
}

int RunPull(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() != 1) return inv.Fail("expected 'image pull REF'.");
  const std::string& ref = args.front();
  const bool quiet = inv.flags.Bool("quiet");
  const bool live = !quiet && inv.env.stdout_is_terminal;
  PullProgressPrinter progress(inv.out(), live, live ? TerminalColumns(inv.env.stdout_fd) : 0, ref);

  HttpRequest request;
  request.method = "POST";
  request.target = std::string(kImagesPath) + "/pull" + QueryString({{"ref", ref}});
  request.headers.emplace_back("Accept", "application/x-ndjson");
  std::optional<Json> outcome;  // the last line: an Image or a Status
  Status bad_line;
  auto on_line = [&](std::string_view line) {
    line = Trim(line);
    if (line.empty()) return true;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::exception& e) {
      bad_line = Internal(std::string("the server sent an invalid progress line: ") + e.what());
      return false;
    }
    std::string kind = api::StringField(j, "kind");
    if (kind == "PullProgress") {
      Result<PullProgress> p = ParsePullProgress(j);
      if (!p.ok()) {
        bad_line = p.status();
        return false;
      }
      if (!quiet) progress.Update(std::move(p).value());
      return true;
    }
    if (kind == "Image" || kind == "Status") {
      outcome = std::move(j);
      return false;
    }
    return true;  // a kind of line this client does not know yet
  };
  LineSplitter lines;
  Result<StreamResult> streamed =
      inv.client.Stream(request, [&](std::string_view data) { return lines.Feed(data, on_line); });
  inv.out().flush();
  if (!bad_line.ok()) return inv.FailRequest(bad_line);
  if (!outcome) {
    if (!streamed.ok()) return inv.FailRequest(streamed.status());
    int code = streamed->response.status_code;
    if (code < 200 || code >= 300) return inv.FailRequest(StatusFromResponse(streamed->response));
    return FailPull(inv, "the server ended the pull of " + ref + " without a result");
  }
  if (api::StringField(*outcome, "kind") == "Status") {
    std::string message = api::StringField(*outcome, "message");
    return FailPull(inv, message.empty() ? "pull " + ref + " failed" : message);
  }

  progress.Finish();
  std::string name = progress.reference();
  if (const Json& names = api::Field(*outcome, "names");
      name.empty() && names.is_array() && !names.empty() && names.front().is_string()) {
    name = names.front().get<std::string>();
  }
  if (name.empty()) name = ref;
  if (quiet) {
    inv.out() << name << "\n";
    return 0;
  }
  std::string digest = api::StringField(*outcome, "manifestDigest");
  if (digest.empty()) digest = progress.manifest_digest();
  if (!digest.empty()) inv.out() << "Digest: " << digest << "\n";
  inv.out() << "Status: "
            << (progress.AllCached() ? "Image is up to date for " : "Downloaded newer image for ")
            << ref << "\n"
            << name << "\n";
  return 0;
}

int RunList(Invocation& inv) {
  if (!inv.flags.args.empty()) return inv.Fail("unexpected argument: " + inv.flags.args.front());
  Result<Json> list = inv.client.GetJson(std::string(kImagesPath));
  if (!list.ok()) return inv.FailRequest(list.status());
  std::string format = inv.flags.String("output");
  if (format == "json") {
    inv.out() << ToPrettyJson(*list);
    return 0;
  }
  if (format == "yaml") {
    inv.out() << ToYaml(*list);
    return 0;
  }
  if (!format.empty()) {
    return inv.Fail("unable to match a printer suitable for the output format \"" + format +
                    "\", allowed formats are: json,yaml");
  }
  TableWriter table(10, 3);
  table.AddRow({"NAME", "ID", "SIZE", "SHARED SIZE", "CREATED", "IN USE"});
  TimePoint now = inv.Now();
  for (const auto& image : list->value("items", Json::array())) {
    int64_t size = image.value("unpackedSize", int64_t{0});
    if (size <= 0) size = image.value("size", int64_t{0});
    // Bytes of blobs that other images hold too; sbxd before 0.2 does not
    // say.
    std::string shared = "N/A";
    if (const Json& n = api::Field(image, "sharedSize"); n.is_number_integer()) {
      shared = HumanSize(n.get<int64_t>());
    }
    std::string created = "<unknown>";
    if (Result<TimePoint> t = ParseRfc3339(image.value("created", "")); t.ok()) {
      created = DockerHumanDuration(now - *t) + " ago";
    }
    std::vector<std::string> users;
    for (const auto& u : image.value("inUseBy", Json::array()))
      users.push_back(u.get<std::string>());
    std::vector<std::string> names;
    for (const auto& n : image.value("names", Json::array())) names.push_back(n.get<std::string>());
    if (names.empty()) names.push_back("<none>");
    for (const auto& name : names) {
      table.AddRow({name, ShortId(image.value("id", "")), HumanSize(size), shared, created,
                    Join(users, ",")});
    }
  }
  table.Flush(inv.out());
  return 0;
}

int RunRemove(Invocation& inv) {
  const std::vector<std::string>& refs = inv.flags.args;
  if (refs.empty()) return inv.Fail("expected 'image rm REF...'.");
  int rc = 0;
  for (const auto& ref : refs) {
    HttpRequest request;
    request.method = "DELETE";
    request.target = std::string(kImagesPath) + "/" + UrlEncode(ref);
    Result<HttpResponse> response = inv.client.Do(request);
    if (!response.ok()) {
      rc = inv.FailRequest(response.status());
      continue;
    }
    if (response->status_code < 200 || response->status_code >= 300) {
      rc = inv.FailRequest(StatusFromResponse(*response));
      continue;
    }
    inv.out() << "Deleted: " << ref << "\n";
  }
  return rc;
}

int RunPrune(Invocation& inv) {
  if (!inv.flags.args.empty()) return inv.Fail("unexpected argument: " + inv.flags.args.front());
  const bool all = inv.flags.Bool("all");
  if (!inv.flags.Bool("force")) {
    inv.out() << "WARNING! This will remove "
              << (all ? "all images without at least one sandbox or template using them"
                      : "all dangling images")
              << ".\nAre you sure you want to continue? [y/N] " << std::flush;
    Result<std::optional<std::string>> answer = ReadLine(inv.env.stdin_fd);
    if (!answer.ok()) return inv.Fail(answer.status().message());
    if (!answer->has_value()) inv.out() << "\n";  // end of input: the cursor is after the prompt
    if (!answer->has_value() || !IsYes(**answer)) return 0;
  }
  std::vector<std::pair<std::string, std::string>> q;
  if (all) q.emplace_back("all", "true");
  Result<Json> report = inv.client.PostJson(std::string(kImagesPath) + "/prune" + QueryString(q));
  if (!report.ok()) return inv.FailRequest(report.status());
  std::string deleted;
  for (const auto& image : api::Field(*report, "deleted")) {
    for (const auto& name : api::Field(image, "names")) {
      if (name.is_string()) deleted += "untagged: " + name.get<std::string>() + "\n";
    }
    deleted += "deleted: " + api::StringField(image, "id") + "\n";
  }
  if (!deleted.empty()) inv.out() << "Deleted Images:\n" << deleted << "\n";
  const Json& reclaimed = api::Field(*report, "spaceReclaimed");
  inv.out() << "Total reclaimed space: "
            << HumanSize(reclaimed.is_number_integer() ? reclaimed.get<int64_t>() : 0) << "\n";
  return 0;
}

}  // namespace

std::vector<Verb> ImageVerbs() {
  return {
      Verb{"image import",
           "Import an image from an OCI layout or a tar archive",
           R"(Import an image into sbxd's local store from an OCI image layout (a
directory, or a tar of one) or from a `docker save` archive. The archive is
streamed to sbxd; every blob's digest is verified there.

--name names the image (normalised as Docker does: busybox becomes
docker.io/library/busybox:latest) when the archive does not name it.

Examples:
  sbx image import ./busybox-oci --name busybox
  sbx image import busybox.tar

Usage:
  sbx image import PATH [--name NAME] [options]
)",
           {{"name", 0, FlagType::kString, "", "Name for the imported image."}},
           RunImport},
      Verb{"image pull",
           "Pull an image from a registry",
           R"(Pull an image from a registry into sbxd's local store. sbxd downloads it
(layers it already has are not downloaded again), verifies every blob's
digest and unpacks it; this command shows the progress as it goes.

References are normalised as Docker does: busybox is
docker.io/library/busybox:latest. Private registries need `sbx login` first.

On a terminal the progress is redrawn in place; otherwise a line is printed
for each layer that changes state. The image's full name is printed last;
with -q only the name is printed.

Examples:
  sbx image pull busybox
  sbx image pull -q 127.0.0.1:5000/team/tool:1.2

Usage:
  sbx image pull REF [-q] [options]
)",
           {{"quiet", 'q', FlagType::kBool, "", "Print only the image's name."}},
           RunPull},
      Verb{"image ls",
           "List the images in the local store",
           R"(List the images in sbxd's local store: name, short ID, unpacked size, the
bytes of layers shared with other images, age, and the sandboxes that use it.

Examples:
  sbx image ls

Usage:
  sbx image ls [options]
)",
           {{"output", 'o', FlagType::kString, "", "Output format: json or yaml."}},
           RunList},
      Verb{"image rm",
           "Remove images from the local store",
           R"(Remove images from sbxd's local store by name or ID. An image that a
sandbox uses is refused (Conflict).

Examples:
  sbx image rm busybox

Usage:
  sbx image rm REF... [options]
)",
           {},
           RunRemove},
      Verb{"image prune",
           "Remove unused images from the local store",
           R"(Remove dangling images (images without a name that no sandbox or sandbox
template uses) from sbxd's local store, with the layers no other image
needs. With -a, remove every image that no sandbox or sandbox template uses.
Asks for confirmation unless -f is given.

Examples:
  sbx image prune
  sbx image prune -a -f

Usage:
  sbx image prune [-a] [-f] [options]
)",
           {{"all", 'a', FlagType::kBool, "", "Remove all unused images, not only dangling ones."},
            {"force", 'f', FlagType::kBool, "", "Do not ask for confirmation."}},
           RunPrune},
  };
}

}  // namespace sbx::cli
