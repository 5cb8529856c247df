// The reporter against a coordinator it cannot trust to answer: one that stalls, one that drops an
// acknowledgement, one that acknowledges out of order, and a stall long enough to fill the buffer
// (then pump() blocks until acknowledgements make room). The coordinator here is a real ZeroMQ
// ROUTER socket on loopback that speaks the protocol (shared/core/protocol.h) from a thread of
// its own; what it does with each batch is the test's policy.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "shared/core/protocol.h"
#include "worker/train/reporter.h"

namespace reporter_test {

using ldm::worker::Reporter;
using ldm::worker::ReporterOptions;
namespace protocol = ldm::protocol;

class FakeCoordinator {
 public:
  // Decides, for each metric batch received (its seq and how often it has been seen, 1 = first),
  // whether to acknowledge it now.
  using Policy = std::function<bool(std::uint64_t seq, int seen)>;

  FakeCoordinator() : ctx_(1), sock_(ctx_, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind("tcp://127.0.0.1:*");
    endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeCoordinator() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

  void set_policy(Policy p) {
    std::lock_guard<std::mutex> lock(mu_);
    policy_ = std::move(p);
  }
  // Holds back acknowledgements until release_held() sends those of seq >= min_seq, newest first.
  void hold_acks(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
  }
  void release_held(std::uint64_t min_seq = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    release_ = true;
    release_min_ = min_seq;
  }
  std::vector<std::uint64_t> received() {  // every batch as it arrived, re-sends included
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  std::map<std::int64_t, double> stored() {  // loss points of the batches acknowledged, by step
    std::lock_guard<std::mutex> lock(mu_);
    return stored_;
  }
  std::vector<std::uint64_t> ack_order() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  void ack(const std::string& peer, std::uint64_t seq) {
    const std::string frame =
        protocol::encode(protocol::make(protocol::Type::Ack, "r", "t", {{"seq", static_cast<std::int64_t>(seq)}}));
    sock_.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    sock_.send(zmq::buffer(frame), zmq::send_flags::none);
    acked_.push_back(seq);
  }

  void loop() {
    std::map<std::uint64_t, int> seen;
    std::vector<std::pair<std::string, std::uint64_t>> held;
    while (!stop_) {
      zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      std::lock_guard<std::mutex> lock(mu_);
      if (release_) {
        for (auto it = held.rbegin(); it != held.rend(); ++it)
          if (it->second >= release_min_) ack(it->first, it->second);
        held.clear();  // the others are dropped: their batches must come again
        release_ = false;
      }
      zmq::message_t peer, body;
      while (sock_.recv(peer, zmq::recv_flags::dontwait)) {
        if (!sock_.recv(body, zmq::recv_flags::dontwait)) break;
        const protocol::Message m = protocol::decode(body.data(), body.size());
        if (m.type != protocol::Type::Metrics) continue;
        const auto seq = m.body.at("seq").get<std::uint64_t>();
        received_.push_back(seq);
        const int n = ++seen[seq];
        if (policy_ && !policy_(seq, n)) continue;
        for (const auto& p : m.body.at("points"))
          if (p.at("metric") == "loss") stored_[p.at("step").get<std::int64_t>()] = p.at("value").get<double>();
        if (hold_) held.emplace_back(peer.to_string(), seq);
        else ack(peer.to_string(), seq);
      }
    }
  }

  zmq::context_t ctx_;
  zmq::socket_t sock_;
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Policy policy_;
  bool hold_ = false, release_ = false;
  std::uint64_t release_min_ = 0;
  std::vector<std::uint64_t> received_, acked_;
  std::map<std::int64_t, double> stored_;
};

// Fast timings: a batch per pump, re-sent after 0.2 s.
ReporterOptions fast(std::size_t cap = std::size_t{64} << 20) {
  ReporterOptions o;
  o.batch_interval_s = 0;
  o.resend_after_s = 0.2;
  o.max_buffer_bytes = cap;
  return o;
}

void report_steps(Reporter& r, std::int64_t from, std::int64_t to) {
  for (std::int64_t step = from; step <= to; ++step) {
    r.add_point("loss", step, 1.0 / double(step));
    r.pump(step, /*force=*/true);
  }
}

}  // namespace reporter_test
using namespace reporter_test;

TEST_CASE("reporter: a coordinator that stalls gets every batch once it answers, and pump never blocked") {
  FakeCoordinator coord;
  std::atomic<bool> answering{false};
  coord.set_policy([&](std::uint64_t, int) { return answering.load(); });
  Reporter r(coord.endpoint(), "r", "t", fast());
  const auto t0 = std::chrono::steady_clock::now();
  report_steps(r, 1, 20);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(r.unacked_batches() == 20);  // all buffered
  CHECK(r.blocked_seconds() == 0.0);
  answering = true;
  REQUIRE(r.flush(20, 10.0));
  const auto stored = coord.stored();
  REQUIRE(stored.size() == 20);
  for (std::int64_t step = 1; step <= 20; ++step) CHECK(stored.at(step) == 1.0 / double(step));
}

TEST_CASE("reporter: a dropped acknowledgement makes it re-send that batch until one arrives") {
  FakeCoordinator coord;
  coord.set_policy([](std::uint64_t seq, int seen) { return !(seq == 2 && seen == 1); });  // the first ack of 2 is lost
  Reporter r(coord.endpoint(), "r", "t", fast());
  report_steps(r, 1, 3);
  REQUIRE(r.flush(3, 10.0));
  const auto received = coord.received();
  CHECK(std::count(received.begin(), received.end(), 2u) == 2);  // sent, dropped, re-sent
  CHECK(std::count(received.begin(), received.end(), 1u) == 1);
  CHECK(std::count(received.begin(), received.end(), 3u) == 1);
  CHECK(coord.stored().size() == 3);
}

TEST_CASE("reporter: acknowledgements that arrive out of order each retire their own batch") {
  FakeCoordinator coord;
  coord.hold_acks(true);
  ReporterOptions o = fast();
  o.resend_after_s = 1.0;  // no re-send before the held acknowledgements are out
  Reporter r(coord.endpoint(), "r", "t", o);
  report_steps(r, 1, 5);
  // Once the coordinator holds all five, it acknowledges 5, 4 and 3 (in that order) and drops 1 and 2.
  for (int i = 0; i < 200 && coord.received().size() < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  coord.hold_acks(false);
  coord.release_held(/*min_seq=*/3);
  REQUIRE(r.flush(5, 10.0));
  CHECK(r.unacked_batches() == 0);
  const auto order = coord.ack_order();
  REQUIRE(order.size() >= 5);
  CHECK(std::vector<std::uint64_t>(order.begin(), order.begin() + 3) == std::vector<std::uint64_t>{5, 4, 3});
  // Only the batches whose acknowledgement never came were sent again: each ack retired its own batch.
  const auto received = coord.received();
  const std::set<std::uint64_t> again(received.begin() + 5, received.end());
  CHECK(again == std::set<std::uint64_t>{1, 2});
}

TEST_CASE("reporter: past its buffer cap pump blocks until the coordinator acknowledges, then training goes on") {
  FakeCoordinator coord;
  std::atomic<bool> answering{false};
  coord.set_policy([&](std::uint64_t, int) { return answering.load(); });
  const std::size_t cap = 4096;  // a few batches of one point each
  Reporter r(coord.endpoint(), "r", "t", fast(cap));
  std::atomic<std::int64_t> done{0};
  auto trainer = std::async(std::launch::async, [&] {
    for (std::int64_t step = 1; step <= 200; ++step) {
      r.add_point("loss", step, 1.0 / double(step));
      r.pump(step, /*force=*/true);
      done = step;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const std::int64_t stuck_at = done.load();
  CHECK(stuck_at < 200);  // blocked: the buffer is full and nobody acknowledges
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(done.load() == stuck_at);
  answering = true;  // re-sent batches now get their acknowledgements
  REQUIRE(trainer.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  trainer.get();
  CHECK(r.blocked_seconds() > 0.5);
  REQUIRE(r.flush(200, 10.0));
  CHECK(coord.stored().size() == 200);  // nothing lost while it waited
}
