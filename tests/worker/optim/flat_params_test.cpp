#include <torch/torch.h>
#include <doctest/doctest.h>

#include <fstream>
#include <vector>

#include "tests/support/python_reference.h"
#include "worker/optim/flat_params.h"

using namespace ldm::worker;

namespace {
struct TwoLayer : torch::nn::Module {
  TwoLayer() {
    a = register_module("a", torch::nn::Linear(4, 3));
    b = register_module("b", torch::nn::Linear(3, 2));
    fixed = register_parameter("fixed", torch::ones({5}), /*requires_grad=*/false);
  }
  torch::Tensor forward(const torch::Tensor& x) { return b->forward(torch::tanh(a->forward(x))); }
  torch::nn::Linear a{nullptr}, b{nullptr};
  torch::Tensor fixed;
};
}  // namespace

TEST_CASE("flat params: parameters and gradients are views of per-group flat buffers") {
  torch::manual_seed(0);
  TwoLayer m;
  FlatParams flat(m, /*decay_1d=*/false);
  CHECK(flat.numel() == 4 * 3 + 3 + 3 * 2 + 2);  // the non-trainable parameter stays out
  REQUIRE(flat.buckets().size() == 2);           // weights (decayed) and biases (not decayed)
  const FlatBucket& weights = flat.buckets()[0].decay ? flat.buckets()[0] : flat.buckets()[1];
  const FlatBucket& biases = flat.buckets()[0].decay ? flat.buckets()[1] : flat.buckets()[0];
  CHECK(weights.names == std::vector<std::string>{"a.weight", "b.weight"});
  CHECK(biases.names == std::vector<std::string>{"a.bias", "b.bias"});
  m.a->weight.data().fill_(2.0);
  CHECK(weights.params.narrow(0, 0, 12).eq(2.0).all().item<bool>());
  m.forward(torch::ones({2, 4})).sum().backward();
  // autograd accumulated into the flat buffers, not into new tensors
  CHECK(flat.grad_norm() > 0);
  CHECK(m.a->weight.grad().data_ptr() == weights.grads.data_ptr());
  auto views = flat.unflatten(flat.param_buffers());
  CHECK(torch::equal(views.at("b.bias"), m.b->bias));
  flat.zero_grad();
  CHECK(m.a->weight.grad().abs().sum().item<double>() == 0);
  CHECK(FlatParams(m, /*decay_1d=*/true).buckets().size() == 1);
}

TEST_CASE("flat AdamW matches LibTorch's AdamW step for step with explicit hyper-parameters") {
  torch::manual_seed(1);
  TwoLayer ours, ref;
  {
    torch::NoGradGuard g;
    auto src = ours.parameters(), dst = ref.parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  FlatParams flat(ours, /*decay_1d=*/true);  // LibTorch decays every parameter
  FlatAdamW opt(flat, {0.9, 0.95, 1e-8, 0.03});
  std::vector<torch::Tensor> ref_params;
  for (auto& p : ref.parameters())
    if (p.requires_grad()) ref_params.push_back(p);
  torch::optim::AdamW ref_opt(ref_params,
                              torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.03));
  auto x = torch::randn({8, 4});
  for (int step = 0; step < 5; ++step) {
    flat.zero_grad();
    ours.forward(x).pow(2).sum().backward();
    opt.step(1e-2);
    ref_opt.zero_grad();
    ref.forward(x).pow(2).sum().backward();
    ref_opt.step();
  }
  CHECK(opt.steps_taken() == 5);
  CHECK(torch::allclose(ours.a->weight, ref.a->weight, 1e-5, 1e-6));
  CHECK(torch::allclose(ours.b->bias, ref.b->bias, 1e-5, 1e-6));
}

TEST_CASE("weight decay skips the biases' bucket unless asked") {
  torch::manual_seed(2);
  TwoLayer m;
  FlatParams flat(m, /*decay_1d=*/false);
  FlatAdamW opt(flat, {0.9, 0.999, 1e-8, 0.5});
  auto bias_before = m.a->bias.detach().clone();
  auto weight_before = m.a->weight.detach().clone();
  flat.zero_grad();  // zero gradients: only weight decay moves anything
  opt.step(0.1);
  CHECK(torch::equal(m.a->bias, bias_before));
  CHECK(torch::allclose(m.a->weight, weight_before * (1 - 0.1 * 0.5)));
}

TEST_CASE("EMA matches its closed form on a known parameter sequence") {
  TwoLayer m;
  FlatParams flat(m, false);
  // θ_0 = 1 (the EMA's start), then θ_t = t for t = 1..4: ema_4 = 0.9^4·1 + Σ_t 0.1·0.9^(4−t)·t
  torch::NoGradGuard g;
  for (auto& b : flat.buckets()) b.params.fill_(1.0);
  FlatEma fresh(flat, 0.9, false);
  for (int t = 1; t <= 4; ++t) {
    for (auto& b : flat.buckets()) b.params.fill_(double(t));
    fresh.update(t);
  }
  double expect = std::pow(0.9, 4);
  for (int t = 1; t <= 4; ++t) expect += 0.1 * std::pow(0.9, 4 - t) * t;
  for (const auto& e : fresh.buffers()) CHECK(e.sub(expect).abs().max().item<double>() < 1e-6);
  FlatEma warm(flat, 0.9999, /*warmup=*/true);
  CHECK(warm.decay_at(1) == doctest::Approx(2.0 / 11.0));
  CHECK(warm.decay_at(1000000) == doctest::Approx(0.9999));
}

namespace optimizer_test {
// One 2-D (so weight-decayed) parameter of 10 values with closed-form start and gradients, so
// the Python reference below can recompute the same sequence.
struct OneMatrix : torch::nn::Module {
  OneMatrix() {
    w = register_parameter("w", torch::cos(torch::arange(10, torch::kFloat64) * 0.1).to(torch::kFloat32).view({2, 5}));
  }
  torch::Tensor w;
};
torch::Tensor gradient(int k) {  // g_k[i] = sin(0.37·k·(i+1)) + 0.1·k
  auto i = torch::arange(10, torch::kFloat64);
  return (torch::sin(0.37 * k * (i + 1)) + 0.1 * k).to(torch::kFloat32);
}
const char* kAdanReference = R"PY(
# Adan as written in its paper (Xie et al. 2022, Algorithm 1) with the reference implementation's
# conventions: g_0 = g_1, bias-corrected averages, proximal (post-update) weight decay.
import math, sys
import torch
b1, b2, b3, eps, wd, lr = 0.98, 0.92, 0.99, 1e-8, 0.05, 0.01
i = torch.arange(10, dtype=torch.float64)
theta = torch.cos(i * 0.1).float().double()
m = torch.zeros(10, dtype=torch.float64); v = torch.zeros_like(m); n = torch.zeros_like(m)
prev = None
for k in range(1, 7):
    g = (torch.sin(0.37 * k * (i + 1)) + 0.1 * k).float().double()
    if prev is None: prev = g
    d = g - prev
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * d
    n = b3 * n + (1 - b3) * (g + b2 * d) ** 2
    eta = lr / (torch.sqrt(n / (1 - b3 ** k)) + eps)
    theta = (theta - eta * (m / (1 - b1 ** k) + b2 * v / (1 - b2 ** k))) / (1 + lr * wd)
    prev = g
with open(sys.argv[1] + "/theta.txt", "w") as f:
    f.write(" ".join(repr(float(x)) for x in theta))
)PY";
}  // namespace optimizer_test

TEST_CASE("flat Adan matches an independent Python Adan (paper's algorithm) over six steps") {
  using namespace optimizer_test;
  OneMatrix m;
  FlatParams flat(m, /*decay_1d=*/false);
  FlatAdan opt(flat, {0.98, 0.92, 0.99, 1e-8, 0.05});
  for (int k = 1; k <= 6; ++k) {
    flat.buckets()[0].grads.copy_(gradient(k));
    opt.step(0.01);
  }
  ldm::testing::PythonReference ref("ldm-adan", "adan.py", kAdanReference);
  REQUIRE_MESSAGE(ref.error.empty(), ref.error);
  std::ifstream in(ref.dir / "theta.txt");
  std::vector<double> expected(10);
  for (auto& e : expected) in >> e;
  auto ours = m.w.detach().reshape({10}).to(torch::kFloat64);
  CHECK(torch::allclose(ours, torch::tensor(expected, torch::kFloat64), 1e-5, 1e-6));
  CHECK(opt.state().size() == 4);  // exp_avg, exp_avg_diff, exp_avg_sq, prev_grad of one bucket
}
