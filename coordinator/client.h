// A tiny blocking HTTP client for the CLI, talking JSON to a coordinator's API (Boost.Beast).
// Each call opens one connection, with a timeout; not thread-safe (one per thread).
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace ldm::coord {

class CoordinatorClient {
 public:
  // `base_url` is "http://HOST:PORT"; `via` says where it came from (see discovery.h), for errors.
  // Throws Error if the URL is not of that form.
  CoordinatorClient(const std::string& base_url, std::string via,
                    std::chrono::seconds timeout = std::chrono::seconds(30));

  // Sends "Authorization: Bearer <token>" with every request ("" = none): a coordinator listening
  // off loopback requires it (coordinator/auth.h).
  void set_bearer_token(std::string token) { token_ = std::move(token); }

  // The response JSON of a 2xx reply. Throws Error: the server cannot be reached (naming the URL
  // and where it came from), or it answered with an error (its {"error"} message).
  nlohmann::json get(const std::string& path);
  nlohmann::json post(const std::string& path, const nlohmann::json& body);

  const std::string& url() const { return url_; }

 private:
  nlohmann::json request(const std::string& method, const std::string& path, const std::string& body);

  std::string url_, via_, host_, port_, token_;
  std::chrono::seconds timeout_;
};

}  // namespace ldm::coord
