// `ldm-worker generate`: N evaluation samples from a checkpoint as PNG files; under mpirun (or
// another PMI launcher) each rank generates its share, otherwise one process generates everything.
#include <ATen/Parallel.h>

#include <iostream>
#include <memory>
#include <string>

#include "shared/core/error.h"
#include "worker/cli/commands.h"
#include "worker/cli/eval_options.h"
#include "worker/comm/comm.h"
#include "worker/eval/generate.h"
#include "worker/torch_compat.h"

namespace ldm::worker {
namespace {

using namespace ldm::eval;

int run_generate(const cli::Args& a) {
  const int64_t resolution = a.integer("resolution", 0);
  std::unique_ptr<worker::Communicator> comm = worker::make_communicator("auto");
  const int rank = comm->rank();
  try {
    at::set_num_threads(static_cast<int>(a.integer("threads", 1)));
    const worker::SamplingModel m = worker::load_sampling_model(a.text("checkpoint"), !a.has("no-ema"), resolution);
    GenerateOptions o;
    if (a.has("controls")) {
      if (!m.conditions->uses_controls())
        throw cli::UsageError(
            "--controls: this checkpoint's recipe has no control conditioning "
            "(recipe.conditioning.controls = \"none\")");
      try {
        o.controls = worker::parse_control_meta(a.text("controls"),
                                                m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution);
      } catch (const Error& e) {
        throw cli::UsageError(e.what());
      }
    }
    o.n = a.integer("n", 0);
    o.out_dir = a.text("out");
    o.seed = static_cast<uint64_t>(a.integer("seed", 0));
    o.batch = a.integer("batch", 8);
    o.sampling = sampling_from_args(m, a);
    if (a.has("captions")) {
      if (!m.conditions->text_task()) throw cli::UsageError("--captions: this checkpoint is class-conditional");
      o.captions = read_captions(a.text("captions"));
    } else if (m.conditions->text_task()) {
      throw cli::UsageError("this checkpoint is text-to-image: give --captions FILE (one caption per line)");
    }
    o.source = a.text("checkpoint");
    const IndexRange mine = rank_range(o.n, rank, comm->size());
    if (rank == 0)
      std::cout << "generating " << o.n << " samples from " << m.spec.name << " step " << m.step << " ("
                << (m.ema ? "EMA" : "raw") << " weights) on " << comm->size() << " rank(s) with "
                << choice_name(o.sampling.sampler.method) << ", " << o.sampling.sampler.steps << " steps, cfg "
                << o.sampling.cfg << " at " << m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution
                << " px" << std::endl;
    const GenerateResult r = generate_for_eval(m, o, *comm);
    std::cout << "rank " << rank << ": samples [" << mine.begin << ", " << mine.end << ")" << std::endl;
    if (rank == 0) {
      std::string counts;
      for (int64_t c : r.rank_counts) counts += (counts.empty() ? "" : " ") + std::to_string(c);
      std::cout << "wrote " << o.n << " samples to " << o.out_dir << "/samples (per rank: " << counts << "), grid "
                << r.grid << std::endl;
    }
    return 0;
  } catch (const cli::UsageError&) {
    // The same on every rank (arguments, the checkpoint's kind) and before any collective: every
    // rank reports it and returns.
    throw;
  } catch (const std::exception& e) {
    // Possibly one rank's alone while the others wait in a collective: end the job.
    if (comm->size() > 1) {
      std::cerr << "ldm-worker generate: error: rank " << rank << ": " << torch_compat::error_text(e) << std::endl;
      comm->abort(1);
    }
    throw;
  }
}

}  // namespace

cli::Command generate_command() {
  std::vector<cli::Option> options = {
      cli::text("checkpoint", "DIR", "a bundle or a checkpoints directory (EMA weights unless --no-ema)").required(),
      cli::integer("n", "N", "number of samples", 1, 1e9).required(),
      cli::text("out", "DIR", "writes DIR/samples/000000.png ..., DIR/grid.png and DIR/generate.json").required(),
      cli::integer("seed", "S", "sample i is seeded by (S, i) (default 0)", 0),
      cli::text("captions", "FILE", "one caption per line; sample i gets caption i % count (text-to-image)"),
      cli::text("controls", "K=V,...",
                "control metadata of every sample: orig_h orig_w crop_top crop_left crop_h crop_w flip\n"
                "(default: an uncropped, unflipped image of the sampled resolution)"),
      cli::integer("resolution", "R",
                   "sample at R pixels instead of the trained stage's (positional embeddings resampled as\n"
                   "recipe.pos_embed_resampling says; not for families that cannot change resolution)",
                   1, 65536)};
  for (cli::Option& o : sampling_options()) options.push_back(o);
  return {"generate",
          {},
          "N evaluation samples from a checkpoint as PNG files; under mpirun each rank generates its share.",
          options,
          run_generate,
          "Sample i is seeded by (seed, i) and gets class i % classes, or caption i % count of --captions.\n"
          "Sampler and guidance default to the recipe's. Under mpirun (-n W) rank r generates samples\n"
          "[r*N/W, (r+1)*N/W); the files are byte-identical for any W (same --batch and --threads)."};
}

}  // namespace ldm::worker
