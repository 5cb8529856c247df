// Command-line parsing for ldm-coord's subcommands: `--flag VALUE`, `--flag=VALUE`, boolean
// switches, positional arguments, and generated help text. Unknown flags and wrong argument counts
// are UsageErrors (the CLI prints the command's usage and exits 2).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "shared/core/error.h"

namespace ldm::coord {

class UsageError : public Error {
 public:
  using Error::Error;
};

struct FlagSpec {
  std::string name;        // without dashes: "state"
  std::string value_name;  // "DIR"; empty = a switch without a value
  std::string help;
};

struct CommandSpec {
  std::string name;                     // "submit"
  std::vector<std::string> positional;  // names, e.g. {"FILE"}; a name in [] is optional
  std::string summary;                  // one line
  std::vector<FlagSpec> flags;
};

struct ParsedArgs {
  bool help = false;  // -h / --help was given (then nothing else is parsed or checked)
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // flags with values
  std::set<std::string> switches;             // flags without values

  std::string value(const std::string& flag, const std::string& fallback = "") const;
  bool has(const std::string& flag) const;
  // A port number 0..65535; throws UsageError naming the flag.
  int port(const std::string& flag, int fallback) const;
};

ParsedArgs parse_command_args(const CommandSpec& spec, const std::vector<std::string>& args);

std::string command_usage(const CommandSpec& spec);  // "usage: ldm-coord submit FILE [--name NAME] ..."
std::string command_help(const CommandSpec& spec);   // usage, summary and one line per flag

}  // namespace ldm::coord
