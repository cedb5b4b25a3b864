#include "oci/reference.h"

#include <regex>

#include "oci/digest.h"

namespace sbx::oci {
namespace {

constexpr std::string_view kDefaultDomain = "docker.io";
constexpr std::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr std::string_view kOfficialRepoPrefix = "library/";
constexpr size_t kMaxNameLength = 255;

// distribution/reference's grammar, one regex per production.
const std::regex& PathComponentRe() {
  static const std::regex re("[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*");
  return re;
}
const std::regex& DomainRe() {
  static const std::regex re(
      "(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
      "(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
      "|\\[[a-fA-F0-9:]+\\])"
      "(?::[0-9]+)?");
  return re;
}
const std::regex& TagRe() {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  return re;
}

bool HasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

// Docker treats the first component as a domain only if it looks like one.
bool LooksLikeDomain(std::string_view first) {
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
         HasUpper(first);
}

}  // namespace

std::string ImageReference::Repository() const { return domain + "/" + path; }

std::string ImageReference::String() const {
  std::string s = Repository();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string ImageReference::Familiar() const {
  std::string s;
  if (domain == kDefaultDomain) {
    std::string_view p = path;
    // Only single-component official images drop "library/", as Docker does.
    if (p.starts_with(kOfficialRepoPrefix) &&
        p.substr(kOfficialRepoPrefix.size()).find('/') == std::string_view::npos) {
      p.remove_prefix(kOfficialRepoPrefix.size());
    }
    s = std::string(p);
  } else {
    s = Repository();
  }
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<ImageReference> ParseImageReference(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgument("invalid image reference \"" + std::string(text) +
                           "\": " + std::string(why));
  };
  if (text.empty()) return fail("empty");
  if (text.size() == 64 && IsLowerHex(text)) {
    return fail("a 64-character hex string is an image ID, not a name");
  }

  ImageReference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    Result<std::string> hex = ValidateDigest(rest.substr(at + 1));
    if (!hex.ok()) return fail(hex.status().message());
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  // A tag is a ':' after the last '/' ("localhost:5000/x" has none).
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string tag(rest.substr(colon + 1));
    if (!std::regex_match(tag, TagRe())) return fail("invalid tag \"" + tag + "\"");
    ref.tag = std::move(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return fail("missing repository name");

  std::string_view remote = rest;
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos && LooksLikeDomain(rest.substr(0, slash))) {
    ref.domain = std::string(rest.substr(0, slash));
    remote = rest.substr(slash + 1);
    if (!std::regex_match(ref.domain, DomainRe())) {
      return fail("invalid registry domain \"" + ref.domain + "\"");
    }
  } else {
    ref.domain = std::string(kDefaultDomain);
  }
  if (ref.domain == kLegacyDefaultDomain) ref.domain = std::string(kDefaultDomain);
  if (HasUpper(remote)) return fail("repository name must be lowercase");
  ref.path = std::string(remote);
  if (ref.domain == kDefaultDomain && ref.path.find('/') == std::string::npos) {
    ref.path = std::string(kOfficialRepoPrefix) + ref.path;
  }

  size_t start = 0;
  while (true) {
    size_t end = ref.path.find('/', start);
    std::string component = ref.path.substr(start, end - start);
    if (component.empty()) return fail("empty path component");
    if (!std::regex_match(component, PathComponentRe())) {
      return fail("invalid path component \"" + component + "\"");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (ref.Repository().size() > kMaxNameLength) {
    return fail("repository name must not be more than 255 characters");
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace sbx::oci
