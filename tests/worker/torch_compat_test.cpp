// worker/torch_compat: one attention for every family (fused where LibTorch has it, else the
// explicit form), its key mask and bias, and the bf16 autocast scope with its weight cache.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include "worker/torch_compat.h"

using namespace ldm;

namespace torch_compat_test {

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv random_qkv(int64_t n, int64_t heads, int64_t t, int64_t l, int64_t d, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return {torch::randn({n, heads, t, d}, g), torch::randn({n, heads, l, d}, g), torch::randn({n, heads, l, d}, g)};
}

// softmax(q kᵀ/√d + bias) v in double, one (sample, head, query) at a time, over the kept keys only.
torch::Tensor slow_attention(const Qkv& x, const torch::Tensor& bias, const torch::Tensor& keep) {
  auto q = x.q.to(torch::kFloat64), k = x.k.to(torch::kFloat64), v = x.v.to(torch::kFloat64);
  const int64_t n = q.size(0), h = q.size(1), t = q.size(2), l = k.size(2), d = q.size(3);
  auto out = torch::zeros_like(q);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < h; ++j)
      for (int64_t a = 0; a < t; ++a) {
        std::vector<double> w(static_cast<std::size_t>(l), 0.0);
        double total = 0;
        for (int64_t b = 0; b < l; ++b) {
          if (keep.defined() && !keep[i][b].item<bool>()) continue;
          double s = (q[i][j][a] * k[i][j][b]).sum().item<double>() / std::sqrt(double(d));
          if (bias.defined()) s += bias[j][a][b].item<double>();
          w[static_cast<std::size_t>(b)] = std::exp(s);
          total += w[static_cast<std::size_t>(b)];
        }
        for (int64_t b = 0; b < l; ++b) out[i][j][a] += v[i][j][b] * (w[static_cast<std::size_t>(b)] / total);
      }
  return out.to(torch::kFloat32);
}

}  // namespace torch_compat_test

using namespace torch_compat_test;

TEST_CASE("explicit attention is softmax(q kᵀ/√d + bias) v over the kept keys") {
  const Qkv x = random_qkv(2, 3, 4, 5, 8, 1);
  auto g = at::detail::createCPUGenerator(2);
  const auto bias = torch::randn({3, 4, 5}, g);  // [h, T, L], as mDT's relative positions
  const auto keep = torch::tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 1}, torch::kBool).view({2, 5});
  CHECK(torch::allclose(torch_compat::explicit_attention(x.q, x.k, x.v), slow_attention(x, {}, {}), 1e-5, 1e-5));
  CHECK(torch::allclose(torch_compat::explicit_attention(x.q, x.k, x.v, bias, keep), slow_attention(x, bias, keep),
                        1e-5, 1e-5));
  // A masked key's value cannot reach the output.
  auto v2 = x.v.clone();
  v2.select(2, 2).add_(100.0);  // key 2: masked for sample 0 only
  const auto a = torch_compat::explicit_attention(x.q, x.k, x.v, {}, keep);
  const auto b = torch_compat::explicit_attention(x.q, x.k, v2, {}, keep);
  CHECK(torch::equal(a[0], b[0]));
  CHECK_FALSE(torch::allclose(a[1], b[1]));
  CHECK_THROWS_WITH(torch_compat::explicit_attention(x.q, x.k, x.v, {}, keep.narrow(1, 0, 4)),
                    doctest::Contains("key mask must be [2, 5]"));
}

TEST_CASE("attention() equals the explicit form, values and gradients; the math setting makes it exact") {
  const std::string fused = torch_compat::has_fused_attention() ? "available" : "not available (explicit form)";
  MESSAGE("LibTorch " << torch_compat::libtorch_version() << ": fused attention " << fused);
  Qkv x = random_qkv(2, 2, 6, 7, 16, 3);
  auto g = at::detail::createCPUGenerator(4);
  const auto bias = torch::randn({2, 6, 7}, g);
  const auto keep = torch::tensor({1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kBool).view({2, 7});
  for (int with_bias = 0; with_bias < 2; ++with_bias)
    for (int with_mask = 0; with_mask < 2; ++with_mask) {
      CAPTURE(with_bias);
      CAPTURE(with_mask);
      const auto b = with_bias ? bias : torch::Tensor();
      const auto m = with_mask ? keep : torch::Tensor();
      auto run = [&](bool fused) {
        auto q = x.q.clone().requires_grad_(), k = x.k.clone().requires_grad_(), v = x.v.clone().requires_grad_();
        auto out = fused ? torch_compat::attention(q, k, v, b, m) : torch_compat::explicit_attention(q, k, v, b, m);
        (out * torch::arange(out.numel()).view(out.sizes()).to(torch::kFloat32).sin()).sum().backward();
        return std::vector<torch::Tensor>{out.detach(), q.grad(), k.grad(), v.grad()};
      };
      const auto want = run(false), got = run(true);
      for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        CHECK(torch::allclose(got[i], want[i], 1e-4, 1e-5));
      }
      torch_compat::set_math_attention(true);
      const auto math = run(true);
      torch_compat::set_math_attention(false);
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(torch::equal(math[i], want[i]));
    }
}

TEST_CASE("an autocast scope computes linear layers in bf16 and restores the state before it, nested too") {
  auto lin = torch::nn::Linear(8, 4);
  const auto x = torch::randn({3, 8});
  CHECK_FALSE(torch_compat::autocast_enabled(torch::kCPU));
  {
    torch_compat::AutocastScope outer(torch::kCPU, true);
    CHECK(torch_compat::autocast_enabled(torch::kCPU));
    CHECK((lin->forward(x).dtype() == torch::kBFloat16));
    {
      torch_compat::AutocastScope off(torch::kCPU, false);  // a disabled scope changes nothing
      CHECK(torch_compat::autocast_enabled(torch::kCPU));
      torch_compat::AutocastScope inner(torch::kCPU, true);
      CHECK((lin->forward(x).dtype() == torch::kBFloat16));
    }
    CHECK(torch_compat::autocast_enabled(torch::kCPU));
  }
  CHECK_FALSE(torch_compat::autocast_enabled(torch::kCPU));
  CHECK((lin->forward(x).dtype() == torch::kFloat32));
  CHECK((lin->weight.dtype() == torch::kFloat32));
}

TEST_CASE("the bf16 output changes after one optimiser step: a scope's end drops autocast's weight cache") {
  // Autocast caches its bf16 copy of a weight that is a leaf and not a view. at::linear with the weight
  // itself, as PyTorch's and LibTorch 2's Linear call it (LibTorch 1.13's Linear passes weight.t(), a
  // view, and our flat parameters are views: neither is cached, but a GPU build's may be).
  torch::manual_seed(0);
  auto lin = torch::nn::Linear(16, 16);
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(0.5));
  const auto x = torch::randn({4, 16});
  auto forward = [&] { return torch::linear(x, lin->weight, lin->bias); };
  torch::Tensor before, stale;
  {
    torch_compat::AutocastScope autocast(torch::kCPU, true);
    before = forward();
    before.to(torch::kFloat32).pow(2).sum().backward();
    opt.step();
    // Inside one scope autocast reuses its stale bf16 copy: the cache is real here, so the check
    // below would fail if the scope's end did not clear it.
    stale = forward();
  }
  CHECK(torch::equal(stale, before));
  torch::Tensor after;
  {
    torch_compat::AutocastScope autocast(torch::kCPU, true);
    after = forward();
  }
  CHECK_FALSE(torch::equal(after, before));
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(after.to(torch::kFloat32), forward(), 2e-2, 2e-2));
}
