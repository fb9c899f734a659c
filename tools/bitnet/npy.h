// Writing float32 matrices as NumPy .npy (format 1.0) files.
#pragma once
#include <cstdint>
#include <string>

namespace bitnet::cli {

// The full header of a C-order '<f4' array of shape (rows, cols): magic, version 1.0, length, and
// the dict padded with spaces and a final '\n' so that the data starts at a multiple of 64 bytes.
std::string npy_header_f32(uint64_t rows, uint64_t cols);
// Writes the file through an OutputFile: published whole or not at all; refuses to replace an
// existing file unless overwrite is set, and a non-regular one always.
void write_npy_f32(const std::string& path, const float* data, uint64_t rows, uint64_t cols, bool overwrite);

}  // namespace bitnet::cli
