// Credentials for a coordinator reachable off-host (README "Several machines").
//
// A coordinator that listens on a non-loopback address requires them: the CLI sends the bearer
// token with every HTTP request, and a worker authenticates to the ZeroMQ endpoint with CURVE (the
// server's public key, and the client keypair the server accepts). `ldm-coord serve` writes them,
// mode 0600, to <state>/auth/client.json:
//   {"token": "...", "server_public": "<z85>", "client_public": "<z85>", "client_secret": "<z85>"}
// which users copy to the machines that run workers or the CLI (`--token-file`, or LDM_TOKEN_FILE).
// A token file may also be plain text holding only the token (enough for the CLI).
#pragma once

#include <string>

namespace ldm {

struct ClientCredentials {
  std::string token;          // HTTP bearer token
  std::string server_public;  // CURVE, Z85 (40 characters); "" in a plain token file
  std::string client_public, client_secret;
  bool has_curve() const { return !server_public.empty(); }
};

// Reads a token file (JSON as above, or one line of text). Throws Error naming the file when it
// cannot be read, is readable by group or others (it is a secret: chmod 600), or holds no token.
ClientCredentials read_credentials(const std::string& path);

// The file a CLI command or a worker uses: `flag` if given, else $LDM_TOKEN_FILE, else
// <state_dir>/auth/client.json when it exists ("" when none).
std::string credentials_path(const std::string& flag, const std::string& state_dir);

// Throws Error naming `path` when it cannot be read or is readable by group or others.
void check_private_file(const std::string& path);

}  // namespace ldm
