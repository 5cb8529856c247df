#include "coordinator/zmq_endpoint.h"

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

ZmqEndpoint::ZmqEndpoint(int port) : context_(1), socket_(context_, zmq::socket_type::router) {
  const std::string requested = "tcp://127.0.0.1:" + (port == 0 ? std::string("*") : std::to_string(port));
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, kHardFrameLimit);
    socket_.bind(requested);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& ex) {
    throw Error("cannot bind the worker endpoint " + requested + ": " + ex.what());
  }
}

ZmqEndpoint::~ZmqEndpoint() { stop(); }

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
