#include "cri/image/registry.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/url.h"
#include "cri/image/digest.h"

namespace berth::cri::image {
namespace {

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Header(const std::multimap<std::string, std::string>& h, const std::string& name) {
  for (const auto& [k, v] : h) {
    if (absl::AsciiStrToLower(k) == absl::AsciiStrToLower(name)) return v;
  }
  return "";
}

// Parses `Bearer realm="...",service="...",scope="..."` into scheme + params.
std::string ParseChallenge(const std::string& h, std::map<std::string, std::string>* params) {
  size_t sp = h.find(' ');
  std::string scheme = absl::AsciiStrToLower(h.substr(0, sp));
  size_t i = sp == std::string::npos ? h.size() : sp + 1;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    size_t eq = h.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = absl::AsciiStrToLower(h.substr(i, eq - i));
    std::string value;
    i = eq + 1;
    if (i < h.size() && h[i] == '"') {
      size_t end = h.find('"', i + 1);
      if (end == std::string::npos) end = h.size();
      value = h.substr(i + 1, end - i - 1);
      i = end + 1;
    } else {
      size_t end = h.find(',', i);
      if (end == std::string::npos) end = h.size();
      value = h.substr(i, end - i);
      i = end;
    }
    (*params)[key] = value;
  }
  return scheme;
}

}  // namespace

bool IsLoopbackRegistry(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.find(':'));
  if (host == "localhost") return true;
  struct in_addr a;
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

absl::StatusOr<int> HttpGet(const std::string& url,
                            const std::multimap<std::string, std::string>& headers,
                            std::multimap<std::string, std::string>* resp_headers,
                            std::string* body,
                            const std::function<bool(const char*, size_t)>& sink) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  httplib::Client cli(u.Origin());
  cli.set_connection_timeout(15);
  cli.set_read_timeout(120);
  cli.set_follow_location(false);
  cli.enable_server_certificate_verification(true);
  httplib::Headers h(headers.begin(), headers.end());
  int status = 0;
  bool sink_failed = false;
  auto res = cli.Get(
      u.Target(), h,
      [&](const httplib::Response& r) {
        status = r.status;
        if (resp_headers) resp_headers->insert(r.headers.begin(), r.headers.end());
        return true;
      },
      [&](const char* data, size_t n) {
        if (status == 200 && sink) {
          if (!sink(data, n)) {
            sink_failed = true;
            return false;
          }
          return true;
        }
        if (body && body->size() < (64u << 20)) body->append(data, n);
        return true;
      });
  if (sink_failed)
    return absl::InternalError(absl::StrCat("GET ", url, ": writing the response failed"));
  if (!res) {
    std::string why;
    switch (res.error()) {
      case httplib::Error::Connection:
        why = "cannot connect (connection refused or host unreachable)";
        break;
      case httplib::Error::SSLConnection:
        why = "TLS handshake failed (a plain-HTTP registry must be listed as insecure)";
        break;
      case httplib::Error::SSLServerVerification:
        why = "server certificate verification failed";
        break;
      case httplib::Error::Read:
        why = "connection closed while reading the response";
        break;
      default:
        why = absl::StrCat("request failed (", httplib::to_string(res.error()), ")");
    }
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", why));
  }
  return res->status;
}

RegistryClient::RegistryClient(const Reference& ref, const RegistryConfig& config,
                               const RegistryAuth& auth)
    : ref_(ref), auth_(auth) {
  if (auto it = config.mirrors.find(ref.domain); it != config.mirrors.end()) {
    endpoint_ = it->second;
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    if (endpoint_.size() >= 3 && endpoint_.compare(endpoint_.size() - 3, 3, "/v2") == 0)
      endpoint_.resize(endpoint_.size() - 3);
  } else {
    bool insecure = std::find(config.insecure_registries.begin(), config.insecure_registries.end(),
                              ref.domain) != config.insecure_registries.end();
    std::string host = ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain;
    endpoint_ = absl::StrCat(insecure ? "http://" : "https://", host);
    http_fallback_ = !insecure && IsLoopbackRegistry(host);
  }
  if (!auth_.registry_token.empty()) authorization_ = absl::StrCat("Bearer ", auth_.registry_token);
}

absl::Status RegistryClient::Authorize(const std::string& challenge) {
  std::map<std::string, std::string> params;
  std::string scheme = ParseChallenge(challenge, &params);
  std::string basic;
  if (!auth_.username.empty()) {
    basic = absl::StrCat("Basic ", Base64(absl::StrCat(auth_.username, ":", auth_.password)));
  } else if (!auth_.auth.empty()) {
    basic = absl::StrCat("Basic ", auth_.auth);
  }
  if (scheme == "basic") {
    if (basic.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "registry ", ref_.domain, " requires basic auth and no credentials were given"));
    }
    authorization_ = basic;
    return absl::OkStatus();
  }
  if (scheme != "bearer" || params["realm"].empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("registry ", ref_.domain, ": unsupported auth challenge \"", challenge, "\""));
  }
  std::string url = params["realm"];
  std::string query;
  if (!params["service"].empty())
    query = absl::StrCat("service=", httplib::detail::encode_query_param(params["service"]));
  std::string scope =
      params["scope"].empty() ? absl::StrCat("repository:", ref_.path, ":pull") : params["scope"];
  absl::StrAppend(&query, query.empty() ? "" : "&",
                  "scope=", httplib::detail::encode_query_param(scope));
  absl::StrAppend(&url, url.find('?') == std::string::npos ? "?" : "&", query);
  std::multimap<std::string, std::string> headers;
  if (!basic.empty()) headers.emplace("Authorization", basic);
  std::string body;
  ASSIGN_OR_RETURN(int status, HttpGet(url, headers, nullptr, &body, nullptr));
  if (status != 200) {
    return absl::UnauthenticatedError(absl::StrCat("registry ", ref_.domain, ": token request to ",
                                                   params["realm"], " failed with HTTP ", status,
                                                   ": ", body.substr(0, 512)));
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"].get<std::string>();
    }
  }
  if (token.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "registry ", ref_.domain, ": token response from ", params["realm"], " has no token"));
  }
  authorization_ = absl::StrCat("Bearer ", token);
  return absl::OkStatus();
}

absl::Status RegistryClient::ErrorFromResponse(const std::string& what, const Response& r) const {
  // Registry errors: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest
  // unknown","detail":...}]}
  std::string msg;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!msg.empty()) msg += "; ";
      if (e.contains("message") && e["message"].is_string()) {
        msg += e["message"].get<std::string>();
      } else if (e.contains("code") && e["code"].is_string()) {
        msg += e["code"].get<std::string>();
      }
      if (e.contains("detail") && !e["detail"].is_null()) {
        msg +=
            ": " + (e["detail"].is_string() ? e["detail"].get<std::string>() : e["detail"].dump());
      }
    }
  }
  if (msg.empty())
    msg = absl::StrCat("HTTP ", r.status, r.body.empty() ? "" : ": ", r.body.substr(0, 256));
  std::string full = what.empty() ? msg : absl::StrCat(what, ": ", msg);
  switch (r.status) {
    case 404:
      return absl::NotFoundError(full);
    case 401:
      return absl::UnauthenticatedError(full);
    case 403:
      return absl::PermissionDeniedError(full);
    case 429:
      return absl::UnavailableError(full);
    default:
      return r.status >= 500 ? absl::UnavailableError(full) : absl::UnknownError(full);
  }
}

absl::StatusOr<RegistryClient::Response> RegistryClient::Get(const std::string& path,
                                                             const std::string& accept,
                                                             const Sink& sink) {
  std::string url = absl::StrCat(endpoint_, path);
  bool retried_auth = false;
  for (int hops = 0; hops < 8; ++hops) {
    std::multimap<std::string, std::string> headers;
    if (!accept.empty()) headers.emplace("Accept", accept);
    bool same_host = url.compare(0, endpoint_.size(), endpoint_) == 0;
    if (same_host && !authorization_.empty()) headers.emplace("Authorization", authorization_);
    Response r;
    auto status = HttpGet(url, headers, &r.headers, &r.body, sink);
    if (!status.ok() && http_fallback_ && same_host && absl::IsUnavailable(status.status())) {
      // containerd's HTTP fallback for localhost and 127.0.0.0/8: HTTPS first, then plain
      // HTTP for the rest of this client's life.
      http_fallback_ = false;
      std::string rest = url.substr(endpoint_.size());
      endpoint_ = absl::StrCat("http://", endpoint_.substr(endpoint_.find("://") + 3));
      url = endpoint_ + rest;
      r = Response();
      status = HttpGet(url, headers, &r.headers, &r.body, sink);
    }
    if (!status.ok()) return status.status();
    r.status = *status;
    if (r.status == 401 && same_host && !retried_auth) {
      retried_auth = true;
      std::string challenge = Header(r.headers, "WWW-Authenticate");
      if (!challenge.empty()) {
        RETURN_IF_ERROR(Authorize(challenge));
        continue;
      }
    }
    if (r.status >= 300 && r.status < 400 && r.status != 304) {
      std::string loc = Header(r.headers, "Location");
      if (loc.empty()) return r;
      if (loc.find("://") == std::string::npos) {
        ASSIGN_OR_RETURN(Url u, ParseUrl(url));
        loc = loc[0] == '/' ? absl::StrCat(u.Origin(), loc) : absl::StrCat(u.Origin(), "/", loc);
      }
      url = loc;
      continue;
    }
    return r;
  }
  return absl::UnavailableError(absl::StrCat("GET ", endpoint_, path, ": too many redirects"));
}

absl::StatusOr<FetchedManifest> RegistryClient::GetManifest(const std::string& tag_or_digest) {
  std::string accept =
      absl::StrCat(kOciIndex, ", ", kOciManifest, ", ", kDockerManifestList, ", ", kDockerManifest);
  // A tag's errors read well without context ("manifest unknown: ..."); a digest is named.
  std::string what = IsSha256Digest(tag_or_digest) ? absl::StrCat("manifest ", tag_or_digest) : "";
  ASSIGN_OR_RETURN(Response r, Get(absl::StrCat("/v2/", ref_.path, "/manifests/", tag_or_digest),
                                   accept, nullptr));
  if (r.status != 200) return ErrorFromResponse(what, r);
  FetchedManifest m;
  m.body = std::move(r.body);
  m.digest = Sha256Digest(m.body);
  if (IsSha256Digest(tag_or_digest) && m.digest != tag_or_digest) {
    return absl::DataLossError(
        absl::StrCat(what, ": digest mismatch: content hashes to ", m.digest));
  }
  m.media_type = Header(r.headers, "Content-Type");
  if (auto semi = m.media_type.find(';'); semi != std::string::npos) m.media_type.resize(semi);
  auto j = nlohmann::json::parse(m.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", tag_or_digest, ": body is not a JSON object"));
  }
  if (j.contains("mediaType") && j["mediaType"].is_string())
    m.media_type = j["mediaType"].get<std::string>();
  return m;
}

absl::StatusOr<int64_t> RegistryClient::FetchBlob(const std::string& digest,
                                                  const std::string& dest_path) {
  std::string what = absl::StrCat("blob ", ref_.Name(), "@", digest);
  FILE* f = std::fopen(dest_path.c_str(), "wbe");
  if (f == nullptr) return ErrnoStatus(errno, absl::StrCat("create ", dest_path));
  Sha256 hash;
  int64_t size = 0;
  int write_errno = 0;  // the disk's error (ENOSPC: ResourceExhausted), not the download's
  auto r =
      Get(absl::StrCat("/v2/", ref_.path, "/blobs/", digest), "", [&](const char* data, size_t n) {
        hash.Update(data, n);
        size += static_cast<int64_t>(n);
        if (std::fwrite(data, 1, n, f) == n) return true;
        write_errno = errno != 0 ? errno : EIO;
        return false;
      });
  if (write_errno == 0 && (std::fflush(f) != 0 || fsync(fileno(f)) != 0)) write_errno = errno;
  std::fclose(f);
  auto fail = [&](absl::Status s) {
    std::remove(dest_path.c_str());
    return s;
  };
  if (write_errno != 0)
    return fail(ErrnoStatus(write_errno, absl::StrCat(what, ": write ", dest_path)));
  if (!r.ok()) return fail(Annotate(r.status(), what));
  if (r->status != 200) return fail(ErrorFromResponse(what, *r));
  std::string got = hash.Digest();
  if (got != digest) {
    return fail(absl::DataLossError(absl::StrCat(what, ": digest mismatch: downloaded ", size,
                                                 " bytes hash to ", got, "; blob discarded")));
  }
  return size;
}

}  // namespace berth::cri::image
