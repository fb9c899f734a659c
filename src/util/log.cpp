#include "bitnet/log.h"

#include <cstdio>
#include <mutex>

namespace bitnet {
namespace {

std::mutex& sink_mutex() {
  static std::mutex mu;
  return mu;
}

LogSink& sink() {
  static LogSink s;
  return s;
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink() = std::move(s);
}

void log(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (sink()) {
    sink()(level, message);
    return;
  }
  std::fputs(message.c_str(), stderr);
}

}  // namespace bitnet
