// GGUF reader and writer: round trips, every malformation the reader must reject (with a message
// naming the field), truncation and corruption robustness, and real llama.cpp-written files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "bitnet/formats.h"
#include "bitnet/gguf.h"
#include "fixtures.h"

namespace bitnet::gguf {
namespace {

namespace fs = std::filesystem;

std::string scratch(const std::string& name) {
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  return (bitnet::test::scratch_dir() / (test + "_" + name)).string();
}

// The writer's temporaries for `path` (path.XXXXXX.partial beside it).
int temporaries_of(const std::string& path) {
  const fs::path p(path);
  int n = 0;
  for (const auto& e : fs::directory_iterator(p.parent_path())) {
    const std::string name = e.path().filename().string();
    n += name.rfind(p.filename().string() + ".", 0) == 0 && name.size() > 8 && name.ends_with(".partial");
  }
  return n;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Same-size rewrite without truncating, which is much cheaper on some file systems.
void overwrite_in_place(const std::string& path, const std::string& bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Little-endian byte builder for hand-made (mostly malformed) files.
struct Bytes {
  std::string s;
  template <class T>
  Bytes& num(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& u8(uint8_t v) { return num(v); }
  Bytes& u32(uint32_t v) { return num(v); }
  Bytes& u64(uint64_t v) { return num(v); }
  Bytes& str(std::string_view v) {
    u64(v.size());
    s += v;
    return *this;
  }
  Bytes& key(std::string_view k, ValueType t) { return str(k).u32(static_cast<uint32_t>(t)); }
  Bytes& pad_to(size_t alignment) {
    s.resize((s.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
};

struct RawTensor {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;
  uint64_t offset;
};

// A small file, valid as given by default; tests change one thing to make it malformed.
struct Spec {
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors;
  std::optional<uint64_t> n_kv;
  std::string arch = "llama";
  std::vector<std::function<void(Bytes&)>> extra_kv;  // each appends exactly one entry
  std::vector<RawTensor> tensors = {{"a", {8, 2}, 0, 0}, {"b", {32}, 1, 64}};  // F32 64 B, F16 64 B
  size_t alignment = 32;
  uint64_t data_bytes = 128;

  std::string build() const {
    Bytes b;
    b.s = "GGUF";
    b.u32(version).u64(n_tensors.value_or(tensors.size())).u64(n_kv.value_or(1 + extra_kv.size()));
    b.key("general.architecture", ValueType::STRING).str(arch);
    for (const auto& add : extra_kv) add(b);
    for (const RawTensor& t : tensors) {
      b.str(t.name).u32(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) b.u64(d);
      b.u32(t.type).u64(t.offset);
    }
    b.pad_to(alignment);
    b.s.append(data_bytes, '\x5a');
    return b.s;
  }
};

// Writes the bytes, opens them, and returns the error message (failing the test if it opened).
std::string open_error(const std::string& bytes) {
  const std::string path = scratch("case.gguf");
  write_file(path, bytes);
  try {
    File::open(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, path)) << "message does not name the file: " << msg;
    EXPECT_FALSE(contains(msg, "\n")) << "message is not one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "malformed file opened";
  return "";
}

#define EXPECT_OPEN_ERROR(spec_or_bytes, ...)                                                \
  do {                                                                                       \
    const std::string msg_ = open_error(spec_or_bytes);                                      \
    for (const std::string& needle_ : std::initializer_list<std::string>{__VA_ARGS__})                                             \
      EXPECT_TRUE(contains(msg_, needle_)) << "expected '" << needle_ << "' in: " << msg_;   \
  } while (0)

TEST(GgufReader, HandMadeFileOpens) {
  const std::string path = scratch("ok.gguf");
  write_file(path, Spec{}.build());
  auto f = File::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorInfo* b = f->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->nbytes, 64u);
  EXPECT_EQ(b->data - f->tensors()[0].data, 64);
  EXPECT_EQ(b->data[0], 0x5a);

  Spec v2;
  v2.version = 2;
  write_file(path, v2.build());
  EXPECT_EQ(File::open(path)->version(), 2u);
}

// Whether /proc/self/maps lists a mapping of the file.
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (contains(line, path)) return true;
  return false;
}

TEST(GgufReader, ReadsIntoMemoryWithoutMmap) {
  const std::string path = scratch("nommap.gguf");
  write_file(path, Spec{}.build());
  auto mapped = File::open(path);
  EXPECT_TRUE(is_mapped(path));
  auto read = File::open(path, false);
  mapped.reset();
  EXPECT_FALSE(is_mapped(path)) << "--no-mmap left the file mapped";
  ASSERT_EQ(read->tensors().size(), 2u);
  const TensorInfo* b = read->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->data[0], 0x5a);
  EXPECT_EQ(b->data - read->tensors()[0].data, 64);
  // Nothing depends on the file afterwards.
  write_file(path, "");
  EXPECT_EQ(b->data[b->nbytes - 1], 0x5a);
}

// ---- header ----------------------------------------------------------------------------------

TEST(GgufReader, RejectsBadMagic) {
  std::string bytes = Spec{}.build();
  bytes[0] = 'X';
  EXPECT_OPEN_ERROR(bytes, "magic", "XGUF");
  EXPECT_OPEN_ERROR(std::string("GG"), "magic");
}

TEST(GgufReader, RejectsVersion1) {
  Spec s;
  s.version = 1;
  EXPECT_OPEN_ERROR(s.build(), "version 1");
}

TEST(GgufReader, ReportsByteSwappedVersionAsBigEndian) {
  Spec s;
  s.version = __builtin_bswap32(3);
  EXPECT_OPEN_ERROR(s.build(), "big-endian");
  s.version = __builtin_bswap32(2);
  EXPECT_OPEN_ERROR(s.build(), "big-endian");
}

TEST(GgufReader, RejectsUnknownVersion) {
  Spec s;
  s.version = 4;
  EXPECT_OPEN_ERROR(s.build(), "version 4");
}

TEST(GgufReader, RejectsCountsTheFileCannotHold) {
  Spec s;
  s.n_tensors = uint64_t{1} << 60;
  EXPECT_OPEN_ERROR(s.build(), "n_tensors", "1152921504606846976");
  s = Spec{};
  s.n_kv = 1000;
  EXPECT_OPEN_ERROR(s.build(), "n_kv 1000");
  // Both counts draw on the same bytes: n_kv alone would fit, not beside the tensors' minimum.
  s = Spec{};
  const uint64_t after_header = s.build().size() - 24;
  s.n_kv = (after_header - 2 * 32) / 13 + 1;
  EXPECT_OPEN_ERROR(s.build(), "n_kv");
}

TEST(GgufReader, RejectsEmptyFileDirectoryAndMissingPath) {
  const std::string empty = scratch("empty.gguf");
  write_file(empty, "");
  try {
    File::open(empty);
    ADD_FAILURE() << "empty file opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), empty) && contains(e.what(), "empty")) << e.what();
  }
  const std::string dir = bitnet::test::scratch_dir().string();
  try {
    File::open(dir);
    ADD_FAILURE() << "directory opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "directory")) << e.what();
  }
  const std::string missing = scratch("does-not-exist.gguf");
  try {
    File::open(missing);
    ADD_FAILURE() << "missing file opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), missing) && contains(e.what(), "No such file")) << e.what();
  }
}

// ---- metadata --------------------------------------------------------------------------------

TEST(GgufReader, RejectsKeyLengthPastEnd) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.u64(uint64_t{1} << 40).s += "xyz"; });
  EXPECT_OPEN_ERROR(s.build(), "metadata entry #1", "key of length 1099511627776", "runs past end");
}

TEST(GgufReader, RejectsStringValueLengthPastEnd) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.key("my.string", ValueType::STRING).u64(1u << 20); });
  EXPECT_OPEN_ERROR(s.build(), "my.string", "string of length 1048576");
}

TEST(GgufReader, RejectsArrayLengthPastEnd) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) {
    b.key("my.array", ValueType::ARRAY).u32(static_cast<uint32_t>(ValueType::UINT32)).u64(100000);
  });
  EXPECT_OPEN_ERROR(s.build(), "my.array", "array length 100000");
  // A string array whose count times the 8-byte minimum exceeds the file, though count alone fits.
  s = Spec{};
  const uint64_t count = s.build().size();
  s.extra_kv.push_back([count](Bytes& b) {
    b.key("my.strings", ValueType::ARRAY).u32(static_cast<uint32_t>(ValueType::STRING)).u64(count);
  });
  EXPECT_OPEN_ERROR(s.build(), "my.strings", "array length");
}

TEST(GgufReader, LimitsMetadataValuesPerFile) {
  // Each element costs one byte on disk but a whole Value in memory: bounded per file.
  constexpr uint64_t kCount = (uint64_t{1} << 22) + 1;
  Spec s;
  s.extra_kv.push_back([](Bytes& b) {
    b.key("huge", ValueType::ARRAY).u32(static_cast<uint32_t>(ValueType::UINT8)).u64(kCount);
    b.s.append(kCount, '\1');
  });
  EXPECT_OPEN_ERROR(s.build(), "'huge'", "array length 4194305", "limit");
}

TEST(GgufReader, RejectsUnknownValueTypes) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.str("my.key").u32(13).u32(0); });
  EXPECT_OPEN_ERROR(s.build(), "my.key", "value type 13");
  s = Spec{};
  s.extra_kv.push_back([](Bytes& b) {
    b.key("my.array", ValueType::ARRAY).u32(0xffffffffu).u64(1).u32(0);
  });
  EXPECT_OPEN_ERROR(s.build(), "my.array", "array element type 4294967295");
}

TEST(GgufReader, RejectsBoolOtherThanZeroOrOne) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.key("my.flag", ValueType::BOOL).u8(2); });
  EXPECT_OPEN_ERROR(s.build(), "my.flag", "bool value 2");
}

Bytes& nested_arrays(Bytes& b, int depth) {
  for (int d = 1; d < depth; ++d) b.u32(static_cast<uint32_t>(ValueType::ARRAY)).u64(1);
  return b.u32(static_cast<uint32_t>(ValueType::UINT8)).u64(1).u8(7);
}

TEST(GgufReader, LimitsArrayNesting) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { nested_arrays(b.key("deep", ValueType::ARRAY), 8); });
  const std::string path = scratch("deep8.gguf");
  write_file(path, s.build());
  auto f = File::open(path);
  const Value* v = f->find("deep");
  ASSERT_NE(v, nullptr);
  for (int d = 1; d < 8; ++d) {
    ASSERT_EQ(v->type, ValueType::ARRAY);
    ASSERT_EQ(v->arr.size(), 1u);
    v = &v->arr[0];
  }
  EXPECT_EQ(v->elem_type, ValueType::UINT8);
  EXPECT_EQ(v->arr.at(0).u, 7u);

  s.extra_kv = {[](Bytes& b) { nested_arrays(b.key("deep", ValueType::ARRAY), 9); }};
  EXPECT_OPEN_ERROR(s.build(), "'deep'", "nested deeper than 8");
}

TEST(GgufReader, RejectsDuplicateKeys) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.key("general.architecture", ValueType::STRING).str("llama"); });
  EXPECT_OPEN_ERROR(s.build(), "duplicate metadata key 'general.architecture'");
}

TEST(GgufReader, ValidatesAlignment) {
  Spec s;
  s.extra_kv.push_back([](Bytes& b) { b.key("general.alignment", ValueType::UINT64).u64(32); });
  EXPECT_OPEN_ERROR(s.build(), "general.alignment", "uint64");
  for (uint32_t bad : {0u, 48u}) {
    s.extra_kv = {[bad](Bytes& b) { b.key("general.alignment", ValueType::UINT32).u32(bad); }};
    EXPECT_OPEN_ERROR(s.build(), "general.alignment " + std::to_string(bad), "power of two");
  }
  // A valid non-default alignment moves the data section and constrains offsets.
  s.extra_kv = {[](Bytes& b) { b.key("general.alignment", ValueType::UINT32).u32(128); }};
  s.alignment = 128;
  s.tensors[1].offset = 64;
  EXPECT_OPEN_ERROR(s.build(), "tensor 'b'", "offset 64", "alignment 128");
  s.tensors[1].offset = 128;
  s.data_bytes = 192;
  const std::string path = scratch("align128.gguf");
  write_file(path, s.build());
  auto f = File::open(path);
  EXPECT_EQ(f->alignment(), 128u);
  EXPECT_EQ(f->tensors()[1].data - f->tensors()[0].data, 128);
}

// ---- tensor infos ----------------------------------------------------------------------------

TEST(GgufReader, RejectsDuplicateTensorNames) {
  Spec s;
  s.tensors[1].name = "a";
  EXPECT_OPEN_ERROR(s.build(), "duplicate tensor name 'a'");
}

TEST(GgufReader, RejectsBadDimensionCounts) {
  for (size_t n_dims : {0u, 5u}) {
    Spec s;
    s.tensors[0].ne.assign(n_dims, 1);
    EXPECT_OPEN_ERROR(s.build(), "tensor 'a'", "n_dims " + std::to_string(n_dims));
  }
}

TEST(GgufReader, RejectsZeroDimension) {
  Spec s;
  s.tensors[0].ne = {8, 0};
  EXPECT_OPEN_ERROR(s.build(), "tensor 'a'", "ne[1] is 0");
}

TEST(GgufReader, RejectsElementCountOverflow) {
  Spec s;
  s.tensors[0].ne = {uint64_t{1} << 32, uint64_t{1} << 32};
  EXPECT_OPEN_ERROR(s.build(), "tensor 'a'", "overflow");
  // Fits 64 bits, but bytes would not: 2^62 F32 values.
  s.tensors[0].ne = {uint64_t{1} << 31, uint64_t{1} << 31};
  EXPECT_OPEN_ERROR(s.build(), "tensor 'a'", "overflow");
}

TEST(GgufReader, RejectsUnknownTensorType) {
  Spec s;
  s.tensors[0].type = 99;
  EXPECT_OPEN_ERROR(s.build(), "'a'", "99");
}

TEST(GgufReader, RejectsRowNotMultipleOfBlock) {
  Spec s;
  s.tensors[0].ne = {31, 2};
  s.tensors[0].type = static_cast<uint32_t>(TensorType::Q8_0);
  EXPECT_OPEN_ERROR(s.build(), "tensor 'a'", "31");
}

TEST(GgufReader, TypeId36IsI2sOnlyInBitnetFiles) {
  Spec s;
  s.tensors[0] = {"w", {128, 2}, 36, 0};  // I2_S: 256/4 + 32 = 96 bytes
  s.tensors[1].offset = 96;
  s.data_bytes = 160;
  EXPECT_OPEN_ERROR(s.build(), "'w'", "36");

  const std::string path = scratch("i2s.gguf");
  for (const char* arch : {"bitnet-b1.58", "bitnet-25", "bitnet"}) {
    s.arch = arch;
    write_file(path, s.build());
    auto f = File::open(path);
    const TensorInfo* w = f->find_tensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(resolve_type(w->type, true, "w"), TensorType::I2_S);
    EXPECT_EQ(w->nbytes, 96u);
  }
  s.arch = "llama";
  s.extra_kv.push_back([](Bytes& b) { b.key("general.file_type", ValueType::UINT32).u32(40); });
  write_file(path, s.build());
  EXPECT_EQ(File::open(path)->find_tensor("w")->nbytes, 96u);
}

TEST(GgufReader, RejectsMisalignedOffset) {
  Spec s;
  s.tensors[1].offset = 65;
  EXPECT_OPEN_ERROR(s.build(), "tensor 'b'", "offset 65", "alignment 32");
}

TEST(GgufReader, RejectsDataPastEndOfFile) {
  Spec s;
  s.data_bytes = 127;
  EXPECT_OPEN_ERROR(s.build(), "tensor 'b'", "data [offset 64, size 64)", "runs past end of file");
  s.data_bytes = 128;
  s.tensors[1].offset = uint64_t{0} - 32;  // offset + size wraps around 64 bits
  EXPECT_OPEN_ERROR(s.build(), "tensor 'b'", "runs past end of file");
}

TEST(GgufReader, RejectsOverlappingTensors) {
  Spec s;
  s.tensors[1].offset = 32;
  s.data_bytes = 96;
  EXPECT_OPEN_ERROR(s.build(), "'a'", "overlaps tensor 'b'");
}

// ---- getters ---------------------------------------------------------------------------------

TEST(GgufReader, TypedGetters) {
  Writer w;
  w.set("u8", [] { Value v; v.type = ValueType::UINT8; v.u = 200; return v; }());
  w.set("neg", Value::of_i32(-5));
  w.set("pos", Value::of_i32(7));
  w.set("big", Value::of_u64(UINT64_MAX));
  w.set("pi", Value::of_f32(3.5f));
  w.set("name", Value::of_string("hello"));
  w.set("flag", Value::of_bool(true));
  w.set("words", Value::of_strings({"a", "bc"}));
  w.set("floats", Value::of_f32s({1.5f, -2}));
  w.set("ints", Value::of_i32s({-1, 2}));
  Value bigs;
  bigs.type = ValueType::ARRAY;
  bigs.elem_type = ValueType::UINT64;
  bigs.arr = {Value::of_u64(1), Value::of_u64(UINT64_MAX)};
  w.set("bigs", bigs);
  const std::string path = scratch("getters.gguf");
  w.write_header(path, true);
  w.finish();
  auto f = File::open(path);

  EXPECT_EQ(f->get_uint("u8"), 200u);
  EXPECT_EQ(f->get_uint("pos"), 7u);
  EXPECT_EQ(f->get_uint("big"), UINT64_MAX);
  EXPECT_EQ(f->get_uint("absent", 42), 42u);
  EXPECT_DOUBLE_EQ(f->get_float("pi"), 3.5);
  EXPECT_DOUBLE_EQ(f->get_float("pos"), 7.0);
  EXPECT_DOUBLE_EQ(f->get_float("absent", 0.25), 0.25);
  EXPECT_EQ(f->get_string("name"), "hello");
  EXPECT_EQ(f->get_string("absent", "x"), "x");
  EXPECT_TRUE(f->get_bool("flag", false));
  EXPECT_FALSE(f->get_bool("absent", false));
  EXPECT_EQ(f->get_strings("words"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(f->get_floats("floats"), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(f->get_ints("ints"), (std::vector<int64_t>{-1, 2}));

  auto expect_throw = [&](auto call, const std::string& needle) {
    try {
      call();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), needle) && contains(e.what(), path)) << e.what();
    }
  };
  expect_throw([&] { f->get_uint("neg"); }, "'neg' holds int32 -5");
  expect_throw([&] { f->get_uint("name", 1); }, "'name'");
  expect_throw([&] { f->get_uint("absent"); }, "'absent' is missing");
  expect_throw([&] { f->get_string("pi"); }, "'pi'");
  expect_throw([&] { f->get_float("name"); }, "'name'");
  expect_throw([&] { f->get_bool("u8", true); }, "'u8'");
  expect_throw([&] { f->get_strings("ints"); }, "'ints' element 0");
  expect_throw([&] { f->get_ints("words"); }, "'words'");
  expect_throw([&] { f->get_ints("bigs"); }, "'bigs' element 1");
  expect_throw([&] { f->get_floats("name"); }, "'name'");
}

// ---- writer ----------------------------------------------------------------------------------

Value scalar(ValueType t, uint64_t u, int64_t i, double f, bool b) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  v.b = b;
  return v;
}

// One value of each scalar type, keyed by its type name.
std::vector<Value> every_scalar() {
  return {scalar(ValueType::UINT8, 255, 0, 0, false),       scalar(ValueType::INT8, 0, -128, 0, false),
          scalar(ValueType::UINT16, 65535, 0, 0, false),    scalar(ValueType::INT16, 0, -32768, 0, false),
          scalar(ValueType::UINT32, 4000000000u, 0, 0, false),
          scalar(ValueType::INT32, 0, INT32_MIN, 0, false), scalar(ValueType::FLOAT32, 0, 0, -0.125, false),
          scalar(ValueType::BOOL, 0, 0, 0, true),           scalar(ValueType::UINT64, UINT64_MAX, 0, 0, false),
          scalar(ValueType::INT64, 0, INT64_MIN, 0, false), scalar(ValueType::FLOAT64, 0, 0, 1e300, false),
          Value::of_string(std::string("nul\0inside", 10))};
}

void expect_same(const Value& a, const Value& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  switch (a.type) {
    case ValueType::STRING: EXPECT_EQ(a.str, b.str) << where; break;
    case ValueType::BOOL: EXPECT_EQ(a.b, b.b) << where; break;
    case ValueType::FLOAT32: case ValueType::FLOAT64: EXPECT_EQ(a.f, b.f) << where; break;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      EXPECT_EQ(a.i, b.i) << where;
      break;
    case ValueType::ARRAY:
      ASSERT_EQ(a.elem_type, b.elem_type) << where;
      ASSERT_EQ(a.arr.size(), b.arr.size()) << where;
      for (size_t i = 0; i < a.arr.size(); ++i) expect_same(a.arr[i], b.arr[i], where + "[" + std::to_string(i) + "]");
      break;
    default: EXPECT_EQ(a.u, b.u) << where; break;
  }
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndAlignment64) {
  std::vector<std::pair<std::string, Value>> expected;
  for (const Value& v : every_scalar()) {
    const std::string name = value_type_name(v.type);
    expected.emplace_back("scalar." + name, v);
    Value arr;
    arr.type = ValueType::ARRAY;
    arr.elem_type = v.type;
    arr.arr = {v, v};
    expected.emplace_back("array." + name, arr);
  }
  Value empty;
  empty.type = ValueType::ARRAY;
  empty.elem_type = ValueType::FLOAT64;
  expected.emplace_back("array.empty", empty);
  Value nested = Value::of_i32s({1, 2, 3});  // 8 levels: the deepest the reader accepts
  for (int depth = 2; depth <= 8; ++depth) {
    Value outer;
    outer.type = ValueType::ARRAY;
    outer.elem_type = ValueType::ARRAY;
    outer.arr = {nested, nested};
    nested = outer;
  }
  expected.emplace_back("array.nested", nested);

  Writer w(64);
  for (const auto& [k, v] : expected) w.set(k, v);
  w.set("scalar.uint8", scalar(ValueType::UINT8, 1, 0, 0, false));  // replaced in place
  expected[0].second.u = 1;
  std::vector<float> a(24);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * i;
  std::vector<uint8_t> b(34 * 3);  // Q8_0, 3 rows of 32
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7);
  w.add_tensor("a", {6, 4}, static_cast<uint32_t>(TensorType::F32), a.size() * 4);
  w.add_tensor("b", {32, 3}, static_cast<uint32_t>(TensorType::Q8_0), b.size());
  const std::string path = scratch("roundtrip.gguf");
  fs::remove(path);
  w.write_header(path);
  EXPECT_FALSE(fs::exists(path)) << "final name must appear only at finish()";
  EXPECT_EQ(temporaries_of(path), 1);
  // The data of both tensors as one stream, written in uneven pieces crossing the boundary.
  std::string stream(reinterpret_cast<const char*>(a.data()), a.size() * 4);
  stream.append(b.begin(), b.end());
  for (size_t pos = 0, piece = 1; pos < stream.size(); pos += piece, piece = piece * 3 % 41 + 1)
    w.write_data(stream.data() + pos, std::min(piece, stream.size() - pos));
  w.finish();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(temporaries_of(path), 0);

  auto f = File::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->get_uint("general.alignment"), 64u);
  ASSERT_EQ(f->metadata().size(), expected.size() + 1);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f->metadata()[i].first, expected[i].first);  // file order kept
    expect_same(f->metadata()[i].second, expected[i].second, expected[i].first);
  }
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorInfo& ta = f->tensors()[0];
  const TensorInfo& tb = f->tensors()[1];
  EXPECT_EQ(ta.n_dims, 2);
  EXPECT_EQ(ta.ne[0], 6u);
  EXPECT_EQ(ta.ne[1], 4u);
  EXPECT_EQ(ta.n_elements(), 24u);
  EXPECT_EQ(ta.offset, 0u);
  EXPECT_EQ(tb.offset, 128u);  // 96 bytes padded to 64
  EXPECT_EQ(tb.nbytes, b.size());
  EXPECT_EQ(tb.data - ta.data, 128);
  EXPECT_EQ(std::memcmp(ta.data, a.data(), a.size() * 4), 0);
  EXPECT_EQ(std::memcmp(tb.data, b.data(), b.size()), 0);
  EXPECT_EQ(f->file_size() % 64, 0u);
}

TEST(GgufWriter, RefusesToOverwriteUnlessAsked) {
  const std::string path = scratch("exists.gguf");
  write_file(path, "precious");
  Writer w;
  w.set("general.architecture", Value::of_string("llama"));
  const std::string msg = test::error_of([&] { w.write_header(path); });
  EXPECT_TRUE(contains(msg, path) && contains(msg, "exists")) << msg;
  EXPECT_EQ(read_file(path), "precious");
  w.write_header(path, /*overwrite=*/true);
  w.finish();
  EXPECT_EQ(File::open(path)->get_string("general.architecture"), "llama");
}

TEST(GgufWriter, FinishChecksEveryTensorGotItsBytes) {
  const std::string path = scratch("short.gguf");
  fs::remove(path);
  auto w = std::make_unique<Writer>();
  w->add_tensor("x", {4}, 0, 16);
  w->add_tensor("y", {4}, 0, 16);
  w->write_header(path);
  const float data[4] = {1, 2, 3, 4};
  w->write_data(data, 16);
  w->write_data(data, 8);
  std::string msg = test::error_of([&] { w->finish(); });
  EXPECT_TRUE(contains(msg, "'y'") && contains(msg, "8 of its 16")) << msg;
  msg = test::error_of([&] { w->write_data(data, 16); });  // 8 more than declared
  EXPECT_TRUE(contains(msg, "beyond the last declared tensor")) << msg;
  // An abandoned writer leaves neither the final file nor the partial one.
  w.reset();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(temporaries_of(path), 0);
}

TEST(GgufWriter, RejectsInconsistentDeclarations) {
  const std::string path = scratch("bad.gguf");
  Writer w;
  w.add_tensor("x", {32, 2}, static_cast<uint32_t>(TensorType::Q8_0), 64);  // takes 68
  std::string msg = test::error_of([&] { w.write_header(path, true); });
  EXPECT_TRUE(contains(msg, "'x'") && contains(msg, "68")) << msg;
  msg = test::error_of([&] { w.add_tensor("x", {4}, 0, 16); });
  EXPECT_TRUE(contains(msg, "'x'") && contains(msg, "twice")) << msg;
  msg = test::error_of([&] { w.add_tensor("z", {4, 0}, 0, 0); });
  EXPECT_TRUE(contains(msg, "'z'")) << msg;
  msg = test::error_of([&] { w.add_tensor("z", {1, 1, 1, 1, 1}, 0, 4); });
  EXPECT_TRUE(contains(msg, "'z'") && contains(msg, "5 dimensions")) << msg;
  msg = test::error_of([&] { w.set("general.alignment", Value::of_u32(64)); });
  EXPECT_TRUE(contains(msg, "general.alignment")) << msg;
  msg = test::error_of([&] { w.set("small", scalar(ValueType::UINT8, 256, 0, 0, false)); });
  EXPECT_TRUE(contains(msg, "'small'") && contains(msg, "256")) << msg;
  Value mixed = Value::of_i32s({1});
  mixed.arr.push_back(Value::of_string("two"));
  msg = test::error_of([&] { w.set("mixed", mixed); });
  EXPECT_TRUE(contains(msg, "'mixed'")) << msg;
  EXPECT_THROW(Writer(48), Error);
}

// ---- robustness ------------------------------------------------------------------------------

// A valid file with metadata of several kinds and three tensors. The last tensor's size is a
// multiple of the alignment, so its data ends the file: every shorter prefix is invalid.
std::string small_valid_file() {
  Writer w;
  w.set("general.architecture", Value::of_string("bitnet-b1.58"));
  w.set("bitnet-b1.58.block_count", Value::of_u32(1));
  w.set("tokenizer.ggml.tokens", Value::of_strings({"<s>", "</s>", "a"}));
  w.set("tokenizer.ggml.scores", Value::of_f32s({0, -1, -2.5f}));
  w.add_tensor("token_embd.weight", {8, 3}, static_cast<uint32_t>(TensorType::F16), 48);
  w.add_tensor("blk.0.attn_q.weight", {128, 1}, static_cast<uint32_t>(TensorType::I2_S), 64);
  w.add_tensor("output_norm.weight", {8}, static_cast<uint32_t>(TensorType::F32), 32);
  const std::string path = scratch("small_valid.gguf");
  w.write_header(path, true);
  std::vector<uint8_t> data(48 + 64 + 32);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  w.write_data(data.data(), 48);
  w.write_data(data.data() + 48, 96);
  w.finish();
  return read_file(path);
}

// Reads every byte of every tensor, so that sanitizers see any out-of-bounds pointer.
unsigned touch_all(const File& f) {
  unsigned sum = 0;
  for (const TensorInfo& t : f.tensors())
    for (uint64_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
  for (const auto& [key, value] : f.metadata()) sum += key.size() + value.str.size() + value.arr.size();
  return sum;
}

TEST(GgufRobustness, EveryTruncationThrows) {
  const std::string bytes = small_valid_file();
  const std::string path = scratch("truncated.gguf");
  write_file(path, bytes);
  EXPECT_EQ(File::open(path)->tensors().size(), 3u);
  for (size_t length = bytes.size(); length-- > 0;) {
    fs::resize_file(path, length);  // cheaper than rewriting the file each time
    try {
      File::open(path);
      ADD_FAILURE() << "prefix of " << length << " of " << bytes.size() << " bytes opened";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), path)) << e.what();
    }
  }
}

TEST(GgufRobustness, RandomCorruptionOpensOrThrows) {
  const std::string bytes = small_valid_file();
  const std::string path = scratch("corrupt.gguf");
  write_file(path, bytes);
  std::mt19937_64 rng(1234);
  int opened = 0;
  int rejected = 0;
  constexpr int kMutations = 4000;
  for (int round = 0; round < kMutations; ++round) {
    std::string mutated = bytes;
    const int n_changes = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < n_changes; ++c) {
      // Mostly the header region, where the structure is; sometimes a whole little-endian word
      // set to an extreme value, as length and count fields are what go wrong.
      const size_t header_end = std::min<size_t>(mutated.size(), 320);
      const size_t region = rng() % 4 ? header_end : mutated.size();
      const size_t at = rng() % region;
      switch (rng() % 3) {
        case 0: mutated[at] = static_cast<char>(rng()); break;
        case 1: mutated[at] = static_cast<char>(mutated[at] ^ (1 << (rng() % 8))); break;
        default: {
          const uint64_t extremes[] = {0, 1, UINT64_MAX, UINT64_MAX / 2, uint64_t{1} << 32, 0xffffffffu};
          const uint64_t v = extremes[rng() % 6];
          std::memcpy(&mutated[at], &v, std::min<size_t>(8, mutated.size() - at));
        }
      }
    }
    overwrite_in_place(path, mutated);
    try {
      auto f = File::open(path);
      touch_all(*f);
      ++opened;
    } catch (const Error& e) {
      ++rejected;
      EXPECT_FALSE(contains(e.what(), "\n")) << e.what();
    }
  }
  EXPECT_EQ(opened + rejected, kMutations);
  EXPECT_GT(rejected, kMutations / 2);  // the mutations really hit the structure
  std::printf("corruption: %d opened, %d rejected\n", opened, rejected);
}

// ---- files written by llama.cpp ------------------------------------------------------------

TEST(GgufFixtures, Stories260K) {
  BITNET_REQUIRE_FIXTURE("models/stories260K/stories260K.f32.gguf");
  auto f = File::open(bitnet::test::fixture("models/stories260K/stories260K.f32.gguf").string());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f->get_uint("llama.block_count"), 5u);
  EXPECT_EQ(f->get_strings("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(f->get_floats("tokenizer.ggml.scores").size(), 512u);
  const TensorInfo* embd = f->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->n_dims, 2);
  EXPECT_EQ(embd->ne[0], 64u);
  EXPECT_EQ(embd->ne[1], 512u);
  EXPECT_EQ(embd->type, static_cast<uint32_t>(TensorType::F32));
  EXPECT_EQ(embd->nbytes, 64u * 512 * 4);
  float first;
  std::memcpy(&first, embd->data, 4);
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_NE(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->tensors().size(), 3u + 5u * 9u);  // embeddings, output norm and head, 9 per layer
  touch_all(*f);
}

TEST(GgufFixtures, LlamaSpmVocab) {
  BITNET_REQUIRE_FIXTURE("vocab/ggml-vocab-llama-spm.gguf");
  auto f = File::open(bitnet::test::fixture("vocab/ggml-vocab-llama-spm.gguf").string());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  const std::vector<std::string> tokens = f->get_strings("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 32000u);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(f->get_floats("tokenizer.ggml.scores").size(), 32000u);
  EXPECT_EQ(f->get_ints("tokenizer.ggml.token_type").size(), 32000u);
  EXPECT_TRUE(f->tensors().empty());
}

}  // namespace
}  // namespace bitnet::gguf
