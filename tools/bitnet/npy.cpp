#include "npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bitnet/error.h"

namespace bitnet::cli {

std::string npy_header_f32(uint64_t rows, uint64_t cols) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  const size_t prefix = 10;  // magic (6) + version (2) + header length (2)
  size_t total = prefix + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string header("\x93NUMPY\x01\x00", 8);
  header += (char)(dict.size() & 0xff);
  header += (char)(dict.size() >> 8);
  return header + dict;
}

void write_npy_f32(const std::string& path, const float* data, uint64_t rows, uint64_t cols, bool overwrite) {
  static_assert(sizeof(float) == 4);
  int flags = O_WRONLY | O_CREAT | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == EEXIST) throw Error("'" + path + "' exists (use --force to overwrite)");
    throw Error("cannot create '" + path + "': " + std::strerror(errno));
  }
  auto write_all = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        std::string why = std::strerror(errno);
        ::close(fd);
        throw Error("cannot write '" + path + "': " + why);
      }
      c += w;
      n -= (size_t)w;
    }
  };
  std::string header = npy_header_f32(rows, cols);
  write_all(header.data(), header.size());
  // x86 and aarch64 Linux are little-endian, the '<f4' of the header.
  write_all(data, rows * cols * sizeof(float));
  if (::close(fd) != 0) throw Error("cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace bitnet::cli
