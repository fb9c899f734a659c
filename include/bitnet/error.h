// The one exception type of the library: its message is a complete one-line explanation naming
// the file, field or value at fault, ready to print after "error: ".
#pragma once
#include <stdexcept>
#include <string>

namespace bitnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace bitnet
