// Reading and writing the user's files safely: inputs must be regular files (a FIFO or device is
// refused before open() could block on it), text reads are capped, outputs are written to a
// unique temporary beside the target and published atomically, and a model file truncated while
// mapped ends the process with one line instead of a SIGBUS crash.
#pragma once
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bitnet {

// Opens `path` read-only (close-on-exec) after checking that it is a regular file; `what` names
// its role in messages ("model", "tokenizer file"). Throws bitnet::Error with strerror on failure
// and fills *st when given. The caller owns the returned descriptor.
int open_regular_file(const std::string& path, const char* what, struct stat* st = nullptr);

// The whole content of a regular file, or of standard input when path is "-"; throws when it
// holds more than max_bytes.
std::string read_file_capped(const std::string& path, uint64_t max_bytes, const char* what);

// Registers [begin, begin + size) as a mapping of `path`: a SIGBUS inside it (the file was
// truncated under the mapping) prints "error: PATH: file changed or truncated while in use ..."
// and exits with status 1. Thread-safe; at most 64 mappings are named at once (further ones still
// get the message without the name).
void register_mapped_file(const void* begin, size_t size, const std::string& path);
void unregister_mapped_file(const void* begin);

// A file written under a unique temporary name in the target's directory and published under
// the final name only by commit(): a failure, an exception or SIGINT/SIGTERM/SIGHUP (the handler
// removes every live temporary, then re-raises) leaves no partial file and the old one intact.
// The target must be absent or a regular file; a symlink is followed and its target replaced.
// Without overwrite, an existing target is refused here and again atomically at commit()
// (renameat2 RENAME_NOREPLACE, or link + unlink where the file system lacks it).
// Not thread-safe: one thread writes a given OutputFile.
class OutputFile {
 public:
  OutputFile(const std::string& path, bool overwrite);
  ~OutputFile();  // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& path() const { return path_; }  // the name given
  void write(const void* data, size_t n);            // buffered; throws naming the file
  void commit();  // flush, fsync, publish; on failure throws and removes the temporary

 private:
  void publish();
  void discard();  // closes and removes the temporary unless published
  void flush_buffer();
  [[noreturn]] void fail(const std::string& what, int err);

  std::string path_;    // as given, for messages
  std::string target_;  // where the file is published (a symlink resolved)
  std::string temp_;
  int fd_ = -1;
  int slot_ = -1;  // in the signal cleanup registry
  bool overwrite_;
  mode_t mode_;
  std::vector<char> buffer_;
};

// Refuses (bitnet::Error) an output path that exists, unless overwrite, or that is not a regular
// file (or a symlink to one); the early check before a long computation. OutputFile checks again.
void check_output_path(const std::string& path, bool overwrite);

}  // namespace bitnet
