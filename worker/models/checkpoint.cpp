#include "worker/models/checkpoint.h"

#include <ATen/core/ivalue.h>

#include "worker/torch_compat.h"

namespace ldm::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs beside the saved inputs, kept alive by the autograd context.
struct Replay : torch::CustomClassHolder {
  BlockFn fn;
  bool autocast_cpu = false, autocast_cuda = false;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `inputs` as a TensorList: apply() counts a TensorList's tensors as inputs (not a std::vector).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<Replay> replay, at::TensorList list) {
    const variable_list inputs = list.vec();
    ctx->save_for_backward(inputs);
    ctx->saved_data["replay"] = c10::IValue::make_capsule(replay);
    return replay->fn(inputs);  // autograd is off inside a Function's forward
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto holder = ctx->saved_data["replay"].toCapsule();
    const auto* replay = static_cast<const Replay*>(holder.get());
    variable_list inputs;
    for (const auto& t : ctx->get_saved_variables())
      inputs.push_back(t.defined() ? t.detach().requires_grad_(t.requires_grad()) : t);
    variable_list outputs;
    {
      torch::AutoGradMode on(true);
      torch_compat::AutocastScope cpu(c10::DeviceType::CPU, replay->autocast_cpu);
      torch_compat::AutocastScope cuda(c10::DeviceType::CUDA, replay->autocast_cuda);
      outputs = replay->fn(inputs);
    }
    variable_list roots, root_grads;
    for (std::size_t i = 0; i < outputs.size() && i < grads.size(); ++i)
      if (outputs[i].requires_grad() && grads[i].defined()) {
        roots.push_back(outputs[i]);
        root_grads.push_back(grads[i]);
      }
    if (!roots.empty()) torch::autograd::backward(roots, root_grads);
    variable_list out{torch::Tensor()};  // for `replay`, which is no tensor
    for (const auto& t : inputs) out.push_back(t.defined() && t.requires_grad() ? t.grad() : torch::Tensor());
    return out;
  }
};

}  // namespace

std::vector<torch::Tensor> checkpointed(const BlockFn& fn, const std::vector<torch::Tensor>& inputs) {
  bool any = false;
  for (const auto& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!torch::GradMode::is_enabled() || !any) return fn(inputs);
  auto replay = c10::make_intrusive<Replay>();
  replay->fn = fn;
  replay->autocast_cpu = torch_compat::autocast_enabled(c10::DeviceType::CPU);
  replay->autocast_cuda = torch_compat::autocast_enabled(c10::DeviceType::CUDA);
  return CheckpointFunction::apply(replay, at::TensorList(inputs));
}

}  // namespace ldm::models
