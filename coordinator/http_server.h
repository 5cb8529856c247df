// A small HTTP/1.1 server (Boost.Beast on Asio) bound to 127.0.0.1 only. It knows nothing of
// experiments: every request is handed to one Handler, whose response is sent back as JSON.
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

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static constexpr std::size_t kMaxBodyBytes = 8 * 1024 * 1024;

  // Binds 127.0.0.1:<port> (0 = an ephemeral port) and listens. Throws Error naming the address.
  HttpServer(int port, Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  std::string url() const;  // "http://127.0.0.1:<port>"

  void start();  // begins accepting on the server thread
  void stop();   // closes the listener and open connections, joins the thread; idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ldm::coord
