// The library's messages (loading progress, warnings about unusual files, backend choices) go to
// one process-wide sink that the front end sets; nothing in the library writes to stderr itself.
//
// A message is text as it would be printed: a line ends in '\n'; a progress update starts with '\r'
// and has no newline until the last one (llama.cpp's log callbacks get text the same way). The
// default sink writes it to stderr unchanged.
//
// Thread-safety: both functions may be called from any thread; messages are delivered one at a
// time (the sink is called under a lock, so it must not log itself).
#pragma once
#include <functional>
#include <string>

namespace bitnet {

enum class LogLevel { Debug, Info, Warn, Error };

using LogSink = std::function<void(LogLevel, const std::string&)>;
// Replaces the sink; an empty function restores the default (stderr).
void set_log_sink(LogSink sink);
void log(LogLevel level, const std::string& message);
// log() of a printf-formatted message.
void log_printf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace bitnet
