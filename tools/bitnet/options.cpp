#include "options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
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

void OptionTable::optional_value(std::vector<std::string> names, std::vector<std::string> values, std::string help,
                                 std::function<void(const std::string&)> on) {
  value(std::move(names), "", std::move(help), std::move(on));
  entries_.back().optional_values = std::move(values);
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
    if (!e->optional_values.empty()) {
      std::string value = has_inline ? inline_value : "";
      if (!has_inline && i + 1 < argc) {
        for (const auto& v : e->optional_values)
          if (v == argv[i + 1]) value = argv[++i];
      }
      if (has_inline && std::find(e->optional_values.begin(), e->optional_values.end(), value) == e->optional_values.end())
        throw Error("option '" + name + "': invalid value '" + value + "'");
      e->on_value(value);
      continue;
    }
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
    for (size_t i = 0; i < e.optional_values.size(); ++i) left += (i ? "|" : " [") + e.optional_values[i];
    if (!e.optional_values.empty()) left += "]";
    out << left;
    if (left.size() < 32) out << std::string(32 - left.size(), ' ');
    else out << "\n" << std::string(32, ' ');
    out << e.help << "\n";
  }
  out << "  -h, --help                    show this help\n";
  if (!epilog_.empty()) out << "\n" << epilog_ << "\n";
  return out.str();
}

std::optional<std::vector<std::string>> OptionTable::parse_command(int argc, char** argv, size_t max_positional) {
  std::vector<std::string> positional = parse(argc, argv);
  if (help_) {
    std::fputs(help().c_str(), stdout);
    return std::nullopt;
  }
  if (positional.size() > max_positional)
    throw Error("unexpected argument '" + positional[max_positional] + "' (see --help)");
  return positional;
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

double parse_float(const std::string& option, const std::string& value, double min, double max, bool min_exclusive) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  const bool in_range = std::isfinite(v) && (min_exclusive ? v > min : v >= min) && v <= max;
  if (value.empty() || *end != '\0' || errno == ERANGE || !in_range) {
    std::ostringstream range;
    range << (min_exclusive ? "(" : "[") << min << ", ";
    if (std::isinf(max)) range << "inf)";
    else range << max << "]";
    throw Error("option '" + option + "': invalid value '" + value + "' (expected a number in " + range.str() + ")");
  }
  return v;
}

}  // namespace bitnet::cli
