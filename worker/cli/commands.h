// The subcommands of ldm-worker, one file each in worker/cli/; main.cpp lists them.
#pragma once

#include "shared/core/cli.h"

namespace ldm::worker {

cli::Command train_command();            // one rank of a training job (mpirun, launched by ldm-coord)
cli::Command describe_command();         // a model's parameters and GFLOPs against its recipe card
cli::Command sample_command();           // a PNG grid of images from a checkpoint
cli::Command forward_command();          // one forward pass on given inputs (checks against references)
cli::Command generate_command();         // N evaluation samples, split over mpirun ranks
cli::Command disentanglement_command();  // the paper's size-condition disentanglement metric

}  // namespace ldm::worker
