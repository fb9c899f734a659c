#include "options.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "bitnet/error.h"

namespace bitnet::cli {

void OptionTable::flag(std::vector<std::string> names, std::string help, std::function<void()> on) {
  Entry e;
  e.names = std::move(names);
  e.help = std::move(help);
  e.on_flag = std::move(on);
  entries_.push_back(std::move(e));
}

void OptionTable::value(std::vector<std::string> names, std::string value_name, std::string help,
                        std::function<void(const std::string&)> on) {
  Entry e;
  e.names = std::move(names);
  e.value_name = std::move(value_name);
  e.help = std::move(help);
  e.on_value = std::move(on);
  entries_.push_back(std::move(e));
}

void OptionTable::section(std::string title) {
  Entry e;
  e.help = std::move(title);
  e.is_section = true;
  entries_.push_back(std::move(e));
}

const OptionTable::Entry* OptionTable::find(const std::string& name) const {
  for (const auto& e : entries_)
    for (const auto& n : e.names)
      if (n == name) return &e;
  return nullptr;
}

std::vector<std::string> OptionTable::parse(int argc, char** argv, int first) {
  std::vector<std::string> positional;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-' || (arg[1] >= '0' && arg[1] <= '9')) {
      positional.push_back(arg);
      continue;
    }
    std::string name = arg, inline_value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
      has_inline = true;
    }
    const Entry* e = find(name);
    if (!e) throw Error("unknown option '" + name + "' (see --help)");
    if (e->value_name.empty()) {
      if (has_inline) throw Error("option '" + name + "' takes no value");
      e->on_flag();
      continue;
    }
    std::string value;
    if (has_inline) {
      value = inline_value;
    } else {
      if (i + 1 >= argc) throw Error("option '" + name + "' needs a value (" + e->value_name + ")");
      value = argv[++i];
    }
    e->on_value(value);
  }
  return positional;
}

std::string OptionTable::help() const {
  std::ostringstream out;
  out << usage_ << "\n";
  for (const auto& e : entries_) {
    if (e.is_section) {
      out << "\n" << e.help << ":\n";
      continue;
    }
    std::string left = "  ";
    for (size_t i = 0; i < e.names.size(); ++i) left += (i ? ", " : "") + e.names[i];
    if (!e.value_name.empty()) left += " " + e.value_name;
    out << left;
    if (left.size() < 32) out << std::string(32 - left.size(), ' ');
    else out << "\n" << std::string(32, ' ');
    out << e.help << "\n";
  }
  out << "  -h, --help                    show this help\n";
  return out.str();
}

int64_t parse_int(const std::string& option, const std::string& value, int64_t min, int64_t max) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno == ERANGE || v < min || v > max)
    throw Error("option '" + option + "': invalid value '" + value + "' (expected an integer in [" +
                std::to_string(min) + ", " + std::to_string(max) + "])");
  return v;
}

double parse_float(const std::string& option, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || errno == ERANGE)
    throw Error("option '" + option + "': invalid number '" + value + "'");
  return v;
}

}  // namespace bitnet::cli
