// The gradient all-reduce, with 2 MPI ranks (prints figures; asserts nothing about speed):
//   1. bandwidth across message sizes: the bytes as one all-reduce, and cut into --bucket-mb buckets
//      started back to back (what the trainer does), both through the communication thread;
//   2. a training step of a real model (forward, backward with the overlapped all-reduce, AdamW) with
//      1 rank on the global batch and with 2 ranks on half of it each (scaling efficiency), with
//      buckets and with one bucket per flat buffer (no overlap); the communication time per step
//      and the fraction of it hidden behind backward;
//   3. the timeline of one step: when each bucket was ready, started and finished, relative to the
//      end of backward.
//
//   mpirun -n 2 --bind-to none build/bin/bench_allreduce [--sizes 0.25,4,32,128] [--bucket-mb 25]
//       [--reps 5] [--family dit] [--preset S/2] [--resolution 32] [--batch 16] [--steps 6]
//
// On a CPU the ranks' computation and the copies of a shared-memory all-reduce compete for the same
// cores and memory bandwidth, so little of the communication can be hidden; the targets (>= 0.9x
// bandwidth, >= 90% scaling, >= 50% hidden) are for GPUs, whose copies run on their own engines.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/comm/comm.h"
#include "worker/models/denoiser.h"
#include "worker/optim/flat_params.h"
#include "worker/train/grad_reducer.h"

using namespace ldm;
using namespace ldm::worker;

namespace {

struct Options {
  std::vector<double> sizes_mb = {0.25, 4, 32, 128};
  double bucket_mb = 25;
  int reps = 5, resolution = 32, batch = 16, steps = 6;
  std::string family = "dit", preset = "S/2";
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Part 1: one all-reduce of the bytes vs the same bytes in buckets started back to back.
void bandwidth(Communicator& comm, const Options& o) {
  if (comm.rank() == 0) {
    std::printf(
        "\n1. all-reduce of N MiB of float32 over %d ranks (median of %d; algorithm bandwidth = bytes / time)\n",
        comm.size(), o.reps);
    std::printf("%10s %8s %12s %10s %12s %10s %7s\n", "MiB", "buckets", "one ms", "one GB/s", "bucketed ms", "GB/s",
                "ratio");
  }
  const auto cap = static_cast<std::size_t>(o.bucket_mb * 1024 * 1024 / 4);
  for (const double mb : o.sizes_mb) {
    const auto n = static_cast<std::size_t>(mb * 1024 * 1024 / 4);
    std::vector<float> data(n, 1.0f);
    std::vector<double> one, bucketed;
    const std::size_t buckets = cap ? (n + cap - 1) / cap : 1;
    for (int r = 0; r <= o.reps; ++r) {
      comm.barrier();
      double t0 = comm_clock();
      comm.allreduce_sum(data.data(), n);
      if (r > 0) one.push_back(comm_clock() - t0);  // the first round warms the buffers up
      comm.barrier();
      t0 = comm_clock();
      std::vector<CommHandle> handles;
      for (std::size_t off = 0; off < n; off += cap ? cap : n)
        handles.push_back(comm.allreduce_sum_async(data.data() + off, std::min(cap ? cap : n, n - off)));
      for (const auto& h : handles) h.wait();
      if (r > 0) bucketed.push_back(comm_clock() - t0);
    }
    if (comm.rank() == 0) {
      const double a = median(one), b = median(bucketed), bytes = double(n) * 4;
      std::printf("%10.2f %8zu %12.3f %10.2f %12.3f %10.2f %6.2fx\n", mb, buckets, a * 1e3, bytes / a / 1e9, b * 1e3,
                  bytes / b / 1e9, a / b);
    }
  }
}

struct StepFigures {
  double step_s = 0, comm_s = 0, hidden_s = 0, wait_s = 0;
  StepComm last;
  std::size_t buckets = 0;
};

// `steps` training steps (after one warm-up) of a fresh model on `batch` samples per rank.
StepFigures train(Communicator& comm, const Options& o, int64_t batch, double bucket_mb) {
  RecipeSpec r = recipe_defaults(o.family);
  r.preset = o.preset;
  r.learn_sigma = false;  // the output is the noise prediction only, shaped like the input
  const int64_t channels = 12, side = o.resolution / 2, classes = 1000;
  const models::ModelGeometry g{channels, side, side, classes};
  auto init = at::detail::createCPUGenerator(0);  // the same weights on every rank
  auto model = models::build_denoiser(r, g, init);
  model->train();
  FlatParams flat(*model, false);
  FlatAdamW opt(flat, {0.9, 0.999, 1e-8, 0.0});
  GradReducer reducer(flat, comm, static_cast<int64_t>(bucket_mb * 1024 * 1024));
  auto gen = at::detail::createCPUGenerator(100 + comm.rank());  // each rank its own data
  StepFigures f;
  f.buckets = reducer.buckets().size();
  for (int s = 0; s <= o.steps; ++s) {
    auto x = torch::randn({batch, channels, side, side}, gen);
    auto t = torch::rand({batch}, gen) * 999;
    models::Condition cond;
    cond.labels = torch::randint(0, classes, {batch}, gen, torch::kInt64);
    cond.noise_level = t / 999;
    comm.barrier();
    const double t0 = comm_clock();
    flat.zero_grad();
    reducer.begin_backward(true);
    auto outs = model->training_outputs(x, t, cond, gen);
    torch::Tensor loss;
    for (const auto& out : outs) loss = loss.defined() ? loss + (out - x).pow(2).mean() : (out - x).pow(2).mean();
    loss.backward();
    const StepComm c = reducer.finish();
    opt.step(1e-4);
    const double dt = comm_clock() - t0;
    if (s == 0) continue;  // warm-up
    f.step_s += dt / o.steps;
    f.comm_s += c.comm_s / o.steps;
    f.hidden_s += c.hidden_s / o.steps;
    f.wait_s += c.wait_s / o.steps;
    f.last = c;
  }
  return f;
}

void training(Communicator& world, const Options& o) {
  const int64_t global = o.batch;
  if (global % 2) throw Error("--batch must be even (it is split over 2 ranks)");
  if (world.rank() == 0) {
    std::printf(
        "\n2. training step: %s %s, %dpx (latent 12x%dx%d), global batch %lld, AdamW, 1 thread per rank, "
        "mean of %d steps\n",
        o.family.c_str(), o.preset.c_str(), o.resolution, o.resolution / 2, o.resolution / 2, (long long)global,
        o.steps);
  }
  // 1 rank: rank 0 alone with the whole batch (a world of one), rank 1 idle.
  StepFigures one;
  if (world.rank() == 0) {
    auto single = make_single_process_communicator();
    one = train(*single, o, global, o.bucket_mb);
  }
  world.barrier();
  const StepFigures two = train(world, o, global / 2, o.bucket_mb);
  const StepFigures flat = train(world, o, global / 2, 0);
  if (world.rank() != 0) return;
  auto row = [&](const char* what, const StepFigures& f, int ranks) {
    std::printf("%-34s %8zu %10.1f %10.1f %9.1f %8.0f%% %9.1f %9.0f%%\n", what, f.buckets, f.step_s * 1e3,
                double(global) / f.step_s, f.comm_s * 1e3, f.comm_s > 0 ? 100 * f.hidden_s / f.comm_s : 0.0,
                f.wait_s * 1e3, ranks > 1 ? 100 * one.step_s / (ranks * f.step_s) : 100.0);
  };
  std::printf("%-34s %8s %10s %10s %9s %9s %9s %10s\n", "", "buckets", "step ms", "samples/s", "comm ms", "hidden",
              "wait ms", "scaling");
  row("1 rank", one, 1);
  char label[64];
  std::snprintf(label, sizeof label, "2 ranks, %g MiB buckets", o.bucket_mb);
  row(label, two, 2);
  row("2 ranks, one bucket per flat buffer", flat, 2);

  std::printf(
      "\n3. timeline of the last 2-rank step with %g MiB buckets (ms relative to the end of backward; "
      "negative = during backward)\n",
      o.bucket_mb);
  std::printf("%7s %10s %9s %9s %9s\n", "bucket", "MiB", "ready", "started", "finished");
  const StepComm& c = two.last;
  for (std::size_t i = 0; i < c.buckets.size(); ++i) {
    const BucketTiming& b = c.buckets[i];
    std::printf("%7zu %10.2f %9.1f %9.1f %9.1f\n", i, b.bytes / 1048576.0, (b.ready - c.backward_end) * 1e3,
                (b.started - c.backward_end) * 1e3, (b.finished - c.backward_end) * 1e3);
  }
}

std::vector<double> parse_sizes(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;
}

int bench(const cli::Args& a) {
  Options o;
  if (!a.text("sizes").empty()) o.sizes_mb = parse_sizes(a.text("sizes"));
  o.bucket_mb = a.number("bucket-mb", o.bucket_mb);
  o.reps = static_cast<int>(a.integer("reps", o.reps));
  o.family = a.text("family", o.family);
  o.preset = a.text("preset", o.preset);
  o.resolution = static_cast<int>(a.integer("resolution", o.resolution));
  o.batch = static_cast<int>(a.integer("batch", o.batch));
  o.steps = static_cast<int>(a.integer("steps", o.steps));
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures as they come, through mpirun's pipe
  at::set_num_threads(1);
  auto comm = make_mpi_communicator();
  if (comm->size() != 2) {
    std::fprintf(stderr, "bench_allreduce: run it with 2 ranks (mpirun -n 2), not %d\n", comm->size());
    return 2;
  }
  try {
    bandwidth(*comm, o);
    training(*comm, o);
  } catch (const std::exception& e) {  // the other rank may wait in a collective: end both
    std::fprintf(stderr, "bench_allreduce: rank %d: %s\n", comm->rank(), e.what());
    comm->abort(1);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ldm::cli;
  const Program program{
      "bench_allreduce",
      "",
      {{"",
        {},
        "The gradient all-reduce with 2 MPI ranks: bandwidth, training-step scaling, overlap (prints figures).",
        {text("sizes", "MIB,...", "message sizes in MiB (default 0.25,4,32,128)"),
         number("bucket-mb", "MIB", "bucket cap (default 25, the trainer's default)", 0, 1e6),
         integer("reps", "N", "repetitions per size (default 5)", 1, 1000),
         text("family", "NAME", "recipe family for the training step (default dit)"),
         text("preset", "NAME", "its preset (default S/2)"),
         integer("resolution", "PX", "image side; latent side = PX/2 (default 32)", 4, 4096),
         integer("batch", "B", "global batch (default 16)", 2, 100000),
         integer("steps", "N", "measured steps (default 6)", 1, 100000)},
        [](const Args& a) { return bench(a); }}}};
  return ldm::cli::run(program, argc, argv);
}
