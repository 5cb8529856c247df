// A coordinator listening off loopback: private credentials written once, HTTP requests without or
// with a wrong bearer token refused, and a ZeroMQ endpoint that serves only the admitted CURVE key.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <zmq.h>

#include <zmq.hpp>

#include "coordinator/auth.h"
#include "coordinator/client.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/http_server.h"
#include "coordinator/zmq_endpoint.h"
#include "shared/core/credentials.h"
#include "shared/core/protocol.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;

namespace {

const char* kAnyAddress = "0.0.0.0";  // not loopback: authentication on

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

ServiceOptions off_loopback(const TempDir& dir) {
  ServiceOptions o;
  o.state_dir = dir.path() + "/state";
  o.listen = kAnyAddress;
  o.http_port = 0;
  o.zmq_port = 0;
  o.worker = "/bin/true";
  return o;
}

// A DEALER with the given CURVE keys ({} = plain TCP) that sends one hello and waits for any reply.
bool answered(const std::string& endpoint, const ClientCredentials* keys) {
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  if (keys) {
    sock.set(zmq::sockopt::curve_serverkey, keys->server_public);
    sock.set(zmq::sockopt::curve_publickey, keys->client_public);
    sock.set(zmq::sockopt::curve_secretkey, keys->client_secret);
  }
  sock.connect(endpoint);
  const std::string hello =
      protocol::encode(protocol::make(protocol::Type::Hello, "nobody.train.a1", "x", {{"rank", 0}, {"world_size", 1}}));
  sock.send(zmq::buffer(hello), zmq::send_flags::dontwait);
  zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(1500)) > 0;
}

}  // namespace

TEST_CASE("loopback needs no credentials; another address writes private ones once and keeps them") {
  TempDir dir;
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.0.1.1"));
  CHECK(is_loopback_address("localhost"));
  CHECK_FALSE(is_loopback_address("0.0.0.0"));
  CHECK_FALSE(is_loopback_address("10.1.2.3"));
  CHECK_FALSE(load_server_auth("127.0.0.1", dir.path(), "").enabled);

  const ServerAuth first = load_server_auth(kAnyAddress, dir.path(), "");
  REQUIRE(first.enabled);
  CHECK(first.token.size() == 64);
  CHECK(mode_of(dir.path() + "/auth/server.json") == 0600);
  CHECK(mode_of(dir.path() + "/auth/client.json") == 0600);
  const ClientCredentials client = read_credentials(first.client_file);
  CHECK(client.token == first.token);
  CHECK(client.server_public == first.server_public);
  CHECK(client.client_public == first.client_public);
  CHECK(client.client_secret.size() == 40);
  const ServerAuth again = load_server_auth(kAnyAddress, dir.path(), "");
  CHECK(again.token == first.token);
  CHECK(again.server_secret == first.server_secret);

  // A token given by file replaces the generated one, in both files.
  write_file_atomic(dir.path() + "/my-token", "s3cret-token-from-a-file\n");
  ::chmod((dir.path() + "/my-token").c_str(), 0600);
  const ServerAuth given = load_server_auth(kAnyAddress, dir.path(), dir.path() + "/my-token");
  CHECK(given.token == "s3cret-token-from-a-file");
  CHECK(read_credentials(given.client_file).token == "s3cret-token-from-a-file");

  // Secrets others can read are refused, naming the file and the fix.
  ::chmod(first.client_file.c_str(), 0644);
  CHECK_THROWS_WITH_AS(load_server_auth(kAnyAddress, dir.path(), ""), doctest::Contains("chmod 600"), Error);
}

TEST_CASE("off loopback without a usable secret the coordinator refuses to start") {
  TempDir dir;
  ServiceOptions o = off_loopback(dir);
  write_file_atomic(dir.path() + "/empty-token", "\n");
  ::chmod((dir.path() + "/empty-token").c_str(), 0600);
  o.token_file = dir.path() + "/empty-token";
  CHECK_THROWS_WITH_AS(CoordinatorService{o}, doctest::Contains("holds no token"), Error);
  o.token_file = dir.path() + "/no-such-file";
  CHECK_THROWS_WITH_AS(CoordinatorService{o}, doctest::Contains("no-such-file"), Error);
}

TEST_CASE("off loopback the HTTP API answers only requests with the bearer token") {
  TempDir dir;
  CoordinatorService service(off_loopback(dir));
  REQUIRE(service.auth().enabled);
  CoordinatorClient without(service.http_url(), "test");
  CHECK_THROWS_WITH_AS(without.get("/api/v1/health"), doctest::Contains("carried no bearer token"), Error);
  CoordinatorClient wrong(service.http_url(), "test");
  wrong.set_bearer_token(std::string(64, 'a'));
  CHECK_THROWS_WITH_AS(wrong.get("/api/v1/health"), doctest::Contains("a wrong bearer token"), Error);
  CoordinatorClient right(service.http_url(), "test");
  right.set_bearer_token(read_credentials(service.auth().client_file).token);
  CHECK(right.get("/api/v1/health").at("ok") == true);
}

TEST_CASE("off loopback the worker endpoint serves the admitted CURVE key only") {
  TempDir dir;
  CoordinatorService service(off_loopback(dir));
  const ClientCredentials keys = read_credentials(service.auth().client_file);
  CHECK(answered(service.zmq_endpoint(), &keys));  // the run is unknown: an error reply, but served
  ClientCredentials stranger = keys;               // the right server key, but another client keypair
  char pub[41] = {0}, sec[41] = {0};
  REQUIRE(zmq_curve_keypair(pub, sec) == 0);
  stranger.client_public = pub;
  stranger.client_secret = sec;
  CHECK_FALSE(answered(service.zmq_endpoint(), &stranger));
  CHECK_FALSE(answered(service.zmq_endpoint(), nullptr));  // no CURVE at all
  CHECK(answered(service.zmq_endpoint(), &keys));          // the refusals did not stop the endpoint
}

TEST_CASE("on loopback nothing changes: no credentials are needed or written") {
  TempDir dir;
  ServiceOptions o = off_loopback(dir);
  o.listen = "127.0.0.1";
  CoordinatorService service(o);
  CHECK_FALSE(service.auth().enabled);
  CHECK_FALSE(path_exists(o.state_dir + "/auth"));
  CHECK(answered(service.zmq_endpoint(), nullptr));
  CHECK(CoordinatorClient(service.http_url(), "test").get("/api/v1/health").at("ok") == true);
}

TEST_CASE("the bearer check admits exactly 'Bearer <token>'") {
  CHECK(bearer_refusal("", "") == "");  // no token: every request
  CHECK(bearer_refusal("Bearer x", "") == "");
  CHECK(bearer_refusal("Bearer s3cret", "s3cret") == "");
  CHECK(bearer_refusal("", "s3cret") == "no bearer token");
  CHECK(bearer_refusal("Basic czNjcmV0", "s3cret") == "no bearer token");
  CHECK(bearer_refusal("bearer s3cret", "s3cret") == "no bearer token");
  CHECK(bearer_refusal("Bearer s3cre", "s3cret") == "a wrong bearer token");
  CHECK(bearer_refusal("Bearer s3cret ", "s3cret") == "a wrong bearer token");
}

TEST_CASE("ZAP admits only CURVE with the admitted client key, and answers with the request id") {
  const std::string key(32, 'K');
  const std::vector<std::string> curve = {"1.0", "id7", "ldm", "10.0.0.2", "", "CURVE", key};
  ZapDecision d = decide_zap(curve, key);
  CHECK(d.answer);
  CHECK(d.admitted);
  CHECK(d.request_id == "id7");
  std::vector<std::string> other = curve;
  other[6] = std::string(32, 'L');
  d = decide_zap(other, key);
  CHECK(d.answer);
  CHECK_FALSE(d.admitted);
  CHECK(d.reason.find("CURVE key is not the one") != std::string::npos);
  other = curve;
  other[5] = "NULL";
  other.pop_back();
  d = decide_zap(other, key);
  CHECK_FALSE(d.admitted);
  CHECK(d.reason == "it does not use CURVE (NULL)");
  CHECK_FALSE(decide_zap({"1.0", "id"}, key).answer);                             // too few frames: no answer at all
  CHECK_FALSE(decide_zap({"1.0", "id", "ldm", "a", "", "CURVE"}, key).admitted);  // no credential
}
