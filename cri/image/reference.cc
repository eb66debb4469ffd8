#include "cri/image/reference.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"

namespace berth::cri::image {
namespace {

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

// Tag grammar of the distribution spec: [\w][\w.-]{0,127}.
bool ValidTag(const std::string& t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (i == 0 ? !word : !(word || c == '.' || c == '-')) return false;
  }
  return true;
}

// One path component: [a-z0-9]+ separated by '.', '_', '__' or '-'+.
bool ValidComponent(const std::string& c) {
  if (c.empty()) return false;
  auto alnum = [](char x) { return (x >= 'a' && x <= 'z') || (x >= '0' && x <= '9'); };
  if (!alnum(c.front()) || !alnum(c.back())) return false;
  for (char x : c) {
    if (!(alnum(x) || x == '.' || x == '_' || x == '-')) return false;
  }
  return true;
}

}  // namespace

bool IsSha256Digest(const std::string& s) {
  return s.size() == 71 && s.compare(0, 7, "sha256:") == 0 && IsLowerHex(s.substr(7));
}

std::string Reference::Name() const { return absl::StrCat(domain, "/", path); }

std::string Reference::TagString() const {
  return tag.empty() ? std::string() : absl::StrCat(Name(), ":", tag);
}

std::string Reference::String() const {
  return digest.empty() ? TagString() : absl::StrCat(Name(), "@", digest);
}

absl::StatusOr<Reference> ParseReference(const std::string& ref) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid image reference \"", ref, "\": ", why));
  };
  if (ref.empty()) return bad("empty");
  Reference out;
  std::string rest = ref;
  if (auto at = rest.find('@'); at != std::string::npos) {
    out.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!IsSha256Digest(out.digest)) return bad("digest must be sha256:<64 lower-case hex>");
  }
  // The tag follows the last ':' after the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    out.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!ValidTag(out.tag)) return bad(absl::StrCat("invalid tag \"", out.tag, "\""));
  }
  if (rest.empty()) return bad("empty repository name");
  // Domain: the first component when it looks like a host (has '.' or ':' or is localhost).
  size_t first = rest.find('/');
  std::string head = first == std::string::npos ? "" : rest.substr(0, first);
  bool has_upper = std::any_of(head.begin(), head.end(),
                               [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  if (!head.empty() && (head.find('.') != std::string::npos ||
                        head.find(':') != std::string::npos || head == "localhost" || has_upper)) {
    out.domain = head;
    out.path = rest.substr(first + 1);
  } else {
    out.domain = "docker.io";
    out.path = rest;
  }
  if (out.domain == "index.docker.io" || out.domain == "registry-1.docker.io")
    out.domain = "docker.io";
  if (out.domain == "docker.io" && out.path.find('/') == std::string::npos) {
    out.path = absl::StrCat("library/", out.path);
  }
  // Validate path components.
  size_t start = 0;
  while (true) {
    size_t end = out.path.find('/', start);
    std::string comp =
        out.path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!ValidComponent(comp)) {
      return bad(absl::StrCat("invalid repository path component \"", comp,
                              "\" (lower-case letters, digits and separators . _ - only)"));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (out.tag.empty() && out.digest.empty()) out.tag = "latest";
  return out;
}

}  // namespace berth::cri::image
