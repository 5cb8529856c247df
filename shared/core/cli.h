// The one command-line parser of every program (ldm-coord, ldm-worker, ldm-data, ldm-eval,
// ldm-encode): subcommands, typed options declared once, `--help` generated from the same
// declarations, typo suggestions, one usage-error type and exit status 2.
//
//   const cli::Command sample{"sample", {}, "Generate a grid of images from a checkpoint.",
//                             {cli::text("checkpoint", "DIR", "bundle or checkpoints directory").required(),
//                              cli::integer("steps", "K", "sampling steps", 1, 100000),
//                              cli::choice<Sampler>("sampler", "sampler (default: the recipe's)")},
//                             run_sample};
//   return cli::run({"ldm-worker", "...", {sample, ...}}, argc, argv);
//
// Syntax: `--name VALUE`, `--name=VALUE`, `--switch`, positional arguments anywhere; `-h`/`--help`
// anywhere prints the command's help (and wins over any other mistake on the line). Values are
// checked against their declaration while parsing (an integer, a number in range, one of the
// choices), so a handler reads typed values that are known to be good.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shared/core/choices.h"
#include "shared/core/error.h"

namespace ldm::cli {

// A command-line mistake. The program prints it with the command's usage line and exits 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

enum class ValueType { Switch, Text, Integer, Number };

struct Option {
  std::string name;        // without dashes: "steps"
  std::string value_name;  // "K"; empty for a switch
  std::string help;        // may hold several lines
  ValueType type = ValueType::Switch;
  std::vector<std::string> choices;                      // Text: the allowed values (empty: any)
  double lo = -std::numeric_limits<double>::infinity();  // Integer / Number: inclusive bounds
  double hi = std::numeric_limits<double>::infinity();
  bool is_required = false;

  Option required() const {
    Option o = *this;
    o.is_required = true;
    return o;
  }
};

Option flag(const std::string& name, const std::string& help);
Option text(const std::string& name, const std::string& value_name, const std::string& help);
Option integer(const std::string& name, const std::string& value_name, const std::string& help,
               double lo = -9007199254740992.0, double hi = 9007199254740992.0);
Option number(const std::string& name, const std::string& value_name, const std::string& help,
              double lo = -std::numeric_limits<double>::infinity(),
              double hi = std::numeric_limits<double>::infinity());
Option choice(const std::string& name, const std::vector<std::string>& choices, const std::string& help);
// The names come from the enum's one table (shared/core/choices.h).
template <class E>
Option choice(const std::string& name, const std::string& help) {
  return choice(name, choice_names<E>(), help);
}

// The parsed command line of one command.
class Args {
 public:
  bool help = false;  // -h / --help was given (nothing else was checked)
  std::vector<std::string> positional;

  bool has(const std::string& name) const;
  std::string text(const std::string& name, const std::string& fallback = "") const;
  std::int64_t integer(const std::string& name, std::int64_t fallback) const;
  double number(const std::string& name, double fallback) const;
  template <class E>
  E choice(const std::string& name, E fallback) const {
    if (!has(name)) return fallback;
    return *choice_from_name<E>(text(name));  // checked against the table while parsing
  }

 private:
  friend struct Parser;
  std::map<std::string, std::string> values_;  // options with values
  std::set<std::string> switches_;
};

class Command;
using Handler = std::function<int(const Args&)>;

// One subcommand (or the whole program, for programs without subcommands: name "").
class Command {
 public:
  std::string name;                     // "submit"
  std::vector<std::string> positional;  // "FILE"; "[X]" optional; "X..." one or more; "[X...]" any number
  std::string summary;                  // one line, for the program's command list and the help
  std::vector<Option> options;
  Handler run = nullptr;
  std::string details = "";  // further help paragraphs, printed between the summary and the options

  const Option* find(const std::string& option_name) const;
};

// Parses `args` (the words after the command name). Throws UsageError naming the option.
Args parse(const Command& command, const std::vector<std::string>& args);

// "usage: ldm-coord submit FILE [--name NAME] [--json]\n"
std::string usage_line(const std::string& program, const Command& command);
// The usage line, the summary, the details and one entry per option.
std::string command_help(const std::string& program, const Command& command);

struct Program {
  std::string name;     // "ldm-coord"
  std::string summary;  // what the program does, under the usage line of the general help
  std::vector<Command> commands;
  std::string footer = "";  // after the command list (environment variables, pointers)
};

std::string program_help(const Program& program);

// How an exception other than UsageError is worded for people (LibTorch programs strip the C++
// backtrace: worker/torch_compat.h).
using ErrorText = std::function<std::string(const std::exception&)>;
std::string plain_error_text(const std::exception& e);

// Runs argv[1..] against the program: `PROGRAM --help` / `PROGRAM help [COMMAND]` print help (exit
// 0); a missing or unknown command, or a UsageError from parsing or from the handler, prints the
// message and the usage (exit 2); any other exception prints "PROGRAM: error: <error_text>" (exit
// 1). Otherwise returns the handler's status. A program with one unnamed command parses argv[1..]
// as that command's arguments.
int run(const Program& program, int argc, char** argv, const ErrorText& error_text = plain_error_text);

}  // namespace ldm::cli
