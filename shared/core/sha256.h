// SHA-256 digests (OpenSSL libcrypto): identities of encoder files, checkpoint manifests in lineage.
#pragma once

#include <string>

namespace ldm {

// Lower-case hex SHA-256 (64 characters) of a file's bytes. Throws ldm::DataError naming the file
// when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace ldm
