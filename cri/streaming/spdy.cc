#include "cri/streaming/spdy.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::cri::streaming::spdy {
namespace {

constexpr uint16_t kVersion = 3;

void Put32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// Control frame header: C bit, version, type, flags, 24-bit length.
std::string ControlHeader(FrameType type, uint8_t flags, size_t length) {
  std::string out;
  out.reserve(8 + length);
  Put32(&out, 0x80000000u | (uint32_t{kVersion} << 16) | static_cast<uint16_t>(type));
  Put32(&out, (uint32_t{flags} << 24) | static_cast<uint32_t>(length & 0xffffff));
  return out;
}

}  // namespace

const std::string& HeaderDictionary() {
  // SPDY/3 section 2.6.10.1: each common header name or method prefixed by its 32-bit
  // length, then a run of common status codes, reason phrases, dates and values.
  static const std::string* dict = [] {
    static const char* const kNames[] = {"options",
                                         "head",
                                         "post",
                                         "put",
                                         "delete",
                                         "trace",
                                         "accept",
                                         "accept-charset",
                                         "accept-encoding",
                                         "accept-language",
                                         "accept-ranges",
                                         "age",
                                         "allow",
                                         "authorization",
                                         "cache-control",
                                         "connection",
                                         "content-base",
                                         "content-encoding",
                                         "content-language",
                                         "content-length",
                                         "content-location",
                                         "content-md5",
                                         "content-range",
                                         "content-type",
                                         "date",
                                         "etag",
                                         "expect",
                                         "expires",
                                         "from",
                                         "host",
                                         "if-match",
                                         "if-modified-since",
                                         "if-none-match",
                                         "if-range",
                                         "if-unmodified-since",
                                         "last-modified",
                                         "location",
                                         "max-forwards",
                                         "pragma",
                                         "proxy-authenticate",
                                         "proxy-authorization",
                                         "range",
                                         "referer",
                                         "retry-after",
                                         "server",
                                         "te",
                                         "trailer",
                                         "transfer-encoding",
                                         "upgrade",
                                         "user-agent",
                                         "vary",
                                         "via",
                                         "warning",
                                         "www-authenticate",
                                         "method",
                                         "get",
                                         "status",
                                         "200 OK",
                                         "version",
                                         "HTTP/1.1",
                                         "url",
                                         "public",
                                         "set-cookie",
                                         "keep-alive",
                                         "origin"};
    auto* d = new std::string();
    for (const char* n : kNames) {
      Put32(d, static_cast<uint32_t>(strlen(n)));
      d->append(n);
    }
    d->append(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
        "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad "
        "Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not "
        "Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec "
        "00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,"
        "image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
        "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.");
    return d;
  }();
  return *dict;
}

HeaderCodec::HeaderCodec() {
  // Allocation failures here are not recoverable: crash loudly.
  if (deflateInit(&deflate_, Z_BEST_COMPRESSION) != Z_OK) abort();
  const std::string& dict = HeaderDictionary();
  if (deflateSetDictionary(&deflate_, reinterpret_cast<const Bytef*>(dict.data()),
                           static_cast<uInt>(dict.size())) != Z_OK) {
    abort();
  }
  if (inflateInit(&inflate_) != Z_OK) abort();
  inflate_ready_ = true;
}

HeaderCodec::~HeaderCodec() {
  deflateEnd(&deflate_);
  if (inflate_ready_) inflateEnd(&inflate_);
}

std::string HeaderCodec::Encode(const Headers& h) {
  std::string raw;
  Put32(&raw, static_cast<uint32_t>(h.size()));
  for (const auto& [name, value] : h) {
    Put32(&raw, static_cast<uint32_t>(name.size()));
    raw.append(absl::AsciiStrToLower(name));
    Put32(&raw, static_cast<uint32_t>(value.size()));
    raw.append(value);
  }
  std::string out;
  deflate_.next_in = reinterpret_cast<Bytef*>(raw.data());
  deflate_.avail_in = static_cast<uInt>(raw.size());
  char buf[4096];
  do {
    deflate_.next_out = reinterpret_cast<Bytef*>(buf);
    deflate_.avail_out = sizeof(buf);
    int rc = deflate(&deflate_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) abort();  // only misuse can fail here
    out.append(buf, sizeof(buf) - deflate_.avail_out);
  } while (deflate_.avail_out == 0);
  return out;
}

absl::StatusOr<Headers> HeaderCodec::Decode(absl::string_view block) {
  std::string raw;
  inflate_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  inflate_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  while (inflate_.avail_in > 0) {
    inflate_.next_out = reinterpret_cast<Bytef*>(buf);
    inflate_.avail_out = sizeof(buf);
    int rc = inflate(&inflate_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const std::string& dict = HeaderDictionary();
      if (inflateSetDictionary(&inflate_, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size())) != Z_OK) {
        return absl::DataLossError("SPDY header block: wrong zlib dictionary");
      }
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::DataLossError(absl::StrCat("SPDY header block: zlib error ", rc));
    }
    raw.append(buf, sizeof(buf) - inflate_.avail_out);
    if (rc == Z_BUF_ERROR && inflate_.avail_out != 0) break;  // no progress possible
  }
  // Drain any output still pending in zlib.
  for (;;) {
    inflate_.next_out = reinterpret_cast<Bytef*>(buf);
    inflate_.avail_out = sizeof(buf);
    int rc = inflate(&inflate_, Z_SYNC_FLUSH);
    raw.append(buf, sizeof(buf) - inflate_.avail_out);
    if (rc != Z_OK || inflate_.avail_out != 0) break;
  }

  Headers h;
  size_t pos = 0;
  auto take32 = [&](uint32_t* v) {
    if (raw.size() - pos < 4) return false;
    *v = Get32(raw.data() + pos);
    pos += 4;
    return true;
  };
  auto take = [&](uint32_t n, std::string* s) {
    if (raw.size() - pos < n) return false;
    s->assign(raw, pos, n);
    pos += n;
    return true;
  };
  uint32_t count = 0;
  if (!take32(&count)) return absl::DataLossError("SPDY header block: truncated count");
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t n = 0;
    std::string name, value;
    if (!take32(&n) || n == 0 || !take(n, &name) || !take32(&n) || !take(n, &value)) {
      return absl::DataLossError("SPDY header block: truncated or empty name");
    }
    std::string key = absl::AsciiStrToLower(name);
    auto [it, inserted] = h.emplace(key, value);
    if (!inserted) it->second.append(1, '\0').append(value);
  }
  return h;
}

absl::StatusOr<std::optional<Frame>> FrameParser::Next() {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ * 2 > buf_.size()) {
    // Compact once the consumed prefix dominates, so a long stream does not grow the buffer.
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (buf_.size() - pos_ < 8) return std::nullopt;
  const char* p = buf_.data() + pos_;
  uint32_t w0 = Get32(p), w1 = Get32(p + 4);
  uint32_t length = w1 & 0xffffff;
  if (buf_.size() - pos_ < 8 + size_t{length}) return std::nullopt;
  Frame f;
  f.flags = static_cast<uint8_t>(w1 >> 24);
  const char* d = p + 8;
  pos_ += 8 + length;
  if ((w0 & 0x80000000u) == 0) {
    f.stream_id = w0 & 0x7fffffff;
    f.data.assign(d, length);
    return f;
  }
  f.control = true;
  uint16_t version = static_cast<uint16_t>((w0 >> 16) & 0x7fff);
  if (version != kVersion) {
    return absl::InvalidArgumentError(absl::StrCat("SPDY: unsupported version ", version));
  }
  uint16_t type = static_cast<uint16_t>(w0 & 0xffff);
  f.type = static_cast<FrameType>(type);
  auto need = [&](uint32_t n) -> absl::Status {
    if (length < n) {
      return absl::InvalidArgumentError(
          absl::StrCat("SPDY: control frame type ", type, " too short (", length, " bytes)"));
    }
    return absl::OkStatus();
  };
  switch (f.type) {
    case FrameType::kSynStream:
      if (auto s = need(10); !s.ok()) return s;
      f.stream_id = Get32(d) & 0x7fffffff;
      f.associated_id = Get32(d + 4) & 0x7fffffff;
      f.priority = static_cast<uint8_t>(static_cast<unsigned char>(d[8]) >> 5);
      f.header_block.assign(d + 10, length - 10);
      break;
    case FrameType::kSynReply:
    case FrameType::kHeaders:
      if (auto s = need(4); !s.ok()) return s;
      f.stream_id = Get32(d) & 0x7fffffff;
      f.header_block.assign(d + 4, length - 4);
      break;
    case FrameType::kRstStream:
      if (auto s = need(8); !s.ok()) return s;
      f.stream_id = Get32(d) & 0x7fffffff;
      f.status = Get32(d + 4);
      break;
    case FrameType::kSettings: {
      if (auto s = need(4); !s.ok()) return s;
      uint32_t n = Get32(d);
      if (length < 4 + uint64_t{n} * 8) return absl::InvalidArgumentError("SPDY: short SETTINGS");
      for (uint32_t i = 0; i < n; ++i) {
        f.settings.emplace_back(Get32(d + 4 + i * 8) & 0xffffff, Get32(d + 8 + i * 8));
      }
      break;
    }
    case FrameType::kPing:
      if (auto s = need(4); !s.ok()) return s;
      f.ping_id = Get32(d);
      break;
    case FrameType::kGoAway:
      if (auto s = need(4); !s.ok()) return s;
      f.last_good_id = Get32(d) & 0x7fffffff;
      if (length >= 8) f.status = Get32(d + 4);
      break;
    case FrameType::kWindowUpdate:
      if (auto s = need(8); !s.ok()) return s;
      f.stream_id = Get32(d) & 0x7fffffff;
      f.delta_window = Get32(d + 4) & 0x7fffffff;
      break;
    default:
      return Next();  // unknown control frame: ignored (section 2.2)
  }
  return f;
}

void AppendData(std::string* out, uint32_t stream_id, absl::string_view data, bool fin) {
  Put32(out, stream_id & 0x7fffffff);
  Put32(out, (uint32_t{fin ? kFlagFin : uint8_t{0}} << 24) | static_cast<uint32_t>(data.size()));
  out->append(data.data(), data.size());
}

std::string EncodeData(uint32_t stream_id, absl::string_view data, bool fin) {
  std::string out;
  out.reserve(8 + data.size());
  AppendData(&out, stream_id, data, fin);
  return out;
}

std::string EncodeSynStream(uint32_t stream_id, uint32_t associated_id, uint8_t priority,
                            uint8_t flags, absl::string_view header_block) {
  std::string out = ControlHeader(FrameType::kSynStream, flags, 10 + header_block.size());
  Put32(&out, stream_id & 0x7fffffff);
  Put32(&out, associated_id & 0x7fffffff);
  out.push_back(static_cast<char>((priority & 0x7) << 5));
  out.push_back(0);  // slot
  out.append(header_block.data(), header_block.size());
  return out;
}

std::string EncodeSynReply(uint32_t stream_id, uint8_t flags, absl::string_view header_block) {
  std::string out = ControlHeader(FrameType::kSynReply, flags, 4 + header_block.size());
  Put32(&out, stream_id & 0x7fffffff);
  out.append(header_block.data(), header_block.size());
  return out;
}

std::string EncodeRstStream(uint32_t stream_id, uint32_t status) {
  std::string out = ControlHeader(FrameType::kRstStream, 0, 8);
  Put32(&out, stream_id & 0x7fffffff);
  Put32(&out, status);
  return out;
}

std::string EncodeSettings(const std::vector<std::pair<uint32_t, uint32_t>>& settings) {
  std::string out = ControlHeader(FrameType::kSettings, 0, 4 + settings.size() * 8);
  Put32(&out, static_cast<uint32_t>(settings.size()));
  for (const auto& [id, value] : settings) {
    Put32(&out, id & 0xffffff);
    Put32(&out, value);
  }
  return out;
}

std::string EncodePing(uint32_t id) {
  std::string out = ControlHeader(FrameType::kPing, 0, 4);
  Put32(&out, id);
  return out;
}

std::string EncodeGoAway(uint32_t last_good_id, uint32_t status) {
  std::string out = ControlHeader(FrameType::kGoAway, 0, 8);
  Put32(&out, last_good_id & 0x7fffffff);
  Put32(&out, status);
  return out;
}

std::string EncodeHeaders(uint32_t stream_id, uint8_t flags, absl::string_view header_block) {
  std::string out = ControlHeader(FrameType::kHeaders, flags, 4 + header_block.size());
  Put32(&out, stream_id & 0x7fffffff);
  out.append(header_block.data(), header_block.size());
  return out;
}

std::string EncodeWindowUpdate(uint32_t stream_id, uint32_t delta) {
  std::string out = ControlHeader(FrameType::kWindowUpdate, 0, 8);
  Put32(&out, stream_id & 0x7fffffff);
  Put32(&out, delta & 0x7fffffff);
  return out;
}

}  // namespace berth::cri::streaming::spdy
