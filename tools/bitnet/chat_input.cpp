#include "chat_input.h"

#include <editline/readline.h>
#include <poll.h>
#include <unistd.h>

#include <clocale>
#include <cstdlib>
#include <iostream>

namespace bitnet::cli {
namespace {

constexpr const char* kBlockQuote = "\"\"\"";

bool ends_with_block_quote(const std::string& s) {
  const std::string t = trim(s);
  return t.size() >= 3 && t.compare(t.size() - 3, 3, kBlockQuote) == 0;
}

// The text before the closing quotes of a line that ends a block.
std::string before_block_quote(const std::string& s) {
  const std::string t = s.substr(0, s.find_last_not_of(" \t\r") + 1);
  return t.substr(0, t.size() - 3);
}

}  // namespace

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

ChatInput::ChatInput(bool simple_io) : tty_(isatty(STDIN_FILENO) && !simple_io) { std::setlocale(LC_CTYPE, ""); }

std::optional<std::string> ChatInput::read_line(const char* prompt) {
  if (tty_) {
    char* raw = readline(prompt);
    if (!raw) return std::nullopt;
    std::string line = raw;
    std::free(raw);
    return line;
  }
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

bool ChatInput::more_pasted() const {
  // A terminal delivers a paste in one burst: the next line is already there (or within a few
  // milliseconds), while a person types the next line much later.
  pollfd p = {STDIN_FILENO, POLLIN, 0};
  return poll(&p, 1, 15) == 1 && (p.revents & POLLIN);
}

std::optional<std::string> ChatInput::read_message(const std::atomic<int>& interrupts) {
  std::optional<std::string> first = read_line("> ");
  if (!first || interrupts > 0) return std::nullopt;
  std::string message = *first;
  const std::string lead = trim(message);
  if (lead.starts_with(kBlockQuote)) {
    // A block: everything up to a line ending in """ (the end of the input closes it too).
    std::string body = message.substr(message.find(kBlockQuote) + 3);
    if (lead.size() >= 6 && ends_with_block_quote(body)) {
      body = before_block_quote(body);
    } else {
      while (auto line = read_line("... ")) {
        if (interrupts > 0) return std::nullopt;
        if (ends_with_block_quote(*line)) {
          const std::string last = before_block_quote(*line);
          if (!trim(last).empty()) {
            body += '\n';
            body += last;
          }
          break;
        }
        body += '\n';
        body += *line;
      }
    }
    message = body.starts_with("\n") ? body.substr(1) : body;
  } else {
    for (;;) {
      if (!message.empty() && message.back() == '\\') {
        message.back() = '\n';
        auto line = read_line("... ");
        if (!line || interrupts > 0) break;
        message += *line;
      } else if (tty_ && more_pasted()) {
        auto line = read_line("");
        if (!line || interrupts > 0) break;
        message += '\n';
        message += *line;
      } else {
        break;
      }
    }
  }
  if (interrupts > 0) return std::nullopt;
  if (tty_ && !trim(message).empty()) add_history(message.c_str());
  return message;
}

}  // namespace bitnet::cli
