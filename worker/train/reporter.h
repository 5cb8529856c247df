// Rank 0's link to the coordinator: fetches the run spec, streams metric batches and events over a
// ZeroMQ DEALER socket (protocol in shared/core/protocol.h).
//
// Metric points are batched; each batch carries (attempt, seq) and stays buffered until the
// coordinator acknowledges it (after its store write); unacknowledged batches are re-sent, so a
// slow or briefly absent coordinator loses nothing. The trainer flushes before each checkpoint,
// so the points up to a checkpoint's step are stored before a later attempt can resume from it. Every point is appended
// to `sent.jsonl` in the run directory when first sent, which lets tests compare what was sent with what was stored.
// Not thread-safe: one thread (the training loop's) owns the socket.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "shared/core/protocol.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace ldm::worker {

class Reporter {
 public:
  Reporter(std::string endpoint, std::string run_id, std::string token);
  ~Reporter();

  // hello -> spec reply body. Retries for `timeout_s`; throws Error naming the endpoint.
  nlohmann::json fetch_spec(int world_size, double timeout_s = 30.0);

  void set_attempt(int attempt) { attempt_ = attempt; }
  void set_sent_log(const std::string& path);

  void add_point(const std::string& metric, int64_t step, double value);
  // Sends the pending points if `force` or the batch is due; reads acks; re-sends stale batches;
  // sends a heartbeat every few seconds. Never blocks for long.
  void pump(int64_t step, bool force = false);
  // Sends everything and waits until all batches are acknowledged; false after `timeout_s`.
  bool flush(int64_t step, double timeout_s);
  // Sends an event (checkpoint, done, failed, preempted) and waits for its ack; false on timeout.
  bool send_event(protocol::Type type, nlohmann::json body, double timeout_s);

  std::size_t unacked_batches() const { return inflight_.size(); }

 private:
  struct Batch {
    uint64_t seq;
    std::string frame;
    double sent_at;
  };
  void send_frame(const std::string& frame);
  // Handles incoming replies for up to `wait_ms`; returns true if an event ack arrived.
  bool receive(int wait_ms);

  std::string endpoint_, run_, token_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zmq::socket_t> sock_;
  int attempt_ = 1;
  uint64_t next_seq_ = 1;
  nlohmann::json pending_ = nlohmann::json::array();
  double last_send_ = 0, last_heartbeat_ = 0;
  int heartbeats_outstanding_ = 0;
  std::deque<Batch> inflight_;
  int sent_log_fd_ = -1;
  std::string sent_log_path_;
};

}  // namespace ldm::worker
