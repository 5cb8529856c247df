#include <torch/torch.h>
#include <doctest/doctest.h>

#include "worker/flat_params.h"

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

TEST_CASE("flat params: parameters and gradients are views of two flat buffers") {
  torch::manual_seed(0);
  TwoLayer m;
  FlatParams flat(m);
  CHECK(flat.numel() == 4 * 3 + 3 + 3 * 2 + 2);  // the non-trainable parameter stays out
  CHECK(flat.names().size() == 4);
  m.a->weight.data().fill_(2.0);
  CHECK(flat.params().narrow(0, 0, 12).eq(2.0).all().item<bool>());
  auto loss = m.forward(torch::ones({2, 4})).sum();
  loss.backward();
  // autograd accumulated into the flat buffer, not into new tensors
  CHECK(flat.grads().abs().sum().item<double>() > 0);
  CHECK(m.a->weight.grad().data_ptr() == flat.grad_storage().data_ptr());
  flat.zero_grad();
  CHECK(m.a->weight.grad().abs().sum().item<double>() == 0);
}

TEST_CASE("flat AdamW matches LibTorch's AdamW step for step with explicit hyper-parameters") {
  torch::manual_seed(1);
  TwoLayer ours, ref;
  torch::NoGradGuard* none = nullptr;
  (void)none;
  {
    torch::NoGradGuard g;
    auto src = ours.parameters(), dst = ref.parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  FlatParams flat(ours);
  FlatAdamW opt(flat, {0.9, 0.95, 1e-8, 0.03});
  std::vector<torch::Tensor> ref_params;
  for (auto& p : ref.parameters())
    if (p.requires_grad()) ref_params.push_back(p);
  torch::optim::AdamW ref_opt(ref_params, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.03));
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
