#include "worker/train/reporter.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <zmq.hpp>

#include <thread>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/progress.h"
#include "shared/core/safe_file.h"

namespace ldm::worker {
namespace {
constexpr double kAwayAfter = 20.0;  // seconds without a heartbeat ack before the worker says so
constexpr std::size_t kMaxPointsPerBatch = 2000;
}  // namespace

Reporter::Reporter(std::string endpoint, std::string run_id, std::string token, ReporterOptions options)
    : endpoint_(std::move(endpoint)), run_(std::move(run_id)), token_(std::move(token)), options_(options) {
  ctx_ = std::make_unique<zmq::context_t>(1);
  sock_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::dealer);
  sock_->set(zmq::sockopt::linger, 2000);  // let the last messages out at exit
  sock_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::kMaxMessageBytes));
  apply_curve(*sock_, options_.credentials);
  sock_->connect(endpoint_);
}

void apply_curve(zmq::socket_t& sock, const ClientCredentials& c) {
  if (!c.has_curve()) return;
  sock.set(zmq::sockopt::curve_serverkey, c.server_public);
  sock.set(zmq::sockopt::curve_publickey, c.client_public);
  sock.set(zmq::sockopt::curve_secretkey, c.client_secret);
}

Reporter::~Reporter() {
  if (heartbeat_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(heartbeat_mu_);
      stopping_ = true;
    }
    heartbeat_cv_.notify_all();
    heartbeat_thread_.join();
  }
  if (sent_log_fd_ >= 0) ::close(sent_log_fd_);
}

void Reporter::heartbeat_loop() {
  // Signals (SIGUSR1: preemption) belong to the training thread; here they would only interrupt
  // ZeroMQ calls.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  try {
    zmq::socket_t sock(*ctx_, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);  // a heartbeat left unsent at exit does not matter
    sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::kMaxMessageBytes));
    apply_curve(sock, options_.credentials);
    sock.connect(endpoint_);
    double last_ack = log::now_seconds();
    bool away = false;
    std::unique_lock<std::mutex> lock(heartbeat_mu_);
    while (!stopping_) {
      nlohmann::json body = {{"step", step_.load()}, {"attempt", attempt_.load()}};
      if (!system_.is_null()) body["system"] = system_;
      lock.unlock();
      const std::string frame = protocol::encode(protocol::make(protocol::Type::Heartbeat, run_, token_, body));
      sock.send(zmq::buffer(frame), zmq::send_flags::dontwait);
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      zmq::message_t msg;
      while (zmq::poll(&item, 1, std::chrono::milliseconds(0)) > 0 && sock.recv(msg, zmq::recv_flags::dontwait)) {
        protocol::Message reply;
        try {
          reply = protocol::decode(msg.data(), msg.size());
        } catch (const ProtocolError&) {
          continue;
        }
        if (reply.type == protocol::Type::Error) {
          log::warn("the coordinator refused a heartbeat of run '" + run_ +
                    "': " + reply.body.value("message", std::string("(no message)")));
          continue;
        }
        last_ack = log::now_seconds();
        heartbeats_acked_.fetch_add(1);
        if (away) log::info("the coordinator at " + endpoint_ + " answers again; run '" + run_ + "' is registered");
        away = false;
      }
      if (!away && log::now_seconds() - last_ack > kAwayAfter) {
        away = true;
        log::warn("no answer from the coordinator at " + endpoint_ + " for " + std::to_string(int(kAwayAfter)) +
                  " s; training goes on and metric batches stay buffered until it is back");
      }
      lock.lock();
      heartbeat_cv_.wait_for(lock, std::chrono::duration<double>(kHeartbeatEvery),
                             [this] { return stopping_ || beat_now_; });
      beat_now_ = false;
    }
  } catch (const std::exception& e) {
    log::error(std::string("the heartbeat thread stopped: ") + e.what());
  }
}

void Reporter::set_sent_log(const std::string& path) {
  sent_log_path_ = path;
  sent_log_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (sent_log_fd_ < 0) throw_errno("cannot open", path);
}

void Reporter::send_frame(const std::string& frame) { sock_->send(zmq::buffer(frame), zmq::send_flags::dontwait); }

nlohmann::json Reporter::fetch_spec(int world_size, double timeout_s) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  auto hello = protocol::encode(protocol::make(
      protocol::Type::Hello, run_, token_,
      {{"rank", 0}, {"world_size", world_size}, {"host", host}, {"pid", static_cast<int64_t>(::getpid())}}));
  const double deadline = log::now_seconds() + timeout_s;
  while (log::now_seconds() < deadline) {
    send_frame(hello);
    zmq::pollitem_t item{sock_->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) > 0) {
      zmq::message_t msg;
      if (!sock_->recv(msg, zmq::recv_flags::dontwait)) continue;
      auto reply = protocol::decode(msg.data(), msg.size());
      if (reply.type == protocol::Type::Error)
        throw Error("coordinator at " + endpoint_ + " refused run '" + run_ +
                    "': " + reply.body.value("message", std::string("(no message)")));
      if (reply.type == protocol::Type::Spec) {
        heartbeat_thread_ = std::thread([this] { heartbeat_loop(); });
        return reply.body;
      }
    }
  }
  throw Error("coordinator at " + endpoint_ + " did not answer the hello of run '" + run_ + "' within " +
              std::to_string(static_cast<int>(timeout_s)) + " s" +
              (options_.credentials.has_curve()
                   ? " (a coordinator refuses CURVE keys that are not those of its <state>/auth/client.json without "
                     "answering, and logs it: check --token-file)"
                   : " (a coordinator listening off loopback answers only workers with its CURVE keys: "
                     "--token-file <copy of its state/auth/client.json>)"));
}

void Reporter::set_system(nlohmann::json figures) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(heartbeat_mu_);
    first = system_.is_null();
    system_ = std::move(figures);
    beat_now_ = beat_now_ || first;
  }
  if (first) heartbeat_cv_.notify_all();  // the first figures go out at once, not in up to 5 s
}

void Reporter::add_point(const std::string& metric, int64_t step, double value) {
  pending_.push_back({{"metric", metric}, {"step", step}, {"value", value}, {"time", log::now_seconds()}});
}

bool Reporter::receive(int wait_ms) {
  bool event_acked = false;
  zmq::pollitem_t item{sock_->handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms)) <= 0) return false;
  zmq::message_t msg;
  while (sock_->recv(msg, zmq::recv_flags::dontwait)) {
    protocol::Message reply;
    try {
      reply = protocol::decode(msg.data(), msg.size());
    } catch (const ProtocolError& e) {
      log::warn(std::string("ignoring a malformed reply from the coordinator: ") + e.what());
      continue;
    }
    if (reply.type == protocol::Type::Error)
      throw Error("coordinator at " + endpoint_ + " rejected a message of run '" + run_ +
                  "': " + reply.body.value("message", std::string("(no message)")));
    if (reply.type != protocol::Type::Ack) continue;
    const auto seq = reply.body.at("seq").get<uint64_t>();
    if (seq == 0) {  // events are acked with seq 0 (heartbeats have a socket of their own)
      // A late ack of an earlier, re-sent event (it names its event) is not the awaited one's.
      const std::string event = reply.body.value("event", std::string());
      if (event.empty() || awaited_event_.empty() || event == awaited_event_) event_acked = true;
      continue;
    }
    for (auto it = inflight_.begin(); it != inflight_.end(); ++it)
      if (it->seq == seq) {
        inflight_bytes_ -= it->frame.size();
        inflight_.erase(it);
        break;
      }
  }
  return event_acked;
}

void Reporter::pump(int64_t step, bool force) {
  step_.store(step);
  const double now = log::now_seconds();
  if (!pending_.empty() &&
      (force || now - last_send_ >= options_.batch_interval_s || pending_.size() >= kMaxPointsPerBatch)) {
    nlohmann::json points = nlohmann::json::array();
    for (auto& p : pending_) {
      p["attempt"] = attempt_.load();
      points.push_back(p);
    }
    Batch b{next_seq_++, "", now};
    b.frame = protocol::encode(protocol::make(protocol::Type::Metrics, run_, token_,
                                              {{"attempt", attempt_.load()}, {"seq", b.seq}, {"points", points}}));
    if (sent_log_fd_ >= 0) {
      std::string lines;
      for (const auto& p : points) lines += p.dump() + "\n";
      write_all(sent_log_fd_, lines.data(), lines.size(), sent_log_path_);
    }
    send_frame(b.frame);
    inflight_bytes_ += b.frame.size();
    inflight_.push_back(std::move(b));
    pending_ = nlohmann::json::array();
    last_send_ = now;
  }
  resend_stale(now);
  receive(0);
  if (inflight_bytes_ > options_.max_buffer_bytes) wait_for_room();
}

void Reporter::resend_stale(double now) {
  for (auto& b : inflight_)
    if (now - b.sent_at > options_.resend_after_s) {
      send_frame(b.frame);  // the coordinator treats a repeated seq idempotently
      b.sent_at = now;
    }
}

void Reporter::wait_for_room() {
  const double start = log::now_seconds();
  const auto mib = [](std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; };
  log::warn("metric buffer full: " + std::to_string(inflight_.size()) + " batch(es), " + mib(inflight_bytes_) +
            ", not acknowledged by the coordinator at " + endpoint_ + " (cap " + mib(options_.max_buffer_bytes) +
            "); training waits until it acknowledges them");
  note_progress("waiting for the coordinator to acknowledge buffered metric batches");
  while (inflight_bytes_ > options_.max_buffer_bytes) {
    receive(100);
    resend_stale(log::now_seconds());
  }
  const double waited = log::now_seconds() - start;
  blocked_s_ += waited;
  log::info("the coordinator acknowledged the buffered metric batches; training goes on after waiting " +
            std::to_string(static_cast<int>(waited)) + " s");
}

bool Reporter::flush(int64_t step, double timeout_s) {
  pump(step, /*force=*/true);
  const double start = log::now_seconds(), deadline = start + timeout_s;
  bool said = false;
  while (!inflight_.empty() && log::now_seconds() < deadline) {
    receive(100);
    pump(step);
    if (!said && log::now_seconds() - start > 10) {
      said = true;
      log::warn("waiting up to " + std::to_string(static_cast<int>(timeout_s)) + " s for the coordinator at " +
                endpoint_ + " to acknowledge " + std::to_string(inflight_.size()) + " metric batch(es)");
    }
  }
  return inflight_.empty();
}

bool Reporter::send_event(protocol::Type type, nlohmann::json body, double timeout_s) {
  awaited_event_ = protocol::to_string(type);
  const std::string frame = protocol::encode(protocol::make(type, run_, token_, std::move(body)));
  send_frame(frame);
  const double deadline = log::now_seconds() + timeout_s;
  double last = log::now_seconds();
  while (log::now_seconds() < deadline) {
    if (receive(100)) return true;
    if (log::now_seconds() - last > options_.resend_after_s) {
      send_frame(frame);
      last = log::now_seconds();
    }
  }
  return false;
}

}  // namespace ldm::worker
