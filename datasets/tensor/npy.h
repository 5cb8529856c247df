// NumPy's `.npy` and `.npz` files, for exchanging inputs and outputs with Python reference
// implementations (`ldm-worker forward`).
//
// .npy: "\x93NUMPY", format version (1.0: 2-byte header length; 2.0 and 3.0: 4-byte), then a
// Python-literal header {'descr': ..., 'fortran_order': ..., 'shape': (...)} and the raw data.
// .npz: a zip archive of .npy members (numpy.savez stores them, numpy.savez_compressed deflates
// them), read and written with libzip.
//
// Supported dtypes (descr -> torch): <f4 float32, <f8 float64, <f2 float16, <i8 int64, <i4 int32,
// <i2 int16, |i1 int8, |u1 uint8, |b1 bool. Data in C order only. Big-endian data, Fortran order,
// structured and object dtypes are errors. bfloat16 has no numpy dtype: convert before writing.
// String arrays ('<U<n>' unicode, '|S<n>' bytes) are not tensors: npy_decode_strings and
// read_npz_strings read 1-D ones into std::vector<std::string>.
//
// Thread-safety: the functions share no state.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace ldm::data {

using NpzMap = std::map<std::string, at::Tensor>;

// Parses the bytes of one .npy file; `source` names it in errors ("a.npz: member 'x.npy'").
// The returned tensor is contiguous, on the CPU and owns its memory.
at::Tensor npy_decode(const std::string& bytes, const std::string& source);
// The bytes of a format-1.0 .npy file holding `t` (made contiguous, moved to the CPU), in C order.
// The header is padded so the data starts at a multiple of 64 bytes, as numpy writes it.
std::string npy_encode(const at::Tensor& t);

// Reads a .npy file; throws ldm::DataError naming the file.
at::Tensor read_npy(const std::string& path);
// Writes a .npy file atomically (temporary name, fsync, rename); errors name the file.
void write_npy(const std::string& path, const at::Tensor& t);

// Reads every member of a .npz archive, keyed by member name without its ".npy" suffix (a name
// without the suffix is kept as is; directory entries are skipped). Stored and deflated members
// (and zip64 records, which numpy writes) are read; each member's CRC is checked. Throws
// ldm::DataError naming the file (and the member, for errors inside one): missing file, not a zip
// archive, truncated or corrupt archive, bad .npy member, two members with the same key.
NpzMap read_npz(const std::string& path);
// Reads only the members named in `names` (keys as read_npz makes them: "mu" finds the member
// "mu.npy", or else a member named exactly "mu"); the other members are never read or inflated, so
// a reference batch's multi-gigabyte image array costs nothing when only its statistics are wanted
// (and damage inside it goes unnoticed). Throws ldm::DataError naming the file and the member: a
// missing member (the message lists the members present), two members with the same key, and
// every error read_npz reports for the members read. The result holds each requested key once.
NpzMap read_npz_members(const std::string& path, const std::vector<std::string>& names);

// Decodes a .npy file holding a 1-D string array into one std::string per element, in order:
// '<U<n>' (numpy's str arrays: n UTF-32LE code units per element) becomes UTF-8; '|S<n>' (numpy's
// bytes arrays) is copied as is. As numpy does, the trailing NULs padding each element are dropped
// (inner NULs are kept). Throws ldm::DataError naming `source`: another dtype, a rank other than 1,
// big-endian '>U', Fortran order, a code point that is not a Unicode scalar value (above 0x10FFFF
// or a surrogate), truncated or trailing data.
std::vector<std::string> npy_decode_strings(const std::string& bytes, const std::string& source);
// Reads one string-array member of a .npz archive (named as for read_npz_members), reading no
// other member; errors as read_npz_members and npy_decode_strings.
// The member keys of an .npz archive (names without ".npy"; directory entries skipped).
std::vector<std::string> npz_keys(const std::string& path);
std::vector<std::string> read_npz_strings(const std::string& path, const std::string& member);

// Writes a .npz archive (members "<key>.npy", deflated when `compress`, else stored). The archive
// is assembled under a temporary name and renamed into place by libzip.
void write_npz(const std::string& path, const NpzMap& tensors, bool compress = false);

}  // namespace ldm::data
