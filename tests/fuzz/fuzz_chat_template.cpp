// libFuzzer target: chat template detection on arbitrary template text, then rendering a short
// conversation with whatever template was recognised.
#include <cstdint>
#include <string>

#include "bitnet/chat.h"
#include "bitnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const std::string name = bitnet::detect_chat_template(text);
    if (!name.empty())
      (void)bitnet::apply_chat_template(name, {{"system", text}, {"user", "hi"}, {"assistant", text}}, true);
  } catch (const bitnet::Error&) {
  }
  return 0;
}
