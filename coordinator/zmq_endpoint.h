// The coordinator's ZeroMQ ROUTER socket and the loop that serves it (DESIGN.md "Wire protocol").
// Each worker rank 0 connects a DEALER and sends one-frame messages; the ROUTER sees
// [identity, payload], hands the payload to the FrameHandler and sends [identity, reply] back.
// A message with other than one payload frame is answered with a protocol error. Between
// messages, and at least every kPollInterval, the loop calls Tick (the scheduler's reaping and
// launching), so both run on the socket's thread.
//
// Authentication (a coordinator listening off loopback, coordinator/auth.h): the socket is a CURVE
// server, and a ZAP handler admits only the client key of <state>/auth/client.json. A thread of its
// own answers ZAP requests and reads the socket's handshake-failure events, logging each refused
// peer (wrong client key, wrong server key, no CURVE at all); such peers never reach the handler.
//
// Threads: the socket is created and bound by the constructor, then used only by the loop thread
// that start() runs (ZeroMQ sockets belong to one thread at a time). libzmq opens its sockets
// close-on-exec, so forked jobs inherit none of them.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace ldm::coord {

// The ZAP handler's answer to one request (ZeroMQ RFC 27 frames: version, request id, domain,
// address, identity, mechanism, credentials...). A request of fewer than 6 frames gets no answer
// (answer = false); otherwise `admitted` only for mechanism CURVE with `client_public_bin` (the 32
// raw bytes of the one admitted key) as its credential, and `reason` says why not.
struct ZapDecision {
  bool answer = false, admitted = false;
  std::string request_id, address, reason;
};
ZapDecision decide_zap(const std::vector<std::string>& frames, const std::string& client_public_bin);

class ZmqEndpoint {
 public:
  using FrameHandler = std::function<std::string(const std::string& payload)>;
  using Tick = std::function<void()>;
  static constexpr std::chrono::milliseconds kPollInterval{50};

  struct Curve {
    std::string server_secret;  // Z85
    std::string client_public;  // Z85: the one key admitted
  };

  // Binds tcp://<listen>:<port> (an IPv4 address or "localhost"; 0 = an ephemeral port), as a
  // CURVE server when `curve` is given. Throws Error naming the endpoint.
  ZmqEndpoint(const std::string& listen, int port, const Curve* curve = nullptr);
  ~ZmqEndpoint();  // stop()
  ZmqEndpoint(const ZmqEndpoint&) = delete;
  ZmqEndpoint& operator=(const ZmqEndpoint&) = delete;

  // The bound endpoint with its real port, as this host connects to it, e.g. "tcp://127.0.0.1:45123"
  // (0.0.0.0 reads as 127.0.0.1).
  const std::string& endpoint() const { return endpoint_; }

  // Starts the loop thread. `handler` and `tick` must outlive stop().
  void start(FrameHandler handler, Tick tick);
  void stop();  // ends the loop and joins its thread; idempotent

 private:
  void loop();
  bool serve_one();  // receives and answers one message; false if none was waiting
  void auth_loop();  // ZAP requests and handshake failures, until stopping_

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  FrameHandler handler_;
  Tick tick_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::unique_ptr<zmq::socket_t> zap_, monitor_;  // with CURVE: served by auth_thread_
  std::string client_public_bin_;                 // the admitted key, 32 bytes
  std::thread auth_thread_;
};

}  // namespace ldm::coord
