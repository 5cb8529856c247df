// Activation checkpointing (worker/models/checkpoint.h): the same gradients as the plain forward, into
// the inputs and into the parameters (flat buffers included), under bf16 autocast too.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <vector>

#include "worker/models/checkpoint.h"
#include "worker/optim/flat_params.h"
#include "worker/torch_compat.h"

using namespace ldm;

namespace checkpoint_test {

struct NetImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, mod{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  NetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 64));
    fc2 = register_module("fc2", torch::nn::Linear(64, 16));
    mod = register_module("mod", torch::nn::Linear(8, 32));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({16}).elementwise_affine(false)));
  }
  // A DiT-like block: x [N, T, 16], c [N, 8] -> x + gate · MLP(modulate(norm(x))).
  std::vector<torch::Tensor> block(const std::vector<torch::Tensor>& in) {
    auto m = mod->forward(torch::silu(in[1])).chunk(2, 1);  // shift·scale [N, 16] each
    auto h = norm->forward(in[0]) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1);
    return {in[0] + fc2->forward(torch::gelu(fc1->forward(h)))};
  }
};
TORCH_MODULE(Net);

Net make_net() {
  torch::manual_seed(3);
  return Net();
}

// Three blocks deep, each checkpointed or not; returns the loss.
torch::Tensor run(Net& net, const torch::Tensor& x, const torch::Tensor& c, bool checkpoint) {
  auto fn = [&](const std::vector<torch::Tensor>& in) { return net->block(in); };
  torch::Tensor h = x;
  for (int i = 0; i < 3; ++i) h = checkpoint ? models::checkpointed(fn, {h, c})[0] : fn({h, c})[0];
  return h.square().mean();
}

// Equal bit for bit (rtol 0), or within rtol of the largest gradient: a parameter used by several
// blocks (the modulation reads the same c in each) sums its contributions in another order when
// each block back-propagates on its own, which under bf16 can differ by one bf16 step (2^-9).
void check_same_grads(Net& a, Net& b, double rtol = 0) {
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& item : pa) {
    CAPTURE(item.key());
    REQUIRE(item.value().grad().defined());
    const double diff = (item.value().grad() - pb[item.key()].grad()).abs().max().item<double>(),
                 scale = item.value().grad().abs().max().item<double>();
    CAPTURE(diff);
    CAPTURE(scale);
    if (rtol == 0) CHECK(torch::equal(item.value().grad(), pb[item.key()].grad()));
    else CHECK(diff <= rtol * scale);
    CHECK(item.value().grad().abs().sum().item<double>() > 0);
  }
}

}  // namespace checkpoint_test
using namespace checkpoint_test;

TEST_CASE("checkpointed blocks give the plain forward's gradients, bit for bit, into inputs and parameters") {
  Net plain = make_net(), ckpt = make_net();
  auto g = at::detail::createCPUGenerator(5);
  const auto x = torch::randn({4, 6, 16}, g), c = torch::randn({4, 8}, g);
  auto xa = x.clone().requires_grad_(true), xb = x.clone().requires_grad_(true);
  auto ca = c.clone().requires_grad_(true), cb = c.clone().requires_grad_(true);
  const auto la = run(plain, xa, ca, false), lb = run(ckpt, xb, cb, true);
  CHECK(torch::equal(la, lb));
  la.backward();
  lb.backward();
  check_same_grads(plain, ckpt);
  CHECK(torch::equal(xa.grad(), xb.grad()));
  CHECK(torch::equal(ca.grad(), cb.grad()));
}

TEST_CASE("checkpointing accumulates into the flat gradient buffers in place, and works when no input needs grad") {
  Net plain = make_net(), ckpt = make_net();
  worker::FlatParams fa(*plain, false), fb(*ckpt, false);
  const auto grads_before = fb.buckets()[0].grads.data_ptr();
  auto g = at::detail::createCPUGenerator(6);
  const auto x = torch::randn({2, 5, 16}, g), c = torch::randn({2, 8}, g);
  // The inputs need no gradient: only the parameters do (the first block of a model sees data).
  run(plain, x, c, false).backward();
  run(ckpt, x, c, true).backward();
  check_same_grads(plain, ckpt);
  CHECK(fb.buckets()[0].grads.data_ptr() == grads_before);  // still the buffer the views point into
  for (std::size_t i = 0; i < fa.buckets().size(); ++i)
    CHECK(torch::equal(fa.buckets()[i].grads, fb.buckets()[i].grads));
}

TEST_CASE("under bf16 autocast the recomputation replays autocast: the checkpointed gradients are the bf16 ones") {
  Net plain = make_net(), ckpt = make_net(), fp32 = make_net();
  auto g = at::detail::createCPUGenerator(7);
  const auto x = torch::randn({4, 6, 16}, g).requires_grad_(true), c = torch::randn({4, 8}, g);
  torch::Tensor la, lb, lf;
  {
    torch_compat::AutocastScope autocast(c10::DeviceType::CPU, true);
    la = run(plain, x, c, false);
    lb = run(ckpt, x, c, true);
  }
  lf = run(fp32, x, c, false);
  la.backward();
  lb.backward();
  lf.backward();
  check_same_grads(plain, ckpt, 1e-2);
  CHECK_FALSE(torch::equal(plain->fc1->weight.grad(), fp32->fc1->weight.grad()));  // bf16 really ran
  // and the recomputation ran in bf16 too: an fp32 recomputation would not match a weight bit for bit
  CHECK(torch::equal(plain->fc1->weight.grad(), ckpt->fc1->weight.grad()));
}
