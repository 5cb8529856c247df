// Gradient averaging over the data-parallel ranks, overlapped with backward.
//
// The trainable parameters are cut into buckets of at most `cap_bytes` (a parameter larger than the
// cap gets a bucket of its own), walking them in reverse registration order, which is about the
// order in which backward produces their gradients. Each bucket is a contiguous range of one flat
// gradient buffer (FlatParams). A post-hook on every parameter's gradient accumulator counts the
// bucket's gradients; when the last one has arrived, the bucket's all-reduce is handed to the
// communication thread (the hook only enqueues), which sums it over the ranks and divides by the
// world size while backward goes on. Buckets start strictly in index order on every rank (a bucket
// that is ready waits for the ones before it), so all ranks issue the same collectives in the same
// order. finish() starts the buckets whose gradients never came (parameters this step did not use:
// their gradient is zero), then waits for all of them.
//
// With 2 ranks every element is one sum of two floats, so the result is bitwise that of one flat
// all-reduce of the same gradients whatever the bucketing. With gradient accumulation only the last
// micro-step's backward communicates. A world of one skips all of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "worker/comm/comm.h"

namespace torch::autograd {
struct Node;
}

namespace ldm::worker {

class FlatParams;

// A parameter's place in the flat gradient buffers.
struct ParamExtent {
  std::size_t flat = 0;  // which flat buffer
  std::int64_t offset = 0, numel = 0;
};

// `numel` elements from `offset` of flat buffer `flat`: the gradients of `params` (indices into the
// extents, in the order they joined the bucket, i.e. reverse registration order).
struct GradBucket {
  std::size_t flat = 0;
  std::int64_t offset = 0, numel = 0;
  std::vector<std::size_t> params;
};

// The buckets for parameters `params` (registration order) with a cap of `cap_bytes` (0 = no cap:
// one bucket per flat buffer), in the order they are expected to be ready. Throws if a flat buffer's
// parameters are not laid out contiguously in registration order.
std::vector<GradBucket> plan_grad_buckets(const std::vector<ParamExtent>& params, std::int64_t cap_bytes,
                                          std::int64_t element_bytes = 4);

// One bucket's all-reduce in one step, in comm_clock() seconds.
struct BucketTiming {
  std::int64_t bytes = 0;
  double ready = 0;  // its last gradient arrived (or finish() started it: an unused parameter)
  double started = 0, finished = 0;
};

// The communication of one step's gradients.
struct StepComm {
  double backward_end = 0;  // when finish() was called
  double comm_s = 0;        // the buckets' all-reduce time, summed
  double hidden_s = 0;      // the part of comm_s before backward_end (overlapped with backward)
  double wait_s = 0;        // how long finish() waited after backward
  std::vector<BucketTiming> buckets;
};

class GradReducer {
 public:
  // Hooks every parameter of `flat`; `flat` and `comm` must outlive the reducer.
  GradReducer(FlatParams& flat, Communicator& comm, std::int64_t cap_bytes);
  ~GradReducer();  // removes the hooks; waits for the buckets still in flight
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each backward of a step: `last` = this backward completes the step's gradients (the
  // buckets are all-reduced as they become ready); earlier micro-steps only accumulate.
  void begin_backward(bool last);
  // After the step's last backward: every bucket started and finished; the gradients are the mean
  // over the ranks. Rethrows a failed all-reduce.
  StepComm finish();

  const std::vector<GradBucket>& buckets() const { return buckets_; }
  bool active() const { return active_; }

  // The post-hook's entry (any thread): parameter `index` (FlatParams::slots() order) has its gradient.
  void gradient_ready(std::size_t index);

 private:
  void launch_ready_locked();  // starts the consecutive ready buckets from next_launch_
  void launch_locked(std::size_t b);
  void warn_unused_locked();

  FlatParams& flat_;
  Communicator& comm_;
  const bool active_;
  std::vector<GradBucket> buckets_;
  std::vector<std::size_t> bucket_of_;                                // by parameter
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive, hooked
  std::vector<std::uintptr_t> hook_keys_;

  std::mutex mu_;  // guards what follows (hooks may fire on autograd's device threads)
  bool armed_ = false;
  std::vector<std::size_t> pending_;  // gradients still to come, by bucket
  std::vector<char> arrived_;         // by parameter, this backward
  std::vector<double> ready_at_;
  std::vector<CommHandle> handles_;
  std::size_t next_launch_ = 0;
  bool warned_unused_ = false;
};

}  // namespace ldm::worker
