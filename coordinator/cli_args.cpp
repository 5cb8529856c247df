#include "coordinator/cli_args.h"

#include <algorithm>
#include <cstdlib>

#include "shared/core/text.h"

namespace ldm::coord {
namespace {

const FlagSpec* find_flag(const CommandSpec& spec, const std::string& name) {
  for (const FlagSpec& f : spec.flags)
    if (f.name == name) return &f;
  return nullptr;
}

bool optional_positional(const std::string& name) { return !name.empty() && name.front() == '['; }

std::vector<std::string> flag_names(const CommandSpec& spec) {
  std::vector<std::string> names;
  for (const FlagSpec& f : spec.flags) names.push_back("--" + f.name);
  return names;
}

}  // namespace

std::string ParsedArgs::value(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  return it == values.end() ? fallback : it->second;
}

bool ParsedArgs::has(const std::string& flag) const { return values.count(flag) > 0 || switches.count(flag) > 0; }

int ParsedArgs::port(const std::string& flag, int fallback) const {
  if (!values.count(flag)) return fallback;
  const std::string& text = values.at(flag);
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0 || v > 65535)
    throw UsageError("--" + flag + " needs a port number 0..65535 (0 = any free port), got '" + text + "'");
  return static_cast<int>(v);
}

ParsedArgs parse_command_args(const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs out;
  for (const std::string& arg : args)
    if (arg == "-h" || arg == "--help") {
      out.help = true;  // help wins over any other mistake on the line
      return out;
    }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!starts_with(arg, "--") || arg == "--") {
      if (starts_with(arg, "-") && arg.size() > 1) throw UsageError("unknown option '" + arg + "'");
      out.positional.push_back(arg);
      continue;
    }
    const auto eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const FlagSpec* flag = find_flag(spec, name);
    if (!flag) throw UsageError("unknown option '--" + name + "'" + did_you_mean("--" + name, flag_names(spec)));
    if (flag->value_name.empty()) {
      if (eq != std::string::npos) throw UsageError("option '--" + name + "' takes no value");
      out.switches.insert(name);
    } else if (eq != std::string::npos) {
      out.values[name] = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) throw UsageError("option '--" + name + "' needs a value (" + flag->value_name + ")");
      out.values[name] = args[++i];
    }
  }
  const std::size_t max = spec.positional.size();
  const std::size_t min = static_cast<std::size_t>(std::count_if(
      spec.positional.begin(), spec.positional.end(), [](const std::string& p) { return !optional_positional(p); }));
  if (out.positional.size() < min) throw UsageError("missing " + spec.positional[out.positional.size()]);
  if (out.positional.size() > max) throw UsageError("unexpected argument '" + out.positional[max] + "'");
  return out;
}

std::string command_usage(const CommandSpec& spec) {
  std::string out = "usage: ldm-coord " + spec.name;
  for (const std::string& p : spec.positional) out += " " + p;
  for (const FlagSpec& f : spec.flags) out += " [--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name) + "]";
  return out + "\n";
}

std::string command_help(const CommandSpec& spec) {
  std::string out = command_usage(spec) + "\n" + spec.summary + "\n";
  if (spec.flags.empty()) return out;
  out += "\noptions:\n";
  std::size_t width = 0;
  std::vector<std::string> heads;
  for (const FlagSpec& f : spec.flags) {
    heads.push_back("--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name));
    width = std::max(width, heads.back().size());
  }
  for (std::size_t i = 0; i < spec.flags.size(); ++i)
    out += "  " + heads[i] + std::string(width - heads[i].size() + 2, ' ') + spec.flags[i].help + "\n";
  return out;
}

}  // namespace ldm::coord
