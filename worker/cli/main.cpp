// ldm-worker: the worker's command line. One file per subcommand (worker/cli/<command>.cpp);
// `train` is what the coordinator launches under mpirun, the others are tools for people.
#include "shared/core/cli.h"
#include "shared/core/log.h"
#include "worker/cli/commands.h"
#include "worker/torch_compat.h"

int main(int argc, char** argv) {
  using namespace ldm;
  log::set_component("worker");
  const cli::Program program{
      "ldm-worker",
      "One rank of a training job (launched by ldm-coord under mpirun), and the tools that build, sample and "
      "check models.",
      {worker::train_command(), worker::describe_command(), worker::sample_command(), worker::forward_command(),
       worker::generate_command(), worker::disentanglement_command()},
      "environment: LDM_FAULT=KIND@step:S,rank:R[,attempt:A][,experiment:E][,stage:S] injects a fault (tests;\n"
      "several separated by ';'); LDM_LOG_LEVEL=debug|info|warn"};
  return cli::run(program, argc, argv, torch_compat::error_text);
}
