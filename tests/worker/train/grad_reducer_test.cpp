// The overlapped gradient all-reduce, without processes: a fake two-rank backend whose "other rank"
// has the same gradients (so the mean is this rank's gradient, bit for bit), instrumented to record
// which thread makes each call. The two-rank MPI version is tests/worker/comm/mpi_allreduce_2ranks.cpp.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <mutex>
#include <set>
#include <thread>

#include "shared/core/error.h"
#include "worker/comm/comm.h"
#include "worker/optim/flat_params.h"
#include "worker/train/grad_reducer.h"

namespace grad_reducer_test {

using namespace ldm::worker;

struct Calls {
  std::mutex mu;
  std::vector<std::size_t> allreduce_counts;
  std::set<std::thread::id> threads;
};

// Rank 0 of two; the other rank contributes a copy of this rank's buffer.
class TwinBackend final : public CommBackend {
 public:
  explicit TwinBackend(Calls* calls) : calls_(calls) {}
  std::string name() const override { return "twin"; }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void allreduce_sum(float* data, std::size_t count) override {
    {
      std::lock_guard<std::mutex> lock(calls_->mu);
      calls_->allreduce_counts.push_back(count);
      calls_->threads.insert(std::this_thread::get_id());
    }
    for (std::size_t i = 0; i < count; ++i) data[i] = data[i] + data[i];
  }
  std::int64_t allreduce_max(std::int64_t v) override { return v; }
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine, mine}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  Calls* calls_;
};

// Uneven parameter sizes in two flat buffers (weights decay, biases and norms do not), interleaved
// in registration order. With `unused`, the last registered module takes no part in forward.
struct Net : torch::nn::Module {
  explicit Net(bool with_unused = false) {
    a = register_module("a", torch::nn::Linear(13, 37));
    n = register_module("n", torch::nn::LayerNorm(torch::nn::LayerNormOptions({37})));
    b = register_module("b", torch::nn::Linear(37, 29));
    c = register_module("c", torch::nn::Linear(29, 5));
    if (with_unused) unused = register_module("unused", torch::nn::Linear(3, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::gelu(b(n(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::nn::LayerNorm n{nullptr};
  torch::nn::Linear unused{nullptr};
};

torch::Tensor loss_of(Net& net, int64_t seed) {
  torch::manual_seed(seed);
  return net.forward(torch::randn({8, 13})).pow(2).mean();
}

// Two identical networks: one for the reducer, one for the plain reference.
std::pair<std::shared_ptr<Net>, std::shared_ptr<Net>> twins(bool with_unused = false) {
  torch::manual_seed(11);
  auto x = std::make_shared<Net>(with_unused);
  torch::manual_seed(11);
  auto y = std::make_shared<Net>(with_unused);
  return {x, y};
}

void check_same_grads(const FlatParams& x, const FlatParams& y) {
  REQUIRE(x.buckets().size() == y.buckets().size());
  for (std::size_t i = 0; i < x.buckets().size(); ++i) CHECK(torch::equal(x.buckets()[i].grads, y.buckets()[i].grads));
}

}  // namespace grad_reducer_test

TEST_CASE("gradient buckets: reverse registration order, capped, contiguous, ordered by expected readiness") {
  using ldm::worker::ParamExtent;
  // p0..p4 alternate between flat buffers 0 and 1.
  const std::vector<ParamExtent> params = {{0, 0, 100}, {1, 0, 10}, {0, 100, 50}, {1, 10, 10}, {0, 150, 300}};
  auto plan = ldm::worker::plan_grad_buckets(params, 400);  // 100 floats
  REQUIRE(plan.size() == 4);
  // p4 alone (it exceeds the cap by itself); p2 (p2 + p4 would exceed it); then the buckets left open:
  // flat 1's (earliest parameter p1) before flat 0's (earliest p0).
  CHECK(plan[0].params == std::vector<std::size_t>{4});
  CHECK((plan[0].flat == 0 && plan[0].offset == 150 && plan[0].numel == 300));
  CHECK(plan[1].params == std::vector<std::size_t>{2});
  CHECK((plan[1].offset == 100 && plan[1].numel == 50));
  CHECK(plan[2].params == std::vector<std::size_t>{3, 1});
  CHECK((plan[2].flat == 1 && plan[2].offset == 0 && plan[2].numel == 20));
  CHECK(plan[3].params == std::vector<std::size_t>{0});

  auto uncapped = ldm::worker::plan_grad_buckets(params, 0);  // one per flat buffer
  REQUIRE(uncapped.size() == 2);
  CHECK((uncapped[0].flat == 1 && uncapped[0].numel == 20));
  CHECK((uncapped[1].flat == 0 && uncapped[1].offset == 0 && uncapped[1].numel == 450));

  const std::vector<ParamExtent> gap = {{0, 0, 10}, {0, 11, 5}};
  CHECK_THROWS_WITH_AS(ldm::worker::plan_grad_buckets(gap, 0), doctest::Contains("not next to"), ldm::Error);
}

TEST_CASE("buckets of a real module cover every flat buffer exactly once, each within the cap") {
  using namespace grad_reducer_test;
  auto [net, ref] = twins(true);
  FlatParams flat(*net, /*decay_1d=*/false);
  REQUIRE(flat.buckets().size() == 2);
  for (const int64_t cap : {int64_t{0}, int64_t{64}, int64_t{600}, int64_t{4096}, int64_t{1} << 30}) {
    CAPTURE(cap);
    std::vector<ParamExtent> extents;
    for (const FlatSlot& s : flat.slots()) extents.push_back({s.bucket, s.offset, s.numel});
    const auto plan = plan_grad_buckets(extents, cap);
    std::vector<std::vector<int>> covered;
    for (const auto& b : flat.buckets()) covered.emplace_back(static_cast<std::size_t>(b.grads.numel()), 0);
    std::size_t params = 0;
    for (const GradBucket& b : plan) {
      if (cap > 0 && b.params.size() > 1) CHECK(b.numel * 4 <= cap);
      for (int64_t i = b.offset; i < b.offset + b.numel; ++i) ++covered[b.flat][static_cast<std::size_t>(i)];
      params += b.params.size();
    }
    CHECK(params == flat.slots().size());
    for (const auto& c : covered) CHECK(std::all_of(c.begin(), c.end(), [](int n) { return n == 1; }));
  }
}

TEST_CASE("hooks fired on another thread only enqueue: every all-reduce runs on the communication thread") {
  using namespace grad_reducer_test;
  auto [net, ref] = twins();
  FlatParams flat(*net, false), flat_ref(*ref, false);
  flat_ref.zero_grad();
  loss_of(*ref, 5).backward();

  Calls calls;
  Communicator comm([&] { return std::make_unique<TwinBackend>(&calls); });
  GradReducer reducer(flat, comm, 256);  // 64 floats: many buckets
  REQUIRE(reducer.active());
  REQUIRE(reducer.buckets().size() >= 5);
  std::thread::id backward_thread;
  std::thread worker([&] {  // autograd runs CPU hooks on the thread that calls backward()
    backward_thread = std::this_thread::get_id();
    flat.zero_grad();
    reducer.begin_backward(true);
    loss_of(*net, 5).backward();
  });
  worker.join();
  const StepComm sc = reducer.finish();
  CHECK(calls.threads == std::set<std::thread::id>{comm.thread_id()});
  CHECK(backward_thread != comm.thread_id());
  CHECK(calls.allreduce_counts.size() == reducer.buckets().size());
  // The first bucket was handed over by a hook, inside backward (not by finish()).
  REQUIRE(sc.buckets.size() == reducer.buckets().size());
  CHECK(sc.buckets[0].ready < sc.backward_end);
  // When the communication thread picks it up is up to the scheduler (on a busy 2-core machine it can be
  // the same clock tick as finish()); it can never be before the hand-over.
  CHECK(sc.buckets[0].started >= sc.buckets[0].ready);
  CHECK(sc.comm_s >= sc.hidden_s);
  check_same_grads(flat, flat_ref);  // (g + g) / 2 == g: the mean of two equal ranks
}

TEST_CASE("gradient accumulation communicates once, on the last micro-step, the sum of all micro-steps") {
  using namespace grad_reducer_test;
  auto [net, ref] = twins();
  FlatParams flat(*net, false), flat_ref(*ref, false);
  flat_ref.zero_grad();
  for (int k = 0; k < 3; ++k) (loss_of(*ref, 20 + k) / 3.0).backward();

  Calls calls;
  Communicator comm([&] { return std::make_unique<TwinBackend>(&calls); });
  GradReducer reducer(flat, comm, 600);
  flat.zero_grad();
  for (int k = 0; k < 3; ++k) {
    reducer.begin_backward(k == 2);
    (loss_of(*net, 20 + k) / 3.0).backward();
    if (k < 2) {
      comm.barrier();  // anything a hook had queued would have run by now
      CHECK(calls.allreduce_counts.empty());
    }
  }
  reducer.finish();
  CHECK(calls.allreduce_counts.size() == reducer.buckets().size());
  check_same_grads(flat, flat_ref);

  // The next step starts afresh: the same number of all-reduces again.
  flat.zero_grad();
  reducer.begin_backward(true);
  loss_of(*net, 30).backward();
  reducer.finish();
  CHECK(calls.allreduce_counts.size() == 2 * reducer.buckets().size());
}

TEST_CASE("a parameter that gets no gradient: its bucket starts at finish() and its gradient is zero") {
  using namespace grad_reducer_test;
  auto [net, ref] = twins(true);
  FlatParams flat(*net, false), flat_ref(*ref, false);
  flat_ref.zero_grad();
  loss_of(*ref, 9).backward();
  Calls calls;
  Communicator comm([&] { return std::make_unique<TwinBackend>(&calls); });
  GradReducer reducer(flat, comm, 256);
  flat.zero_grad();
  reducer.begin_backward(true);
  loss_of(*net, 9).backward();
  const StepComm sc = reducer.finish();
  CHECK(calls.allreduce_counts.size() == reducer.buckets().size());
  // `unused` is registered last, so its weight is in the first bucket, which only finish() starts.
  CHECK(flat.slots()[reducer.buckets()[0].params.front()].name == "unused.weight");
  CHECK(sc.buckets[0].ready == sc.backward_end);
  check_same_grads(flat, flat_ref);
  CHECK(net->unused->weight.grad().abs().sum().item<float>() == 0.0f);
}

TEST_CASE("a world of one communicates nothing and leaves the gradients as backward made them") {
  using namespace grad_reducer_test;
  auto [net, ref] = twins();
  FlatParams flat(*net, false), flat_ref(*ref, false);
  flat_ref.zero_grad();
  loss_of(*ref, 4).backward();
  auto comm = make_single_process_communicator();
  GradReducer reducer(flat, *comm, 256);
  CHECK_FALSE(reducer.active());
  flat.zero_grad();
  reducer.begin_backward(true);
  loss_of(*net, 4).backward();
  const StepComm sc = reducer.finish();
  CHECK(sc.buckets.empty());
  CHECK(sc.comm_s == 0.0);
  check_same_grads(flat, flat_ref);
}
