// SHA-256, the content hash that datasets, models and artifacts are addressed by.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace seedproof {

// SHA-256 of bytes, 64 lowercase hex digits.
std::string Sha256Hex(std::string_view bytes);
// Whether text has that form: a hash as stored, sent or used as a file name.
bool IsSha256Hex(std::string_view text);

// The same over bytes given piece by piece (a dataset hashed without building its
// encoding in memory).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  void Update(const void* bytes, size_t size);
  // The digest of everything given so far, as Sha256Hex; the object is spent.
  std::string Hex();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace seedproof
