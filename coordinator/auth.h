// The coordinator's side of off-host access (README "Several machines"): where it listens, the
// bearer token its HTTP API requires and the CURVE keys of its ZeroMQ endpoint.
//
// Loopback (the default) needs nothing: only processes of this machine can connect. Any other
// listen address requires authentication, on both sockets: the first start writes, mode 0600,
//   <state>/auth/server.json  {"token", "server_public", "server_secret", "client_public"}
//   <state>/auth/client.json  {"token", "server_public", "client_public", "client_secret"}
// (shared/core/credentials.h); later starts read them. `--token-file F` supplies the bearer token
// instead of a generated one.
#pragma once

#include <string>

namespace ldm::coord {

struct ServerAuth {
  bool enabled = false;
  std::string token;                         // the HTTP bearer token
  std::string server_public, server_secret;  // CURVE, Z85
  std::string client_public;                 // the one client key the endpoint accepts
  std::string client_file;                   // <state>/auth/client.json: what workers and the CLI use
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_address(const std::string& address);

// The credentials for a coordinator listening on `listen`: none on loopback; otherwise read from
// (or, on first use, created in) <state_dir>/auth, with the token of `token_file` when given.
// Throws Error (the coordinator then refuses to start) when a file cannot be written or read, is
// readable by others, or holds no token.
ServerAuth load_server_auth(const std::string& listen, const std::string& state_dir, const std::string& token_file);

// A warning when `dir` lives on a network filesystem (NFS, Lustre, GPFS, CIFS, ...), which the
// RocksDB store must not: "" when it is local or cannot be told.
std::string network_filesystem_warning(const std::string& dir);

// Constant-time comparison of two secrets.
bool secrets_equal(const std::string& a, const std::string& b);

}  // namespace ldm::coord
