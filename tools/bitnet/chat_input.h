// Reading chat messages: libedit with history on a terminal, plain lines from a pipe or file.
#pragma once
#include <atomic>
#include <optional>
#include <string>

namespace bitnet::cli {

// A message is one line, or several: a line ending in a backslash continues on the next one, a
// line starting with """ opens a block that a line ending in """ closes (as in Ollama), and on a
// terminal, lines pasted at once arrive as one message. Not thread-safe (one reader).
class ChatInput {
 public:
  // Sets the character locale from the environment, so libedit takes non-ASCII text. simple_io:
  // plain lines even on a terminal (no line editing or history), as llama-cli's --simple-io.
  explicit ChatInput(bool simple_io = false);
  bool terminal() const { return tty_; }
  // The next message; nullopt at the end of the input (Ctrl-D) or when Ctrl-C interrupted the
  // prompt (the SIGINT handler counts in `interrupts`; what was typed is dropped, and the chat
  // ends as llama-cli's does).
  std::optional<std::string> read_message(const std::atomic<int>& interrupts);

 private:
  std::optional<std::string> read_line(const char* prompt);
  bool more_pasted() const;  // input already waiting right after a line: part of a paste

  bool tty_;
};

// Without leading and trailing whitespace (commands tolerate it).
std::string trim(const std::string& s);

}  // namespace bitnet::cli
