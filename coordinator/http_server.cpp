#include "coordinator/http_server.h"

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "coordinator/auth.h"
#include "shared/core/error.h"
#include "shared/core/log.h"

namespace ldm::coord {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(30);

void set_cloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

std::string error_body(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One client connection: read a request, answer it, repeat while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler, const std::string& token)
      : stream_(std::move(socket)), handler_(handler), token_(token) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(HttpServer::kMaxBodyBytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      close();
      return;
    }
    if (ec == http::error::body_limit) {
      respond(413, error_body("request body exceeds " + std::to_string(HttpServer::kMaxBodyBytes) + " bytes"), false);
      return;
    }
    if (ec) {
      respond(400, error_body("malformed HTTP request: " + ec.message()), false);
      return;
    }
    http::request<http::string_body> req = parser_->release();
    HttpRequest request{std::string(req.method_string()), std::string(req.target()), std::move(req.body())};
    if (const std::string why = bearer_refusal(std::string(req[http::field::authorization]), token_); !why.empty()) {
      beast::error_code ignored;
      const auto peer = stream_.socket().remote_endpoint(ignored);
      log::warn("HTTP: refused " + request.method + " " + request.target + " from " + peer.address().to_string() +
                ": " + why);
      respond(401,
              error_body("this coordinator requires a bearer token and the request carried " + why +
                         " (the CLI: --token-file, or LDM_TOKEN_FILE, naming a copy of the coordinator's "
                         "<state>/auth/client.json)"),
              req.keep_alive(), /*challenge=*/true);
      return;
    }
    HttpResponse response;
    try {
      response = handler_(request);
    } catch (const std::exception& ex) {
      log::error("HTTP " + request.method + " " + request.target + ": " + ex.what());
      response = {500, error_body(ex.what())};
    }
    respond(response.status, std::move(response.body), req.keep_alive());
  }

  void respond(int status, std::string body, bool keep_alive, bool challenge = false) {
    response_ = {};
    if (challenge) response_.set(http::field::www_authenticate, "Bearer");
    response_.version(11);
    response_.result(static_cast<unsigned>(status));
    response_.set(http::field::server, "ldm-coord");
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(keep_alive);
    response_.body() = std::move(body);
    response_.prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, response_, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  const HttpServer::Handler& handler_;
  const std::string& token_;  // "" = no authentication
};

}  // namespace

struct HttpServer::Impl {
  Handler handler;  // first: sessions destroyed with `io` may still hold a reference
  std::string token;
  std::string host;  // what clients connect to
  asio::io_context io;
  tcp::acceptor acceptor{io};
  int port = 0;
  std::thread thread;
  std::atomic<bool> stopped{false};

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        log::warn("HTTP accept failed: " + ec.message());
      } else {
        set_cloexec(socket.native_handle());
        std::make_shared<Session>(std::move(socket), handler, token)->read();
      }
      accept();
    });
  }
};

std::string bearer_refusal(const std::string& authorization, const std::string& token) {
  if (token.empty()) return "";
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) != 0) return "no bearer token";
  return secrets_equal(authorization.substr(prefix.size()), token) ? "" : "a wrong bearer token";
}

HttpServer::HttpServer(const std::string& listen, int port, Handler handler, std::string bearer_token)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->token = std::move(bearer_token);
  const std::string host = listen == "localhost" ? "127.0.0.1" : listen;
  impl_->host = host == "0.0.0.0" ? "127.0.0.1" : host;
  const std::string address = host + ":" + std::to_string(port);
  try {
    const tcp::endpoint endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port));
    impl_->acceptor.open(endpoint.protocol());
    set_cloexec(impl_->acceptor.native_handle());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
    impl_->port = impl_->acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& ex) {
    throw Error("cannot serve HTTP on " + address + ": " + ex.code().message());
  }
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::url() const { return "http://" + impl_->host + ":" + std::to_string(port()); }

void HttpServer::start() {
  impl_->accept();
  impl_->thread = std::thread([this] {
    try {
      impl_->io.run();
    } catch (const std::exception& ex) {
      log::error(std::string("HTTP server stopped: ") + ex.what());
    }
  });
}

void HttpServer::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace ldm::coord
