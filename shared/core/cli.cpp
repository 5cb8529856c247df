#include "shared/core/cli.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "shared/core/text.h"

namespace ldm::cli {

namespace {

Option valued(const std::string& name, const std::string& value_name, const std::string& help, ValueType type) {
  Option o;
  o.name = name;
  o.value_name = value_name;
  o.help = help;
  o.type = type;
  return o;
}

bool optional_positional(const std::string& p) { return !p.empty() && p.front() == '['; }
bool variadic_positional(const std::string& p) { return p.find("...") != std::string::npos; }

std::vector<std::string> option_names(const Command& c) {
  std::vector<std::string> names;
  for (const Option& o : c.options) names.push_back("--" + o.name);
  return names;
}

std::string format_bound(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string option_head(const Option& o) { return "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name); }

}  // namespace

Option flag(const std::string& name, const std::string& help) { return valued(name, "", help, ValueType::Switch); }

Option text(const std::string& name, const std::string& value_name, const std::string& help) {
  return valued(name, value_name, help, ValueType::Text);
}

Option integer(const std::string& name, const std::string& value_name, const std::string& help, double lo, double hi) {
  Option o = valued(name, value_name, help, ValueType::Integer);
  o.lo = lo;
  o.hi = hi;
  return o;
}

Option number(const std::string& name, const std::string& value_name, const std::string& help, double lo, double hi) {
  Option o = valued(name, value_name, help, ValueType::Number);
  o.lo = lo;
  o.hi = hi;
  return o;
}

Option choice(const std::string& name, const std::vector<std::string>& choices, const std::string& help) {
  Option o = valued(name, join(choices, "|"), help, ValueType::Text);
  o.choices = choices;
  return o;
}

const Option* Command::find(const std::string& option_name) const {
  for (const Option& o : options)
    if (o.name == option_name) return &o;
  return nullptr;
}

// ---- parsed values ----------------------------------------------------------------------------------

bool Args::has(const std::string& name) const { return values_.count(name) > 0 || switches_.count(name) > 0; }

std::string Args::text(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::int64_t Args::integer(const std::string& name, std::int64_t fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : std::strtoll(it->second.c_str(), nullptr, 10);
}

double Args::number(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
}

// ---- parsing ------------------------------------------------------------------------------------------

struct Parser {
  // Checks a value against its declaration; throws UsageError naming the option.
  static void check_value(const Option& o, const std::string& value) {
    const std::string flag = "--" + o.name;
    if (o.type == ValueType::Text) {
      if (!o.choices.empty() && std::find(o.choices.begin(), o.choices.end(), value) == o.choices.end())
        throw UsageError("option '" + flag + "': " + not_one_of(value, o.choices));
      return;
    }
    char* end = nullptr;
    double v = 0;
    if (o.type == ValueType::Integer) {
      const long long i = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0')
        throw UsageError("option '" + flag + "' expects an integer, got '" + value + "'");
      v = static_cast<double>(i);
    } else {
      v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !std::isfinite(v))
        throw UsageError("option '" + flag + "' expects a number, got '" + value + "'");
    }
    if (v < o.lo || v > o.hi) {
      const bool has_lo = o.lo > -9e15, has_hi = o.hi < 9e15;  // integer() defaults: +-2^53 mean "no bound"
      const std::string range = has_lo && has_hi ? "in [" + format_bound(o.lo) + ", " + format_bound(o.hi) + "]"
                                : has_lo         ? ">= " + format_bound(o.lo)
                                                 : "<= " + format_bound(o.hi);
      throw UsageError("option '" + flag + "' must be " + range + ", got " + value);
    }
  }

  static Args parse(const Command& c, const std::vector<std::string>& args) {
    Args out;
    for (const std::string& arg : args)
      if (arg == "-h" || arg == "--help") {
        out.help = true;
        return out;
      }
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg.size() < 2 || arg[0] != '-' || arg == "--") {
        out.positional.push_back(arg);
        continue;
      }
      if (!starts_with(arg, "--"))
        throw UsageError("unknown option '" + arg + "'" + did_you_mean(arg, option_names(c)));
      const auto eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const Option* o = c.find(name);
      if (!o) throw UsageError("unknown option '--" + name + "'" + did_you_mean("--" + name, option_names(c)));
      if (o->type == ValueType::Switch) {
        if (eq != std::string::npos) throw UsageError("option '--" + name + "' takes no value");
        out.switches_.insert(name);
        continue;
      }
      std::string value;
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else {
        if (i + 1 >= args.size()) throw UsageError("option '--" + name + "' needs a value (" + o->value_name + ")");
        value = args[++i];
      }
      check_value(*o, value);
      out.values_[name] = value;
    }
    check_positionals(c, out.positional);
    for (const Option& o : c.options)
      if (o.is_required && !out.has(o.name)) throw UsageError("missing " + option_head(o));
    return out;
  }

  static void check_positionals(const Command& c, const std::vector<std::string>& given) {
    std::size_t min = 0, max = 0;
    for (const std::string& p : c.positional) {
      if (!optional_positional(p)) ++min;
      max = variadic_positional(p) ? std::numeric_limits<std::size_t>::max() : max + 1;
    }
    if (given.size() < min) {
      std::size_t required_seen = 0;
      for (const std::string& p : c.positional)
        if (!optional_positional(p) && required_seen++ == given.size()) throw UsageError("missing " + p);
    }
    if (given.size() > max) throw UsageError("unexpected argument '" + given[max] + "'");
  }
};

Args parse(const Command& command, const std::vector<std::string>& args) { return Parser::parse(command, args); }

// ---- help ----------------------------------------------------------------------------------------------

std::string usage_line(const std::string& program, const Command& c) {
  std::vector<std::string> words;
  for (const std::string& p : c.positional) words.push_back(p);
  for (const Option& o : c.options)
    if (o.is_required) words.push_back(option_head(o));
  for (const Option& o : c.options)
    if (!o.is_required) words.push_back("[" + option_head(o) + "]");
  // Wrapped at 100 columns, continuation lines indented under the first argument.
  const std::string head = "usage: " + program + (c.name.empty() ? "" : " " + c.name);
  std::string out = head, line = head;
  for (const std::string& w : words) {
    if (line.size() + 1 + w.size() > 100 && line.size() > head.size()) {
      out += "\n" + std::string(head.size(), ' ');
      line = std::string(head.size(), ' ');
    }
    out += " " + w;
    line += " " + w;
  }
  return out + "\n";
}

std::string command_help(const std::string& program, const Command& c) {
  std::string out = usage_line(program, c) + "\n" + c.summary + "\n";
  if (!c.details.empty()) out += "\n" + c.details + (c.details.back() == '\n' ? "" : "\n");
  if (c.options.empty()) return out;
  out += "\noptions:\n";
  constexpr std::size_t kMaxHead = 26;
  std::size_t width = 0;
  for (const Option& o : c.options) width = std::max(width, std::min(kMaxHead, option_head(o).size()));
  const std::string indent(4 + width, ' ');
  for (const Option& o : c.options) {
    const std::string head = option_head(o);
    out += "  " + head;
    std::vector<std::string> lines = split(o.help, '\n');
    if (head.size() > width) {
      out += "\n" + indent;
    } else {
      out += std::string(width - head.size() + 2, ' ');
    }
    for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? indent : "") + lines[i] + "\n";
  }
  out += "  -h, --help" + std::string(width > 10 ? width - 10 + 2 : 2, ' ') + "show this help\n";
  return out;
}

std::string program_help(const Program& p) {
  std::string out = "usage: " + p.name + " COMMAND [ARGS...]\n\n" + p.summary + "\n\ncommands:\n";
  std::size_t width = 0;
  for (const Command& c : p.commands) width = std::max(width, c.name.size());
  for (const Command& c : p.commands)
    out += "  " + c.name + std::string(width - c.name.size() + 2, ' ') + c.summary + "\n";
  out += "\n`" + p.name + " COMMAND --help` describes a command's options.\n";
  if (!p.footer.empty()) out += "\n" + p.footer + (p.footer.back() == '\n' ? "" : "\n");
  return out;
}

std::string plain_error_text(const std::exception& e) { return e.what(); }

// ---- running -------------------------------------------------------------------------------------------

namespace {

int usage_failure(const Program& p, const Command* c, const std::string& message) {
  const std::string who = p.name + (c && !c->name.empty() ? " " + c->name : "");
  std::string out = who + ": error: " + message + "\n";
  if (c) {
    out += usage_line(p.name, *c) + "Run '" + who + " --help' for details.\n";
  } else {
    out += "\n" + program_help(p);
  }
  std::fputs(out.c_str(), stderr);
  return 2;
}

}  // namespace

int run(const Program& p, int argc, char** argv, const ErrorText& error_text) {
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  const Command* command = nullptr;
  if (p.commands.size() == 1 && p.commands[0].name.empty()) {
    command = &p.commands[0];
  } else {
    if (args.empty()) return usage_failure(p, nullptr, "missing command");
    if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
      if (args.size() == 1) {
        std::fputs(program_help(p).c_str(), stdout);
        return 0;
      }
      args = {args[1], "--help"};
    }
    std::vector<std::string> names;
    for (const Command& c : p.commands) {
      names.push_back(c.name);
      if (c.name == args[0]) command = &c;
    }
    if (!command) return usage_failure(p, nullptr, "unknown command '" + args[0] + "'" + did_you_mean(args[0], names));
    args.erase(args.begin());
  }
  try {
    const Args parsed = parse(*command, args);
    if (parsed.help) {
      std::fputs(command_help(p.name, *command).c_str(), stdout);
      return 0;
    }
    return command->run(parsed);
  } catch (const UsageError& e) {
    return usage_failure(p, command, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", p.name.c_str(), error_text(e).c_str());
    return 1;
  }
}

}  // namespace ldm::cli
