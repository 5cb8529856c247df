// Command lines of the evaluation commands that sample from a checkpoint. `argv` is the program's
// own (argv[1] is the command name, options start at argv[2]); each returns the exit status
// (0 done, 1 failure, 2 usage error) and prints its own errors, so a main only dispatches:
//   if (cmd == "generate") return ldm::eval::run_generate_cli(argc, argv);
#pragma once

namespace ldm::eval {

// generate --checkpoint DIR --n N --out DIR [--seed S] [--sampler M] [--steps K] [--spacing S]
//          [--eta E] [--cfg S] [--cfg-control S] [--captions FILE] [--batch B] [--threads T]
//          [--no-ema]
// Under mpirun every rank takes its share (MPI is used when the process was started by mpirun /
// a PMI launcher); otherwise one process generates everything.
int run_generate_cli(int argc, char** argv);

// disentanglement --checkpoint DIR [--sizes 64,128,256,512,1024] [--lpips PATH | --inception PATH
//                 | --pixel] [--draws M] [--high-res-min S] [--seed S] [--caption TEXT | --captions
//                 FILE] [--class K] [--sampler ...] [--steps K] [--cfg S] [--cfg-control S]
//                 [--batch B] [--threads T] [--no-ema] [--quantize] [--drop-controls]
//                 [--json]
// Prints the metric as the last line.
int run_disentanglement_cli(int argc, char** argv);

}  // namespace ldm::eval
