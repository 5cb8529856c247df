#include "worker/train/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "worker/optim/flat_params.h"

namespace ldm::worker {

std::vector<GradBucket> plan_grad_buckets(const std::vector<ParamExtent>& params, std::int64_t cap_bytes,
                                          std::int64_t element_bytes) {
  std::vector<GradBucket> planned;
  std::map<std::size_t, GradBucket> open;          // by flat buffer: the bucket being filled
  std::map<std::size_t, std::int64_t> next_end;    // by flat buffer: where the next parameter must end
  for (std::size_t k = params.size(); k-- > 0;) {  // reverse registration order
    const ParamExtent& p = params[k];
    if (auto e = next_end.find(p.flat); e != next_end.end() && p.offset + p.numel != e->second)
      throw Error("gradient buckets: parameter " + std::to_string(k) + " occupies [" + std::to_string(p.offset) + ", " +
                  std::to_string(p.offset + p.numel) + ") of flat buffer " + std::to_string(p.flat) +
                  ", not next to the parameter registered after it (at " + std::to_string(e->second) + ")");
    next_end[p.flat] = p.offset;
    auto it = open.find(p.flat);
    if (it != open.end() && cap_bytes > 0 && (it->second.numel + p.numel) * element_bytes > cap_bytes) {
      planned.push_back(std::move(it->second));
      open.erase(it);
      it = open.end();
    }
    if (it == open.end()) it = open.emplace(p.flat, GradBucket{p.flat, p.offset + p.numel, 0, {}}).first;
    GradBucket& b = it->second;
    b.offset = p.offset;
    b.numel += p.numel;
    b.params.push_back(k);
  }
  // The buckets left open hold each flat buffer's first parameters; one is ready when its
  // earliest-registered parameter's gradient is, so the one whose earliest parameter comes later
  // goes first.
  std::vector<GradBucket> rest;
  for (auto& entry : open) rest.push_back(std::move(entry.second));
  std::sort(rest.begin(), rest.end(),
            [](const GradBucket& a, const GradBucket& b) { return a.params.back() > b.params.back(); });
  for (auto& b : rest) planned.push_back(std::move(b));
  return planned;
}

namespace {

// Runs after autograd has accumulated a parameter's gradient into its flat buffer.
class GradientReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  GradientReadyHook(GradReducer* reducer, std::size_t index) : reducer_(reducer), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    reducer_->gradient_ready(index_);
    return outputs;
  }

 private:
  GradReducer* reducer_;
  std::size_t index_;
};

}  // namespace

GradReducer::GradReducer(FlatParams& flat, Communicator& comm, std::int64_t cap_bytes)
    : flat_(flat), comm_(comm), active_(comm.size() > 1) {
  std::vector<ParamExtent> extents;
  for (const FlatSlot& s : flat.slots()) extents.push_back({s.bucket, s.offset, s.numel});
  for (const FlatBucket& b : flat.buckets())
    if (b.dtype != torch::kFloat32)
      throw Error(std::string("the gradient all-reduce handles float32 gradients only; a flat buffer holds ") +
                  c10::toString(b.dtype));
  buckets_ = plan_grad_buckets(extents, cap_bytes);
  bucket_of_.resize(extents.size());
  for (std::size_t b = 0; b < buckets_.size(); ++b)
    for (std::size_t p : buckets_[b].params) bucket_of_[p] = b;
  pending_.assign(buckets_.size(), 0);
  arrived_.assign(extents.size(), 0);
  ready_at_.assign(buckets_.size(), 0.0);
  handles_.resize(buckets_.size());
  next_launch_ = buckets_.size();
  if (!active_) return;
  for (std::size_t i = 0; i < flat.slots().size(); ++i) {
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(flat.slots()[i].param);
    if (!acc) throw Error("parameter '" + flat.slots()[i].name + "' has no gradient accumulator (not a leaf?)");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<GradientReadyHook>(this, i)));
    accumulators_.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
  // A bucket in flight writes into the gradient buffers: let it land before they can go away.
  for (const CommHandle& h : handles_) try {
      h.wait();
    } catch (...) {
    }
}

void GradReducer::begin_backward(bool last) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = last;
  if (!last) return;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b] = buckets_[b].params.size();
    handles_[b] = CommHandle();
  }
  std::fill(arrived_.begin(), arrived_.end(), 0);
  next_launch_ = 0;
}

void GradReducer::gradient_ready(std::size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!armed_) return;  // an accumulating micro-step
  if (arrived_[index])
    throw Error("parameter '" + flat_.slots()[index].name +
                "' received a second gradient in one backward pass, after its bucket may have been all-reduced "
                "(two backward passes over one graph are not supported with data parallelism)");
  arrived_[index] = 1;
  const std::size_t b = bucket_of_[index];
  if (--pending_[b] == 0) {
    ready_at_[b] = comm_clock();
    launch_ready_locked();
  }
}

// Once: a parameter without a gradient holds its bucket, and every bucket after it, until backward
// has ended, which costs the overlap.
void GradReducer::warn_unused_locked() {
  std::string names;
  std::size_t n = 0;
  for (std::size_t i = 0; i < arrived_.size(); ++i)
    if (!arrived_[i] && ++n <= 5) names += (names.empty() ? "" : ", ") + flat_.slots()[i].name;
  if (n == 0) return;
  warned_unused_ = true;
  log::warn(std::to_string(n) + " trainable parameter(s) received no gradient in a step (" + names +
            (n > 5 ? ", ..." : "") +
            "): their all-reduce buckets, and those after them, start only after backward (a bucket waits for all its "
            "gradients); their gradients are zero");
}

void GradReducer::launch_ready_locked() {
  while (next_launch_ < buckets_.size() && pending_[next_launch_] == 0) launch_locked(next_launch_++);
}

void GradReducer::launch_locked(std::size_t b) {
  const GradBucket& gb = buckets_[b];
  float* data = flat_.buckets()[gb.flat].grads.data_ptr<float>() + gb.offset;
  const auto count = static_cast<std::size_t>(gb.numel);
  const float world = static_cast<float>(comm_.size());
  // The mean, divided on the communication thread as soon as the sum is there. A plain loop: the
  // same correctly rounded division as torch's div_, without touching torch's thread pool.
  handles_[b] = comm_.allreduce_sum_async(data, count, [data, count, world] {
    for (std::size_t i = 0; i < count; ++i) data[i] = data[i] / world;
  });
}

StepComm GradReducer::finish() {
  StepComm out;
  if (!active_) return out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!armed_) throw Error("GradReducer::finish() without begin_backward(true) before the step's last backward");
    armed_ = false;
    out.backward_end = comm_clock();
    // Buckets whose gradients never came (parameters this step did not use), in order.
    for (; next_launch_ < buckets_.size(); ++next_launch_) {
      if (pending_[next_launch_] != 0) ready_at_[next_launch_] = out.backward_end;
      launch_locked(next_launch_);
    }
    if (!warned_unused_) warn_unused_locked();
  }
  for (const CommHandle& h : handles_) h.wait();
  out.wait_s = comm_clock() - out.backward_end;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const CommTiming t = handles_[b].timing();
    BucketTiming bt;
    bt.bytes = buckets_[b].numel * 4;
    bt.ready = ready_at_[b];
    bt.started = t.started;
    bt.finished = t.finished;
    out.comm_s += t.finished - t.started;
    out.hidden_s += std::max(0.0, std::min(t.finished, out.backward_end) - t.started);
    out.buckets.push_back(bt);
  }
  return out;
}

}  // namespace ldm::worker
