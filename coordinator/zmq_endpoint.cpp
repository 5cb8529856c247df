#include "coordinator/zmq_endpoint.h"

#include <cstring>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/protocol.h"

namespace ldm::coord {
namespace {

// Frames above this are dropped by libzmq (and the peer disconnected) before we buffer them;
// frames between kMaxMessageBytes and this still get a proper "too large" error reply.
constexpr std::int64_t kHardFrameLimit = 4 * static_cast<std::int64_t>(protocol::kMaxMessageBytes);
constexpr int kMaxMessagesPerTick = 256;

}  // namespace

ZapDecision decide_zap(const std::vector<std::string>& frames, const std::string& client_public_bin) {
  ZapDecision d;
  if (frames.size() < 6) return d;
  d.answer = true;
  d.request_id = frames[1];
  d.address = frames[3];
  const std::string& mechanism = frames[5];
  d.admitted = mechanism == "CURVE" && frames.size() >= 7 && frames[6] == client_public_bin;
  if (!d.admitted)
    d.reason = mechanism == "CURVE" ? "its CURVE key is not the one in <state>/auth/client.json"
                                    : "it does not use CURVE (" + mechanism + ")";
  return d;
}

ZmqEndpoint::ZmqEndpoint(const std::string& listen, int port, const Curve* curve)
    : context_(1), socket_(context_, zmq::socket_type::router) {
  const std::string host = listen == "localhost" ? "127.0.0.1" : listen;
  const std::string requested = "tcp://" + host + ":" + (port == 0 ? std::string("*") : std::to_string(port));
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, kHardFrameLimit);
    if (curve) {
      // The ZAP handler must listen before the first handshake, hence before bind.
      client_public_bin_.assign(32, '\0');
      if (!zmq_z85_decode(reinterpret_cast<std::uint8_t*>(client_public_bin_.data()), curve->client_public.c_str()))
        throw Error("the admitted CURVE client key is not 40 characters of Z85");
      zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
      zap_->set(zmq::sockopt::linger, 0);
      zap_->bind("inproc://zeromq.zap.01");
      const int events =
          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
      if (zmq_socket_monitor(socket_.handle(), "inproc://ldm-endpoint-monitor", events) != 0) throw zmq::error_t();
      monitor_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
      monitor_->set(zmq::sockopt::linger, 0);
      monitor_->connect("inproc://ldm-endpoint-monitor");
      socket_.set(zmq::sockopt::curve_server, true);
      socket_.set(zmq::sockopt::curve_secretkey, curve->server_secret);
      socket_.set(zmq::sockopt::zap_domain, std::string("ldm"));
      auth_thread_ = std::thread([this] { auth_loop(); });
    }
    socket_.bind(requested);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    const std::string any = "tcp://0.0.0.0:";
    if (endpoint_.rfind(any, 0) == 0) endpoint_ = "tcp://127.0.0.1:" + endpoint_.substr(any.size());
  } catch (const zmq::error_t& ex) {
    stopping_ = true;
    if (auth_thread_.joinable()) auth_thread_.join();
    throw Error("cannot bind the worker endpoint " + requested + ": " + ex.what());
  } catch (...) {
    stopping_ = true;
    if (auth_thread_.joinable()) auth_thread_.join();
    throw;
  }
}

ZmqEndpoint::~ZmqEndpoint() {
  stop();
  if (auth_thread_.joinable()) auth_thread_.join();
}

void ZmqEndpoint::auth_loop() {
  while (!stopping_) {
    zmq::pollitem_t items[] = {{zap_->handle(), 0, ZMQ_POLLIN, 0}, {monitor_->handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
      if (items[0].revents & ZMQ_POLLIN) {
        std::vector<std::string> req;
        for (;;) {
          zmq::message_t frame;
          if (!zap_->recv(frame)) break;
          req.push_back(frame.to_string());
          if (!frame.more()) break;
        }
        const ZapDecision d = decide_zap(req, client_public_bin_);
        if (!d.answer) continue;
        if (!d.admitted) log::warn("worker endpoint: refused a ZeroMQ client from " + d.address + ": " + d.reason);
        const std::string status = d.admitted ? "200" : "400", text = d.admitted ? "OK" : "unknown client key";
        zap_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
        zap_->send(zmq::buffer(d.request_id), zmq::send_flags::sndmore);
        zap_->send(zmq::buffer(status), zmq::send_flags::sndmore);
        zap_->send(zmq::buffer(text), zmq::send_flags::sndmore);
        zap_->send(zmq::str_buffer(""), zmq::send_flags::sndmore);
        zap_->send(zmq::str_buffer(""), zmq::send_flags::none);
      }
      if (items[1].revents & ZMQ_POLLIN) {
        zmq::message_t event, address;
        if (!monitor_->recv(event) || !event.more() || !monitor_->recv(address)) continue;
        std::uint16_t id = 0;
        if (event.size() >= 2) std::memcpy(&id, event.data(), 2);
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) continue;  // already logged by the ZAP handler
        log::warn("worker endpoint: refused a ZeroMQ client (" + address.to_string() +
                  "): its CURVE handshake failed (no CURVE, or not this coordinator's server key)");
      }
    } catch (const std::exception& ex) {
      if (!stopping_) log::error(std::string("worker endpoint authentication: ") + ex.what());
    }
  }
}

void ZmqEndpoint::start(FrameHandler handler, Tick tick) {
  handler_ = std::move(handler);
  tick_ = std::move(tick);
  thread_ = std::thread([this] { loop(); });
}

void ZmqEndpoint::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZmqEndpoint::loop() {
  while (!stopping_) {
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, kPollInterval);
      if (item.revents & ZMQ_POLLIN)
        for (int n = 0; n < kMaxMessagesPerTick && serve_one(); ++n) {
        }
      tick_();
    } catch (const std::exception& ex) {
      // Never let one bad message or tick end the loop: log it and keep serving.
      log::error(std::string("worker endpoint: ") + ex.what());
    }
  }
}

bool ZmqEndpoint::serve_one() {
  std::vector<zmq::message_t> frames;
  for (;;) {
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
    const bool more = frame.more();
    frames.push_back(std::move(frame));
    if (!more) break;
  }
  if (frames.empty()) return false;
  std::string reply;
  if (frames.size() == 2) {
    reply = handler_(frames[1].to_string());
  } else {
    const std::string problem = "expected exactly one frame per message, got " + std::to_string(frames.size() - 1);
    log::warn("worker endpoint: rejected a message: " + problem);
    reply = protocol::encode(protocol::make(protocol::Type::Error, "", "", {{"message", problem}}));
  }
  // ROUTER drops replies to peers that are gone or over their high-water mark; never blocks.
  socket_.send(zmq::buffer(frames[0].data(), frames[0].size()), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
  return true;
}

}  // namespace ldm::coord
