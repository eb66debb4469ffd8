#include "base/url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace berth {
namespace {

absl::Status Invalid(absl::string_view url, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("URL \"", url, "\": ", why));
}

bool ValidScheme(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      return false;
  }
  return true;
}

}  // namespace

int Url::EffectivePort() const {
  if (port != 0) return port;
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

std::string Url::HostPort() const {
  std::string h = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  return port != 0 ? absl::StrCat(h, ":", port) : h;
}

std::string Url::Origin() const { return absl::StrCat(scheme, "://", HostPort()); }

std::string Url::Target() const {
  std::string t = path.empty() ? "/" : path;
  if (!query.empty()) absl::StrAppend(&t, "?", query);
  return t;
}

absl::StatusOr<Url> ParseUrl(absl::string_view url) {
  Url u;
  size_t sep = url.find("://");
  if (sep == absl::string_view::npos) return Invalid(url, "not an absolute URL (no scheme://)");
  if (!ValidScheme(url.substr(0, sep))) return Invalid(url, "bad scheme");
  u.scheme = absl::AsciiStrToLower(url.substr(0, sep));
  absl::string_view rest = url.substr(sep + 3);
  if (size_t hash = rest.find('#'); hash != absl::string_view::npos) {
    u.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    u.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) u.path = std::string(rest.substr(slash));
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    u.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  absl::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return Invalid(url, "unterminated [ in the host");
    u.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Invalid(url, "junk after the ] of the host");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != absl::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) return Invalid(url, "no host");
  if (!port.empty()) {
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return Invalid(url, "bad port");
    }
    if (!absl::SimpleAtoi(port, &u.port) || u.port < 1 || u.port > 65535) {
      return Invalid(url, "bad port");
    }
  }
  return u;
}

}  // namespace berth
