// A small HTTP/1.1 server (Boost.Beast on Asio), on 127.0.0.1 by default. It knows nothing of
// experiments: every request is handed to one Handler, whose response is sent back as JSON. With a
// bearer token, a request without "Authorization: Bearer <token>" gets 401 (and a log line naming
// the peer) and never reaches the Handler.
// Requests larger than kMaxBodyBytes get 413; unparsable requests get 400; a handler that throws
// gets 500; connections idle for 30 s are closed. The server keeps serving after any of these.
//
// Threads: start() runs the Asio loop on one thread of its own; the Handler is called on it.
// The listening socket and every accepted connection are close-on-exec, so jobs forked by the
// coordinator inherit none of them.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace ldm::coord {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/api/v1/experiments/x/metrics?stage=train"
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON text
};

// Why a server requiring bearer `token` refuses a request whose Authorization header is
// `authorization`: "no bearer token", "a wrong bearer token", or "" when it is admitted (always, for
// `token` ""). The comparison takes the same time wherever the tokens differ.
std::string bearer_refusal(const std::string& authorization, const std::string& token);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static constexpr std::size_t kMaxBodyBytes = 8 * 1024 * 1024;

  // Binds <listen>:<port> (an IPv4 address or "localhost"; port 0 = an ephemeral one) and listens.
  // Throws Error naming the address. `bearer_token` "" = no authentication.
  HttpServer(const std::string& listen, int port, Handler handler, std::string bearer_token = "");
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  std::string url() const;  // "http://<listen>:<port>" (0.0.0.0: 127.0.0.1, what this host connects to)

  void start();  // begins accepting on the server thread
  void stop();   // closes the listener and open connections, joins the thread; idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ldm::coord
