// ldm-coord's argument parsing and help text.
#include <doctest/doctest.h>

#include "coordinator/cli_args.h"

using namespace ldm::coord;

namespace {
const CommandSpec kSubmit{
    "submit", {"FILE"}, "Submit an experiment.", {{"name", "NAME", "experiment name"}, {"json", "", "print JSON"}}};
const CommandSpec kStatus{"status", {"[EXPERIMENT]"}, "Show status.", {{"http-port", "P", "port"}}};
}  // namespace

TEST_CASE("flags take values as --flag VALUE or --flag=VALUE, switches take none") {
  const ParsedArgs a = parse_command_args(kSubmit, {"x.toml", "--name", "n1", "--json"});
  CHECK(a.positional == std::vector<std::string>{"x.toml"});
  CHECK(a.value("name") == "n1");
  CHECK(a.has("json"));
  CHECK(parse_command_args(kSubmit, {"--name=n2", "x.toml"}).value("name") == "n2");
  CHECK(parse_command_args(kSubmit, {"x.toml"}).value("name", "dflt") == "dflt");
}

TEST_CASE("unknown options, missing values and wrong argument counts are usage errors") {
  CHECK_THROWS_WITH_AS(parse_command_args(kSubmit, {"x", "--nme", "a"}),
                       "unknown option '--nme' (did you mean '--name'?)", UsageError);
  CHECK_THROWS_WITH_AS(parse_command_args(kSubmit, {"x", "--name"}), "option '--name' needs a value (NAME)",
                       UsageError);
  CHECK_THROWS_WITH_AS(parse_command_args(kSubmit, {"x", "--json=1"}), "option '--json' takes no value", UsageError);
  CHECK_THROWS_WITH_AS(parse_command_args(kSubmit, {}), "missing FILE", UsageError);
  CHECK_THROWS_WITH_AS(parse_command_args(kSubmit, {"a", "b"}), "unexpected argument 'b'", UsageError);
  CHECK_THROWS_AS(parse_command_args(kSubmit, {"-x"}), UsageError);
  CHECK(parse_command_args(kStatus, {}).positional.empty());
}

TEST_CASE("--help is recognised anywhere and the help lists every option") {
  CHECK(parse_command_args(kSubmit, {"--help"}).help);
  CHECK(parse_command_args(kSubmit, {"x", "--nope", "-h"}).help);  // help wins over other mistakes
  const std::string help = command_help(kSubmit);
  CHECK(help.find("usage: ldm-coord submit FILE [--name NAME] [--json]") == 0);
  CHECK(help.find("--name NAME  experiment name") != std::string::npos);
  CHECK(help.find("--json       print JSON") != std::string::npos);
}

TEST_CASE("ports are checked") {
  CHECK(parse_command_args(kStatus, {"--http-port", "0"}).port("http-port", 7) == 0);
  CHECK(parse_command_args(kStatus, {}).port("http-port", 7) == 7);
  CHECK_THROWS_AS(parse_command_args(kStatus, {"--http-port", "70000"}).port("http-port", 7), UsageError);
  CHECK_THROWS_AS(parse_command_args(kStatus, {"--http-port", "8x"}).port("http-port", 7), UsageError);
}
