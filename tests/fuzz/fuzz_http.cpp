// The HTTP API as a client reaches it: raw request bytes -> Beast's parser with the server's
// limits -> the bearer check (token "fuzz-token-0123456789" for requests with an Authorization
// header, none for those without) -> handle_api_request (method, path,
// path parameters, query, JSON body) on a coordinator with a real store and a fake executor.
// Findings besides crashes: a status 500 (an input reached an unexpected exception), a response
// body that is not JSON, and the bearer check admitting a wrong token or refusing the right one.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "coordinator/coordinator.h"
#include "coordinator/http_api.h"
#include "coordinator/http_server.h"
#include "shared/core/log.h"
#include "shared/store/experiment_store.h"
#include "tests/coordinator/test_support.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;
using namespace ldm::coord;
namespace http = boost::beast::http;

namespace {

const std::string kToken = "fuzz-token-0123456789";

struct World {
  fuzz::ProcessDir dir{"ldm-fuzz-http"};
  std::unique_ptr<ExperimentStore> store = ExperimentStore::open(dir.path() + "/db");
  coord::testing::FakeExecutor executor;
  Coordinator coord{*store, executor, {dir.path() + "/runs", "tcp://127.0.0.1:5999", {}}};
  World() { log::set_level(log::Level::Error); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A fresh store now and then, so listing experiments does not slow down with the run's length.
  // (Initialised with its first World: RocksDB's statics, made by that World, then outlive it.)
  static std::unique_ptr<World> world = std::make_unique<World>();
  static int inputs = 0;
  if (++inputs % 5000 == 0) world.reset(), world = std::make_unique<World>();

  http::request_parser<http::string_body> parser;
  parser.body_limit(HttpServer::kMaxBodyBytes);
  parser.eager(true);
  // As http::read feeds it: put() until it consumes nothing more, then end of stream (which Beast
  // allows only after some bytes: an empty connection is no request).
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0) break;
    used += n;
  }
  if ((!ec || ec == http::error::need_more) && !parser.is_done() && parser.got_some()) {
    ec = {};
    parser.put_eof(ec);
  }
  if (ec || !parser.is_done()) return 0;  // the server answers 400 or 413 and closes
  const http::request<http::string_body>& req = parser.get();
  const std::string authorization(req[http::field::authorization]);
  // Requests with an Authorization header meet a server that requires the token; those without, one
  // that does not (so mutations reach the routes either way).
  const bool authenticating = req.count(http::field::authorization) > 0;
  const std::string refusal = bearer_refusal(authorization, authenticating ? kToken : "");
  if (authenticating && refusal.empty() != (authorization == "Bearer " + kToken))
    fuzz::finding("the bearer check " + std::string(refusal.empty() ? "admitted" : "refused") + " '" + authorization +
                  "'");
  if (!refusal.empty()) return 0;
  const HttpRequest request{std::string(req.method_string()), std::string(req.target()), req.body()};
  const HttpResponse response = handle_api_request(world->coord, request);
  if (response.status == 500)
    fuzz::finding("status 500 for " + request.method + " " + request.target + ": " + response.body);
  if (nlohmann::json::parse(response.body, nullptr, false).is_discarded())
    fuzz::finding("a response body that is not JSON: " + response.body);
  return 0;
}
