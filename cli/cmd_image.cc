// sbx image import|ls|rm: the local image store of sbxd.
//
// import streams the archive to sbxd with chunked encoding: a tar file as it
// is, an OCI layout directory tarred on the fly with libarchive, so neither
// is ever held in memory or written to a temporary file.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/printer.h"
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
  table.AddRow({"NAME", "ID", "SIZE", "CREATED", "IN USE"});
  TimePoint now = inv.Now();
  for (const auto& image : list->value("items", Json::array())) {
    int64_t size = image.value("unpackedSize", int64_t{0});
    if (size <= 0) size = image.value("size", int64_t{0});
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
      table.AddRow(
          {name, ShortId(image.value("id", "")), HumanSize(size), created, Join(users, ",")});
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
      Verb{"image ls",
           "List the images in the local store",
           R"(List the images in sbxd's local store: name, short ID, unpacked size, age,
and the sandboxes that use it.

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
  };
}

}  // namespace sbx::cli
