#include "npy.h"

#include "util/files.h"

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
  OutputFile out(path, overwrite);
  const std::string header = npy_header_f32(rows, cols);
  out.write(header.data(), header.size());
  // x86 and aarch64 Linux are little-endian, the '<f4' of the header.
  out.write(data, rows * cols * sizeof(float));
  out.commit();
}

}  // namespace bitnet::cli
