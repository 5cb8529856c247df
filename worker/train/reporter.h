// Rank 0's link to the coordinator: fetches the run spec, streams metric batches and events over a
// ZeroMQ DEALER socket (protocol in shared/core/protocol.h), and heartbeats from a thread of its own.
//
// Metric points are batched; each batch carries (attempt, seq) and stays buffered until the
// coordinator acknowledges it (after its store write); unacknowledged batches are re-sent, so a
// slow or briefly absent coordinator loses nothing. The trainer flushes before each checkpoint,
// so the points up to a checkpoint's step are stored before a later attempt can resume from it. Every point is appended
// to `sent.jsonl` in the run directory when first sent, which lets tests compare what was sent with what was stored.
//
// Memory: unacknowledged batches are kept up to ReporterOptions::max_buffer_bytes (64 MiB: at a
// few hundred bytes a point, hours of points at every step). Beyond it, pump() blocks, with a log
// line, re-sending until the coordinator acknowledges enough; training waits with it (and the
// watchdog, if the coordinator stays away longer than stage.watchdog_s, ends the attempt, which is
// retried from its checkpoint when the coordinator is back).
//
// Liveness: once the spec has arrived, a heartbeat thread with its own socket sends the current step
// every 5 s, so long steps, checkpoint writes and evaluations never look like a dead worker to the
// coordinator (which kills a job silent for its heartbeat timeout). While the coordinator is away
// (restarting), training goes on: batches stay buffered and are re-sent, ZeroMQ reconnects to the
// same endpoint, and the first messages that reach the restarted coordinator re-register the run
// with it. The heartbeat thread logs when the coordinator stops answering and when it is back.
//
// Not thread-safe: one thread (the training loop's) owns the main socket and calls every method.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "shared/core/credentials.h"
#include "shared/core/protocol.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace ldm::worker {

struct ReporterOptions {
  double batch_interval_s = 0.5;                         // seconds between metric batches
  double resend_after_s = 5.0;                           // seconds before an unacknowledged batch is re-sent
  std::size_t max_buffer_bytes = std::size_t{64} << 20;  // unacknowledged batches before pump() blocks
  // A coordinator listening off loopback: its CURVE server key and the client keypair it admits
  // (shared/core/credentials.h); none = plain TCP.
  ClientCredentials credentials;
};

// Makes `sock` a CURVE client with `credentials` (nothing when they hold no CURVE keys).
void apply_curve(zmq::socket_t& sock, const ClientCredentials& credentials);

class Reporter {
 public:
  Reporter(std::string endpoint, std::string run_id, std::string token, ReporterOptions options = {});
  ~Reporter();

  // hello -> spec reply body, then starts the heartbeat thread. Retries for `timeout_s`; throws
  // Error naming the endpoint.
  nlohmann::json fetch_spec(int world_size, double timeout_s = 30.0);

  static constexpr double kHeartbeatEvery = 5.0;  // seconds

  void set_attempt(int attempt) { attempt_ = attempt; }
  void set_sent_log(const std::string& path);

  void add_point(const std::string& metric, int64_t step, double value);
  // The ranks' latest system figures ({step, ranks: [...]}, see trainer.cpp), sent with every
  // heartbeat from now on (the coordinator shows them for the running stage; not stored).
  void set_system(nlohmann::json figures);
  // Sends the pending points if `force` or the batch is due; reads acks; re-sends stale batches;
  // `step` is what the next heartbeat reports. Blocks only while the unacknowledged batches exceed
  // max_buffer_bytes (the coordinator is away), until it acknowledges enough of them.
  void pump(int64_t step, bool force = false);
  // Sends everything and waits until all batches are acknowledged; false after `timeout_s`.
  bool flush(int64_t step, double timeout_s);
  // Sends an event (checkpoint, done, failed, preempted) and waits for its ack; false on timeout.
  bool send_event(protocol::Type type, nlohmann::json body, double timeout_s);

  std::size_t unacked_batches() const { return inflight_.size(); }
  std::size_t unacked_bytes() const { return inflight_bytes_; }
  double blocked_seconds() const { return blocked_s_; }  // waiting for room in the buffer, in all
  std::uint64_t heartbeats_acked() const { return heartbeats_acked_.load(); }

 private:
  struct Batch {
    uint64_t seq;
    std::string frame;
    double sent_at;
  };
  void send_frame(const std::string& frame);
  // Handles incoming replies for up to `wait_ms`; returns true if an event ack arrived.
  bool receive(int wait_ms);
  void resend_stale(double now);
  void wait_for_room();   // blocks while inflight_bytes_ > max_buffer_bytes
  void heartbeat_loop();  // the heartbeat thread: its own socket, until stopping_

  std::string endpoint_, run_, token_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zmq::socket_t> sock_;
  std::atomic<int> attempt_{1};  // read by the heartbeat thread
  uint64_t next_seq_ = 1;
  nlohmann::json pending_ = nlohmann::json::array();
  double last_send_ = 0;
  std::deque<Batch> inflight_;
  std::size_t inflight_bytes_ = 0;
  double blocked_s_ = 0;
  ReporterOptions options_;
  std::string awaited_event_;  // the event send_event waits to see acknowledged
  int sent_log_fd_ = -1;
  std::string sent_log_path_;

  std::atomic<std::int64_t> step_{0};
  std::atomic<std::uint64_t> heartbeats_acked_{0};
  std::thread heartbeat_thread_;
  std::mutex heartbeat_mu_;
  std::condition_variable heartbeat_cv_;
  bool stopping_ = false;  // guarded by heartbeat_mu_
  nlohmann::json system_;  // guarded by heartbeat_mu_
  bool beat_now_ = false;  // guarded by heartbeat_mu_: send the next heartbeat without waiting
};

}  // namespace ldm::worker
