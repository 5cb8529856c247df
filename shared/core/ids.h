// Identifiers and secrets.
#pragma once

#include <cstdint>
#include <string>

namespace ldm {

// `bytes` random bytes from the OS (getrandom), hex-encoded. Used for run tokens.
std::string random_hex(std::size_t bytes);

// A run id: "<experiment>.<stage>.a<attempt>", unique within one store and readable in logs.
std::string make_run_id(const std::string& experiment, const std::string& stage, int attempt);

// The directory name of a checkpoint bundle at `step` inside a run's checkpoints/: "step-0000042"
// (the worker writes it, the coordinator and evaluation stages find bundles by it).
std::string step_dir_name(std::int64_t step);

// 64-bit FNV-1a of a byte string; stable across platforms, for spec hashes and seeds.
std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t seed = 0xcbf29ce484222325ULL);
inline std::uint64_t fnv1a64(const std::string& s) { return fnv1a64(s.data(), s.size()); }

// SplitMix64 mixing of several integers into one seed. derive_seed_from_name(seed, name, rank) gives
// every (name, rank) its own independent stream; code names its purpose with derive_seed(seed,
// Purpose, ...) of shared/core/seeds.h, the one list of purposes (DESIGN.md "Randomness").
std::uint64_t mix64(std::uint64_t x);
std::uint64_t derive_seed_from_name(std::uint64_t seed, const std::string& name, std::uint64_t a = 0,
                                    std::uint64_t b = 0);

std::string hex64(std::uint64_t v);

}  // namespace ldm
