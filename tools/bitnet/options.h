// A hand-written option table in llama.cpp's style: every option has all its spellings (so
// "-cnv", "-ngl", "--n-predict" work as users type them), a help line, and a handler.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bitnet::cli {

class OptionTable {
 public:
  explicit OptionTable(std::string usage) : usage_(std::move(usage)) {}

  // An option without a value ("-cnv").
  void flag(std::vector<std::string> names, std::string help, std::function<void()> on);
  // An option with a value ("-n 128" or "--n-predict=128").
  void value(std::vector<std::string> names, std::string value_name, std::string help,
             std::function<void(const std::string&)> on);
  // An option whose value is optional: the next argument is taken as its value only when it is one
  // of `values` ("-fa" and "-fa on" both work, as in llama.cpp); `on` gets "" otherwise.
  void optional_value(std::vector<std::string> names, std::vector<std::string> values, std::string help,
                      std::function<void(const std::string&)> on);
  // A section title in --help.
  void section(std::string title);

  // Applies the options; returns the positional arguments. Throws bitnet::Error naming the option
  // for an unknown option, a missing value, or a value its handler rejects. "-h/--help" is handled
  // by the caller (check help_requested()).
  std::vector<std::string> parse(int argc, char** argv, int first = 1);
  bool help_requested() const { return help_; }
  std::string help() const;
  // A command's parse: on -h/--help prints help() to stdout and returns nothing (the command then
  // exits 0); more than `max_positional` positional arguments is an error naming the first extra.
  std::optional<std::vector<std::string>> parse_command(int argc, char** argv, size_t max_positional = 0);
  // Text printed after the options in --help.
  void epilog(std::string text) { epilog_ = std::move(text); }

 private:
  struct Entry {
    std::vector<std::string> names;
    std::string value_name;  // empty for flags
    std::vector<std::string> optional_values;  // optional_value's accepted values
    std::string help;
    std::function<void()> on_flag;
    std::function<void(const std::string&)> on_value;
    bool is_section = false;
  };
  const Entry* find(const std::string& name) const;
  std::string usage_;
  std::vector<Entry> entries_;
  std::string epilog_;
  bool help_ = false;
};

// Strict number parsing for option values: the whole string must be a number in range, else a
// bitnet::Error naming the option and the value.
int64_t parse_int(const std::string& option, const std::string& value, int64_t min, int64_t max);
// A finite number in [min, max] (in (min, max] when min_exclusive); max may be infinity.
double parse_float(const std::string& option, const std::string& value, double min, double max,
                   bool min_exclusive = false);

}  // namespace bitnet::cli
