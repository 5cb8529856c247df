// Command lines of the evaluation commands that sample from a checkpoint, as `ldm-worker`
// subcommands (shared/core/cli.h): the program lists them beside its own.
//
//   generate         N evaluation samples as PNG files; under mpirun (or another PMI launcher) every
//                    rank takes its share, otherwise one process generates everything.
//   disentanglement  the paper's size-condition metric; prints it as the last line.
#pragma once

#include "shared/core/cli.h"

namespace ldm::eval {

cli::Command generate_command();
cli::Command disentanglement_command();

}  // namespace ldm::eval
