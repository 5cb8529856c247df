// A whole coordinator over real sockets: a ZeroMQ DEALER plays the worker's rank 0 and HTTP
// requests go through the Beast server. A shell script stands in for mpirun.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.hpp>

#include "coordinator/client.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/discovery.h"
#include "shared/core/protocol.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;
using nlohmann::json;
using protocol::Message;
using protocol::Type;

namespace {

ServiceOptions options_in(const TempDir& dir) {
  ServiceOptions o;
  o.state_dir = dir.path() + "/state";
  o.http_port = 0;
  o.zmq_port = 0;
  // The fake mpirun hands its token to the test, then idles like a long job.
  o.mpirun = write_script(dir.path() + "/mpirun", "printf %s \"$LDM_RUN_TOKEN\" > token.txt\nexec sleep 60\n");
  o.worker = "/bin/true";
  return o;
}

// Sends raw bytes to 127.0.0.1:port and returns everything the server answers before closing.
std::string raw_http(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

class Dealer {
 public:
  explicit Dealer(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 10000);
    socket_.connect(endpoint);
  }
  Message request(const std::string& frame) {
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
    return receive();
  }
  Message request_frames(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i)
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    return receive();
  }

 private:
  Message receive() {
    zmq::message_t reply;
    REQUIRE(socket_.recv(reply));
    return protocol::decode(reply.to_string());
  }
  zmq::context_t context_;
  zmq::socket_t socket_;
};

}  // namespace

TEST_CASE(
    "over real sockets a worker gets its spec and acks, and HTTP answers health and "
    "rejects malformed requests") {
  TempDir dir;
  CoordinatorService service(options_in(dir));
  const auto discovered = read_discovery_file(service.state_dir());
  REQUIRE(discovered);
  CHECK(discovered->http == service.http_url());
  CHECK(discovered->zmq == service.zmq_endpoint());
  CHECK(discovered->pid == ::getpid());

  Submission submission;
  submission.spec = small_spec("sock", 20, 1, 1);  // one attempt: the killed job fails the experiment
  const std::string run_id = service.coordinator().submit(submission).runs.at(0);
  const std::string token_file = service.state_dir() + "/runs/sock/train/token.txt";
  REQUIRE(wait_until([&] { return path_exists(token_file) && !read_file(token_file).empty(); }));
  const std::string token = read_file(token_file);

  Dealer worker(service.zmq_endpoint());
  const Message spec = worker.request(
      protocol::encode(protocol::make(Type::Hello, run_id, token, {{"rank", 0}, {"world_size", 1}, {"host", "test"}})));
  REQUIRE(spec.type == Type::Spec);
  CHECK(spec.body.at("spec").at("name") == "sock");
  const Message ack = worker.request(protocol::encode(
      protocol::make(Type::Metrics, run_id, token,
                     {{"attempt", 1}, {"seq", 1}, {"points", {{{"metric", "loss"}, {"step", 1}, {"value", 0.5}}}}})));
  REQUIRE(ack.type == Type::Ack);
  CHECK(ack.body.at("seq") == 1);
  CHECK(worker.request("garbage").type == Type::Error);
  const Message two = worker.request_frames({"a", "b"});
  REQUIRE(two.type == Type::Error);
  CHECK(two.body.at("message") == "expected exactly one frame per message, got 2");
  CHECK(worker.request(protocol::encode(protocol::make(Type::Heartbeat, run_id, "wrong", {{"step", 1}})))
            .body.at("message") == "unauthenticated");

  CoordinatorClient client(service.http_url(), "test");
  const json health = client.get("/api/v1/health");
  CHECK(health.at("ok") == true);
  CHECK(health.at("zmq") == service.zmq_endpoint());
  const int port = port_of(service.http_url());
  const std::string bad_json =
      raw_http(port,
               "POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 5\r\nConnection: close\r\n\r\n{nope");
  CHECK(bad_json.find("HTTP/1.1 400") == 0);
  CHECK(bad_json.find("\"error\"") != std::string::npos);
  CHECK(raw_http(port, "NOT HTTP AT ALL\r\n\r\n").find("HTTP/1.1 400") == 0);
  CHECK_THROWS_WITH_AS(client.post("/api/v1/experiments", json::array()), doctest::Contains("JSON object"), Error);
  CHECK(client.get("/api/v1/experiments/sock").at("runs")[0].at("step") == 1);

  // The job dies: the ZeroMQ thread's tick reaps it and fails the run with the signal.
  const auto pid = service.coordinator().experiment("sock")->runs.at(0).pid;
  REQUIRE(pid > 0);
  ::kill(static_cast<pid_t>(pid), SIGTERM);
  REQUIRE(wait_until([&] { return service.coordinator().experiment("sock")->experiment.state == RunState::Failed; }));
  CHECK(service.coordinator().experiment("sock")->runs.at(0).error.find("mpirun was killed by signal 15 (SIGTERM)") ==
        0);
}

TEST_CASE("a second coordinator on a state dir in use says which coordinator holds it") {
  TempDir dir;
  CoordinatorService first(options_in(dir));
  const std::string expected = "is in use by a running coordinator (pid " + std::to_string(::getpid());
  CHECK_THROWS_WITH_AS(CoordinatorService(options_in(dir)), doctest::Contains(expected.c_str()), Error);
}

TEST_CASE("the discovery file is removed when the coordinator stops") {
  TempDir dir;
  std::string state;
  {
    CoordinatorService service(options_in(dir));
    state = service.state_dir();
    CHECK(path_exists(discovery_file_path(state)));
  }
  CHECK_FALSE(path_exists(discovery_file_path(state)));
}

TEST_CASE("an unreachable coordinator is an error naming its URL and where it came from") {
  CoordinatorClient client("http://127.0.0.1:1", "/tmp/x/coord.json");
  CHECK_THROWS_WITH_AS(client.get("/api/v1/health"),
                       doctest::Contains("cannot reach the coordinator at http://127.0.0.1:1 (from "
                                         "/tmp/x/coord.json)"),
                       Error);
  CHECK_THROWS_AS(CoordinatorClient("localhost:80", "--coord"), Error);
}
