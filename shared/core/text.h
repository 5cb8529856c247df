// Small string helpers shared by the spec front end and the CLIs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ldm {

// Levenshtein distance (insert/delete/substitute, cost 1 each).
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` if it is close enough to be a plausible typo
// (distance <= max(2, |word|/3)), else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "" — for appending to error messages.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// "'x' is not one of: a, b, c (did you mean 'a'?)": the words for every rejected choice, wherever read.
std::string not_one_of(const std::string& text, const std::vector<std::string>& names);

std::string join(const std::vector<std::string>& items, const std::string& sep);
std::vector<std::string> split(const std::string& s, char sep);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
// `s` without leading and trailing spaces, tabs and line breaks.
std::string trim(const std::string& s);
// `s` up to its first line break.
std::string first_line(const std::string& s);
// Eight lower-case hex digits ("0000beef"), as checksums are printed.
std::string hex32(std::uint32_t v);
// Appends the UTF-8 encoding of one Unicode scalar value (the caller has checked c <= 0x10FFFF
// and that it is not a surrogate).
void append_utf8(std::string& out, char32_t c);

}  // namespace ldm
