// SHA-256 content digests ("sha256:<hex>") and OCI chain IDs (image-spec config.md,
// "Layer ChainID").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace berth::cri::image {

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; one instance per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t n);
  // Finishes the hash and returns "sha256:<64 hex>". Call once.
  std::string Digest();

 private:
  evp_md_ctx_st* ctx_;
};

// "sha256:<hex>" of `data`.
std::string Sha256Digest(absl::string_view data);

// Chain IDs for `diff_ids` (bottom-most first): ChainID(L0) = DiffID(L0),
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). Same length as the input.
std::vector<std::string> ChainIds(const std::vector<std::string>& diff_ids);

// The hex part of "sha256:<hex>" (the input itself when it has no algorithm prefix).
std::string DigestHex(const std::string& digest);

}  // namespace berth::cri::image
