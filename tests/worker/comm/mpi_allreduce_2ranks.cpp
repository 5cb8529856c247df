// Run under `mpirun -n 2` (ctest does): the overlapped, bucketed gradient all-reduce against one flat
// all-reduce of the same gradients, with real MPI between two processes. Not part of test_worker
// (whose cases run one by one without a launcher).
#include <torch/torch.h>
#include <doctest/doctest.h>

#include "worker/comm/comm.h"
#include "worker/optim/flat_params.h"
#include "worker/train/grad_reducer.h"

namespace {

using namespace ldm::worker;

// MPI starts once per process: one communicator for every case, finalised at exit.
Communicator& world() {
  static std::unique_ptr<Communicator> comm = make_mpi_communicator();
  return *comm;
}

// Uneven parameter sizes in two flat buffers (2-D weights decay; biases and norms do not).
struct Net : torch::nn::Module {
  Net() {
    a = register_module("a", torch::nn::Linear(13, 257));
    n = register_module("n", torch::nn::LayerNorm(torch::nn::LayerNormOptions({257})));
    b = register_module("b", torch::nn::Linear(257, 129));
    c = register_module("c", torch::nn::Linear(129, 7));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::gelu(b(n(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::nn::LayerNorm n{nullptr};
};

// Micro-step k's loss on this rank's own data.
torch::Tensor micro_loss(Net& net, int rank, int k, int micro) {
  torch::manual_seed(1000 * rank + k);
  const auto x = torch::randn({6, 13});
  return net.forward(x).sin().pow(2).mean() / double(micro);
}

std::vector<torch::Tensor> grads_of(const FlatParams& flat) {
  std::vector<torch::Tensor> out;
  for (const auto& b : flat.buckets()) out.push_back(b.grads.clone());
  return out;
}

// The tensors' bytes, to compare across ranks and runs.
std::string digest(const std::vector<torch::Tensor>& tensors) {
  std::string bytes;
  for (const auto& t : tensors)
    bytes.append(static_cast<const char*>(t.data_ptr()), static_cast<std::size_t>(t.numel() * t.element_size()));
  return bytes;
}

// The step's gradients through the reducer (bucket cap `cap` bytes), `micro` micro-steps.
std::vector<torch::Tensor> bucketed(Net& net, FlatParams& flat, Communicator& comm, int64_t cap, int micro) {
  GradReducer reducer(flat, comm, cap);
  flat.zero_grad();
  for (int k = 0; k < micro; ++k) {
    reducer.begin_backward(k == micro - 1);
    micro_loss(net, comm.rank(), k, micro).backward();
  }
  reducer.finish();
  return grads_of(flat);
}

}  // namespace

TEST_CASE("2 ranks: the bucketed all-reduce overlapped with backward is bitwise one flat all-reduce") {
  Communicator& comm = world();
  REQUIRE_MESSAGE(comm.size() == 2, "run this program under mpirun -n 2");
  CHECK(comm.backend() == "mpi");
  for (const int micro : {1, 3}) {
    torch::manual_seed(7);  // the same weights on both ranks
    Net net;
    FlatParams flat(net, /*decay_1d=*/false);
    // The reference: backward to the end, then one all-reduce per flat buffer and the division.
    flat.zero_grad();
    for (int k = 0; k < micro; ++k) micro_loss(net, comm.rank(), k, micro).backward();
    for (auto& b : flat.buckets()) {
      comm.allreduce_sum(b.grads.data_ptr<float>(), static_cast<std::size_t>(b.grads.numel()));
      b.grads.div_(comm.size());
    }
    const std::vector<torch::Tensor> flat_reduced = grads_of(flat);
    // Uneven caps: a float, a few rows, sizes that split parameters unevenly, no cap, the default.
    for (const int64_t cap : {int64_t{4}, int64_t{1000}, int64_t{7} * 1024 + 12, int64_t{0}, int64_t{25} << 20}) {
      CAPTURE(micro);
      CAPTURE(cap);
      const std::vector<torch::Tensor> got = bucketed(net, flat, comm, cap, micro);
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(torch::equal(got[i], flat_reduced[i]));
      // The ranks hold the same bits.
      const std::vector<std::string> digests = comm.gather(digest(got), 0);
      if (comm.rank() == 0) CHECK(digests.at(0) == digests.at(1));
    }
    // The gradients are not trivially equal: the ranks' own gradients differed before the mean.
    flat.zero_grad();
    for (int k = 0; k < micro; ++k) micro_loss(net, comm.rank(), k, micro).backward();
    const std::vector<std::string> local = comm.gather(digest(grads_of(flat)), 0);
    if (comm.rank() == 0) CHECK(local.at(0) != local.at(1));
  }
}

TEST_CASE("2 ranks: the overlapped all-reduce is bit-reproducible run to run") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  std::vector<std::string> runs;
  for (int run = 0; run < 3; ++run) {
    torch::manual_seed(7);
    Net net;
    FlatParams flat(net, false);
    runs.push_back(digest(bucketed(net, flat, comm, 2048, 2)));
  }
  CHECK(runs[0] == runs[1]);
  CHECK(runs[1] == runs[2]);
}
