// SHA-256 (OpenSSL's libcrypto), for checking downloads against the Hub's LFS etags.
// Thread-safety: one Sha256 object per thread.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace bitnet::hub {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hex_digest();  // lower-case hex; the object is finished afterwards

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The sha256 of a file's content as lower-case hex; throws bitnet::Error when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace bitnet::hub
