// The one command-line parser every program uses (shared/core/cli.h): syntax, typed values checked
// while parsing, usage errors, generated help and the program runner's exit statuses.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "shared/core/cli.h"

using namespace ldm;
using namespace ldm::cli;

namespace {
int ran = 0;  // how many times a handler ran
const Command kSubmit{"submit",
                      {"FILE"},
                      "Submit an experiment.",
                      {text("name", "NAME", "experiment name"), flag("json", "print JSON")},
                      [](const Args&) { return ++ran, 0; }};
const Command kStatus{"status", {"[EXPERIMENT]"}, "Show status.", {integer("http-port", "P", "port", 0, 65535)}};
const Command kSample{"sample",
                      {},
                      "Sample.",
                      {text("checkpoint", "DIR", "checkpoint").required(), integer("steps", "K", "steps", 1, 1000),
                       number("cfg", "S", "guidance scale", 0, 100), choice<Sampler>("sampler", "sampler")}};
const Command kFid{"fid", {"A", "B"}, "FID.", {}};
const Command kMany{"many", {"FILES..."}, "Variadic.", {}};

// Runs `program` on `args` with stderr captured (and stdout discarded); returns (status, stderr).
std::pair<int, std::string> run_captured(const Program& program, std::vector<std::string> args) {
  std::vector<char*> argv;
  std::string name = program.name;
  argv.push_back(name.data());
  for (std::string& a : args) argv.push_back(a.data());
  std::fflush(stdout);
  std::fflush(stderr);
  std::FILE* capture = std::tmpfile();
  std::FILE* discard = std::tmpfile();
  const int saved = ::dup(2), saved_out = ::dup(1);
  ::dup2(::fileno(capture), 2);
  ::dup2(::fileno(discard), 1);
  const int status = run(program, static_cast<int>(argv.size()), argv.data());
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::dup2(saved_out, 1);
  ::close(saved);
  ::close(saved_out);
  std::fclose(discard);
  std::rewind(capture);
  std::string err;
  for (int c; (c = std::fgetc(capture)) != EOF;) err += static_cast<char>(c);
  std::fclose(capture);
  return {status, err};
}
}  // namespace

TEST_CASE("flags take values as --flag VALUE or --flag=VALUE, switches take none") {
  const Args a = parse(kSubmit, {"x.toml", "--name", "n1", "--json"});
  CHECK(a.positional == std::vector<std::string>{"x.toml"});
  CHECK(a.text("name") == "n1");
  CHECK(a.has("json"));
  CHECK(parse(kSubmit, {"--name=n2", "x.toml"}).text("name") == "n2");
  CHECK(parse(kSubmit, {"x.toml"}).text("name", "dflt") == "dflt");
}

TEST_CASE("unknown options, missing values and wrong argument counts are usage errors") {
  CHECK_THROWS_WITH_AS(parse(kSubmit, {"x", "--nme", "a"}), "unknown option '--nme' (did you mean '--name'?)",
                       UsageError);
  CHECK_THROWS_WITH_AS(parse(kSubmit, {"x", "--name"}), "option '--name' needs a value (NAME)", UsageError);
  CHECK_THROWS_WITH_AS(parse(kSubmit, {"x", "--json=1"}), "option '--json' takes no value", UsageError);
  CHECK_THROWS_WITH_AS(parse(kSubmit, {}), "missing FILE", UsageError);
  CHECK_THROWS_WITH_AS(parse(kSubmit, {"a", "b"}), "unexpected argument 'b'", UsageError);
  CHECK_THROWS_AS(parse(kSubmit, {"-x"}), UsageError);
  CHECK(parse(kStatus, {}).positional.empty());
  CHECK_THROWS_WITH_AS(parse(kFid, {"a"}), "missing B", UsageError);
  CHECK(parse(kFid, {"a", "b"}).positional.size() == 2);
  CHECK_THROWS_WITH_AS(parse(kMany, {}), "missing FILES...", UsageError);
  CHECK(parse(kMany, {"a", "b", "c"}).positional.size() == 3);
}

TEST_CASE("--help is recognised anywhere and the help lists every option") {
  CHECK(parse(kSubmit, {"--help"}).help);
  CHECK(parse(kSubmit, {"x", "--nope", "-h"}).help);  // help wins over other mistakes
  const std::string help = command_help("ldm-coord", kSubmit);
  CHECK(help.find("usage: ldm-coord submit FILE [--name NAME] [--json]") == 0);
  CHECK(help.find("--name NAME  experiment name") != std::string::npos);
  CHECK(help.find("--json       print JSON") != std::string::npos);
  // Required options come first in the usage line, without brackets; choices list their names.
  const std::string sample = command_help("ldm-worker", kSample);
  CHECK(sample.find("usage: ldm-worker sample --checkpoint DIR [--steps K]") == 0);
  CHECK(sample.find("--sampler ddpm|ddim|euler|heun|dpm++2m") != std::string::npos);
}

TEST_CASE("typed options are checked while parsing and name the option") {
  CHECK(parse(kStatus, {"--http-port", "0"}).integer("http-port", 7) == 0);
  CHECK(parse(kStatus, {}).integer("http-port", 7) == 7);
  CHECK_THROWS_WITH_AS(parse(kStatus, {"--http-port", "70000"}),
                       "option '--http-port' must be in [0, 65535], got 70000", UsageError);
  CHECK_THROWS_WITH_AS(parse(kStatus, {"--http-port", "8x"}), "option '--http-port' expects an integer, got '8x'",
                       UsageError);
  const Args a = parse(kSample, {"--checkpoint", "c", "--steps", "20", "--cfg", "2.5", "--sampler", "dpm++2m"});
  CHECK(a.integer("steps", 1) == 20);
  CHECK(a.number("cfg", 1.0) == 2.5);
  CHECK(a.choice("sampler", Sampler::Ddpm) == Sampler::DpmPP2M);
  CHECK(parse(kSample, {"--checkpoint", "c"}).choice("sampler", Sampler::Heun) == Sampler::Heun);
  CHECK_THROWS_WITH_AS(parse(kSample, {"--checkpoint", "c", "--sampler", "eulr"}),
                       "option '--sampler': 'eulr' is not one of: ddpm, ddim, euler, heun, dpm++2m (did you mean "
                       "'euler'?)",
                       UsageError);
  CHECK_THROWS_WITH_AS(parse(kSample, {"--checkpoint", "c", "--cfg", "nan"}),
                       "option '--cfg' expects a number, got 'nan'", UsageError);
  CHECK_THROWS_WITH_AS(parse(kSample, {"--checkpoint", "c", "--steps", "0"}),
                       "option '--steps' must be in [1, 1000], got 0", UsageError);
  CHECK_THROWS_WITH_AS(parse(kSample, {"--steps", "5"}), "missing --checkpoint DIR", UsageError);
}

TEST_CASE("the runner: help exits 0, usage errors 2 with the usage line, other errors 1, else the handler's status") {
  Command failing{"fail", {}, "Throws.", {}, [](const Args&) -> int { throw Error("disk full at step 7"); }};
  Command refusing{"refuse", {}, "Refuses.", {}, [](const Args&) -> int { throw UsageError("--x is not for this"); }};
  const Program program{"ldm-test", "Tests the runner.", {kSubmit, failing, refusing}, "footer text"};
  ran = 0;
  CHECK(run_captured(program, {"submit", "f.toml"}).first == 0);
  CHECK(ran == 1);
  CHECK(run_captured(program, {"submit", "--help"}).first == 0);
  CHECK(run_captured(program, {"help", "submit"}).first == 0);
  CHECK(ran == 1);  // help runs nothing

  auto [status, err] = run_captured(program, {"submit", "f.toml", "--nmae", "x"});
  CHECK(status == 2);
  CHECK(err.find("ldm-test submit: error: unknown option '--nmae' (did you mean '--name'?)") == 0);
  CHECK(err.find("usage: ldm-test submit FILE") != std::string::npos);

  std::tie(status, err) = run_captured(program, {"sbumit"});
  CHECK(status == 2);
  CHECK(err.find("unknown command 'sbumit' (did you mean 'submit'?)") != std::string::npos);
  CHECK(run_captured(program, {}).first == 2);

  std::tie(status, err) = run_captured(program, {"fail"});
  CHECK(status == 1);
  CHECK(err == "ldm-test: error: disk full at step 7\n");
  std::tie(status, err) = run_captured(program, {"refuse"});
  CHECK(status == 2);
  CHECK(err.find("ldm-test refuse: error: --x is not for this") == 0);
}

TEST_CASE("a program without subcommands parses its arguments directly") {
  int got = -1;
  const Program single{"ldm-one",
                       "One command.",
                       {{"", {}, "Serves.", {flag("serve", "serve"), integer("n", "N", "n")}, [&](const Args& a) {
                           return got = int(a.integer("n", 3)), 0;
                         }}}};
  CHECK(run_captured(single, {"--serve", "--n", "5"}).first == 0);
  CHECK(got == 5);
  CHECK(run_captured(single, {"--bogus"}).first == 2);
}
