// Distributed generation of evaluation samples from a checkpoint (for FID, CLIP score, inspection).
//
// N samples, indexed 0..N-1. Sample i is a function of (checkpoint, options, i) only:
//   - its starting noise x_T [C, h, w] comes from a generator seeded by
//     derive_seed(seed, Purpose::EvalSample, i);
//   - its condition is class label i % classes (class task) or captions[i % captions.size()]
//     (text task; the captions cycle), plus the control metadata of an uncropped, unflipped image
//     of the stage's resolution (or options.controls) when the recipe conditions on controls.
// Rank r of W generates the contiguous index range [r*N/W, (r+1)*N/W) (integer division, so the
// ranks' shares differ by at most one), decodes the latents through the run's autoencoder and
// writes `<out>/samples/<i:06d>.png` (8-bit RGB) per sample. After a barrier rank 0 writes
// `<out>/grid.png` (the first min(64, N) samples, write_image_grid's layout) and
// `<out>/generate.json` (the options and every rank's range).
//
// Rank independence, bit for bit. CPU BLAS results depend on the batch shape (sampling_test.cpp
// measures ~1e-5 differences between batch sizes), so the network never sees a batch whose shape
// or row layout depends on the number of ranks: the sample indices are cut into global batches
// [k*B, (k+1)*B) (B = options.batch), a rank runs the part of batch k it owns, and fills the other
// rows of the [B, …] tensors with copies of one of its own samples (their results are discarded).
// Every row sits at the same position of a same-shaped batch whatever W is, so the files are
// byte-identical for any number of ranks (same --threads, same machine type). Changing B changes
// the results by float round-off only for deterministic samplers (ddim eta 0, euler, heun,
// dpm++2m).
// Stochastic samplers (ddpm, ddim eta > 0) and noisy caption padding at inference draw their
// noise per global batch k (generators seeded by derive_seed(seed, Purpose::EvalSampler, k) and
// derive_seed(seed, Purpose::EvalPaddingNoise, k), drawn for all B rows): still independent of the
// number of ranks, but a different B gives different (equally valid) draws for those samplers.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datasets/format/shard.h"  // ControlMeta
#include "worker/comm/comm.h"
#include "worker/diffusion/sampler.h"
#include "worker/diffusion/sampling.h"  // SamplingModel, GuidedSampling, sample_from_noise
#include "worker/train/condition_builder.h"

namespace ldm::eval {

using worker::GuidedSampling;     // sampling.h
using worker::sample_from_noise;  // sampling.h

// One caption per line ('\r' dropped, empty lines skipped). Throws ldm::Error naming the file when
// it cannot be read or holds no caption.
std::vector<std::string> read_caption_file(const std::string& path);

// The recipe's own sampler and guidance scales (recipe.sampler), as `ldm-worker sample` uses them.
GuidedSampling recipe_sampling(const worker::SamplingModel& m);

// Decoded images [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3], as write_image_grid rounds them.
at::Tensor images_to_u8(const at::Tensor& images);

struct GenerateOptions {
  int64_t n = 0;        // samples in total (over all ranks)
  std::string out_dir;  // samples go to <out_dir>/samples/
  uint64_t seed = 0;
  GuidedSampling sampling;              // start from recipe_sampling(m) to get the recipe's defaults
  std::vector<std::string> captions;    // text task: cycled over the samples (required there)
  std::optional<ControlMeta> controls;  // default: uncropped, unflipped, stage resolution
  int64_t batch = 8;                    // samples per network batch (B above)
  int64_t grid_samples = 64;            // the grid shows the first min(grid_samples, n)
  int64_t grid_columns = 8;
  std::string source;  // recorded in generate.json (e.g. the checkpoint path)
};

struct IndexRange {
  int64_t begin = 0, end = 0;  // [begin, end)
  int64_t size() const { return end - begin; }
};

// [rank*n/world, (rank+1)*n/world).
IndexRange rank_range(int64_t n, int rank, int world);

// "000042.png"
std::string sample_file_name(int64_t index);

// The starting noise of sample `index`: [C, h, w] float32 from derive_seed(seed, Purpose::EvalSample, index).
at::Tensor eval_sample_noise(const worker::SamplingModel& m, uint64_t seed, int64_t index);

// Generates and writes the samples of `range` (a part of [0, options.n)); no communication.
// Returns the number of files written. Throws ldm::Error for bad options (n < 1, batch < 1, a text
// task without captions, captions for a class task, a range outside [0, n)).
int64_t generate_range(const worker::SamplingModel& m, const GenerateOptions& options, IndexRange range);

struct GenerateResult {
  IndexRange mine;                   // this rank's range
  std::vector<int64_t> rank_counts;  // rank 0: files written by every rank; other ranks: empty
  std::string grid;                  // rank 0: the grid's path; other ranks: ""
};

// Every rank calls this with the same model and options (a collective: barrier + gather).
GenerateResult generate_for_eval(const worker::SamplingModel& m, GenerateOptions options, worker::Communicator& comm);

}  // namespace ldm::eval
