#include "coordinator/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

}  // namespace

CoordinatorClient::CoordinatorClient(const std::string& base_url, std::string via, std::chrono::seconds timeout)
    : url_(base_url), via_(std::move(via)), timeout_(timeout) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  const std::string scheme = "http://";
  const std::string rest = starts_with(url_, scheme) ? url_.substr(scheme.size()) : "";
  const auto colon = rest.rfind(':');
  if (rest.empty() || colon == std::string::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.find('/') != std::string::npos)
    throw Error("coordinator URL '" + base_url + "' (from " + via_ + ") is not of the form http://HOST:PORT");
  host_ = rest.substr(0, colon);
  port_ = rest.substr(colon + 1);
}

nlohmann::json CoordinatorClient::get(const std::string& path) { return request("GET", path, ""); }

nlohmann::json CoordinatorClient::post(const std::string& path, const nlohmann::json& body) {
  return request("POST", path, body.dump());
}

nlohmann::json CoordinatorClient::request(const std::string& method, const std::string& path, const std::string& body) {
  http::response<http::string_body> res;
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(timeout_);
    stream.connect(tcp::resolver(io).resolve(host_, port_));
    http::request<http::string_body> req(http::string_to_verb(method), path, 11);
    req.set(http::field::host, host_ + ":" + port_);
    req.set(http::field::user_agent, "ldm-coord");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    // Blocking calls do not honour expires_after; run the exchange as async ops under it.
    beast::error_code ec;
    beast::flat_buffer buffer;
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) {
      if (e) {
        ec = e;
        return;
      }
      http::async_read(stream, buffer, res, [&](beast::error_code e2, std::size_t) { ec = e2; });
    });
    io.run();
    if (ec) throw beast::system_error(ec);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } catch (const boost::system::system_error& ex) {
    throw Error("cannot reach the coordinator at " + url_ + " (from " + via_ + "): " + ex.code().message() +
                "; is `ldm-coord serve` running?");
  }
  const nlohmann::json j = nlohmann::json::parse(res.body(), nullptr, false);
  const int status = static_cast<int>(res.result_int());
  if (status >= 200 && status < 300 && !j.is_discarded()) return j;
  std::string message = "HTTP " + std::to_string(status);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string())
    message = j["error"].get<std::string>();
  else if (!res.body().empty()) message += ": " + res.body().substr(0, 200);
  throw Error(message);
}

}  // namespace ldm::coord
