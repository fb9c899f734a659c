// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data section
// the offsets are relative to.
#include "convert/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "bitnet/error.h"
#include "bitnet/formats.h"

namespace bitnet {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = 100u << 20;  // what the safetensors library accepts

int dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

void drop_pages(const void* p, uint64_t n) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t begin = ((uintptr_t)p + page - 1) / page * page, end = ((uintptr_t)p + n) / page * page;
  if (end > begin) madvise((void*)begin, end - begin, MADV_DONTNEED);
}

}  // namespace

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  auto fail = [&](const std::string& what) { return Error(path + ": " + what); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw fail("not a regular file");
  }
  f->size_ = (uint64_t)st.st_size;
  if (f->size_ < 8) {
    ::close(fd);
    throw fail("truncated safetensors file (" + std::to_string(f->size_) + " bytes, no header)");
  }
  void* map = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw fail(std::string("cannot map: ") + std::strerror(errno));
  f->map_ = map;
  const auto* bytes = static_cast<const uint8_t*>(map);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
  if (header_len > kMaxHeader || header_len > f->size_ - 8)
    throw fail("safetensors header length " + std::to_string(header_len) + " exceeds the file (" +
               std::to_string(f->size_) + " bytes): truncated or not a safetensors file");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    throw fail("safetensors header is not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!header.is_object()) throw fail("safetensors header is not a JSON object");
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = f->size_ - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string what = "tensor '" + it.key() + "'";
    const json& e = it.value();
    StTensor t;
    t.name = it.key();
    try {
      t.dtype = e.at("dtype").get<std::string>();
      // Integers only: converting a float such as 1e67 to an integer would be undefined behaviour.
      for (const json& d : e.at("shape")) {
        if (!d.is_number_integer()) throw fail(what + ": shape holds " + d.dump() + ", not an integer");
        t.shape.push_back(d.get<int64_t>());
      }
      const json& off = e.at("data_offsets");
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_integer() || !off[1].is_number_integer())
        throw fail(what + ": data_offsets is not [begin, end]");
      const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
      if (begin > end || end > data_size)
        throw fail(what + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                   "] lie outside the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
      t.data = data + begin;
      t.nbytes = end - begin;
    } catch (const json::exception& ex) {
      throw fail(what + ": malformed header entry (" + std::string(ex.what()) + ")");
    }
    const int size = dtype_size(t.dtype);
    if (size == 0) throw fail(what + ": unknown dtype '" + t.dtype + "'");
    uint64_t n = (uint64_t)size;
    for (int64_t d : t.shape)
      if (d < 0 || __builtin_mul_overflow(n, (uint64_t)d, &n)) throw fail(what + ": invalid shape " + t.shape_string());
    if (n != t.nbytes)
      throw fail(what + ": " + t.dtype + " " + t.shape_string() + " takes " + std::to_string(n) +
                 " bytes but its data_offsets span " + std::to_string(t.nbytes));
    t.file = &f->path_;
    f->tensors_.push_back(std::move(t));
  }
  // Byte ranges must not overlap (each tensor owns its bytes).
  std::vector<const StTensor*> by_offset;
  for (const StTensor& t : f->tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->data < by_offset[i - 1]->data + by_offset[i - 1]->nbytes)
      throw fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_.emplace(f->tensors_[i].name, i);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
}

const StTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::release(const StTensor& t, uint64_t begin, uint64_t end) const {
  end = std::min(end, t.nbytes);
  if (begin < end) drop_pages(t.data + begin, end - begin);
}

Checkpoint Checkpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  Checkpoint c;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    std::stringstream text;
    text << in.rdbuf();
    json index;
    try {
      index = json::parse(text.str());
    } catch (const json::exception& e) {
      throw Error(index_path.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object())
      throw Error(index_path.string() + ": no \"weight_map\" object");
    std::map<std::string, size_t> shard_index;
    for (auto it = index.at("weight_map").begin(); it != index.at("weight_map").end(); ++it) {
      if (!it.value().is_string()) throw Error(index_path.string() + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        throw Error(index_path.string() + ": shard name '" + shard + "' is not a file in the checkpoint directory");
      auto [pos, added] = shard_index.emplace(shard, c.files_.size());
      if (added) c.files_.push_back(SafetensorsFile::open((fs::path(dir) / shard).string()));
      const StTensor* t = c.files_[pos->second]->find(it.key());
      if (!t) throw Error(c.files_[pos->second]->path() + ": has no tensor '" + it.key() + "', which the index puts there");
      c.tensors_[it.key()] = {pos->second, t};
    }
    return c;
  }
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (!fs::exists(single, ec))
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json (not a Hugging Face checkpoint directory?)");
  c.files_.push_back(SafetensorsFile::open(single.string()));
  for (const StTensor& t : c.files_[0]->tensors()) c.tensors_[t.name] = {0, &t};
  return c;
}

const StTensor* Checkpoint::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second.second;
}

void Checkpoint::release(const StTensor& t, uint64_t begin, uint64_t end) const {
  auto it = tensors_.find(t.name);
  if (it != tensors_.end()) files_[it->second.first]->release(t, begin, end);
}

void read_float_row(const StTensor& t, int64_t r, float* out) {
  const int64_t cols = t.shape.size() >= 2 ? t.shape[1] : t.n_elements();
  if (cols == 0) return;  // out may be null then (an empty vector's data()), which memcpy must not get
  if (t.dtype == "F32") {
    std::memcpy(out, t.data + (size_t)(r * cols) * 4, (size_t)cols * 4);
    return;
  }
  const uint8_t* p = t.data + (size_t)(r * cols) * 2;
  const bool bf16 = t.dtype == "BF16";
  if (!bf16 && t.dtype != "F16") throw Error("tensor '" + t.name + "': dtype " + t.dtype + " is not a float type");
  for (int64_t i = 0; i < cols; ++i) {
    const uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    out[i] = bf16 ? bf16_to_fp32(h) : fp16_to_fp32(h);
  }
}

std::vector<float> read_floats(const StTensor& t) {
  std::vector<float> v((size_t)t.n_elements());
  StTensor flat = t;
  flat.shape = {1, t.n_elements()};
  read_float_row(flat, 0, v.data());
  return v;
}

}  // namespace bitnet
