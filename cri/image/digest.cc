#include "cri/image/digest.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace berth::cri::image {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }

std::string Sha256::Digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string Sha256Digest(absl::string_view data) {
  Sha256 h;
  h.Update(data.data(), data.size());
  return h.Digest();
}

std::vector<std::string> ChainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  out.reserve(diff_ids.size());
  for (const auto& d : diff_ids) {
    out.push_back(out.empty() ? d : Sha256Digest(absl::StrCat(out.back(), " ", d)));
  }
  return out;
}

std::string DigestHex(const std::string& digest) {
  auto colon = digest.find(':');
  return colon == std::string::npos ? digest : digest.substr(colon + 1);
}

}  // namespace berth::cri::image
