// Absolute URLs as berth's HTTP clients use them (registry, API server, streaming proxy):
// the one URL parser. RFC 3986 generic syntax for hierarchical URLs with an authority,
// scheme://[userinfo@]host[:port][/path][?query][#fragment], read as Go's net/url reads them
// for http(s) URLs. No percent-decoding: path and query stay as written, ready to be sent.
// (Boost.URL would do; the installed Boost, 1.74, predates it.)
//
// Example:
//   ASSIGN_OR_RETURN(Url u, ParseUrl("https://[fd00::1]:6443/api?watch=1"));
//   u.host == "fd00::1"; u.EffectivePort() == 6443; u.Target() == "/api?watch=1"
//
// Thread safety: values; no shared state.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

struct Url {
  std::string scheme;    // lower-cased, e.g. "https"
  std::string userinfo;  // before '@' in the authority ("" when none)
  std::string host;      // a name or address as written; an IPv6 address without brackets
  int port = 0;          // the explicit port (1..65535), 0 when the URL gives none
  std::string path;      // "" or starting with '/'
  std::string query;     // after '?' (without it); "" when none
  std::string fragment;  // after '#' (without it); "" when none

  // The explicit port, else the scheme's default: 80 for http and ws, 443 for https and wss,
  // 0 for other schemes.
  int EffectivePort() const;
  // host[:port] as in a Host header: an IPv6 host in brackets, the port only when explicit.
  std::string HostPort() const;
  // scheme://host[:port] (no userinfo): what an HTTP client connects to.
  std::string Origin() const;
  // The request target: the path ("/" when empty) and "?query" when there is a query.
  std::string Target() const;
};

// Parses an absolute URL with an authority. Errors (InvalidArgument, naming the URL): no
// "scheme://", a scheme that is not ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), an empty
// host, an unterminated "[" IPv6 literal, or a port that is not 1..65535 in digits. An empty
// port ("host:") counts as none, as in Go.
absl::StatusOr<Url> ParseUrl(absl::string_view url);

}  // namespace berth
