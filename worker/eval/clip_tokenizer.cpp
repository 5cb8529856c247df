#include "worker/eval/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "datasets/torchscript_encoders.h"  // sha256_file_hex
#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::eval {

// Everything file-local lives in this named namespace (not an anonymous one): the library is
// unity-built with other eval sources.
namespace clip_tokenizer_detail {

// ---- Unicode character data (tables generated from Python, at the end of this file) ------------

bool is_letter(char32_t c);          // regex [\p{L}] under IGNORECASE
bool is_number(char32_t c);          // regex [\p{N}] under IGNORECASE
bool is_regex_space(char32_t c);     // regex \s (Unicode White_Space)
bool is_unmatched(char32_t c);       // matches no alternative of CLIP's pattern and is not \s (U+0345)
bool is_case_ignorable(char32_t c);  // CPython's _PyUnicode_IsCaseIgnorable
bool is_cased_only(char32_t c);      // CPython's _PyUnicode_IsCased and not case-ignorable
char32_t simple_lower(char32_t c);   // str.lower() of one character, where that is one character
bool width_map(char32_t c, char32_t* a, char32_t* b);  // ftfy's WIDTH_MAP (b = 0: one character)
const char* html5_entity(std::string_view name);       // html.entities.html5[name] (UTF-8), or nullptr

// Python's str.isspace(): White_Space plus U+001C..U+001F.
bool py_isspace(char32_t c) { return (c >= 0x1C && c <= 0x1F) || is_regex_space(c); }

// ---- UTF-8 ----------------------------------------------------------------------------------------

// Strict decoding as Python's bytes.decode("utf-8"): no overlong forms, no surrogates, <= U+10FFFF.
// Returns false (with the offset of the first bad byte) on invalid input.
bool decode_utf8(std::string_view s, std::u32string* out, std::size_t* bad_offset) {
  out->clear();
  out->reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out->push_back(b);
      ++i;
      continue;
    }
    int len = 0;
    char32_t c = 0, min = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, c = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, c = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, c = b & 0x07, min = 0x10000;
    } else {
      *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      *bad_offset = i;
      return false;
    }
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        *bad_offset = i;
        return false;
      }
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      *bad_offset = i;
      return false;
    }
    out->push_back(c);
    i += len;
  }
  return true;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) ldm::append_utf8(out, c);
  return out;
}

std::u32string from_utf8_trusted(std::string_view s) {  // for table strings (valid UTF-8)
  std::u32string out;
  std::size_t bad = 0;
  decode_utf8(s, &out, &bad);
  return out;
}

// bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes U+FFFD.
std::string utf8_replace_invalid(const std::string& bytes) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b == 0xE0) len = 3, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEC) len = 3;
    else if (b == 0xED) len = 3, hi = 0x9F;
    else if (b >= 0xEE && b <= 0xEF) len = 3;
    else if (b == 0xF0) len = 4, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) len = 4;
    else if (b == 0xF4) len = 4, hi = 0x8F;
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    std::size_t k = 1;
    while (k < static_cast<std::size_t>(len) && i + k < n) {
      const unsigned char c = p[i + k];
      const bool ok = k == 1 ? (c >= lo && c <= hi) : (c & 0xC0) == 0x80;
      if (!ok) break;
      ++k;
    }
    if (k == static_cast<std::size_t>(len)) {
      out.append(bytes, i, len);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += k;
  }
  return out;
}

// ---- Python's html.unescape ------------------------------------------------------------------------

// html._invalid_charrefs for 0x80..0x9F (Windows-1252; undefined bytes map to themselves). ftfy's
// fix_c1_controls decodes C1 characters with the same table (its "sloppy-windows-1252").
constexpr char32_t kCp1252High[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                      0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                      0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                      0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

// html._replace_charref for a numeric reference with value `num` (saturated above 0x10FFFF).
void append_charref(std::uint64_t num, std::u32string& out) {
  if (num == 0) return out.push_back(0xFFFD);
  if (num == 0x0D) return out.push_back(U'\r');
  if (num >= 0x80 && num <= 0x9F) return out.push_back(kCp1252High[num - 0x80]);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return out.push_back(0xFFFD);
  const bool invalid = (num >= 0x1 && num <= 0x8) || (num >= 0xE && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
                       (num >= 0xFDD0 && num <= 0xFDEF) || num == 0xB || (num & 0xFFFE) == 0xFFFE;
  if (!invalid) out.push_back(static_cast<char32_t>(num));
}

bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z'); }
int hex_value(char32_t c) {
  return is_ascii_digit(c) ? int(c - U'0') : (c >= U'a' ? int(c - U'a') + 10 : int(c - U'A') + 10);
}

const char* html5_lookup(std::u32string_view name) {
  std::string key;
  for (char32_t c : name) {
    if (c >= 0x80) return nullptr;  // entity names are ASCII
    key.push_back(static_cast<char>(c));
  }
  return html5_entity(key);
}

// html.unescape(s): the pattern &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) replaced by
// html._replace_charref.
std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const std::size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      std::size_t k = j + 1;
      std::uint64_t num = 0;
      bool matched = false;
      if (k < n && is_ascii_digit(s[k])) {
        for (; k < n && is_ascii_digit(s[k]); ++k) num = std::min<std::uint64_t>(num * 10 + (s[k] - U'0'), 0x110000);
        matched = true;
      } else if (k + 1 < n && (s[k] == U'x' || s[k] == U'X') && is_ascii_hex(s[k + 1])) {
        for (++k; k < n && is_ascii_hex(s[k]); ++k) num = std::min<std::uint64_t>(num * 16 + hex_value(s[k]), 0x110000);
        matched = true;
      }
      if (matched) {
        if (k < n && s[k] == U';') ++k;
        append_charref(num, out);
        i = k;
        continue;
      }
      out.push_back(s[i++]);  // "&#" without digits: no match at this '&'
      continue;
    }
    auto name_char = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' && c != U';';
    };
    std::size_t k = j;
    while (k < n && k - j < 32 && name_char(s[k])) ++k;
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    const std::u32string_view name(s.data() + j, k - j);
    if (const char* v = html5_lookup(name)) {
      out += from_utf8_trusted(v);
    } else {
      // The longest prefix (at least 2 characters, shorter than the name) that is an entity.
      bool found = false;
      for (std::size_t x = name.size() - 1; x >= 2; --x) {
        if (const char* pv = html5_lookup(name.substr(0, x))) {
          out += from_utf8_trusted(pv);
          out += name.substr(x);
          found = true;
          break;
        }
      }
      if (!found) {
        out.push_back(U'&');
        out += name;
      }
    }
    i = k;
  }
  return out;
}

// ---- the ftfy subset -------------------------------------------------------------------------------

// ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; replaced when it is an HTML5 entity with ';'
// (ftfy's upper-case variants such as "&EACUTE;" are not implemented), or a numeric reference that
// html.unescape decodes completely (its result does not contain ';').
std::u32string ftfy_unescape_html(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] == U'&') {
      std::size_t j = i + 1;
      const bool hash = j < n && s[j] == U'#';
      if (hash) ++j;
      std::size_t k = j;
      while (k < n && k - j < 25 && is_ascii_alnum(s[k])) ++k;
      if (k > j && k - j <= 24 && k < n && s[k] == U';') {
        const std::u32string match = s.substr(i, k + 1 - i);
        const char* v = hash ? nullptr : html5_lookup(std::u32string_view(match).substr(1));
        if (v) {
          out += from_utf8_trusted(v);
        } else if (hash) {
          const std::u32string u = html_unescape(match);
          out += u.find(U';') == std::u32string::npos ? u : match;
        } else {
          out += match;
        }
        i = k + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// One mapping per line reads as a table (clang-format would spread each case over three lines).
// clang-format off
bool ligature(char32_t c, std::u32string& out) {
  switch (c) {
    case 0x132: out += U"IJ"; return true;
    case 0x133: out += U"ij"; return true;
    case 0x149: out += U"\u02BCn"; return true;
    case 0x1F1: out += U"DZ"; return true;
    case 0x1F2: out += U"Dz"; return true;
    case 0x1F3: out += U"dz"; return true;
    case 0x1C4: out += U"D\u017D"; return true;
    case 0x1C5: out += U"D\u017E"; return true;
    case 0x1C6: out += U"d\u017E"; return true;
    case 0x1C7: out += U"LJ"; return true;
    case 0x1C8: out += U"Lj"; return true;
    case 0x1C9: out += U"lj"; return true;
    case 0x1CA: out += U"NJ"; return true;
    case 0x1CB: out += U"Nj"; return true;
    case 0x1CC: out += U"nj"; return true;
    case 0xFB00: out += U"ff"; return true;
    case 0xFB01: out += U"fi"; return true;
    case 0xFB02: out += U"fl"; return true;
    case 0xFB03: out += U"ffi"; return true;
    case 0xFB04: out += U"ffl"; return true;
    case 0xFB05: out += U"\u017Ft"; return true;
    case 0xFB06: out += U"st"; return true;
    default: return false;
  }
}
// clang-format on

bool ftfy_control_char(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// One pass of ftfy's character fixers after unescape_html, in fix_and_explain's order:
// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
// (fix_surrogates: nothing to do on decoded UTF-8), remove_terminal_escapes, remove_control_chars.
std::u32string ftfy_character_fixes(const std::u32string& in) {
  std::u32string a;
  a.reserve(in.size());
  for (char32_t c : in) {
    if (c >= 0x80 && c <= 0x9F) c = kCp1252High[c - 0x80];  // fix_c1_controls
    if (ligature(c, a)) continue;                           // fix_latin_ligatures
    char32_t w1 = 0, w2 = 0;                                // fix_character_width
    if (width_map(c, &w1, &w2)) {
      a.push_back(w1);
      if (w2) a.push_back(w2);
      continue;
    }
    a.push_back(c);
  }
  std::u32string b;  // uncurl_quotes, fix_line_breaks
  b.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    char32_t c = a[i];
    if (c == 0x201C || c == 0x201D || c == 0x201E || c == 0x201F) c = U'"';
    else if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c == U'\r') {
      if (i + 1 < a.size() && a[i + 1] == U'\n') continue;  // "\r\n" -> "\n"
      c = U'\n';
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      c = U'\n';
    }
    b.push_back(c);
  }
  std::u32string out;     // remove_terminal_escapes (ESC [ [0-9;]* [A-Za-z]; ASCII digits only,
  out.reserve(b.size());  // where Python's \d would take any decimal digit), remove_control_chars
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b[i] == 0x1B && i + 1 < b.size() && b[i + 1] == U'[') {
      std::size_t k = i + 2;
      while (k < b.size() && (is_ascii_digit(b[k]) || b[k] == U';')) ++k;
      if (k < b.size() && ((b[k] >= U'a' && b[k] <= U'z') || (b[k] >= U'A' && b[k] <= U'Z'))) {
        i = k;
        continue;
      }
    }
    if (!ftfy_control_char(b[i])) out.push_back(b[i]);
  }
  return out;
}

// ftfy.fix_text with the fixers above (no fix_encoding, no NFC).
std::u32string ftfy_subset(const std::u32string& text) {
  constexpr std::size_t kMaxDecodeLength = 1000000;
  std::u32string out;
  bool unescape = true;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t brk = text.find(U'\n', pos);
    brk = brk == std::u32string::npos ? text.size() : brk + 1;
    if (brk - pos > kMaxDecodeLength) brk = pos + kMaxDecodeLength;
    std::u32string seg = text.substr(pos, brk - pos);
    if (unescape && seg.find(U'<') != std::u32string::npos) unescape = false;
    for (int round = 0; round < 1000; ++round) {
      std::u32string next = unescape ? ftfy_unescape_html(seg) : seg;
      next = ftfy_character_fixes(next);
      if (next == seg) break;
      seg = std::move(next);
    }
    out += seg;
    pos = brk;
  }
  return out;
}

// ---- whitespace and case ---------------------------------------------------------------------------

std::u32string py_strip(const std::u32string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && py_isspace(s[a])) ++a;
  while (b > a && py_isspace(s[b - 1])) --b;
  return s.substr(a, b - a);
}

// regex.sub(r'\s+', ' ', text).strip()
std::u32string whitespace_clean(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (is_regex_space(s[i])) {
      while (i < s.size() && is_regex_space(s[i])) ++i;
      out.push_back(U' ');
    } else {
      out.push_back(s[i++]);
    }
  }
  return py_strip(out);
}

// str.lower(), including CPython's final-sigma rule (handle_capital_sigma).
std::u32string py_lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x130) {
      out += U"i\u0307";
    } else if (c == 0x3A3) {
      std::size_t j = i;
      while (j > 0 && is_case_ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased_only(s[j - 1]);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < s.size() && is_case_ignorable(s[k])) ++k;
        final_sigma = k == s.size() || !is_cased_only(s[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(simple_lower(c));
    }
  }
  return out;
}

std::u32string clean(const std::string& text) {
  std::u32string u;
  std::size_t bad = 0;
  if (!decode_utf8(text, &u, &bad))
    throw Error("CLIP tokenizer: the text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  u = ftfy_subset(u);
  u = html_unescape(html_unescape(u));
  u = py_strip(u);
  u = whitespace_clean(u);
  return py_lower(u);
}

// ---- the pattern -----------------------------------------------------------------------------------

// Case-insensitive equality with an ASCII letter of the pattern (after lower(); "ſ" folds to "s").
bool ieq(char32_t c, char32_t pattern_char) {
  if (c == pattern_char) return true;
  if (c >= U'A' && c <= U'Z') return c + 32 == pattern_char;
  return pattern_char == U's' && c == 0x17F;
}

bool matches_at(const std::u32string& s, std::size_t i, std::u32string_view lit) {
  if (s.size() - i < lit.size()) return false;
  for (std::size_t k = 0; k < lit.size(); ++k)
    if (!ieq(s[i + k], lit[k])) return false;
  return true;
}

std::vector<std::u32string> split_words(const std::u32string& s) {
  static constexpr std::u32string_view kSpecial[] = {U"<|startoftext|>", U"<|endoftext|>"};
  static constexpr std::u32string_view kContractions[] = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
  std::vector<std::u32string> words;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t len = 0;
    for (auto lit : kSpecial)
      if (!len && matches_at(s, i, lit)) len = lit.size();
    if (!len && s[i] == U'\'')
      for (auto lit : kContractions)
        if (!len && matches_at(s, i, lit)) len = lit.size();
    const char32_t c = s[i];
    if (!len && is_letter(c)) {
      len = 1;
      while (i + len < n && is_letter(s[i + len])) ++len;
    }
    if (!len && is_number(c)) len = 1;
    auto other = [](char32_t x) { return !is_regex_space(x) && !is_letter(x) && !is_number(x) && !is_unmatched(x); };
    if (!len && other(c)) {
      len = 1;
      while (i + len < n && other(s[i + len])) ++len;
    }
    if (!len) {  // whitespace (or U+0345): no match starts here
      ++i;
      continue;
    }
    words.push_back(s.substr(i, len));
    i += len;
  }
  return words;
}

// ---- bytes_to_unicode ------------------------------------------------------------------------------

struct ByteSymbols {
  std::array<char32_t, 256> of_byte{};  // byte -> its unicode character
  std::array<int, 256> order{};         // position in the vocabulary (bs order) -> byte
  std::unordered_map<char32_t, int> to_byte;
};

const ByteSymbols& byte_symbols() {
  static const ByteSymbols table = [] {
    ByteSymbols t;
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    std::vector<char32_t> cs(bs.begin(), bs.end());
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
        bs.push_back(b);
        cs.push_back(static_cast<char32_t>(256 + extra++));
      }
    }
    for (int k = 0; k < 256; ++k) {
      t.of_byte[bs[k]] = cs[k];
      t.order[k] = bs[k];
      t.to_byte[cs[k]] = bs[k];
    }
    return t;
  }();
  return table;
}

std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

}  // namespace clip_tokenizer_detail

namespace ctd = clip_tokenizer_detail;

std::string clip_clean_text(const std::string& text) { return ctd::to_utf8(ctd::clean(text)); }

std::vector<std::string> clip_split_words(const std::string& cleaned) {
  std::u32string u;
  std::size_t bad = 0;
  if (!ctd::decode_utf8(cleaned, &u, &bad))
    throw Error("CLIP tokenizer: the text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<std::string> out;
  for (const auto& w : ctd::split_words(u)) out.push_back(ctd::to_utf8(w));
  return out;
}

ClipCharClass clip_char_class(char32_t c) {
  if (ctd::is_regex_space(c)) return ClipCharClass::Space;
  if (ctd::is_letter(c)) return ClipCharClass::Letter;
  if (ctd::is_number(c)) return ClipCharClass::Number;
  if (ctd::is_unmatched(c)) return ClipCharClass::Unmatched;
  return ClipCharClass::Other;
}

std::string clip_lower(const std::string& text) {
  std::u32string u;
  std::size_t bad = 0;
  if (!ctd::decode_utf8(text, &u, &bad))
    throw Error("CLIP tokenizer: the text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  return ctd::to_utf8(ctd::py_lower(u));
}

struct ClipTokenizer::Impl {
  std::string path, sha;
  std::vector<std::string> vocab;  // id -> symbol (UTF-8), Python's vocab list
  std::unordered_map<std::string, std::int32_t> encoder;
  std::array<std::int32_t, 256> byte_id{}, byte_end_id{};  // a byte's symbol, without / with "</w>"
  struct Merge {
    std::int32_t rank, merged;
  };
  std::unordered_map<std::uint64_t, Merge> ranks;
  int merges = 0;
  std::int32_t sot = 0, eot = 0;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache;

  std::vector<std::int32_t> bpe(const std::string& token) const;
};

namespace clip_tokenizer_detail {

std::string read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError("CLIP BPE merges " + path + ": cannot open: " + std::strerror(errno ? errno : ENOENT));
  std::string data;
  std::vector<char> buf(1 << 16);
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) data.append(buf.data(), n);
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  const std::string message = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw DataError("CLIP BPE merges " + path + ": cannot read: " + (message.empty() ? "gzip error" : message) +
                    (err == Z_BUF_ERROR ? " (truncated gzip file?)" : ""));
  return data;
}

}  // namespace clip_tokenizer_detail

ClipTokenizer::ClipTokenizer(const std::string& merges_path) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = merges_path;
  const std::string what = "CLIP BPE merges " + merges_path;
  {
    std::FILE* probe = std::fopen(merges_path.c_str(), "rb");
    if (!probe) throw DataError(what + ": cannot open: " + std::strerror(errno));
    std::fclose(probe);
  }
  const std::string data = ctd::read_maybe_gzip(merges_path);
  d.sha = data::sha256_file_hex(merges_path);
  {
    std::u32string check;
    std::size_t bad = 0;
    if (!ctd::decode_utf8(data, &check, &bad))
      throw DataError(what + ": not UTF-8 text (invalid byte at offset " + std::to_string(bad) + ")");
  }
  // Lines: text.split('\n'); [1 : 1 + kMaxMerges].
  std::vector<std::string_view> lines;
  {
    std::string_view all(data);
    std::size_t pos = 0;
    while (true) {
      const std::size_t nl = all.find('\n', pos);
      lines.push_back(all.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
  }
  const auto& bs = ctd::byte_symbols();
  for (int k = 0; k < 256; ++k) d.vocab.push_back(ctd::to_utf8(std::u32string(1, bs.of_byte[bs.order[k]])));
  for (int k = 0; k < 256; ++k) d.vocab.push_back(d.vocab[k] + "</w>");
  std::vector<std::pair<std::string, std::string>> pairs;  // (a, b); ("", "") marks a non-merge line
  std::vector<bool> is_pair;
  const std::size_t end = std::min<std::size_t>(lines.size(), 1 + static_cast<std::size_t>(kMaxMerges));
  for (std::size_t li = 1; li < end; ++li) {
    std::u32string u;
    std::size_t bad = 0;
    ctd::decode_utf8(lines[li], &u, &bad);
    std::vector<std::string> fields;
    for (std::size_t i = 0; i < u.size();) {
      if (ctd::py_isspace(u[i])) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < u.size() && !ctd::py_isspace(u[j])) ++j;
      fields.push_back(ctd::to_utf8(std::u32string_view(u).substr(i, j - i)));
      i = j;
    }
    if (fields.size() == 1 || fields.size() > 2)
      throw DataError(what + ": line " + std::to_string(li + 1) + " has " + std::to_string(fields.size()) +
                      " fields, expected a merge \"a b\" (is this CLIP's bpe_simple_vocab_16e6.txt[.gz]?)");
    if (fields.empty()) {
      pairs.emplace_back();
      is_pair.push_back(false);
      d.vocab.emplace_back();  // Python: ''.join(()) == ''
    } else {
      d.vocab.push_back(fields[0] + fields[1]);
      pairs.emplace_back(std::move(fields[0]), std::move(fields[1]));
      is_pair.push_back(true);
    }
  }
  d.merges = static_cast<int>(pairs.size());
  if (std::count(is_pair.begin(), is_pair.end(), true) == 0)
    throw DataError(what + ": no merge lines after the header (is this CLIP's bpe_simple_vocab_16e6.txt[.gz]?)");
  d.vocab.emplace_back("<|startoftext|>");
  d.vocab.emplace_back("<|endoftext|>");
  d.encoder.reserve(d.vocab.size() * 2);
  for (std::size_t id = 0; id < d.vocab.size(); ++id) d.encoder[d.vocab[id]] = static_cast<std::int32_t>(id);
  for (int b = 0; b < 256; ++b) {
    const std::string sym = ctd::to_utf8(std::u32string(1, bs.of_byte[b]));
    d.byte_id[b] = d.encoder.at(sym);
    d.byte_end_id[b] = d.encoder.at(sym + "</w>");
  }
  d.sot = d.encoder.at("<|startoftext|>");
  d.eot = d.encoder.at("<|endoftext|>");
  d.ranks.reserve(pairs.size() * 2);
  for (std::size_t r = 0; r < pairs.size(); ++r) {
    if (!is_pair[r]) continue;
    const auto a = d.encoder.find(pairs[r].first);
    const auto b = d.encoder.find(pairs[r].second);
    if (a == d.encoder.end() || b == d.encoder.end()) continue;  // can never apply to a word
    d.ranks[ctd::pair_key(a->second, b->second)] = {static_cast<std::int32_t>(r),
                                                    d.encoder.at(pairs[r].first + pairs[r].second)};
  }
}

ClipTokenizer::~ClipTokenizer() = default;

std::vector<std::int32_t> ClipTokenizer::Impl::bpe(const std::string& token) const {
  if (token == "<|startoftext|>") return {sot};
  if (token == "<|endoftext|>") return {eot};
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (auto it = cache.find(token); it != cache.end()) return it->second;
  }
  std::vector<std::int32_t> word;
  word.reserve(token.size());
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto b = static_cast<unsigned char>(token[i]);
    word.push_back(i + 1 == token.size() ? byte_end_id[b] : byte_id[b]);
  }
  std::vector<std::int32_t> next;
  while (word.size() > 1) {
    const Merge* best = nullptr;
    std::int32_t first = 0, second = 0;
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = ranks.find(clip_tokenizer_detail::pair_key(word[i], word[i + 1]));
      if (it != ranks.end() && (!best || it->second.rank < best->rank)) {
        best = &it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (!best) break;
    next.clear();
    for (std::size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        next.push_back(best->merged);
        i += 2;
      } else {
        next.push_back(word[i++]);
      }
    }
    word.swap(next);
  }
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() > 200000) cache.clear();
  cache.emplace(token, word);
  return word;
}

std::vector<std::int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  for (const auto& w : ctd::split_words(ctd::clean(text))) {
    for (std::int32_t id : impl_->bpe(ctd::to_utf8(w))) ids.push_back(id);
  }
  return ids;
}

std::vector<std::int64_t> ClipTokenizer::tokenize(const std::string& text, int context_length, bool truncate) const {
  if (context_length < 2)
    throw Error("CLIP tokenizer: the context length must be >= 2 (SOT and EOT), got " + std::to_string(context_length));
  std::vector<std::int64_t> ids;
  ids.push_back(impl_->sot);
  for (std::int64_t id : encode(text)) ids.push_back(id);
  ids.push_back(impl_->eot);
  if (ids.size() > static_cast<std::size_t>(context_length)) {
    if (!truncate) {
      std::string shown = text.size() > 80 ? text.substr(0, 77) + "..." : text;
      throw Error("CLIP tokenizer: \"" + shown + "\" is " + std::to_string(ids.size()) +
                  " tokens with SOT/EOT, longer than the context length " + std::to_string(context_length));
    }
    ids.resize(context_length);
    ids.back() = impl_->eot;
  }
  ids.resize(context_length, 0);
  return ids;
}

std::vector<std::int64_t> ClipTokenizer::tokenize_batch(const std::vector<std::string>& texts, int context_length,
                                                        bool truncate) const {
  std::vector<std::int64_t> out;
  out.reserve(texts.size() * static_cast<std::size_t>(std::max(context_length, 0)));
  for (const auto& t : texts) {
    const auto row = tokenize(t, context_length, truncate);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

std::string ClipTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  const auto& bs = ctd::byte_symbols();
  std::string bytes;
  for (std::int64_t id : ids) {
    if (id < 0 || id >= static_cast<std::int64_t>(impl_->vocab.size()))
      throw Error("CLIP tokenizer: id " + std::to_string(id) + " is outside the vocabulary (size " +
                  std::to_string(impl_->vocab.size()) + ")");
    std::u32string u;
    std::size_t bad = 0;
    ctd::decode_utf8(impl_->vocab[id], &u, &bad);
    for (char32_t c : u) {
      const auto it = bs.to_byte.find(c);
      if (it == bs.to_byte.end())
        throw Error("CLIP tokenizer: id " + std::to_string(id) + " holds a character that is not a byte symbol");
      bytes.push_back(static_cast<char>(it->second));
    }
  }
  std::string text = ctd::utf8_replace_invalid(bytes);
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::int64_t ClipTokenizer::sot_id() const { return impl_->sot; }
std::int64_t ClipTokenizer::eot_id() const { return impl_->eot; }
std::int64_t ClipTokenizer::vocab_size() const { return static_cast<std::int64_t>(impl_->vocab.size()); }
int ClipTokenizer::merges() const { return impl_->merges; }
const std::string& ClipTokenizer::path() const { return impl_->path; }
const std::string& ClipTokenizer::sha256() const { return impl_->sha; }
std::string ClipTokenizer::identity() const { return "clip-bpe:" + impl_->sha.substr(0, 16); }

// Generated tables keep the generator's layout (clang-format is off from here to the end).
// clang-format off
// ---- generated tables ------------------------------------------------------------------------------
//
// Generated with Debian bookworm's Python 3.11.2 (unicodedata 14.0.0) and python3-regex 0.1.20221031
// (regex 2022.10.31, the module CLIP uses; its own Unicode 15.0 data), by evaluating, for every code
// point c:
//   kLetters, kNumbers:  regex.match(r"[\p{L}]" / r"[\p{N}]", c, regex.IGNORECASE)
//   kRegexSpaces:        regex.match(r"\s", c)
//   kUnmatched:          none of [\p{L}], [\p{N}], [^\s\p{L}\p{N}] (IGNORECASE), \s matches c
//   kLowerRuns:          c.lower() where it is one other character, as runs
//                        {first, count, stride, lower - c} (c.lower() == "i\u0307" for U+0130 only)
//   kCaseIgnorable:      ("A" + c + "\u03a3").lower() ends in "\u03c2" but (c + "\u03a3").lower() does not
//   kCased:              (c + "\u03a3").lower() ends in "\u03c2" (cased, not case-ignorable)
//   kWidthMap:           ftfy's _build_width_map(): {0x3000: " "} + NFKC of U+FF01..U+FFEF where it differs
//   kHtml5Entities:      html.entities.html5, sorted by name (bytes), values as UTF-8
// so the tokenizer splits, lower-cases and unescapes exactly as the Python code it mirrors.
namespace clip_tokenizer_detail {

struct CpRange {
  char32_t lo, hi;
};
struct LowerRun {
  char32_t first;
  std::uint16_t count;
  std::uint8_t stride;
  std::int32_t delta;
};
struct CpMap2 {
  char32_t from, to1, to2;
};
struct HtmlEntity {
  const char* name;
  const char* utf8;
};

constexpr CpRange kLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6},
    {0xD8, 0xF6}, {0xF8, 0x2C1}, {0x2C6, 0x2D1}, {0x2E0, 0x2E4}, {0x2EC, 0x2EC}, {0x2EE, 0x2EE},
    {0x370, 0x374}, {0x376, 0x377}, {0x37A, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A},
    {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x559, 0x559}, {0x560, 0x588}, {0x5D0, 0x5EA}, {0x5EF, 0x5F2}, {0x620, 0x64A}, {0x66E, 0x66F},
    {0x671, 0x6D3}, {0x6D5, 0x6D5}, {0x6E5, 0x6E6}, {0x6EE, 0x6EF}, {0x6FA, 0x6FC}, {0x6FF, 0x6FF},
    {0x710, 0x710}, {0x712, 0x72F}, {0x74D, 0x7A5}, {0x7B1, 0x7B1}, {0x7CA, 0x7EA}, {0x7F4, 0x7F5},
    {0x7FA, 0x7FA}, {0x800, 0x815}, {0x81A, 0x81A}, {0x824, 0x824}, {0x828, 0x828}, {0x840, 0x858},
    {0x860, 0x86A}, {0x870, 0x887}, {0x889, 0x88E}, {0x8A0, 0x8C9}, {0x904, 0x939}, {0x93D, 0x93D},
    {0x950, 0x950}, {0x958, 0x961}, {0x971, 0x980}, {0x985, 0x98C}, {0x98F, 0x990}, {0x993, 0x9A8},
    {0x9AA, 0x9B0}, {0x9B2, 0x9B2}, {0x9B6, 0x9B9}, {0x9BD, 0x9BD}, {0x9CE, 0x9CE}, {0x9DC, 0x9DD},
    {0x9DF, 0x9E1}, {0x9F0, 0x9F1}, {0x9FC, 0x9FC}, {0xA05, 0xA0A}, {0xA0F, 0xA10}, {0xA13, 0xA28},
    {0xA2A, 0xA30}, {0xA32, 0xA33}, {0xA35, 0xA36}, {0xA38, 0xA39}, {0xA59, 0xA5C}, {0xA5E, 0xA5E},
    {0xA72, 0xA74}, {0xA85, 0xA8D}, {0xA8F, 0xA91}, {0xA93, 0xAA8}, {0xAAA, 0xAB0}, {0xAB2, 0xAB3},
    {0xAB5, 0xAB9}, {0xABD, 0xABD}, {0xAD0, 0xAD0}, {0xAE0, 0xAE1}, {0xAF9, 0xAF9}, {0xB05, 0xB0C},
    {0xB0F, 0xB10}, {0xB13, 0xB28}, {0xB2A, 0xB30}, {0xB32, 0xB33}, {0xB35, 0xB39}, {0xB3D, 0xB3D},
    {0xB5C, 0xB5D}, {0xB5F, 0xB61}, {0xB71, 0xB71}, {0xB83, 0xB83}, {0xB85, 0xB8A}, {0xB8E, 0xB90},
    {0xB92, 0xB95}, {0xB99, 0xB9A}, {0xB9C, 0xB9C}, {0xB9E, 0xB9F}, {0xBA3, 0xBA4}, {0xBA8, 0xBAA},
    {0xBAE, 0xBB9}, {0xBD0, 0xBD0}, {0xC05, 0xC0C}, {0xC0E, 0xC10}, {0xC12, 0xC28}, {0xC2A, 0xC39},
    {0xC3D, 0xC3D}, {0xC58, 0xC5A}, {0xC5D, 0xC5D}, {0xC60, 0xC61}, {0xC80, 0xC80}, {0xC85, 0xC8C},
    {0xC8E, 0xC90}, {0xC92, 0xCA8}, {0xCAA, 0xCB3}, {0xCB5, 0xCB9}, {0xCBD, 0xCBD}, {0xCDD, 0xCDE},
    {0xCE0, 0xCE1}, {0xCF1, 0xCF2}, {0xD04, 0xD0C}, {0xD0E, 0xD10}, {0xD12, 0xD3A}, {0xD3D, 0xD3D},
    {0xD4E, 0xD4E}, {0xD54, 0xD56}, {0xD5F, 0xD61}, {0xD7A, 0xD7F}, {0xD85, 0xD96}, {0xD9A, 0xDB1},
    {0xDB3, 0xDBB}, {0xDBD, 0xDBD}, {0xDC0, 0xDC6}, {0xE01, 0xE30}, {0xE32, 0xE33}, {0xE40, 0xE46},
    {0xE81, 0xE82}, {0xE84, 0xE84}, {0xE86, 0xE8A}, {0xE8C, 0xEA3}, {0xEA5, 0xEA5}, {0xEA7, 0xEB0},
    {0xEB2, 0xEB3}, {0xEBD, 0xEBD}, {0xEC0, 0xEC4}, {0xEC6, 0xEC6}, {0xEDC, 0xEDF}, {0xF00, 0xF00},
    {0xF40, 0xF47}, {0xF49, 0xF6C}, {0xF88, 0xF8C}, {0x1000, 0x102A}, {0x103F, 0x103F}, {0x1050, 0x1055},
    {0x105A, 0x105D}, {0x1061, 0x1061}, {0x1065, 0x1066}, {0x106E, 0x1070}, {0x1075, 0x1081}, {0x108E, 0x108E},
    {0x10A0, 0x10C5}, {0x10C7, 0x10C7}, {0x10CD, 0x10CD}, {0x10D0, 0x10FA}, {0x10FC, 0x1248}, {0x124A, 0x124D},
    {0x1250, 0x1256}, {0x1258, 0x1258}, {0x125A, 0x125D}, {0x1260, 0x1288}, {0x128A, 0x128D}, {0x1290, 0x12B0},
    {0x12B2, 0x12B5}, {0x12B8, 0x12BE}, {0x12C0, 0x12C0}, {0x12C2, 0x12C5}, {0x12C8, 0x12D6}, {0x12D8, 0x1310},
    {0x1312, 0x1315}, {0x1318, 0x135A}, {0x1380, 0x138F}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1401, 0x166C},
    {0x166F, 0x167F}, {0x1681, 0x169A}, {0x16A0, 0x16EA}, {0x16F1, 0x16F8}, {0x1700, 0x1711}, {0x171F, 0x1731},
    {0x1740, 0x1751}, {0x1760, 0x176C}, {0x176E, 0x1770}, {0x1780, 0x17B3}, {0x17D7, 0x17D7}, {0x17DC, 0x17DC},
    {0x1820, 0x1878}, {0x1880, 0x1884}, {0x1887, 0x18A8}, {0x18AA, 0x18AA}, {0x18B0, 0x18F5}, {0x1900, 0x191E},
    {0x1950, 0x196D}, {0x1970, 0x1974}, {0x1980, 0x19AB}, {0x19B0, 0x19C9}, {0x1A00, 0x1A16}, {0x1A20, 0x1A54},
    {0x1AA7, 0x1AA7}, {0x1B05, 0x1B33}, {0x1B45, 0x1B4C}, {0x1B83, 0x1BA0}, {0x1BAE, 0x1BAF}, {0x1BBA, 0x1BE5},
    {0x1C00, 0x1C23}, {0x1C4D, 0x1C4F}, {0x1C5A, 0x1C7D}, {0x1C80, 0x1C88}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
    {0x1CE9, 0x1CEC}, {0x1CEE, 0x1CF3}, {0x1CF5, 0x1CF6}, {0x1CFA, 0x1CFA}, {0x1D00, 0x1DBF}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D},
    {0x212F, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2CE4},
    {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0x2D00, 0x2D25}, {0x2D27, 0x2D27}, {0x2D2D, 0x2D2D}, {0x2D30, 0x2D67},
    {0x2D6F, 0x2D6F}, {0x2D80, 0x2D96}, {0x2DA0, 0x2DA6}, {0x2DA8, 0x2DAE}, {0x2DB0, 0x2DB6}, {0x2DB8, 0x2DBE},
    {0x2DC0, 0x2DC6}, {0x2DC8, 0x2DCE}, {0x2DD0, 0x2DD6}, {0x2DD8, 0x2DDE}, {0x2E2F, 0x2E2F}, {0x3005, 0x3006},
    {0x3031, 0x3035}, {0x303B, 0x303C}, {0x3041, 0x3096}, {0x309D, 0x309F}, {0x30A1, 0x30FA}, {0x30FC, 0x30FF},
    {0x3105, 0x312F}, {0x3131, 0x318E}, {0x31A0, 0x31BF}, {0x31F0, 0x31FF}, {0x3400, 0x4DBF}, {0x4E00, 0xA48C},
    {0xA4D0, 0xA4FD}, {0xA500, 0xA60C}, {0xA610, 0xA61F}, {0xA62A, 0xA62B}, {0xA640, 0xA66E}, {0xA67F, 0xA69D},
    {0xA6A0, 0xA6E5}, {0xA717, 0xA71F}, {0xA722, 0xA788}, {0xA78B, 0xA7CA}, {0xA7D0, 0xA7D1}, {0xA7D3, 0xA7D3},
    {0xA7D5, 0xA7D9}, {0xA7F2, 0xA801}, {0xA803, 0xA805}, {0xA807, 0xA80A}, {0xA80C, 0xA822}, {0xA840, 0xA873},
    {0xA882, 0xA8B3}, {0xA8F2, 0xA8F7}, {0xA8FB, 0xA8FB}, {0xA8FD, 0xA8FE}, {0xA90A, 0xA925}, {0xA930, 0xA946},
    {0xA960, 0xA97C}, {0xA984, 0xA9B2}, {0xA9CF, 0xA9CF}, {0xA9E0, 0xA9E4}, {0xA9E6, 0xA9EF}, {0xA9FA, 0xA9FE},
    {0xAA00, 0xAA28}, {0xAA40, 0xAA42}, {0xAA44, 0xAA4B}, {0xAA60, 0xAA76}, {0xAA7A, 0xAA7A}, {0xAA7E, 0xAAAF},
    {0xAAB1, 0xAAB1}, {0xAAB5, 0xAAB6}, {0xAAB9, 0xAABD}, {0xAAC0, 0xAAC0}, {0xAAC2, 0xAAC2}, {0xAADB, 0xAADD},
    {0xAAE0, 0xAAEA}, {0xAAF2, 0xAAF4}, {0xAB01, 0xAB06}, {0xAB09, 0xAB0E}, {0xAB11, 0xAB16}, {0xAB20, 0xAB26},
    {0xAB28, 0xAB2E}, {0xAB30, 0xAB5A}, {0xAB5C, 0xAB69}, {0xAB70, 0xABE2}, {0xAC00, 0xD7A3}, {0xD7B0, 0xD7C6},
    {0xD7CB, 0xD7FB}, {0xF900, 0xFA6D}, {0xFA70, 0xFAD9}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFB1D, 0xFB1D},
    {0xFB1F, 0xFB28}, {0xFB2A, 0xFB36}, {0xFB38, 0xFB3C}, {0xFB3E, 0xFB3E}, {0xFB40, 0xFB41}, {0xFB43, 0xFB44},
    {0xFB46, 0xFBB1}, {0xFBD3, 0xFD3D}, {0xFD50, 0xFD8F}, {0xFD92, 0xFDC7}, {0xFDF0, 0xFDFB}, {0xFE70, 0xFE74},
    {0xFE76, 0xFEFC}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0xFF66, 0xFFBE}, {0xFFC2, 0xFFC7}, {0xFFCA, 0xFFCF},
    {0xFFD2, 0xFFD7}, {0xFFDA, 0xFFDC}, {0x10000, 0x1000B}, {0x1000D, 0x10026}, {0x10028, 0x1003A}, {0x1003C, 0x1003D},
    {0x1003F, 0x1004D}, {0x10050, 0x1005D}, {0x10080, 0x100FA}, {0x10280, 0x1029C}, {0x102A0, 0x102D0}, {0x10300, 0x1031F},
    {0x1032D, 0x10340}, {0x10342, 0x10349}, {0x10350, 0x10375}, {0x10380, 0x1039D}, {0x103A0, 0x103C3}, {0x103C8, 0x103CF},
    {0x10400, 0x1049D}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10500, 0x10527}, {0x10530, 0x10563}, {0x10570, 0x1057A},
    {0x1057C, 0x1058A}, {0x1058C, 0x10592}, {0x10594, 0x10595}, {0x10597, 0x105A1}, {0x105A3, 0x105B1}, {0x105B3, 0x105B9},
    {0x105BB, 0x105BC}, {0x10600, 0x10736}, {0x10740, 0x10755}, {0x10760, 0x10767}, {0x10780, 0x10785}, {0x10787, 0x107B0},
    {0x107B2, 0x107BA}, {0x10800, 0x10805}, {0x10808, 0x10808}, {0x1080A, 0x10835}, {0x10837, 0x10838}, {0x1083C, 0x1083C},
    {0x1083F, 0x10855}, {0x10860, 0x10876}, {0x10880, 0x1089E}, {0x108E0, 0x108F2}, {0x108F4, 0x108F5}, {0x10900, 0x10915},
    {0x10920, 0x10939}, {0x10980, 0x109B7}, {0x109BE, 0x109BF}, {0x10A00, 0x10A00}, {0x10A10, 0x10A13}, {0x10A15, 0x10A17},
    {0x10A19, 0x10A35}, {0x10A60, 0x10A7C}, {0x10A80, 0x10A9C}, {0x10AC0, 0x10AC7}, {0x10AC9, 0x10AE4}, {0x10B00, 0x10B35},
    {0x10B40, 0x10B55}, {0x10B60, 0x10B72}, {0x10B80, 0x10B91}, {0x10C00, 0x10C48}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2},
    {0x10D00, 0x10D23}, {0x10E80, 0x10EA9}, {0x10EB0, 0x10EB1}, {0x10F00, 0x10F1C}, {0x10F27, 0x10F27}, {0x10F30, 0x10F45},
    {0x10F70, 0x10F81}, {0x10FB0, 0x10FC4}, {0x10FE0, 0x10FF6}, {0x11003, 0x11037}, {0x11071, 0x11072}, {0x11075, 0x11075},
    {0x11083, 0x110AF}, {0x110D0, 0x110E8}, {0x11103, 0x11126}, {0x11144, 0x11144}, {0x11147, 0x11147}, {0x11150, 0x11172},
    {0x11176, 0x11176}, {0x11183, 0x111B2}, {0x111C1, 0x111C4}, {0x111DA, 0x111DA}, {0x111DC, 0x111DC}, {0x11200, 0x11211},
    {0x11213, 0x1122B}, {0x1123F, 0x11240}, {0x11280, 0x11286}, {0x11288, 0x11288}, {0x1128A, 0x1128D}, {0x1128F, 0x1129D},
    {0x1129F, 0x112A8}, {0x112B0, 0x112DE}, {0x11305, 0x1130C}, {0x1130F, 0x11310}, {0x11313, 0x11328}, {0x1132A, 0x11330},
    {0x11332, 0x11333}, {0x11335, 0x11339}, {0x1133D, 0x1133D}, {0x11350, 0x11350}, {0x1135D, 0x11361}, {0x11400, 0x11434},
    {0x11447, 0x1144A}, {0x1145F, 0x11461}, {0x11480, 0x114AF}, {0x114C4, 0x114C5}, {0x114C7, 0x114C7}, {0x11580, 0x115AE},
    {0x115D8, 0x115DB}, {0x11600, 0x1162F}, {0x11644, 0x11644}, {0x11680, 0x116AA}, {0x116B8, 0x116B8}, {0x11700, 0x1171A},
    {0x11740, 0x11746}, {0x11800, 0x1182B}, {0x118A0, 0x118DF}, {0x118FF, 0x11906}, {0x11909, 0x11909}, {0x1190C, 0x11913},
    {0x11915, 0x11916}, {0x11918, 0x1192F}, {0x1193F, 0x1193F}, {0x11941, 0x11941}, {0x119A0, 0x119A7}, {0x119AA, 0x119D0},
    {0x119E1, 0x119E1}, {0x119E3, 0x119E3}, {0x11A00, 0x11A00}, {0x11A0B, 0x11A32}, {0x11A3A, 0x11A3A}, {0x11A50, 0x11A50},
    {0x11A5C, 0x11A89}, {0x11A9D, 0x11A9D}, {0x11AB0, 0x11AF8}, {0x11C00, 0x11C08}, {0x11C0A, 0x11C2E}, {0x11C40, 0x11C40},
    {0x11C72, 0x11C8F}, {0x11D00, 0x11D06}, {0x11D08, 0x11D09}, {0x11D0B, 0x11D30}, {0x11D46, 0x11D46}, {0x11D60, 0x11D65},
    {0x11D67, 0x11D68}, {0x11D6A, 0x11D89}, {0x11D98, 0x11D98}, {0x11EE0, 0x11EF2}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10},
    {0x11F12, 0x11F33}, {0x11FB0, 0x11FB0}, {0x12000, 0x12399}, {0x12480, 0x12543}, {0x12F90, 0x12FF0}, {0x13000, 0x1342F},
    {0x13441, 0x13446}, {0x14400, 0x14646}, {0x16800, 0x16A38}, {0x16A40, 0x16A5E}, {0x16A70, 0x16ABE}, {0x16AD0, 0x16AED},
    {0x16B00, 0x16B2F}, {0x16B40, 0x16B43}, {0x16B63, 0x16B77}, {0x16B7D, 0x16B8F}, {0x16E40, 0x16E7F}, {0x16F00, 0x16F4A},
    {0x16F50, 0x16F50}, {0x16F93, 0x16F9F}, {0x16FE0, 0x16FE1}, {0x16FE3, 0x16FE3}, {0x17000, 0x187F7}, {0x18800, 0x18CD5},
    {0x18D00, 0x18D08}, {0x1AFF0, 0x1AFF3}, {0x1AFF5, 0x1AFFB}, {0x1AFFD, 0x1AFFE}, {0x1B000, 0x1B122}, {0x1B132, 0x1B132},
    {0x1B150, 0x1B152}, {0x1B155, 0x1B155}, {0x1B164, 0x1B167}, {0x1B170, 0x1B2FB}, {0x1BC00, 0x1BC6A}, {0x1BC70, 0x1BC7C},
    {0x1BC80, 0x1BC88}, {0x1BC90, 0x1BC99}, {0x1D400, 0x1D454}, {0x1D456, 0x1D49C}, {0x1D49E, 0x1D49F}, {0x1D4A2, 0x1D4A2},
    {0x1D4A5, 0x1D4A6}, {0x1D4A9, 0x1D4AC}, {0x1D4AE, 0x1D4B9}, {0x1D4BB, 0x1D4BB}, {0x1D4BD, 0x1D4C3}, {0x1D4C5, 0x1D505},
    {0x1D507, 0x1D50A}, {0x1D50D, 0x1D514}, {0x1D516, 0x1D51C}, {0x1D51E, 0x1D539}, {0x1D53B, 0x1D53E}, {0x1D540, 0x1D544},
    {0x1D546, 0x1D546}, {0x1D54A, 0x1D550}, {0x1D552, 0x1D6A5}, {0x1D6A8, 0x1D6C0}, {0x1D6C2, 0x1D6DA}, {0x1D6DC, 0x1D6FA},
    {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734}, {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E}, {0x1D770, 0x1D788}, {0x1D78A, 0x1D7A8},
    {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB}, {0x1DF00, 0x1DF1E}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E100, 0x1E12C},
    {0x1E137, 0x1E13D}, {0x1E14E, 0x1E14E}, {0x1E290, 0x1E2AD}, {0x1E2C0, 0x1E2EB}, {0x1E4D0, 0x1E4EB}, {0x1E7E0, 0x1E7E6},
    {0x1E7E8, 0x1E7EB}, {0x1E7ED, 0x1E7EE}, {0x1E7F0, 0x1E7FE}, {0x1E800, 0x1E8C4}, {0x1E900, 0x1E943}, {0x1E94B, 0x1E94B},
    {0x1EE00, 0x1EE03}, {0x1EE05, 0x1EE1F}, {0x1EE21, 0x1EE22}, {0x1EE24, 0x1EE24}, {0x1EE27, 0x1EE27}, {0x1EE29, 0x1EE32},
    {0x1EE34, 0x1EE37}, {0x1EE39, 0x1EE39}, {0x1EE3B, 0x1EE3B}, {0x1EE42, 0x1EE42}, {0x1EE47, 0x1EE47}, {0x1EE49, 0x1EE49},
    {0x1EE4B, 0x1EE4B}, {0x1EE4D, 0x1EE4F}, {0x1EE51, 0x1EE52}, {0x1EE54, 0x1EE54}, {0x1EE57, 0x1EE57}, {0x1EE59, 0x1EE59},
    {0x1EE5B, 0x1EE5B}, {0x1EE5D, 0x1EE5D}, {0x1EE5F, 0x1EE5F}, {0x1EE61, 0x1EE62}, {0x1EE64, 0x1EE64}, {0x1EE67, 0x1EE6A},
    {0x1EE6C, 0x1EE72}, {0x1EE74, 0x1EE77}, {0x1EE79, 0x1EE7C}, {0x1EE7E, 0x1EE7E}, {0x1EE80, 0x1EE89}, {0x1EE8B, 0x1EE9B},
    {0x1EEA1, 0x1EEA3}, {0x1EEA5, 0x1EEA9}, {0x1EEAB, 0x1EEBB}, {0x20000, 0x2A6DF}, {0x2A700, 0x2B739}, {0x2B740, 0x2B81D},
    {0x2B820, 0x2CEA1}, {0x2CEB0, 0x2EBE0}, {0x2F800, 0x2FA1D}, {0x30000, 0x3134A}, {0x31350, 0x323AF},
};
constexpr CpRange kNumbers[] = {
    {0x30, 0x39}, {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9},
    {0x7C0, 0x7C9}, {0x966, 0x96F}, {0x9E6, 0x9EF}, {0x9F4, 0x9F9}, {0xA66, 0xA6F}, {0xAE6, 0xAEF},
    {0xB66, 0xB6F}, {0xB72, 0xB77}, {0xBE6, 0xBF2}, {0xC66, 0xC6F}, {0xC78, 0xC7E}, {0xCE6, 0xCEF},
    {0xD58, 0xD5E}, {0xD66, 0xD78}, {0xDE6, 0xDEF}, {0xE50, 0xE59}, {0xED0, 0xED9}, {0xF20, 0xF33},
    {0x1040, 0x1049}, {0x1090, 0x1099}, {0x1369, 0x137C}, {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9},
    {0x1810, 0x1819}, {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A89}, {0x1A90, 0x1A99}, {0x1B50, 0x1B59},
    {0x1BB0, 0x1BB9}, {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079}, {0x2080, 0x2089},
    {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF}, {0x2776, 0x2793}, {0x2CFD, 0x2CFD},
    {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A}, {0x3192, 0x3195}, {0x3220, 0x3229}, {0x3248, 0x324F},
    {0x3251, 0x325F}, {0x3280, 0x3289}, {0x32B1, 0x32BF}, {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835},
    {0xA8D0, 0xA8D9}, {0xA900, 0xA909}, {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9},
    {0xFF10, 0xFF19}, {0x10107, 0x10133}, {0x10140, 0x10178}, {0x1018A, 0x1018B}, {0x102E1, 0x102FB}, {0x10320, 0x10323},
    {0x10341, 0x10341}, {0x1034A, 0x1034A}, {0x103D1, 0x103D5}, {0x104A0, 0x104A9}, {0x10858, 0x1085F}, {0x10879, 0x1087F},
    {0x108A7, 0x108AF}, {0x108FB, 0x108FF}, {0x10916, 0x1091B}, {0x109BC, 0x109BD}, {0x109C0, 0x109CF}, {0x109D2, 0x109FF},
    {0x10A40, 0x10A48}, {0x10A7D, 0x10A7E}, {0x10A9D, 0x10A9F}, {0x10AEB, 0x10AEF}, {0x10B58, 0x10B5F}, {0x10B78, 0x10B7F},
    {0x10BA9, 0x10BAF}, {0x10CFA, 0x10CFF}, {0x10D30, 0x10D39}, {0x10E60, 0x10E7E}, {0x10F1D, 0x10F26}, {0x10F51, 0x10F54},
    {0x10FC5, 0x10FCB}, {0x11052, 0x1106F}, {0x110F0, 0x110F9}, {0x11136, 0x1113F}, {0x111D0, 0x111D9}, {0x111E1, 0x111F4},
    {0x112F0, 0x112F9}, {0x11450, 0x11459}, {0x114D0, 0x114D9}, {0x11650, 0x11659}, {0x116C0, 0x116C9}, {0x11730, 0x1173B},
    {0x118E0, 0x118F2}, {0x11950, 0x11959}, {0x11C50, 0x11C6C}, {0x11D50, 0x11D59}, {0x11DA0, 0x11DA9}, {0x11F50, 0x11F59},
    {0x11FC0, 0x11FD4}, {0x12400, 0x1246E}, {0x16A60, 0x16A69}, {0x16AC0, 0x16AC9}, {0x16B50, 0x16B59}, {0x16B5B, 0x16B61},
    {0x16E80, 0x16E96}, {0x1D2C0, 0x1D2D3}, {0x1D2E0, 0x1D2F3}, {0x1D360, 0x1D378}, {0x1D7CE, 0x1D7FF}, {0x1E140, 0x1E149},
    {0x1E2F0, 0x1E2F9}, {0x1E4F0, 0x1E4F9}, {0x1E8C7, 0x1E8CF}, {0x1E950, 0x1E959}, {0x1EC71, 0x1ECAB}, {0x1ECAD, 0x1ECAF},
    {0x1ECB1, 0x1ECB4}, {0x1ED01, 0x1ED2D}, {0x1ED2F, 0x1ED3D}, {0x1F100, 0x1F10C}, {0x1FBF0, 0x1FBF9},
};
constexpr CpRange kRegexSpaces[] = {
    {0x9, 0xD}, {0x20, 0x20}, {0x85, 0x85}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};
constexpr CpRange kUnmatched[] = {
    {0x345, 0x345},
};
constexpr CpRange kCaseIgnorable[] = {
    {0x27, 0x27}, {0x2E, 0x2E}, {0x3A, 0x3A}, {0x5E, 0x5E}, {0x60, 0x60}, {0xA8, 0xA8},
    {0xAD, 0xAD}, {0xAF, 0xAF}, {0xB4, 0xB4}, {0xB7, 0xB8}, {0x2B0, 0x36F}, {0x374, 0x375},
    {0x37A, 0x37A}, {0x384, 0x385}, {0x387, 0x387}, {0x483, 0x489}, {0x559, 0x559}, {0x55F, 0x55F},
    {0x591, 0x5BD}, {0x5BF, 0x5BF}, {0x5C1, 0x5C2}, {0x5C4, 0x5C5}, {0x5C7, 0x5C7}, {0x5F4, 0x5F4},
    {0x600, 0x605}, {0x610, 0x61A}, {0x61C, 0x61C}, {0x640, 0x640}, {0x64B, 0x65F}, {0x670, 0x670},
    {0x6D6, 0x6DD}, {0x6DF, 0x6E8}, {0x6EA, 0x6ED}, {0x70F, 0x70F}, {0x711, 0x711}, {0x730, 0x74A},
    {0x7A6, 0x7B0}, {0x7EB, 0x7F5}, {0x7FA, 0x7FA}, {0x7FD, 0x7FD}, {0x816, 0x82D}, {0x859, 0x85B},
    {0x888, 0x888}, {0x890, 0x891}, {0x898, 0x89F}, {0x8C9, 0x902}, {0x93A, 0x93A}, {0x93C, 0x93C},
    {0x941, 0x948}, {0x94D, 0x94D}, {0x951, 0x957}, {0x962, 0x963}, {0x971, 0x971}, {0x981, 0x981},
    {0x9BC, 0x9BC}, {0x9C1, 0x9C4}, {0x9CD, 0x9CD}, {0x9E2, 0x9E3}, {0x9FE, 0x9FE}, {0xA01, 0xA02},
    {0xA3C, 0xA3C}, {0xA41, 0xA42}, {0xA47, 0xA48}, {0xA4B, 0xA4D}, {0xA51, 0xA51}, {0xA70, 0xA71},
    {0xA75, 0xA75}, {0xA81, 0xA82}, {0xABC, 0xABC}, {0xAC1, 0xAC5}, {0xAC7, 0xAC8}, {0xACD, 0xACD},
    {0xAE2, 0xAE3}, {0xAFA, 0xAFF}, {0xB01, 0xB01}, {0xB3C, 0xB3C}, {0xB3F, 0xB3F}, {0xB41, 0xB44},
    {0xB4D, 0xB4D}, {0xB55, 0xB56}, {0xB62, 0xB63}, {0xB82, 0xB82}, {0xBC0, 0xBC0}, {0xBCD, 0xBCD},
    {0xC00, 0xC00}, {0xC04, 0xC04}, {0xC3C, 0xC3C}, {0xC3E, 0xC40}, {0xC46, 0xC48}, {0xC4A, 0xC4D},
    {0xC55, 0xC56}, {0xC62, 0xC63}, {0xC81, 0xC81}, {0xCBC, 0xCBC}, {0xCBF, 0xCBF}, {0xCC6, 0xCC6},
    {0xCCC, 0xCCD}, {0xCE2, 0xCE3}, {0xD00, 0xD01}, {0xD3B, 0xD3C}, {0xD41, 0xD44}, {0xD4D, 0xD4D},
    {0xD62, 0xD63}, {0xD81, 0xD81}, {0xDCA, 0xDCA}, {0xDD2, 0xDD4}, {0xDD6, 0xDD6}, {0xE31, 0xE31},
    {0xE34, 0xE3A}, {0xE46, 0xE4E}, {0xEB1, 0xEB1}, {0xEB4, 0xEBC}, {0xEC6, 0xEC6}, {0xEC8, 0xECD},
    {0xF18, 0xF19}, {0xF35, 0xF35}, {0xF37, 0xF37}, {0xF39, 0xF39}, {0xF71, 0xF7E}, {0xF80, 0xF84},
    {0xF86, 0xF87}, {0xF8D, 0xF97}, {0xF99, 0xFBC}, {0xFC6, 0xFC6}, {0x102D, 0x1030}, {0x1032, 0x1037},
    {0x1039, 0x103A}, {0x103D, 0x103E}, {0x1058, 0x1059}, {0x105E, 0x1060}, {0x1071, 0x1074}, {0x1082, 0x1082},
    {0x1085, 0x1086}, {0x108D, 0x108D}, {0x109D, 0x109D}, {0x10FC, 0x10FC}, {0x135D, 0x135F}, {0x1712, 0x1714},
    {0x1732, 0x1733}, {0x1752, 0x1753}, {0x1772, 0x1773}, {0x17B4, 0x17B5}, {0x17B7, 0x17BD}, {0x17C6, 0x17C6},
    {0x17C9, 0x17D3}, {0x17D7, 0x17D7}, {0x17DD, 0x17DD}, {0x180B, 0x180F}, {0x1843, 0x1843}, {0x1885, 0x1886},
    {0x18A9, 0x18A9}, {0x1920, 0x1922}, {0x1927, 0x1928}, {0x1932, 0x1932}, {0x1939, 0x193B}, {0x1A17, 0x1A18},
    {0x1A1B, 0x1A1B}, {0x1A56, 0x1A56}, {0x1A58, 0x1A5E}, {0x1A60, 0x1A60}, {0x1A62, 0x1A62}, {0x1A65, 0x1A6C},
    {0x1A73, 0x1A7C}, {0x1A7F, 0x1A7F}, {0x1AA7, 0x1AA7}, {0x1AB0, 0x1ACE}, {0x1B00, 0x1B03}, {0x1B34, 0x1B34},
    {0x1B36, 0x1B3A}, {0x1B3C, 0x1B3C}, {0x1B42, 0x1B42}, {0x1B6B, 0x1B73}, {0x1B80, 0x1B81}, {0x1BA2, 0x1BA5},
    {0x1BA8, 0x1BA9}, {0x1BAB, 0x1BAD}, {0x1BE6, 0x1BE6}, {0x1BE8, 0x1BE9}, {0x1BED, 0x1BED}, {0x1BEF, 0x1BF1},
    {0x1C2C, 0x1C33}, {0x1C36, 0x1C37}, {0x1C78, 0x1C7D}, {0x1CD0, 0x1CD2}, {0x1CD4, 0x1CE0}, {0x1CE2, 0x1CE8},
    {0x1CED, 0x1CED}, {0x1CF4, 0x1CF4}, {0x1CF8, 0x1CF9}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78}, {0x1D9B, 0x1DFF},
    {0x1FBD, 0x1FBD}, {0x1FBF, 0x1FC1}, {0x1FCD, 0x1FCF}, {0x1FDD, 0x1FDF}, {0x1FED, 0x1FEF}, {0x1FFD, 0x1FFE},
    {0x200B, 0x200F}, {0x2018, 0x2019}, {0x2024, 0x2024}, {0x2027, 0x2027}, {0x202A, 0x202E}, {0x2060, 0x2064},
    {0x2066, 0x206F}, {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x20D0, 0x20F0}, {0x2C7C, 0x2C7D},
    {0x2CEF, 0x2CF1}, {0x2D6F, 0x2D6F}, {0x2D7F, 0x2D7F}, {0x2DE0, 0x2DFF}, {0x2E2F, 0x2E2F}, {0x3005, 0x3005},
    {0x302A, 0x302D}, {0x3031, 0x3035}, {0x303B, 0x303B}, {0x3099, 0x309E}, {0x30FC, 0x30FE}, {0xA015, 0xA015},
    {0xA4F8, 0xA4FD}, {0xA60C, 0xA60C}, {0xA66F, 0xA672}, {0xA674, 0xA67D}, {0xA67F, 0xA67F}, {0xA69C, 0xA69F},
    {0xA6F0, 0xA6F1}, {0xA700, 0xA721}, {0xA770, 0xA770}, {0xA788, 0xA78A}, {0xA7F2, 0xA7F4}, {0xA7F8, 0xA7F9},
    {0xA802, 0xA802}, {0xA806, 0xA806}, {0xA80B, 0xA80B}, {0xA825, 0xA826}, {0xA82C, 0xA82C}, {0xA8C4, 0xA8C5},
    {0xA8E0, 0xA8F1}, {0xA8FF, 0xA8FF}, {0xA926, 0xA92D}, {0xA947, 0xA951}, {0xA980, 0xA982}, {0xA9B3, 0xA9B3},
    {0xA9B6, 0xA9B9}, {0xA9BC, 0xA9BD}, {0xA9CF, 0xA9CF}, {0xA9E5, 0xA9E6}, {0xAA29, 0xAA2E}, {0xAA31, 0xAA32},
    {0xAA35, 0xAA36}, {0xAA43, 0xAA43}, {0xAA4C, 0xAA4C}, {0xAA70, 0xAA70}, {0xAA7C, 0xAA7C}, {0xAAB0, 0xAAB0},
    {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8}, {0xAABE, 0xAABF}, {0xAAC1, 0xAAC1}, {0xAADD, 0xAADD}, {0xAAEC, 0xAAED},
    {0xAAF3, 0xAAF4}, {0xAAF6, 0xAAF6}, {0xAB5B, 0xAB5F}, {0xAB69, 0xAB6B}, {0xABE5, 0xABE5}, {0xABE8, 0xABE8},
    {0xABED, 0xABED}, {0xFB1E, 0xFB1E}, {0xFBB2, 0xFBC2}, {0xFE00, 0xFE0F}, {0xFE13, 0xFE13}, {0xFE20, 0xFE2F},
    {0xFE52, 0xFE52}, {0xFE55, 0xFE55}, {0xFEFF, 0xFEFF}, {0xFF07, 0xFF07}, {0xFF0E, 0xFF0E}, {0xFF1A, 0xFF1A},
    {0xFF3E, 0xFF3E}, {0xFF40, 0xFF40}, {0xFF70, 0xFF70}, {0xFF9E, 0xFF9F}, {0xFFE3, 0xFFE3}, {0xFFF9, 0xFFFB},
    {0x101FD, 0x101FD}, {0x102E0, 0x102E0}, {0x10376, 0x1037A}, {0x10780, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
    {0x10A01, 0x10A03}, {0x10A05, 0x10A06}, {0x10A0C, 0x10A0F}, {0x10A38, 0x10A3A}, {0x10A3F, 0x10A3F}, {0x10AE5, 0x10AE6},
    {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11001, 0x11001}, {0x11038, 0x11046},
    {0x11070, 0x11070}, {0x11073, 0x11074}, {0x1107F, 0x11081}, {0x110B3, 0x110B6}, {0x110B9, 0x110BA}, {0x110BD, 0x110BD},
    {0x110C2, 0x110C2}, {0x110CD, 0x110CD}, {0x11100, 0x11102}, {0x11127, 0x1112B}, {0x1112D, 0x11134}, {0x11173, 0x11173},
    {0x11180, 0x11181}, {0x111B6, 0x111BE}, {0x111C9, 0x111CC}, {0x111CF, 0x111CF}, {0x1122F, 0x11231}, {0x11234, 0x11234},
    {0x11236, 0x11237}, {0x1123E, 0x1123E}, {0x112DF, 0x112DF}, {0x112E3, 0x112EA}, {0x11300, 0x11301}, {0x1133B, 0x1133C},
    {0x11340, 0x11340}, {0x11366, 0x1136C}, {0x11370, 0x11374}, {0x11438, 0x1143F}, {0x11442, 0x11444}, {0x11446, 0x11446},
    {0x1145E, 0x1145E}, {0x114B3, 0x114B8}, {0x114BA, 0x114BA}, {0x114BF, 0x114C0}, {0x114C2, 0x114C3}, {0x115B2, 0x115B5},
    {0x115BC, 0x115BD}, {0x115BF, 0x115C0}, {0x115DC, 0x115DD}, {0x11633, 0x1163A}, {0x1163D, 0x1163D}, {0x1163F, 0x11640},
    {0x116AB, 0x116AB}, {0x116AD, 0x116AD}, {0x116B0, 0x116B5}, {0x116B7, 0x116B7}, {0x1171D, 0x1171F}, {0x11722, 0x11725},
    {0x11727, 0x1172B}, {0x1182F, 0x11837}, {0x11839, 0x1183A}, {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943},
    {0x119D4, 0x119D7}, {0x119DA, 0x119DB}, {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38}, {0x11A3B, 0x11A3E},
    {0x11A47, 0x11A47}, {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96}, {0x11A98, 0x11A99}, {0x11C30, 0x11C36},
    {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7}, {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3}, {0x11CB5, 0x11CB6},
    {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47}, {0x11D90, 0x11D91},
    {0x11D95, 0x11D95}, {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4}, {0x13430, 0x13438}, {0x16AF0, 0x16AF4}, {0x16B30, 0x16B36},
    {0x16B40, 0x16B43}, {0x16F4F, 0x16F4F}, {0x16F8F, 0x16F9F}, {0x16FE0, 0x16FE1}, {0x16FE3, 0x16FE4}, {0x1AFF0, 0x1AFF3},
    {0x1AFF5, 0x1AFFB}, {0x1AFFD, 0x1AFFE}, {0x1BC9D, 0x1BC9E}, {0x1BCA0, 0x1BCA3}, {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46},
    {0x1D167, 0x1D169}, {0x1D173, 0x1D182}, {0x1D185, 0x1D18B}, {0x1D1AA, 0x1D1AD}, {0x1D242, 0x1D244}, {0x1DA00, 0x1DA36},
    {0x1DA3B, 0x1DA6C}, {0x1DA75, 0x1DA75}, {0x1DA84, 0x1DA84}, {0x1DA9B, 0x1DA9F}, {0x1DAA1, 0x1DAAF}, {0x1E000, 0x1E006},
    {0x1E008, 0x1E018}, {0x1E01B, 0x1E021}, {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E130, 0x1E13D}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E8D0, 0x1E8D6}, {0x1E944, 0x1E94B}, {0x1F3FB, 0x1F3FF}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F},
    {0xE0100, 0xE01EF},
};
constexpr CpRange kCased[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6},
    {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373},
    {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556}, {0x560, 0x588},
    {0x10A0, 0x10C5}, {0x10C7, 0x10C7}, {0x10CD, 0x10CD}, {0x10D0, 0x10FA}, {0x10FD, 0x10FF}, {0x13A0, 0x13F5},
    {0x13F8, 0x13FD}, {0x1C80, 0x1C88}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57},
    {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
    {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115},
    {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134},
    {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2160, 0x217F}, {0x2183, 0x2184},
    {0x24B6, 0x24E9}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0x2D00, 0x2D25},
    {0x2D27, 0x2D27}, {0x2D2D, 0x2D2D}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
    {0xA78B, 0xA78E}, {0xA790, 0xA7CA}, {0xA7D0, 0xA7D1}, {0xA7D3, 0xA7D3}, {0xA7D5, 0xA7D9}, {0xA7F5, 0xA7F6},
    {0xA7FA, 0xA7FA}, {0xAB30, 0xAB5A}, {0xAB60, 0xAB68}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10570, 0x1057A},
    {0x1057C, 0x1058A}, {0x1058C, 0x10592}, {0x10594, 0x10595}, {0x10597, 0x105A1}, {0x105A3, 0x105B1}, {0x105B3, 0x105B9},
    {0x105BB, 0x105BC}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x16E40, 0x16E7F}, {0x1D400, 0x1D454},
    {0x1D456, 0x1D49C}, {0x1D49E, 0x1D49F}, {0x1D4A2, 0x1D4A2}, {0x1D4A5, 0x1D4A6}, {0x1D4A9, 0x1D4AC}, {0x1D4AE, 0x1D4B9},
    {0x1D4BB, 0x1D4BB}, {0x1D4BD, 0x1D4C3}, {0x1D4C5, 0x1D505}, {0x1D507, 0x1D50A}, {0x1D50D, 0x1D514}, {0x1D516, 0x1D51C},
    {0x1D51E, 0x1D539}, {0x1D53B, 0x1D53E}, {0x1D540, 0x1D544}, {0x1D546, 0x1D546}, {0x1D54A, 0x1D550}, {0x1D552, 0x1D6A5},
    {0x1D6A8, 0x1D6C0}, {0x1D6C2, 0x1D6DA}, {0x1D6DC, 0x1D6FA}, {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734}, {0x1D736, 0x1D74E},
    {0x1D750, 0x1D76E}, {0x1D770, 0x1D788}, {0x1D78A, 0x1D7A8}, {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB}, {0x1DF00, 0x1DF09},
    {0x1DF0B, 0x1DF1E}, {0x1E900, 0x1E943}, {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};
constexpr LowerRun kLowerRuns[] = {
    {0x41, 26, 1, 32}, {0xC0, 23, 1, 32}, {0xD8, 7, 1, 32}, {0x100, 24, 2, 1}, {0x132, 3, 2, 1},
    {0x139, 8, 2, 1}, {0x14A, 23, 2, 1}, {0x178, 1, 1, -121}, {0x179, 3, 2, 1}, {0x181, 1, 1, 210},
    {0x182, 2, 2, 1}, {0x186, 1, 1, 206}, {0x187, 1, 1, 1}, {0x189, 2, 1, 205}, {0x18B, 1, 1, 1},
    {0x18E, 1, 1, 79}, {0x18F, 1, 1, 202}, {0x190, 1, 1, 203}, {0x191, 1, 1, 1}, {0x193, 1, 1, 205},
    {0x194, 1, 1, 207}, {0x196, 1, 1, 211}, {0x197, 1, 1, 209}, {0x198, 1, 1, 1}, {0x19C, 1, 1, 211},
    {0x19D, 1, 1, 213}, {0x19F, 1, 1, 214}, {0x1A0, 3, 2, 1}, {0x1A6, 1, 1, 218}, {0x1A7, 1, 1, 1},
    {0x1A9, 1, 1, 218}, {0x1AC, 1, 1, 1}, {0x1AE, 1, 1, 218}, {0x1AF, 1, 1, 1}, {0x1B1, 2, 1, 217},
    {0x1B3, 2, 2, 1}, {0x1B7, 1, 1, 219}, {0x1B8, 1, 1, 1}, {0x1BC, 1, 1, 1}, {0x1C4, 1, 1, 2},
    {0x1C5, 1, 1, 1}, {0x1C7, 1, 1, 2}, {0x1C8, 1, 1, 1}, {0x1CA, 1, 1, 2}, {0x1CB, 9, 2, 1},
    {0x1DE, 9, 2, 1}, {0x1F1, 1, 1, 2}, {0x1F2, 2, 2, 1}, {0x1F6, 1, 1, -97}, {0x1F7, 1, 1, -56},
    {0x1F8, 20, 2, 1}, {0x220, 1, 1, -130}, {0x222, 9, 2, 1}, {0x23A, 1, 1, 10795}, {0x23B, 1, 1, 1},
    {0x23D, 1, 1, -163}, {0x23E, 1, 1, 10792}, {0x241, 1, 1, 1}, {0x243, 1, 1, -195}, {0x244, 1, 1, 69},
    {0x245, 1, 1, 71}, {0x246, 5, 2, 1}, {0x370, 2, 2, 1}, {0x376, 1, 1, 1}, {0x37F, 1, 1, 116},
    {0x386, 1, 1, 38}, {0x388, 3, 1, 37}, {0x38C, 1, 1, 64}, {0x38E, 2, 1, 63}, {0x391, 17, 1, 32},
    {0x3A3, 9, 1, 32}, {0x3CF, 1, 1, 8}, {0x3D8, 12, 2, 1}, {0x3F4, 1, 1, -60}, {0x3F7, 1, 1, 1},
    {0x3F9, 1, 1, -7}, {0x3FA, 1, 1, 1}, {0x3FD, 3, 1, -130}, {0x400, 16, 1, 80}, {0x410, 32, 1, 32},
    {0x460, 17, 2, 1}, {0x48A, 27, 2, 1}, {0x4C0, 1, 1, 15}, {0x4C1, 7, 2, 1}, {0x4D0, 48, 2, 1},
    {0x531, 38, 1, 48}, {0x10A0, 38, 1, 7264}, {0x10C7, 1, 1, 7264}, {0x10CD, 1, 1, 7264}, {0x13A0, 80, 1, 38864},
    {0x13F0, 6, 1, 8}, {0x1C90, 43, 1, -3008}, {0x1CBD, 3, 1, -3008}, {0x1E00, 75, 2, 1}, {0x1E9E, 1, 1, -7615},
    {0x1EA0, 48, 2, 1}, {0x1F08, 8, 1, -8}, {0x1F18, 6, 1, -8}, {0x1F28, 8, 1, -8}, {0x1F38, 8, 1, -8},
    {0x1F48, 6, 1, -8}, {0x1F59, 4, 2, -8}, {0x1F68, 8, 1, -8}, {0x1F88, 8, 1, -8}, {0x1F98, 8, 1, -8},
    {0x1FA8, 8, 1, -8}, {0x1FB8, 2, 1, -8}, {0x1FBA, 2, 1, -74}, {0x1FBC, 1, 1, -9}, {0x1FC8, 4, 1, -86},
    {0x1FCC, 1, 1, -9}, {0x1FD8, 2, 1, -8}, {0x1FDA, 2, 1, -100}, {0x1FE8, 2, 1, -8}, {0x1FEA, 2, 1, -112},
    {0x1FEC, 1, 1, -7}, {0x1FF8, 2, 1, -128}, {0x1FFA, 2, 1, -126}, {0x1FFC, 1, 1, -9}, {0x2126, 1, 1, -7517},
    {0x212A, 1, 1, -8383}, {0x212B, 1, 1, -8262}, {0x2132, 1, 1, 28}, {0x2160, 16, 1, 16}, {0x2183, 1, 1, 1},
    {0x24B6, 26, 1, 26}, {0x2C00, 48, 1, 48}, {0x2C60, 1, 1, 1}, {0x2C62, 1, 1, -10743}, {0x2C63, 1, 1, -3814},
    {0x2C64, 1, 1, -10727}, {0x2C67, 3, 2, 1}, {0x2C6D, 1, 1, -10780}, {0x2C6E, 1, 1, -10749}, {0x2C6F, 1, 1, -10783},
    {0x2C70, 1, 1, -10782}, {0x2C72, 1, 1, 1}, {0x2C75, 1, 1, 1}, {0x2C7E, 2, 1, -10815}, {0x2C80, 50, 2, 1},
    {0x2CEB, 2, 2, 1}, {0x2CF2, 1, 1, 1}, {0xA640, 23, 2, 1}, {0xA680, 14, 2, 1}, {0xA722, 7, 2, 1},
    {0xA732, 31, 2, 1}, {0xA779, 2, 2, 1}, {0xA77D, 1, 1, -35332}, {0xA77E, 5, 2, 1}, {0xA78B, 1, 1, 1},
    {0xA78D, 1, 1, -42280}, {0xA790, 2, 2, 1}, {0xA796, 10, 2, 1}, {0xA7AA, 1, 1, -42308}, {0xA7AB, 1, 1, -42319},
    {0xA7AC, 1, 1, -42315}, {0xA7AD, 1, 1, -42305}, {0xA7AE, 1, 1, -42308}, {0xA7B0, 1, 1, -42258}, {0xA7B1, 1, 1, -42282},
    {0xA7B2, 1, 1, -42261}, {0xA7B3, 1, 1, 928}, {0xA7B4, 8, 2, 1}, {0xA7C4, 1, 1, -48}, {0xA7C5, 1, 1, -42307},
    {0xA7C6, 1, 1, -35384}, {0xA7C7, 2, 2, 1}, {0xA7D0, 1, 1, 1}, {0xA7D6, 2, 2, 1}, {0xA7F5, 1, 1, 1},
    {0xFF21, 26, 1, 32}, {0x10400, 40, 1, 40}, {0x104B0, 36, 1, 40}, {0x10570, 11, 1, 39}, {0x1057C, 15, 1, 39},
    {0x1058C, 7, 1, 39}, {0x10594, 2, 1, 39}, {0x10C80, 51, 1, 64}, {0x118A0, 32, 1, 32}, {0x16E40, 32, 1, 32},
    {0x1E900, 34, 1, 34},
};
constexpr CpMap2 kWidthMap[] = {
    {0x3000, 0x20, 0x0}, {0xFF01, 0x21, 0x0}, {0xFF02, 0x22, 0x0}, {0xFF03, 0x23, 0x0}, {0xFF04, 0x24, 0x0},
    {0xFF05, 0x25, 0x0}, {0xFF06, 0x26, 0x0}, {0xFF07, 0x27, 0x0}, {0xFF08, 0x28, 0x0}, {0xFF09, 0x29, 0x0},
    {0xFF0A, 0x2A, 0x0}, {0xFF0B, 0x2B, 0x0}, {0xFF0C, 0x2C, 0x0}, {0xFF0D, 0x2D, 0x0}, {0xFF0E, 0x2E, 0x0},
    {0xFF0F, 0x2F, 0x0}, {0xFF10, 0x30, 0x0}, {0xFF11, 0x31, 0x0}, {0xFF12, 0x32, 0x0}, {0xFF13, 0x33, 0x0},
    {0xFF14, 0x34, 0x0}, {0xFF15, 0x35, 0x0}, {0xFF16, 0x36, 0x0}, {0xFF17, 0x37, 0x0}, {0xFF18, 0x38, 0x0},
    {0xFF19, 0x39, 0x0}, {0xFF1A, 0x3A, 0x0}, {0xFF1B, 0x3B, 0x0}, {0xFF1C, 0x3C, 0x0}, {0xFF1D, 0x3D, 0x0},
    {0xFF1E, 0x3E, 0x0}, {0xFF1F, 0x3F, 0x0}, {0xFF20, 0x40, 0x0}, {0xFF21, 0x41, 0x0}, {0xFF22, 0x42, 0x0},
    {0xFF23, 0x43, 0x0}, {0xFF24, 0x44, 0x0}, {0xFF25, 0x45, 0x0}, {0xFF26, 0x46, 0x0}, {0xFF27, 0x47, 0x0},
    {0xFF28, 0x48, 0x0}, {0xFF29, 0x49, 0x0}, {0xFF2A, 0x4A, 0x0}, {0xFF2B, 0x4B, 0x0}, {0xFF2C, 0x4C, 0x0},
    {0xFF2D, 0x4D, 0x0}, {0xFF2E, 0x4E, 0x0}, {0xFF2F, 0x4F, 0x0}, {0xFF30, 0x50, 0x0}, {0xFF31, 0x51, 0x0},
    {0xFF32, 0x52, 0x0}, {0xFF33, 0x53, 0x0}, {0xFF34, 0x54, 0x0}, {0xFF35, 0x55, 0x0}, {0xFF36, 0x56, 0x0},
    {0xFF37, 0x57, 0x0}, {0xFF38, 0x58, 0x0}, {0xFF39, 0x59, 0x0}, {0xFF3A, 0x5A, 0x0}, {0xFF3B, 0x5B, 0x0},
    {0xFF3C, 0x5C, 0x0}, {0xFF3D, 0x5D, 0x0}, {0xFF3E, 0x5E, 0x0}, {0xFF3F, 0x5F, 0x0}, {0xFF40, 0x60, 0x0},
    {0xFF41, 0x61, 0x0}, {0xFF42, 0x62, 0x0}, {0xFF43, 0x63, 0x0}, {0xFF44, 0x64, 0x0}, {0xFF45, 0x65, 0x0},
    {0xFF46, 0x66, 0x0}, {0xFF47, 0x67, 0x0}, {0xFF48, 0x68, 0x0}, {0xFF49, 0x69, 0x0}, {0xFF4A, 0x6A, 0x0},
    {0xFF4B, 0x6B, 0x0}, {0xFF4C, 0x6C, 0x0}, {0xFF4D, 0x6D, 0x0}, {0xFF4E, 0x6E, 0x0}, {0xFF4F, 0x6F, 0x0},
    {0xFF50, 0x70, 0x0}, {0xFF51, 0x71, 0x0}, {0xFF52, 0x72, 0x0}, {0xFF53, 0x73, 0x0}, {0xFF54, 0x74, 0x0},
    {0xFF55, 0x75, 0x0}, {0xFF56, 0x76, 0x0}, {0xFF57, 0x77, 0x0}, {0xFF58, 0x78, 0x0}, {0xFF59, 0x79, 0x0},
    {0xFF5A, 0x7A, 0x0}, {0xFF5B, 0x7B, 0x0}, {0xFF5C, 0x7C, 0x0}, {0xFF5D, 0x7D, 0x0}, {0xFF5E, 0x7E, 0x0},
    {0xFF5F, 0x2985, 0x0}, {0xFF60, 0x2986, 0x0}, {0xFF61, 0x3002, 0x0}, {0xFF62, 0x300C, 0x0}, {0xFF63, 0x300D, 0x0},
    {0xFF64, 0x3001, 0x0}, {0xFF65, 0x30FB, 0x0}, {0xFF66, 0x30F2, 0x0}, {0xFF67, 0x30A1, 0x0}, {0xFF68, 0x30A3, 0x0},
    {0xFF69, 0x30A5, 0x0}, {0xFF6A, 0x30A7, 0x0}, {0xFF6B, 0x30A9, 0x0}, {0xFF6C, 0x30E3, 0x0}, {0xFF6D, 0x30E5, 0x0},
    {0xFF6E, 0x30E7, 0x0}, {0xFF6F, 0x30C3, 0x0}, {0xFF70, 0x30FC, 0x0}, {0xFF71, 0x30A2, 0x0}, {0xFF72, 0x30A4, 0x0},
    {0xFF73, 0x30A6, 0x0}, {0xFF74, 0x30A8, 0x0}, {0xFF75, 0x30AA, 0x0}, {0xFF76, 0x30AB, 0x0}, {0xFF77, 0x30AD, 0x0},
    {0xFF78, 0x30AF, 0x0}, {0xFF79, 0x30B1, 0x0}, {0xFF7A, 0x30B3, 0x0}, {0xFF7B, 0x30B5, 0x0}, {0xFF7C, 0x30B7, 0x0},
    {0xFF7D, 0x30B9, 0x0}, {0xFF7E, 0x30BB, 0x0}, {0xFF7F, 0x30BD, 0x0}, {0xFF80, 0x30BF, 0x0}, {0xFF81, 0x30C1, 0x0},
    {0xFF82, 0x30C4, 0x0}, {0xFF83, 0x30C6, 0x0}, {0xFF84, 0x30C8, 0x0}, {0xFF85, 0x30CA, 0x0}, {0xFF86, 0x30CB, 0x0},
    {0xFF87, 0x30CC, 0x0}, {0xFF88, 0x30CD, 0x0}, {0xFF89, 0x30CE, 0x0}, {0xFF8A, 0x30CF, 0x0}, {0xFF8B, 0x30D2, 0x0},
    {0xFF8C, 0x30D5, 0x0}, {0xFF8D, 0x30D8, 0x0}, {0xFF8E, 0x30DB, 0x0}, {0xFF8F, 0x30DE, 0x0}, {0xFF90, 0x30DF, 0x0},
    {0xFF91, 0x30E0, 0x0}, {0xFF92, 0x30E1, 0x0}, {0xFF93, 0x30E2, 0x0}, {0xFF94, 0x30E4, 0x0}, {0xFF95, 0x30E6, 0x0},
    {0xFF96, 0x30E8, 0x0}, {0xFF97, 0x30E9, 0x0}, {0xFF98, 0x30EA, 0x0}, {0xFF99, 0x30EB, 0x0}, {0xFF9A, 0x30EC, 0x0},
    {0xFF9B, 0x30ED, 0x0}, {0xFF9C, 0x30EF, 0x0}, {0xFF9D, 0x30F3, 0x0}, {0xFF9E, 0x3099, 0x0}, {0xFF9F, 0x309A, 0x0},
    {0xFFA0, 0x1160, 0x0}, {0xFFA1, 0x1100, 0x0}, {0xFFA2, 0x1101, 0x0}, {0xFFA3, 0x11AA, 0x0}, {0xFFA4, 0x1102, 0x0},
    {0xFFA5, 0x11AC, 0x0}, {0xFFA6, 0x11AD, 0x0}, {0xFFA7, 0x1103, 0x0}, {0xFFA8, 0x1104, 0x0}, {0xFFA9, 0x1105, 0x0},
    {0xFFAA, 0x11B0, 0x0}, {0xFFAB, 0x11B1, 0x0}, {0xFFAC, 0x11B2, 0x0}, {0xFFAD, 0x11B3, 0x0}, {0xFFAE, 0x11B4, 0x0},
    {0xFFAF, 0x11B5, 0x0}, {0xFFB0, 0x111A, 0x0}, {0xFFB1, 0x1106, 0x0}, {0xFFB2, 0x1107, 0x0}, {0xFFB3, 0x1108, 0x0},
    {0xFFB4, 0x1121, 0x0}, {0xFFB5, 0x1109, 0x0}, {0xFFB6, 0x110A, 0x0}, {0xFFB7, 0x110B, 0x0}, {0xFFB8, 0x110C, 0x0},
    {0xFFB9, 0x110D, 0x0}, {0xFFBA, 0x110E, 0x0}, {0xFFBB, 0x110F, 0x0}, {0xFFBC, 0x1110, 0x0}, {0xFFBD, 0x1111, 0x0},
    {0xFFBE, 0x1112, 0x0}, {0xFFC2, 0x1161, 0x0}, {0xFFC3, 0x1162, 0x0}, {0xFFC4, 0x1163, 0x0}, {0xFFC5, 0x1164, 0x0},
    {0xFFC6, 0x1165, 0x0}, {0xFFC7, 0x1166, 0x0}, {0xFFCA, 0x1167, 0x0}, {0xFFCB, 0x1168, 0x0}, {0xFFCC, 0x1169, 0x0},
    {0xFFCD, 0x116A, 0x0}, {0xFFCE, 0x116B, 0x0}, {0xFFCF, 0x116C, 0x0}, {0xFFD2, 0x116D, 0x0}, {0xFFD3, 0x116E, 0x0},
    {0xFFD4, 0x116F, 0x0}, {0xFFD5, 0x1170, 0x0}, {0xFFD6, 0x1171, 0x0}, {0xFFD7, 0x1172, 0x0}, {0xFFDA, 0x1173, 0x0},
    {0xFFDB, 0x1174, 0x0}, {0xFFDC, 0x1175, 0x0}, {0xFFE0, 0xA2, 0x0}, {0xFFE1, 0xA3, 0x0}, {0xFFE2, 0xAC, 0x0},
    {0xFFE3, 0x20, 0x304}, {0xFFE4, 0xA6, 0x0}, {0xFFE5, 0xA5, 0x0}, {0xFFE6, 0x20A9, 0x0}, {0xFFE8, 0x2502, 0x0},
    {0xFFE9, 0x2190, 0x0}, {0xFFEA, 0x2191, 0x0}, {0xFFEB, 0x2192, 0x0}, {0xFFEC, 0x2193, 0x0}, {0xFFED, 0x25A0, 0x0},
    {0xFFEE, 0x25CB, 0x0},
};
constexpr HtmlEntity kHtml5Entities[] = {
    {"AElig", "\xC3\x86"}, {"AElig;", "\xC3\x86"}, {"AMP", "\x26"},
    {"AMP;", "\x26"}, {"Aacute", "\xC3\x81"}, {"Aacute;", "\xC3\x81"},
    {"Abreve;", "\xC4\x82"}, {"Acirc", "\xC3\x82"}, {"Acirc;", "\xC3\x82"},
    {"Acy;", "\xD0\x90"}, {"Afr;", "\xF0\x9D\x94\x84"}, {"Agrave", "\xC3\x80"},
    {"Agrave;", "\xC3\x80"}, {"Alpha;", "\xCE\x91"}, {"Amacr;", "\xC4\x80"},
    {"And;", "\xE2\xA9\x93"}, {"Aogon;", "\xC4\x84"}, {"Aopf;", "\xF0\x9D\x94\xB8"},
    {"ApplyFunction;", "\xE2\x81\xA1"}, {"Aring", "\xC3\x85"}, {"Aring;", "\xC3\x85"},
    {"Ascr;", "\xF0\x9D\x92\x9C"}, {"Assign;", "\xE2\x89\x94"}, {"Atilde", "\xC3\x83"},
    {"Atilde;", "\xC3\x83"}, {"Auml", "\xC3\x84"}, {"Auml;", "\xC3\x84"},
    {"Backslash;", "\xE2\x88\x96"}, {"Barv;", "\xE2\xAB\xA7"}, {"Barwed;", "\xE2\x8C\x86"},
    {"Bcy;", "\xD0\x91"}, {"Because;", "\xE2\x88\xB5"}, {"Bernoullis;", "\xE2\x84\xAC"},
    {"Beta;", "\xCE\x92"}, {"Bfr;", "\xF0\x9D\x94\x85"}, {"Bopf;", "\xF0\x9D\x94\xB9"},
    {"Breve;", "\xCB\x98"}, {"Bscr;", "\xE2\x84\xAC"}, {"Bumpeq;", "\xE2\x89\x8E"},
    {"CHcy;", "\xD0\xA7"}, {"COPY", "\xC2\xA9"}, {"COPY;", "\xC2\xA9"},
    {"Cacute;", "\xC4\x86"}, {"Cap;", "\xE2\x8B\x92"}, {"CapitalDifferentialD;", "\xE2\x85\x85"},
    {"Cayleys;", "\xE2\x84\xAD"}, {"Ccaron;", "\xC4\x8C"}, {"Ccedil", "\xC3\x87"},
    {"Ccedil;", "\xC3\x87"}, {"Ccirc;", "\xC4\x88"}, {"Cconint;", "\xE2\x88\xB0"},
    {"Cdot;", "\xC4\x8A"}, {"Cedilla;", "\xC2\xB8"}, {"CenterDot;", "\xC2\xB7"},
    {"Cfr;", "\xE2\x84\xAD"}, {"Chi;", "\xCE\xA7"}, {"CircleDot;", "\xE2\x8A\x99"},
    {"CircleMinus;", "\xE2\x8A\x96"}, {"CirclePlus;", "\xE2\x8A\x95"}, {"CircleTimes;", "\xE2\x8A\x97"},
    {"ClockwiseContourIntegral;", "\xE2\x88\xB2"}, {"CloseCurlyDoubleQuote;", "\xE2\x80\x9D"}, {"CloseCurlyQuote;", "\xE2\x80\x99"},
    {"Colon;", "\xE2\x88\xB7"}, {"Colone;", "\xE2\xA9\xB4"}, {"Congruent;", "\xE2\x89\xA1"},
    {"Conint;", "\xE2\x88\xAF"}, {"ContourIntegral;", "\xE2\x88\xAE"}, {"Copf;", "\xE2\x84\x82"},
    {"Coproduct;", "\xE2\x88\x90"}, {"CounterClockwiseContourIntegral;", "\xE2\x88\xB3"}, {"Cross;", "\xE2\xA8\xAF"},
    {"Cscr;", "\xF0\x9D\x92\x9E"}, {"Cup;", "\xE2\x8B\x93"}, {"CupCap;", "\xE2\x89\x8D"},
    {"DD;", "\xE2\x85\x85"}, {"DDotrahd;", "\xE2\xA4\x91"}, {"DJcy;", "\xD0\x82"},
    {"DScy;", "\xD0\x85"}, {"DZcy;", "\xD0\x8F"}, {"Dagger;", "\xE2\x80\xA1"},
    {"Darr;", "\xE2\x86\xA1"}, {"Dashv;", "\xE2\xAB\xA4"}, {"Dcaron;", "\xC4\x8E"},
    {"Dcy;", "\xD0\x94"}, {"Del;", "\xE2\x88\x87"}, {"Delta;", "\xCE\x94"},
    {"Dfr;", "\xF0\x9D\x94\x87"}, {"DiacriticalAcute;", "\xC2\xB4"}, {"DiacriticalDot;", "\xCB\x99"},
    {"DiacriticalDoubleAcute;", "\xCB\x9D"}, {"DiacriticalGrave;", "\x60"}, {"DiacriticalTilde;", "\xCB\x9C"},
    {"Diamond;", "\xE2\x8B\x84"}, {"DifferentialD;", "\xE2\x85\x86"}, {"Dopf;", "\xF0\x9D\x94\xBB"},
    {"Dot;", "\xC2\xA8"}, {"DotDot;", "\xE2\x83\x9C"}, {"DotEqual;", "\xE2\x89\x90"},
    {"DoubleContourIntegral;", "\xE2\x88\xAF"}, {"DoubleDot;", "\xC2\xA8"}, {"DoubleDownArrow;", "\xE2\x87\x93"},
    {"DoubleLeftArrow;", "\xE2\x87\x90"}, {"DoubleLeftRightArrow;", "\xE2\x87\x94"}, {"DoubleLeftTee;", "\xE2\xAB\xA4"},
    {"DoubleLongLeftArrow;", "\xE2\x9F\xB8"}, {"DoubleLongLeftRightArrow;", "\xE2\x9F\xBA"}, {"DoubleLongRightArrow;", "\xE2\x9F\xB9"},
    {"DoubleRightArrow;", "\xE2\x87\x92"}, {"DoubleRightTee;", "\xE2\x8A\xA8"}, {"DoubleUpArrow;", "\xE2\x87\x91"},
    {"DoubleUpDownArrow;", "\xE2\x87\x95"}, {"DoubleVerticalBar;", "\xE2\x88\xA5"}, {"DownArrow;", "\xE2\x86\x93"},
    {"DownArrowBar;", "\xE2\xA4\x93"}, {"DownArrowUpArrow;", "\xE2\x87\xB5"}, {"DownBreve;", "\xCC\x91"},
    {"DownLeftRightVector;", "\xE2\xA5\x90"}, {"DownLeftTeeVector;", "\xE2\xA5\x9E"}, {"DownLeftVector;", "\xE2\x86\xBD"},
    {"DownLeftVectorBar;", "\xE2\xA5\x96"}, {"DownRightTeeVector;", "\xE2\xA5\x9F"}, {"DownRightVector;", "\xE2\x87\x81"},
    {"DownRightVectorBar;", "\xE2\xA5\x97"}, {"DownTee;", "\xE2\x8A\xA4"}, {"DownTeeArrow;", "\xE2\x86\xA7"},
    {"Downarrow;", "\xE2\x87\x93"}, {"Dscr;", "\xF0\x9D\x92\x9F"}, {"Dstrok;", "\xC4\x90"},
    {"ENG;", "\xC5\x8A"}, {"ETH", "\xC3\x90"}, {"ETH;", "\xC3\x90"},
    {"Eacute", "\xC3\x89"}, {"Eacute;", "\xC3\x89"}, {"Ecaron;", "\xC4\x9A"},
    {"Ecirc", "\xC3\x8A"}, {"Ecirc;", "\xC3\x8A"}, {"Ecy;", "\xD0\xAD"},
    {"Edot;", "\xC4\x96"}, {"Efr;", "\xF0\x9D\x94\x88"}, {"Egrave", "\xC3\x88"},
    {"Egrave;", "\xC3\x88"}, {"Element;", "\xE2\x88\x88"}, {"Emacr;", "\xC4\x92"},
    {"EmptySmallSquare;", "\xE2\x97\xBB"}, {"EmptyVerySmallSquare;", "\xE2\x96\xAB"}, {"Eogon;", "\xC4\x98"},
    {"Eopf;", "\xF0\x9D\x94\xBC"}, {"Epsilon;", "\xCE\x95"}, {"Equal;", "\xE2\xA9\xB5"},
    {"EqualTilde;", "\xE2\x89\x82"}, {"Equilibrium;", "\xE2\x87\x8C"}, {"Escr;", "\xE2\x84\xB0"},
    {"Esim;", "\xE2\xA9\xB3"}, {"Eta;", "\xCE\x97"}, {"Euml", "\xC3\x8B"},
    {"Euml;", "\xC3\x8B"}, {"Exists;", "\xE2\x88\x83"}, {"ExponentialE;", "\xE2\x85\x87"},
    {"Fcy;", "\xD0\xA4"}, {"Ffr;", "\xF0\x9D\x94\x89"}, {"FilledSmallSquare;", "\xE2\x97\xBC"},
    {"FilledVerySmallSquare;", "\xE2\x96\xAA"}, {"Fopf;", "\xF0\x9D\x94\xBD"}, {"ForAll;", "\xE2\x88\x80"},
    {"Fouriertrf;", "\xE2\x84\xB1"}, {"Fscr;", "\xE2\x84\xB1"}, {"GJcy;", "\xD0\x83"},
    {"GT", "\x3E"}, {"GT;", "\x3E"}, {"Gamma;", "\xCE\x93"},
    {"Gammad;", "\xCF\x9C"}, {"Gbreve;", "\xC4\x9E"}, {"Gcedil;", "\xC4\xA2"},
    {"Gcirc;", "\xC4\x9C"}, {"Gcy;", "\xD0\x93"}, {"Gdot;", "\xC4\xA0"},
    {"Gfr;", "\xF0\x9D\x94\x8A"}, {"Gg;", "\xE2\x8B\x99"}, {"Gopf;", "\xF0\x9D\x94\xBE"},
    {"GreaterEqual;", "\xE2\x89\xA5"}, {"GreaterEqualLess;", "\xE2\x8B\x9B"}, {"GreaterFullEqual;", "\xE2\x89\xA7"},
    {"GreaterGreater;", "\xE2\xAA\xA2"}, {"GreaterLess;", "\xE2\x89\xB7"}, {"GreaterSlantEqual;", "\xE2\xA9\xBE"},
    {"GreaterTilde;", "\xE2\x89\xB3"}, {"Gscr;", "\xF0\x9D\x92\xA2"}, {"Gt;", "\xE2\x89\xAB"},
    {"HARDcy;", "\xD0\xAA"}, {"Hacek;", "\xCB\x87"}, {"Hat;", "\x5E"},
    {"Hcirc;", "\xC4\xA4"}, {"Hfr;", "\xE2\x84\x8C"}, {"HilbertSpace;", "\xE2\x84\x8B"},
    {"Hopf;", "\xE2\x84\x8D"}, {"HorizontalLine;", "\xE2\x94\x80"}, {"Hscr;", "\xE2\x84\x8B"},
    {"Hstrok;", "\xC4\xA6"}, {"HumpDownHump;", "\xE2\x89\x8E"}, {"HumpEqual;", "\xE2\x89\x8F"},
    {"IEcy;", "\xD0\x95"}, {"IJlig;", "\xC4\xB2"}, {"IOcy;", "\xD0\x81"},
    {"Iacute", "\xC3\x8D"}, {"Iacute;", "\xC3\x8D"}, {"Icirc", "\xC3\x8E"},
    {"Icirc;", "\xC3\x8E"}, {"Icy;", "\xD0\x98"}, {"Idot;", "\xC4\xB0"},
    {"Ifr;", "\xE2\x84\x91"}, {"Igrave", "\xC3\x8C"}, {"Igrave;", "\xC3\x8C"},
    {"Im;", "\xE2\x84\x91"}, {"Imacr;", "\xC4\xAA"}, {"ImaginaryI;", "\xE2\x85\x88"},
    {"Implies;", "\xE2\x87\x92"}, {"Int;", "\xE2\x88\xAC"}, {"Integral;", "\xE2\x88\xAB"},
    {"Intersection;", "\xE2\x8B\x82"}, {"InvisibleComma;", "\xE2\x81\xA3"}, {"InvisibleTimes;", "\xE2\x81\xA2"},
    {"Iogon;", "\xC4\xAE"}, {"Iopf;", "\xF0\x9D\x95\x80"}, {"Iota;", "\xCE\x99"},
    {"Iscr;", "\xE2\x84\x90"}, {"Itilde;", "\xC4\xA8"}, {"Iukcy;", "\xD0\x86"},
    {"Iuml", "\xC3\x8F"}, {"Iuml;", "\xC3\x8F"}, {"Jcirc;", "\xC4\xB4"},
    {"Jcy;", "\xD0\x99"}, {"Jfr;", "\xF0\x9D\x94\x8D"}, {"Jopf;", "\xF0\x9D\x95\x81"},
    {"Jscr;", "\xF0\x9D\x92\xA5"}, {"Jsercy;", "\xD0\x88"}, {"Jukcy;", "\xD0\x84"},
    {"KHcy;", "\xD0\xA5"}, {"KJcy;", "\xD0\x8C"}, {"Kappa;", "\xCE\x9A"},
    {"Kcedil;", "\xC4\xB6"}, {"Kcy;", "\xD0\x9A"}, {"Kfr;", "\xF0\x9D\x94\x8E"},
    {"Kopf;", "\xF0\x9D\x95\x82"}, {"Kscr;", "\xF0\x9D\x92\xA6"}, {"LJcy;", "\xD0\x89"},
    {"LT", "\x3C"}, {"LT;", "\x3C"}, {"Lacute;", "\xC4\xB9"},
    {"Lambda;", "\xCE\x9B"}, {"Lang;", "\xE2\x9F\xAA"}, {"Laplacetrf;", "\xE2\x84\x92"},
    {"Larr;", "\xE2\x86\x9E"}, {"Lcaron;", "\xC4\xBD"}, {"Lcedil;", "\xC4\xBB"},
    {"Lcy;", "\xD0\x9B"}, {"LeftAngleBracket;", "\xE2\x9F\xA8"}, {"LeftArrow;", "\xE2\x86\x90"},
    {"LeftArrowBar;", "\xE2\x87\xA4"}, {"LeftArrowRightArrow;", "\xE2\x87\x86"}, {"LeftCeiling;", "\xE2\x8C\x88"},
    {"LeftDoubleBracket;", "\xE2\x9F\xA6"}, {"LeftDownTeeVector;", "\xE2\xA5\xA1"}, {"LeftDownVector;", "\xE2\x87\x83"},
    {"LeftDownVectorBar;", "\xE2\xA5\x99"}, {"LeftFloor;", "\xE2\x8C\x8A"}, {"LeftRightArrow;", "\xE2\x86\x94"},
    {"LeftRightVector;", "\xE2\xA5\x8E"}, {"LeftTee;", "\xE2\x8A\xA3"}, {"LeftTeeArrow;", "\xE2\x86\xA4"},
    {"LeftTeeVector;", "\xE2\xA5\x9A"}, {"LeftTriangle;", "\xE2\x8A\xB2"}, {"LeftTriangleBar;", "\xE2\xA7\x8F"},
    {"LeftTriangleEqual;", "\xE2\x8A\xB4"}, {"LeftUpDownVector;", "\xE2\xA5\x91"}, {"LeftUpTeeVector;", "\xE2\xA5\xA0"},
    {"LeftUpVector;", "\xE2\x86\xBF"}, {"LeftUpVectorBar;", "\xE2\xA5\x98"}, {"LeftVector;", "\xE2\x86\xBC"},
    {"LeftVectorBar;", "\xE2\xA5\x92"}, {"Leftarrow;", "\xE2\x87\x90"}, {"Leftrightarrow;", "\xE2\x87\x94"},
    {"LessEqualGreater;", "\xE2\x8B\x9A"}, {"LessFullEqual;", "\xE2\x89\xA6"}, {"LessGreater;", "\xE2\x89\xB6"},
    {"LessLess;", "\xE2\xAA\xA1"}, {"LessSlantEqual;", "\xE2\xA9\xBD"}, {"LessTilde;", "\xE2\x89\xB2"},
    {"Lfr;", "\xF0\x9D\x94\x8F"}, {"Ll;", "\xE2\x8B\x98"}, {"Lleftarrow;", "\xE2\x87\x9A"},
    {"Lmidot;", "\xC4\xBF"}, {"LongLeftArrow;", "\xE2\x9F\xB5"}, {"LongLeftRightArrow;", "\xE2\x9F\xB7"},
    {"LongRightArrow;", "\xE2\x9F\xB6"}, {"Longleftarrow;", "\xE2\x9F\xB8"}, {"Longleftrightarrow;", "\xE2\x9F\xBA"},
    {"Longrightarrow;", "\xE2\x9F\xB9"}, {"Lopf;", "\xF0\x9D\x95\x83"}, {"LowerLeftArrow;", "\xE2\x86\x99"},
    {"LowerRightArrow;", "\xE2\x86\x98"}, {"Lscr;", "\xE2\x84\x92"}, {"Lsh;", "\xE2\x86\xB0"},
    {"Lstrok;", "\xC5\x81"}, {"Lt;", "\xE2\x89\xAA"}, {"Map;", "\xE2\xA4\x85"},
    {"Mcy;", "\xD0\x9C"}, {"MediumSpace;", "\xE2\x81\x9F"}, {"Mellintrf;", "\xE2\x84\xB3"},
    {"Mfr;", "\xF0\x9D\x94\x90"}, {"MinusPlus;", "\xE2\x88\x93"}, {"Mopf;", "\xF0\x9D\x95\x84"},
    {"Mscr;", "\xE2\x84\xB3"}, {"Mu;", "\xCE\x9C"}, {"NJcy;", "\xD0\x8A"},
    {"Nacute;", "\xC5\x83"}, {"Ncaron;", "\xC5\x87"}, {"Ncedil;", "\xC5\x85"},
    {"Ncy;", "\xD0\x9D"}, {"NegativeMediumSpace;", "\xE2\x80\x8B"}, {"NegativeThickSpace;", "\xE2\x80\x8B"},
    {"NegativeThinSpace;", "\xE2\x80\x8B"}, {"NegativeVeryThinSpace;", "\xE2\x80\x8B"}, {"NestedGreaterGreater;", "\xE2\x89\xAB"},
    {"NestedLessLess;", "\xE2\x89\xAA"}, {"NewLine;", "\x0A"}, {"Nfr;", "\xF0\x9D\x94\x91"},
    {"NoBreak;", "\xE2\x81\xA0"}, {"NonBreakingSpace;", "\xC2\xA0"}, {"Nopf;", "\xE2\x84\x95"},
    {"Not;", "\xE2\xAB\xAC"}, {"NotCongruent;", "\xE2\x89\xA2"}, {"NotCupCap;", "\xE2\x89\xAD"},
    {"NotDoubleVerticalBar;", "\xE2\x88\xA6"}, {"NotElement;", "\xE2\x88\x89"}, {"NotEqual;", "\xE2\x89\xA0"},
    {"NotEqualTilde;", "\xE2\x89\x82\xCC\xB8"}, {"NotExists;", "\xE2\x88\x84"}, {"NotGreater;", "\xE2\x89\xAF"},
    {"NotGreaterEqual;", "\xE2\x89\xB1"}, {"NotGreaterFullEqual;", "\xE2\x89\xA7\xCC\xB8"}, {"NotGreaterGreater;", "\xE2\x89\xAB\xCC\xB8"},
    {"NotGreaterLess;", "\xE2\x89\xB9"}, {"NotGreaterSlantEqual;", "\xE2\xA9\xBE\xCC\xB8"}, {"NotGreaterTilde;", "\xE2\x89\xB5"},
    {"NotHumpDownHump;", "\xE2\x89\x8E\xCC\xB8"}, {"NotHumpEqual;", "\xE2\x89\x8F\xCC\xB8"}, {"NotLeftTriangle;", "\xE2\x8B\xAA"},
    {"NotLeftTriangleBar;", "\xE2\xA7\x8F\xCC\xB8"}, {"NotLeftTriangleEqual;", "\xE2\x8B\xAC"}, {"NotLess;", "\xE2\x89\xAE"},
    {"NotLessEqual;", "\xE2\x89\xB0"}, {"NotLessGreater;", "\xE2\x89\xB8"}, {"NotLessLess;", "\xE2\x89\xAA\xCC\xB8"},
    {"NotLessSlantEqual;", "\xE2\xA9\xBD\xCC\xB8"}, {"NotLessTilde;", "\xE2\x89\xB4"}, {"NotNestedGreaterGreater;", "\xE2\xAA\xA2\xCC\xB8"},
    {"NotNestedLessLess;", "\xE2\xAA\xA1\xCC\xB8"}, {"NotPrecedes;", "\xE2\x8A\x80"}, {"NotPrecedesEqual;", "\xE2\xAA\xAF\xCC\xB8"},
    {"NotPrecedesSlantEqual;", "\xE2\x8B\xA0"}, {"NotReverseElement;", "\xE2\x88\x8C"}, {"NotRightTriangle;", "\xE2\x8B\xAB"},
    {"NotRightTriangleBar;", "\xE2\xA7\x90\xCC\xB8"}, {"NotRightTriangleEqual;", "\xE2\x8B\xAD"}, {"NotSquareSubset;", "\xE2\x8A\x8F\xCC\xB8"},
    {"NotSquareSubsetEqual;", "\xE2\x8B\xA2"}, {"NotSquareSuperset;", "\xE2\x8A\x90\xCC\xB8"}, {"NotSquareSupersetEqual;", "\xE2\x8B\xA3"},
    {"NotSubset;", "\xE2\x8A\x82\xE2\x83\x92"}, {"NotSubsetEqual;", "\xE2\x8A\x88"}, {"NotSucceeds;", "\xE2\x8A\x81"},
    {"NotSucceedsEqual;", "\xE2\xAA\xB0\xCC\xB8"}, {"NotSucceedsSlantEqual;", "\xE2\x8B\xA1"}, {"NotSucceedsTilde;", "\xE2\x89\xBF\xCC\xB8"},
    {"NotSuperset;", "\xE2\x8A\x83\xE2\x83\x92"}, {"NotSupersetEqual;", "\xE2\x8A\x89"}, {"NotTilde;", "\xE2\x89\x81"},
    {"NotTildeEqual;", "\xE2\x89\x84"}, {"NotTildeFullEqual;", "\xE2\x89\x87"}, {"NotTildeTilde;", "\xE2\x89\x89"},
    {"NotVerticalBar;", "\xE2\x88\xA4"}, {"Nscr;", "\xF0\x9D\x92\xA9"}, {"Ntilde", "\xC3\x91"},
    {"Ntilde;", "\xC3\x91"}, {"Nu;", "\xCE\x9D"}, {"OElig;", "\xC5\x92"},
    {"Oacute", "\xC3\x93"}, {"Oacute;", "\xC3\x93"}, {"Ocirc", "\xC3\x94"},
    {"Ocirc;", "\xC3\x94"}, {"Ocy;", "\xD0\x9E"}, {"Odblac;", "\xC5\x90"},
    {"Ofr;", "\xF0\x9D\x94\x92"}, {"Ograve", "\xC3\x92"}, {"Ograve;", "\xC3\x92"},
    {"Omacr;", "\xC5\x8C"}, {"Omega;", "\xCE\xA9"}, {"Omicron;", "\xCE\x9F"},
    {"Oopf;", "\xF0\x9D\x95\x86"}, {"OpenCurlyDoubleQuote;", "\xE2\x80\x9C"}, {"OpenCurlyQuote;", "\xE2\x80\x98"},
    {"Or;", "\xE2\xA9\x94"}, {"Oscr;", "\xF0\x9D\x92\xAA"}, {"Oslash", "\xC3\x98"},
    {"Oslash;", "\xC3\x98"}, {"Otilde", "\xC3\x95"}, {"Otilde;", "\xC3\x95"},
    {"Otimes;", "\xE2\xA8\xB7"}, {"Ouml", "\xC3\x96"}, {"Ouml;", "\xC3\x96"},
    {"OverBar;", "\xE2\x80\xBE"}, {"OverBrace;", "\xE2\x8F\x9E"}, {"OverBracket;", "\xE2\x8E\xB4"},
    {"OverParenthesis;", "\xE2\x8F\x9C"}, {"PartialD;", "\xE2\x88\x82"}, {"Pcy;", "\xD0\x9F"},
    {"Pfr;", "\xF0\x9D\x94\x93"}, {"Phi;", "\xCE\xA6"}, {"Pi;", "\xCE\xA0"},
    {"PlusMinus;", "\xC2\xB1"}, {"Poincareplane;", "\xE2\x84\x8C"}, {"Popf;", "\xE2\x84\x99"},
    {"Pr;", "\xE2\xAA\xBB"}, {"Precedes;", "\xE2\x89\xBA"}, {"PrecedesEqual;", "\xE2\xAA\xAF"},
    {"PrecedesSlantEqual;", "\xE2\x89\xBC"}, {"PrecedesTilde;", "\xE2\x89\xBE"}, {"Prime;", "\xE2\x80\xB3"},
    {"Product;", "\xE2\x88\x8F"}, {"Proportion;", "\xE2\x88\xB7"}, {"Proportional;", "\xE2\x88\x9D"},
    {"Pscr;", "\xF0\x9D\x92\xAB"}, {"Psi;", "\xCE\xA8"}, {"QUOT", "\x22"},
    {"QUOT;", "\x22"}, {"Qfr;", "\xF0\x9D\x94\x94"}, {"Qopf;", "\xE2\x84\x9A"},
    {"Qscr;", "\xF0\x9D\x92\xAC"}, {"RBarr;", "\xE2\xA4\x90"}, {"REG", "\xC2\xAE"},
    {"REG;", "\xC2\xAE"}, {"Racute;", "\xC5\x94"}, {"Rang;", "\xE2\x9F\xAB"},
    {"Rarr;", "\xE2\x86\xA0"}, {"Rarrtl;", "\xE2\xA4\x96"}, {"Rcaron;", "\xC5\x98"},
    {"Rcedil;", "\xC5\x96"}, {"Rcy;", "\xD0\xA0"}, {"Re;", "\xE2\x84\x9C"},
    {"ReverseElement;", "\xE2\x88\x8B"}, {"ReverseEquilibrium;", "\xE2\x87\x8B"}, {"ReverseUpEquilibrium;", "\xE2\xA5\xAF"},
    {"Rfr;", "\xE2\x84\x9C"}, {"Rho;", "\xCE\xA1"}, {"RightAngleBracket;", "\xE2\x9F\xA9"},
    {"RightArrow;", "\xE2\x86\x92"}, {"RightArrowBar;", "\xE2\x87\xA5"}, {"RightArrowLeftArrow;", "\xE2\x87\x84"},
    {"RightCeiling;", "\xE2\x8C\x89"}, {"RightDoubleBracket;", "\xE2\x9F\xA7"}, {"RightDownTeeVector;", "\xE2\xA5\x9D"},
    {"RightDownVector;", "\xE2\x87\x82"}, {"RightDownVectorBar;", "\xE2\xA5\x95"}, {"RightFloor;", "\xE2\x8C\x8B"},
    {"RightTee;", "\xE2\x8A\xA2"}, {"RightTeeArrow;", "\xE2\x86\xA6"}, {"RightTeeVector;", "\xE2\xA5\x9B"},
    {"RightTriangle;", "\xE2\x8A\xB3"}, {"RightTriangleBar;", "\xE2\xA7\x90"}, {"RightTriangleEqual;", "\xE2\x8A\xB5"},
    {"RightUpDownVector;", "\xE2\xA5\x8F"}, {"RightUpTeeVector;", "\xE2\xA5\x9C"}, {"RightUpVector;", "\xE2\x86\xBE"},
    {"RightUpVectorBar;", "\xE2\xA5\x94"}, {"RightVector;", "\xE2\x87\x80"}, {"RightVectorBar;", "\xE2\xA5\x93"},
    {"Rightarrow;", "\xE2\x87\x92"}, {"Ropf;", "\xE2\x84\x9D"}, {"RoundImplies;", "\xE2\xA5\xB0"},
    {"Rrightarrow;", "\xE2\x87\x9B"}, {"Rscr;", "\xE2\x84\x9B"}, {"Rsh;", "\xE2\x86\xB1"},
    {"RuleDelayed;", "\xE2\xA7\xB4"}, {"SHCHcy;", "\xD0\xA9"}, {"SHcy;", "\xD0\xA8"},
    {"SOFTcy;", "\xD0\xAC"}, {"Sacute;", "\xC5\x9A"}, {"Sc;", "\xE2\xAA\xBC"},
    {"Scaron;", "\xC5\xA0"}, {"Scedil;", "\xC5\x9E"}, {"Scirc;", "\xC5\x9C"},
    {"Scy;", "\xD0\xA1"}, {"Sfr;", "\xF0\x9D\x94\x96"}, {"ShortDownArrow;", "\xE2\x86\x93"},
    {"ShortLeftArrow;", "\xE2\x86\x90"}, {"ShortRightArrow;", "\xE2\x86\x92"}, {"ShortUpArrow;", "\xE2\x86\x91"},
    {"Sigma;", "\xCE\xA3"}, {"SmallCircle;", "\xE2\x88\x98"}, {"Sopf;", "\xF0\x9D\x95\x8A"},
    {"Sqrt;", "\xE2\x88\x9A"}, {"Square;", "\xE2\x96\xA1"}, {"SquareIntersection;", "\xE2\x8A\x93"},
    {"SquareSubset;", "\xE2\x8A\x8F"}, {"SquareSubsetEqual;", "\xE2\x8A\x91"}, {"SquareSuperset;", "\xE2\x8A\x90"},
    {"SquareSupersetEqual;", "\xE2\x8A\x92"}, {"SquareUnion;", "\xE2\x8A\x94"}, {"Sscr;", "\xF0\x9D\x92\xAE"},
    {"Star;", "\xE2\x8B\x86"}, {"Sub;", "\xE2\x8B\x90"}, {"Subset;", "\xE2\x8B\x90"},
    {"SubsetEqual;", "\xE2\x8A\x86"}, {"Succeeds;", "\xE2\x89\xBB"}, {"SucceedsEqual;", "\xE2\xAA\xB0"},
    {"SucceedsSlantEqual;", "\xE2\x89\xBD"}, {"SucceedsTilde;", "\xE2\x89\xBF"}, {"SuchThat;", "\xE2\x88\x8B"},
    {"Sum;", "\xE2\x88\x91"}, {"Sup;", "\xE2\x8B\x91"}, {"Superset;", "\xE2\x8A\x83"},
    {"SupersetEqual;", "\xE2\x8A\x87"}, {"Supset;", "\xE2\x8B\x91"}, {"THORN", "\xC3\x9E"},
    {"THORN;", "\xC3\x9E"}, {"TRADE;", "\xE2\x84\xA2"}, {"TSHcy;", "\xD0\x8B"},
    {"TScy;", "\xD0\xA6"}, {"Tab;", "\x09"}, {"Tau;", "\xCE\xA4"},
    {"Tcaron;", "\xC5\xA4"}, {"Tcedil;", "\xC5\xA2"}, {"Tcy;", "\xD0\xA2"},
    {"Tfr;", "\xF0\x9D\x94\x97"}, {"Therefore;", "\xE2\x88\xB4"}, {"Theta;", "\xCE\x98"},
    {"ThickSpace;", "\xE2\x81\x9F\xE2\x80\x8A"}, {"ThinSpace;", "\xE2\x80\x89"}, {"Tilde;", "\xE2\x88\xBC"},
    {"TildeEqual;", "\xE2\x89\x83"}, {"TildeFullEqual;", "\xE2\x89\x85"}, {"TildeTilde;", "\xE2\x89\x88"},
    {"Topf;", "\xF0\x9D\x95\x8B"}, {"TripleDot;", "\xE2\x83\x9B"}, {"Tscr;", "\xF0\x9D\x92\xAF"},
    {"Tstrok;", "\xC5\xA6"}, {"Uacute", "\xC3\x9A"}, {"Uacute;", "\xC3\x9A"},
    {"Uarr;", "\xE2\x86\x9F"}, {"Uarrocir;", "\xE2\xA5\x89"}, {"Ubrcy;", "\xD0\x8E"},
    {"Ubreve;", "\xC5\xAC"}, {"Ucirc", "\xC3\x9B"}, {"Ucirc;", "\xC3\x9B"},
    {"Ucy;", "\xD0\xA3"}, {"Udblac;", "\xC5\xB0"}, {"Ufr;", "\xF0\x9D\x94\x98"},
    {"Ugrave", "\xC3\x99"}, {"Ugrave;", "\xC3\x99"}, {"Umacr;", "\xC5\xAA"},
    {"UnderBar;", "\x5F"}, {"UnderBrace;", "\xE2\x8F\x9F"}, {"UnderBracket;", "\xE2\x8E\xB5"},
    {"UnderParenthesis;", "\xE2\x8F\x9D"}, {"Union;", "\xE2\x8B\x83"}, {"UnionPlus;", "\xE2\x8A\x8E"},
    {"Uogon;", "\xC5\xB2"}, {"Uopf;", "\xF0\x9D\x95\x8C"}, {"UpArrow;", "\xE2\x86\x91"},
    {"UpArrowBar;", "\xE2\xA4\x92"}, {"UpArrowDownArrow;", "\xE2\x87\x85"}, {"UpDownArrow;", "\xE2\x86\x95"},
    {"UpEquilibrium;", "\xE2\xA5\xAE"}, {"UpTee;", "\xE2\x8A\xA5"}, {"UpTeeArrow;", "\xE2\x86\xA5"},
    {"Uparrow;", "\xE2\x87\x91"}, {"Updownarrow;", "\xE2\x87\x95"}, {"UpperLeftArrow;", "\xE2\x86\x96"},
    {"UpperRightArrow;", "\xE2\x86\x97"}, {"Upsi;", "\xCF\x92"}, {"Upsilon;", "\xCE\xA5"},
    {"Uring;", "\xC5\xAE"}, {"Uscr;", "\xF0\x9D\x92\xB0"}, {"Utilde;", "\xC5\xA8"},
    {"Uuml", "\xC3\x9C"}, {"Uuml;", "\xC3\x9C"}, {"VDash;", "\xE2\x8A\xAB"},
    {"Vbar;", "\xE2\xAB\xAB"}, {"Vcy;", "\xD0\x92"}, {"Vdash;", "\xE2\x8A\xA9"},
    {"Vdashl;", "\xE2\xAB\xA6"}, {"Vee;", "\xE2\x8B\x81"}, {"Verbar;", "\xE2\x80\x96"},
    {"Vert;", "\xE2\x80\x96"}, {"VerticalBar;", "\xE2\x88\xA3"}, {"VerticalLine;", "\x7C"},
    {"VerticalSeparator;", "\xE2\x9D\x98"}, {"VerticalTilde;", "\xE2\x89\x80"}, {"VeryThinSpace;", "\xE2\x80\x8A"},
    {"Vfr;", "\xF0\x9D\x94\x99"}, {"Vopf;", "\xF0\x9D\x95\x8D"}, {"Vscr;", "\xF0\x9D\x92\xB1"},
    {"Vvdash;", "\xE2\x8A\xAA"}, {"Wcirc;", "\xC5\xB4"}, {"Wedge;", "\xE2\x8B\x80"},
    {"Wfr;", "\xF0\x9D\x94\x9A"}, {"Wopf;", "\xF0\x9D\x95\x8E"}, {"Wscr;", "\xF0\x9D\x92\xB2"},
    {"Xfr;", "\xF0\x9D\x94\x9B"}, {"Xi;", "\xCE\x9E"}, {"Xopf;", "\xF0\x9D\x95\x8F"},
    {"Xscr;", "\xF0\x9D\x92\xB3"}, {"YAcy;", "\xD0\xAF"}, {"YIcy;", "\xD0\x87"},
    {"YUcy;", "\xD0\xAE"}, {"Yacute", "\xC3\x9D"}, {"Yacute;", "\xC3\x9D"},
    {"Ycirc;", "\xC5\xB6"}, {"Ycy;", "\xD0\xAB"}, {"Yfr;", "\xF0\x9D\x94\x9C"},
    {"Yopf;", "\xF0\x9D\x95\x90"}, {"Yscr;", "\xF0\x9D\x92\xB4"}, {"Yuml;", "\xC5\xB8"},
    {"ZHcy;", "\xD0\x96"}, {"Zacute;", "\xC5\xB9"}, {"Zcaron;", "\xC5\xBD"},
    {"Zcy;", "\xD0\x97"}, {"Zdot;", "\xC5\xBB"}, {"ZeroWidthSpace;", "\xE2\x80\x8B"},
    {"Zeta;", "\xCE\x96"}, {"Zfr;", "\xE2\x84\xA8"}, {"Zopf;", "\xE2\x84\xA4"},
    {"Zscr;", "\xF0\x9D\x92\xB5"}, {"aacute", "\xC3\xA1"}, {"aacute;", "\xC3\xA1"},
    {"abreve;", "\xC4\x83"}, {"ac;", "\xE2\x88\xBE"}, {"acE;", "\xE2\x88\xBE\xCC\xB3"},
    {"acd;", "\xE2\x88\xBF"}, {"acirc", "\xC3\xA2"}, {"acirc;", "\xC3\xA2"},
    {"acute", "\xC2\xB4"}, {"acute;", "\xC2\xB4"}, {"acy;", "\xD0\xB0"},
    {"aelig", "\xC3\xA6"}, {"aelig;", "\xC3\xA6"}, {"af;", "\xE2\x81\xA1"},
    {"afr;", "\xF0\x9D\x94\x9E"}, {"agrave", "\xC3\xA0"}, {"agrave;", "\xC3\xA0"},
    {"alefsym;", "\xE2\x84\xB5"}, {"aleph;", "\xE2\x84\xB5"}, {"alpha;", "\xCE\xB1"},
    {"amacr;", "\xC4\x81"}, {"amalg;", "\xE2\xA8\xBF"}, {"amp", "\x26"},
    {"amp;", "\x26"}, {"and;", "\xE2\x88\xA7"}, {"andand;", "\xE2\xA9\x95"},
    {"andd;", "\xE2\xA9\x9C"}, {"andslope;", "\xE2\xA9\x98"}, {"andv;", "\xE2\xA9\x9A"},
    {"ang;", "\xE2\x88\xA0"}, {"ange;", "\xE2\xA6\xA4"}, {"angle;", "\xE2\x88\xA0"},
    {"angmsd;", "\xE2\x88\xA1"}, {"angmsdaa;", "\xE2\xA6\xA8"}, {"angmsdab;", "\xE2\xA6\xA9"},
    {"angmsdac;", "\xE2\xA6\xAA"}, {"angmsdad;", "\xE2\xA6\xAB"}, {"angmsdae;", "\xE2\xA6\xAC"},
    {"angmsdaf;", "\xE2\xA6\xAD"}, {"angmsdag;", "\xE2\xA6\xAE"}, {"angmsdah;", "\xE2\xA6\xAF"},
    {"angrt;", "\xE2\x88\x9F"}, {"angrtvb;", "\xE2\x8A\xBE"}, {"angrtvbd;", "\xE2\xA6\x9D"},
    {"angsph;", "\xE2\x88\xA2"}, {"angst;", "\xC3\x85"}, {"angzarr;", "\xE2\x8D\xBC"},
    {"aogon;", "\xC4\x85"}, {"aopf;", "\xF0\x9D\x95\x92"}, {"ap;", "\xE2\x89\x88"},
    {"apE;", "\xE2\xA9\xB0"}, {"apacir;", "\xE2\xA9\xAF"}, {"ape;", "\xE2\x89\x8A"},
    {"apid;", "\xE2\x89\x8B"}, {"apos;", "\x27"}, {"approx;", "\xE2\x89\x88"},
    {"approxeq;", "\xE2\x89\x8A"}, {"aring", "\xC3\xA5"}, {"aring;", "\xC3\xA5"},
    {"ascr;", "\xF0\x9D\x92\xB6"}, {"ast;", "\x2A"}, {"asymp;", "\xE2\x89\x88"},
    {"asympeq;", "\xE2\x89\x8D"}, {"atilde", "\xC3\xA3"}, {"atilde;", "\xC3\xA3"},
    {"auml", "\xC3\xA4"}, {"auml;", "\xC3\xA4"}, {"awconint;", "\xE2\x88\xB3"},
    {"awint;", "\xE2\xA8\x91"}, {"bNot;", "\xE2\xAB\xAD"}, {"backcong;", "\xE2\x89\x8C"},
    {"backepsilon;", "\xCF\xB6"}, {"backprime;", "\xE2\x80\xB5"}, {"backsim;", "\xE2\x88\xBD"},
    {"backsimeq;", "\xE2\x8B\x8D"}, {"barvee;", "\xE2\x8A\xBD"}, {"barwed;", "\xE2\x8C\x85"},
    {"barwedge;", "\xE2\x8C\x85"}, {"bbrk;", "\xE2\x8E\xB5"}, {"bbrktbrk;", "\xE2\x8E\xB6"},
    {"bcong;", "\xE2\x89\x8C"}, {"bcy;", "\xD0\xB1"}, {"bdquo;", "\xE2\x80\x9E"},
    {"becaus;", "\xE2\x88\xB5"}, {"because;", "\xE2\x88\xB5"}, {"bemptyv;", "\xE2\xA6\xB0"},
    {"bepsi;", "\xCF\xB6"}, {"bernou;", "\xE2\x84\xAC"}, {"beta;", "\xCE\xB2"},
    {"beth;", "\xE2\x84\xB6"}, {"between;", "\xE2\x89\xAC"}, {"bfr;", "\xF0\x9D\x94\x9F"},
    {"bigcap;", "\xE2\x8B\x82"}, {"bigcirc;", "\xE2\x97\xAF"}, {"bigcup;", "\xE2\x8B\x83"},
    {"bigodot;", "\xE2\xA8\x80"}, {"bigoplus;", "\xE2\xA8\x81"}, {"bigotimes;", "\xE2\xA8\x82"},
    {"bigsqcup;", "\xE2\xA8\x86"}, {"bigstar;", "\xE2\x98\x85"}, {"bigtriangledown;", "\xE2\x96\xBD"},
    {"bigtriangleup;", "\xE2\x96\xB3"}, {"biguplus;", "\xE2\xA8\x84"}, {"bigvee;", "\xE2\x8B\x81"},
    {"bigwedge;", "\xE2\x8B\x80"}, {"bkarow;", "\xE2\xA4\x8D"}, {"blacklozenge;", "\xE2\xA7\xAB"},
    {"blacksquare;", "\xE2\x96\xAA"}, {"blacktriangle;", "\xE2\x96\xB4"}, {"blacktriangledown;", "\xE2\x96\xBE"},
    {"blacktriangleleft;", "\xE2\x97\x82"}, {"blacktriangleright;", "\xE2\x96\xB8"}, {"blank;", "\xE2\x90\xA3"},
    {"blk12;", "\xE2\x96\x92"}, {"blk14;", "\xE2\x96\x91"}, {"blk34;", "\xE2\x96\x93"},
    {"block;", "\xE2\x96\x88"}, {"bne;", "\x3D\xE2\x83\xA5"}, {"bnequiv;", "\xE2\x89\xA1\xE2\x83\xA5"},
    {"bnot;", "\xE2\x8C\x90"}, {"bopf;", "\xF0\x9D\x95\x93"}, {"bot;", "\xE2\x8A\xA5"},
    {"bottom;", "\xE2\x8A\xA5"}, {"bowtie;", "\xE2\x8B\x88"}, {"boxDL;", "\xE2\x95\x97"},
    {"boxDR;", "\xE2\x95\x94"}, {"boxDl;", "\xE2\x95\x96"}, {"boxDr;", "\xE2\x95\x93"},
    {"boxH;", "\xE2\x95\x90"}, {"boxHD;", "\xE2\x95\xA6"}, {"boxHU;", "\xE2\x95\xA9"},
    {"boxHd;", "\xE2\x95\xA4"}, {"boxHu;", "\xE2\x95\xA7"}, {"boxUL;", "\xE2\x95\x9D"},
    {"boxUR;", "\xE2\x95\x9A"}, {"boxUl;", "\xE2\x95\x9C"}, {"boxUr;", "\xE2\x95\x99"},
    {"boxV;", "\xE2\x95\x91"}, {"boxVH;", "\xE2\x95\xAC"}, {"boxVL;", "\xE2\x95\xA3"},
    {"boxVR;", "\xE2\x95\xA0"}, {"boxVh;", "\xE2\x95\xAB"}, {"boxVl;", "\xE2\x95\xA2"},
    {"boxVr;", "\xE2\x95\x9F"}, {"boxbox;", "\xE2\xA7\x89"}, {"boxdL;", "\xE2\x95\x95"},
    {"boxdR;", "\xE2\x95\x92"}, {"boxdl;", "\xE2\x94\x90"}, {"boxdr;", "\xE2\x94\x8C"},
    {"boxh;", "\xE2\x94\x80"}, {"boxhD;", "\xE2\x95\xA5"}, {"boxhU;", "\xE2\x95\xA8"},
    {"boxhd;", "\xE2\x94\xAC"}, {"boxhu;", "\xE2\x94\xB4"}, {"boxminus;", "\xE2\x8A\x9F"},
    {"boxplus;", "\xE2\x8A\x9E"}, {"boxtimes;", "\xE2\x8A\xA0"}, {"boxuL;", "\xE2\x95\x9B"},
    {"boxuR;", "\xE2\x95\x98"}, {"boxul;", "\xE2\x94\x98"}, {"boxur;", "\xE2\x94\x94"},
    {"boxv;", "\xE2\x94\x82"}, {"boxvH;", "\xE2\x95\xAA"}, {"boxvL;", "\xE2\x95\xA1"},
    {"boxvR;", "\xE2\x95\x9E"}, {"boxvh;", "\xE2\x94\xBC"}, {"boxvl;", "\xE2\x94\xA4"},
    {"boxvr;", "\xE2\x94\x9C"}, {"bprime;", "\xE2\x80\xB5"}, {"breve;", "\xCB\x98"},
    {"brvbar", "\xC2\xA6"}, {"brvbar;", "\xC2\xA6"}, {"bscr;", "\xF0\x9D\x92\xB7"},
    {"bsemi;", "\xE2\x81\x8F"}, {"bsim;", "\xE2\x88\xBD"}, {"bsime;", "\xE2\x8B\x8D"},
    {"bsol;", "\x5C"}, {"bsolb;", "\xE2\xA7\x85"}, {"bsolhsub;", "\xE2\x9F\x88"},
    {"bull;", "\xE2\x80\xA2"}, {"bullet;", "\xE2\x80\xA2"}, {"bump;", "\xE2\x89\x8E"},
    {"bumpE;", "\xE2\xAA\xAE"}, {"bumpe;", "\xE2\x89\x8F"}, {"bumpeq;", "\xE2\x89\x8F"},
    {"cacute;", "\xC4\x87"}, {"cap;", "\xE2\x88\xA9"}, {"capand;", "\xE2\xA9\x84"},
    {"capbrcup;", "\xE2\xA9\x89"}, {"capcap;", "\xE2\xA9\x8B"}, {"capcup;", "\xE2\xA9\x87"},
    {"capdot;", "\xE2\xA9\x80"}, {"caps;", "\xE2\x88\xA9\xEF\xB8\x80"}, {"caret;", "\xE2\x81\x81"},
    {"caron;", "\xCB\x87"}, {"ccaps;", "\xE2\xA9\x8D"}, {"ccaron;", "\xC4\x8D"},
    {"ccedil", "\xC3\xA7"}, {"ccedil;", "\xC3\xA7"}, {"ccirc;", "\xC4\x89"},
    {"ccups;", "\xE2\xA9\x8C"}, {"ccupssm;", "\xE2\xA9\x90"}, {"cdot;", "\xC4\x8B"},
    {"cedil", "\xC2\xB8"}, {"cedil;", "\xC2\xB8"}, {"cemptyv;", "\xE2\xA6\xB2"},
    {"cent", "\xC2\xA2"}, {"cent;", "\xC2\xA2"}, {"centerdot;", "\xC2\xB7"},
    {"cfr;", "\xF0\x9D\x94\xA0"}, {"chcy;", "\xD1\x87"}, {"check;", "\xE2\x9C\x93"},
    {"checkmark;", "\xE2\x9C\x93"}, {"chi;", "\xCF\x87"}, {"cir;", "\xE2\x97\x8B"},
    {"cirE;", "\xE2\xA7\x83"}, {"circ;", "\xCB\x86"}, {"circeq;", "\xE2\x89\x97"},
    {"circlearrowleft;", "\xE2\x86\xBA"}, {"circlearrowright;", "\xE2\x86\xBB"}, {"circledR;", "\xC2\xAE"},
    {"circledS;", "\xE2\x93\x88"}, {"circledast;", "\xE2\x8A\x9B"}, {"circledcirc;", "\xE2\x8A\x9A"},
    {"circleddash;", "\xE2\x8A\x9D"}, {"cire;", "\xE2\x89\x97"}, {"cirfnint;", "\xE2\xA8\x90"},
    {"cirmid;", "\xE2\xAB\xAF"}, {"cirscir;", "\xE2\xA7\x82"}, {"clubs;", "\xE2\x99\xA3"},
    {"clubsuit;", "\xE2\x99\xA3"}, {"colon;", "\x3A"}, {"colone;", "\xE2\x89\x94"},
    {"coloneq;", "\xE2\x89\x94"}, {"comma;", "\x2C"}, {"commat;", "\x40"},
    {"comp;", "\xE2\x88\x81"}, {"compfn;", "\xE2\x88\x98"}, {"complement;", "\xE2\x88\x81"},
    {"complexes;", "\xE2\x84\x82"}, {"cong;", "\xE2\x89\x85"}, {"congdot;", "\xE2\xA9\xAD"},
    {"conint;", "\xE2\x88\xAE"}, {"copf;", "\xF0\x9D\x95\x94"}, {"coprod;", "\xE2\x88\x90"},
    {"copy", "\xC2\xA9"}, {"copy;", "\xC2\xA9"}, {"copysr;", "\xE2\x84\x97"},
    {"crarr;", "\xE2\x86\xB5"}, {"cross;", "\xE2\x9C\x97"}, {"cscr;", "\xF0\x9D\x92\xB8"},
    {"csub;", "\xE2\xAB\x8F"}, {"csube;", "\xE2\xAB\x91"}, {"csup;", "\xE2\xAB\x90"},
    {"csupe;", "\xE2\xAB\x92"}, {"ctdot;", "\xE2\x8B\xAF"}, {"cudarrl;", "\xE2\xA4\xB8"},
    {"cudarrr;", "\xE2\xA4\xB5"}, {"cuepr;", "\xE2\x8B\x9E"}, {"cuesc;", "\xE2\x8B\x9F"},
    {"cularr;", "\xE2\x86\xB6"}, {"cularrp;", "\xE2\xA4\xBD"}, {"cup;", "\xE2\x88\xAA"},
    {"cupbrcap;", "\xE2\xA9\x88"}, {"cupcap;", "\xE2\xA9\x86"}, {"cupcup;", "\xE2\xA9\x8A"},
    {"cupdot;", "\xE2\x8A\x8D"}, {"cupor;", "\xE2\xA9\x85"}, {"cups;", "\xE2\x88\xAA\xEF\xB8\x80"},
    {"curarr;", "\xE2\x86\xB7"}, {"curarrm;", "\xE2\xA4\xBC"}, {"curlyeqprec;", "\xE2\x8B\x9E"},
    {"curlyeqsucc;", "\xE2\x8B\x9F"}, {"curlyvee;", "\xE2\x8B\x8E"}, {"curlywedge;", "\xE2\x8B\x8F"},
    {"curren", "\xC2\xA4"}, {"curren;", "\xC2\xA4"}, {"curvearrowleft;", "\xE2\x86\xB6"},
    {"curvearrowright;", "\xE2\x86\xB7"}, {"cuvee;", "\xE2\x8B\x8E"}, {"cuwed;", "\xE2\x8B\x8F"},
    {"cwconint;", "\xE2\x88\xB2"}, {"cwint;", "\xE2\x88\xB1"}, {"cylcty;", "\xE2\x8C\xAD"},
    {"dArr;", "\xE2\x87\x93"}, {"dHar;", "\xE2\xA5\xA5"}, {"dagger;", "\xE2\x80\xA0"},
    {"daleth;", "\xE2\x84\xB8"}, {"darr;", "\xE2\x86\x93"}, {"dash;", "\xE2\x80\x90"},
    {"dashv;", "\xE2\x8A\xA3"}, {"dbkarow;", "\xE2\xA4\x8F"}, {"dblac;", "\xCB\x9D"},
    {"dcaron;", "\xC4\x8F"}, {"dcy;", "\xD0\xB4"}, {"dd;", "\xE2\x85\x86"},
    {"ddagger;", "\xE2\x80\xA1"}, {"ddarr;", "\xE2\x87\x8A"}, {"ddotseq;", "\xE2\xA9\xB7"},
    {"deg", "\xC2\xB0"}, {"deg;", "\xC2\xB0"}, {"delta;", "\xCE\xB4"},
    {"demptyv;", "\xE2\xA6\xB1"}, {"dfisht;", "\xE2\xA5\xBF"}, {"dfr;", "\xF0\x9D\x94\xA1"},
    {"dharl;", "\xE2\x87\x83"}, {"dharr;", "\xE2\x87\x82"}, {"diam;", "\xE2\x8B\x84"},
    {"diamond;", "\xE2\x8B\x84"}, {"diamondsuit;", "\xE2\x99\xA6"}, {"diams;", "\xE2\x99\xA6"},
    {"die;", "\xC2\xA8"}, {"digamma;", "\xCF\x9D"}, {"disin;", "\xE2\x8B\xB2"},
    {"div;", "\xC3\xB7"}, {"divide", "\xC3\xB7"}, {"divide;", "\xC3\xB7"},
    {"divideontimes;", "\xE2\x8B\x87"}, {"divonx;", "\xE2\x8B\x87"}, {"djcy;", "\xD1\x92"},
    {"dlcorn;", "\xE2\x8C\x9E"}, {"dlcrop;", "\xE2\x8C\x8D"}, {"dollar;", "\x24"},
    {"dopf;", "\xF0\x9D\x95\x95"}, {"dot;", "\xCB\x99"}, {"doteq;", "\xE2\x89\x90"},
    {"doteqdot;", "\xE2\x89\x91"}, {"dotminus;", "\xE2\x88\xB8"}, {"dotplus;", "\xE2\x88\x94"},
    {"dotsquare;", "\xE2\x8A\xA1"}, {"doublebarwedge;", "\xE2\x8C\x86"}, {"downarrow;", "\xE2\x86\x93"},
    {"downdownarrows;", "\xE2\x87\x8A"}, {"downharpoonleft;", "\xE2\x87\x83"}, {"downharpoonright;", "\xE2\x87\x82"},
    {"drbkarow;", "\xE2\xA4\x90"}, {"drcorn;", "\xE2\x8C\x9F"}, {"drcrop;", "\xE2\x8C\x8C"},
    {"dscr;", "\xF0\x9D\x92\xB9"}, {"dscy;", "\xD1\x95"}, {"dsol;", "\xE2\xA7\xB6"},
    {"dstrok;", "\xC4\x91"}, {"dtdot;", "\xE2\x8B\xB1"}, {"dtri;", "\xE2\x96\xBF"},
    {"dtrif;", "\xE2\x96\xBE"}, {"duarr;", "\xE2\x87\xB5"}, {"duhar;", "\xE2\xA5\xAF"},
    {"dwangle;", "\xE2\xA6\xA6"}, {"dzcy;", "\xD1\x9F"}, {"dzigrarr;", "\xE2\x9F\xBF"},
    {"eDDot;", "\xE2\xA9\xB7"}, {"eDot;", "\xE2\x89\x91"}, {"eacute", "\xC3\xA9"},
    {"eacute;", "\xC3\xA9"}, {"easter;", "\xE2\xA9\xAE"}, {"ecaron;", "\xC4\x9B"},
    {"ecir;", "\xE2\x89\x96"}, {"ecirc", "\xC3\xAA"}, {"ecirc;", "\xC3\xAA"},
    {"ecolon;", "\xE2\x89\x95"}, {"ecy;", "\xD1\x8D"}, {"edot;", "\xC4\x97"},
    {"ee;", "\xE2\x85\x87"}, {"efDot;", "\xE2\x89\x92"}, {"efr;", "\xF0\x9D\x94\xA2"},
    {"eg;", "\xE2\xAA\x9A"}, {"egrave", "\xC3\xA8"}, {"egrave;", "\xC3\xA8"},
    {"egs;", "\xE2\xAA\x96"}, {"egsdot;", "\xE2\xAA\x98"}, {"el;", "\xE2\xAA\x99"},
    {"elinters;", "\xE2\x8F\xA7"}, {"ell;", "\xE2\x84\x93"}, {"els;", "\xE2\xAA\x95"},
    {"elsdot;", "\xE2\xAA\x97"}, {"emacr;", "\xC4\x93"}, {"empty;", "\xE2\x88\x85"},
    {"emptyset;", "\xE2\x88\x85"}, {"emptyv;", "\xE2\x88\x85"}, {"emsp13;", "\xE2\x80\x84"},
    {"emsp14;", "\xE2\x80\x85"}, {"emsp;", "\xE2\x80\x83"}, {"eng;", "\xC5\x8B"},
    {"ensp;", "\xE2\x80\x82"}, {"eogon;", "\xC4\x99"}, {"eopf;", "\xF0\x9D\x95\x96"},
    {"epar;", "\xE2\x8B\x95"}, {"eparsl;", "\xE2\xA7\xA3"}, {"eplus;", "\xE2\xA9\xB1"},
    {"epsi;", "\xCE\xB5"}, {"epsilon;", "\xCE\xB5"}, {"epsiv;", "\xCF\xB5"},
    {"eqcirc;", "\xE2\x89\x96"}, {"eqcolon;", "\xE2\x89\x95"}, {"eqsim;", "\xE2\x89\x82"},
    {"eqslantgtr;", "\xE2\xAA\x96"}, {"eqslantless;", "\xE2\xAA\x95"}, {"equals;", "\x3D"},
    {"equest;", "\xE2\x89\x9F"}, {"equiv;", "\xE2\x89\xA1"}, {"equivDD;", "\xE2\xA9\xB8"},
    {"eqvparsl;", "\xE2\xA7\xA5"}, {"erDot;", "\xE2\x89\x93"}, {"erarr;", "\xE2\xA5\xB1"},
    {"escr;", "\xE2\x84\xAF"}, {"esdot;", "\xE2\x89\x90"}, {"esim;", "\xE2\x89\x82"},
    {"eta;", "\xCE\xB7"}, {"eth", "\xC3\xB0"}, {"eth;", "\xC3\xB0"},
    {"euml", "\xC3\xAB"}, {"euml;", "\xC3\xAB"}, {"euro;", "\xE2\x82\xAC"},
    {"excl;", "\x21"}, {"exist;", "\xE2\x88\x83"}, {"expectation;", "\xE2\x84\xB0"},
    {"exponentiale;", "\xE2\x85\x87"}, {"fallingdotseq;", "\xE2\x89\x92"}, {"fcy;", "\xD1\x84"},
    {"female;", "\xE2\x99\x80"}, {"ffilig;", "\xEF\xAC\x83"}, {"fflig;", "\xEF\xAC\x80"},
    {"ffllig;", "\xEF\xAC\x84"}, {"ffr;", "\xF0\x9D\x94\xA3"}, {"filig;", "\xEF\xAC\x81"},
    {"fjlig;", "\x66\x6A"}, {"flat;", "\xE2\x99\xAD"}, {"fllig;", "\xEF\xAC\x82"},
    {"fltns;", "\xE2\x96\xB1"}, {"fnof;", "\xC6\x92"}, {"fopf;", "\xF0\x9D\x95\x97"},
    {"forall;", "\xE2\x88\x80"}, {"fork;", "\xE2\x8B\x94"}, {"forkv;", "\xE2\xAB\x99"},
    {"fpartint;", "\xE2\xA8\x8D"}, {"frac12", "\xC2\xBD"}, {"frac12;", "\xC2\xBD"},
    {"frac13;", "\xE2\x85\x93"}, {"frac14", "\xC2\xBC"}, {"frac14;", "\xC2\xBC"},
    {"frac15;", "\xE2\x85\x95"}, {"frac16;", "\xE2\x85\x99"}, {"frac18;", "\xE2\x85\x9B"},
    {"frac23;", "\xE2\x85\x94"}, {"frac25;", "\xE2\x85\x96"}, {"frac34", "\xC2\xBE"},
    {"frac34;", "\xC2\xBE"}, {"frac35;", "\xE2\x85\x97"}, {"frac38;", "\xE2\x85\x9C"},
    {"frac45;", "\xE2\x85\x98"}, {"frac56;", "\xE2\x85\x9A"}, {"frac58;", "\xE2\x85\x9D"},
    {"frac78;", "\xE2\x85\x9E"}, {"frasl;", "\xE2\x81\x84"}, {"frown;", "\xE2\x8C\xA2"},
    {"fscr;", "\xF0\x9D\x92\xBB"}, {"gE;", "\xE2\x89\xA7"}, {"gEl;", "\xE2\xAA\x8C"},
    {"gacute;", "\xC7\xB5"}, {"gamma;", "\xCE\xB3"}, {"gammad;", "\xCF\x9D"},
    {"gap;", "\xE2\xAA\x86"}, {"gbreve;", "\xC4\x9F"}, {"gcirc;", "\xC4\x9D"},
    {"gcy;", "\xD0\xB3"}, {"gdot;", "\xC4\xA1"}, {"ge;", "\xE2\x89\xA5"},
    {"gel;", "\xE2\x8B\x9B"}, {"geq;", "\xE2\x89\xA5"}, {"geqq;", "\xE2\x89\xA7"},
    {"geqslant;", "\xE2\xA9\xBE"}, {"ges;", "\xE2\xA9\xBE"}, {"gescc;", "\xE2\xAA\xA9"},
    {"gesdot;", "\xE2\xAA\x80"}, {"gesdoto;", "\xE2\xAA\x82"}, {"gesdotol;", "\xE2\xAA\x84"},
    {"gesl;", "\xE2\x8B\x9B\xEF\xB8\x80"}, {"gesles;", "\xE2\xAA\x94"}, {"gfr;", "\xF0\x9D\x94\xA4"},
    {"gg;", "\xE2\x89\xAB"}, {"ggg;", "\xE2\x8B\x99"}, {"gimel;", "\xE2\x84\xB7"},
    {"gjcy;", "\xD1\x93"}, {"gl;", "\xE2\x89\xB7"}, {"glE;", "\xE2\xAA\x92"},
    {"gla;", "\xE2\xAA\xA5"}, {"glj;", "\xE2\xAA\xA4"}, {"gnE;", "\xE2\x89\xA9"},
    {"gnap;", "\xE2\xAA\x8A"}, {"gnapprox;", "\xE2\xAA\x8A"}, {"gne;", "\xE2\xAA\x88"},
    {"gneq;", "\xE2\xAA\x88"}, {"gneqq;", "\xE2\x89\xA9"}, {"gnsim;", "\xE2\x8B\xA7"},
    {"gopf;", "\xF0\x9D\x95\x98"}, {"grave;", "\x60"}, {"gscr;", "\xE2\x84\x8A"},
    {"gsim;", "\xE2\x89\xB3"}, {"gsime;", "\xE2\xAA\x8E"}, {"gsiml;", "\xE2\xAA\x90"},
    {"gt", "\x3E"}, {"gt;", "\x3E"}, {"gtcc;", "\xE2\xAA\xA7"},
    {"gtcir;", "\xE2\xA9\xBA"}, {"gtdot;", "\xE2\x8B\x97"}, {"gtlPar;", "\xE2\xA6\x95"},
    {"gtquest;", "\xE2\xA9\xBC"}, {"gtrapprox;", "\xE2\xAA\x86"}, {"gtrarr;", "\xE2\xA5\xB8"},
    {"gtrdot;", "\xE2\x8B\x97"}, {"gtreqless;", "\xE2\x8B\x9B"}, {"gtreqqless;", "\xE2\xAA\x8C"},
    {"gtrless;", "\xE2\x89\xB7"}, {"gtrsim;", "\xE2\x89\xB3"}, {"gvertneqq;", "\xE2\x89\xA9\xEF\xB8\x80"},
    {"gvnE;", "\xE2\x89\xA9\xEF\xB8\x80"}, {"hArr;", "\xE2\x87\x94"}, {"hairsp;", "\xE2\x80\x8A"},
    {"half;", "\xC2\xBD"}, {"hamilt;", "\xE2\x84\x8B"}, {"hardcy;", "\xD1\x8A"},
    {"harr;", "\xE2\x86\x94"}, {"harrcir;", "\xE2\xA5\x88"}, {"harrw;", "\xE2\x86\xAD"},
    {"hbar;", "\xE2\x84\x8F"}, {"hcirc;", "\xC4\xA5"}, {"hearts;", "\xE2\x99\xA5"},
    {"heartsuit;", "\xE2\x99\xA5"}, {"hellip;", "\xE2\x80\xA6"}, {"hercon;", "\xE2\x8A\xB9"},
    {"hfr;", "\xF0\x9D\x94\xA5"}, {"hksearow;", "\xE2\xA4\xA5"}, {"hkswarow;", "\xE2\xA4\xA6"},
    {"hoarr;", "\xE2\x87\xBF"}, {"homtht;", "\xE2\x88\xBB"}, {"hookleftarrow;", "\xE2\x86\xA9"},
    {"hookrightarrow;", "\xE2\x86\xAA"}, {"hopf;", "\xF0\x9D\x95\x99"}, {"horbar;", "\xE2\x80\x95"},
    {"hscr;", "\xF0\x9D\x92\xBD"}, {"hslash;", "\xE2\x84\x8F"}, {"hstrok;", "\xC4\xA7"},
    {"hybull;", "\xE2\x81\x83"}, {"hyphen;", "\xE2\x80\x90"}, {"iacute", "\xC3\xAD"},
    {"iacute;", "\xC3\xAD"}, {"ic;", "\xE2\x81\xA3"}, {"icirc", "\xC3\xAE"},
    {"icirc;", "\xC3\xAE"}, {"icy;", "\xD0\xB8"}, {"iecy;", "\xD0\xB5"},
    {"iexcl", "\xC2\xA1"}, {"iexcl;", "\xC2\xA1"}, {"iff;", "\xE2\x87\x94"},
    {"ifr;", "\xF0\x9D\x94\xA6"}, {"igrave", "\xC3\xAC"}, {"igrave;", "\xC3\xAC"},
    {"ii;", "\xE2\x85\x88"}, {"iiiint;", "\xE2\xA8\x8C"}, {"iiint;", "\xE2\x88\xAD"},
    {"iinfin;", "\xE2\xA7\x9C"}, {"iiota;", "\xE2\x84\xA9"}, {"ijlig;", "\xC4\xB3"},
    {"imacr;", "\xC4\xAB"}, {"image;", "\xE2\x84\x91"}, {"imagline;", "\xE2\x84\x90"},
    {"imagpart;", "\xE2\x84\x91"}, {"imath;", "\xC4\xB1"}, {"imof;", "\xE2\x8A\xB7"},
    {"imped;", "\xC6\xB5"}, {"in;", "\xE2\x88\x88"}, {"incare;", "\xE2\x84\x85"},
    {"infin;", "\xE2\x88\x9E"}, {"infintie;", "\xE2\xA7\x9D"}, {"inodot;", "\xC4\xB1"},
    {"int;", "\xE2\x88\xAB"}, {"intcal;", "\xE2\x8A\xBA"}, {"integers;", "\xE2\x84\xA4"},
    {"intercal;", "\xE2\x8A\xBA"}, {"intlarhk;", "\xE2\xA8\x97"}, {"intprod;", "\xE2\xA8\xBC"},
    {"iocy;", "\xD1\x91"}, {"iogon;", "\xC4\xAF"}, {"iopf;", "\xF0\x9D\x95\x9A"},
    {"iota;", "\xCE\xB9"}, {"iprod;", "\xE2\xA8\xBC"}, {"iquest", "\xC2\xBF"},
    {"iquest;", "\xC2\xBF"}, {"iscr;", "\xF0\x9D\x92\xBE"}, {"isin;", "\xE2\x88\x88"},
    {"isinE;", "\xE2\x8B\xB9"}, {"isindot;", "\xE2\x8B\xB5"}, {"isins;", "\xE2\x8B\xB4"},
    {"isinsv;", "\xE2\x8B\xB3"}, {"isinv;", "\xE2\x88\x88"}, {"it;", "\xE2\x81\xA2"},
    {"itilde;", "\xC4\xA9"}, {"iukcy;", "\xD1\x96"}, {"iuml", "\xC3\xAF"},
    {"iuml;", "\xC3\xAF"}, {"jcirc;", "\xC4\xB5"}, {"jcy;", "\xD0\xB9"},
    {"jfr;", "\xF0\x9D\x94\xA7"}, {"jmath;", "\xC8\xB7"}, {"jopf;", "\xF0\x9D\x95\x9B"},
    {"jscr;", "\xF0\x9D\x92\xBF"}, {"jsercy;", "\xD1\x98"}, {"jukcy;", "\xD1\x94"},
    {"kappa;", "\xCE\xBA"}, {"kappav;", "\xCF\xB0"}, {"kcedil;", "\xC4\xB7"},
    {"kcy;", "\xD0\xBA"}, {"kfr;", "\xF0\x9D\x94\xA8"}, {"kgreen;", "\xC4\xB8"},
    {"khcy;", "\xD1\x85"}, {"kjcy;", "\xD1\x9C"}, {"kopf;", "\xF0\x9D\x95\x9C"},
    {"kscr;", "\xF0\x9D\x93\x80"}, {"lAarr;", "\xE2\x87\x9A"}, {"lArr;", "\xE2\x87\x90"},
    {"lAtail;", "\xE2\xA4\x9B"}, {"lBarr;", "\xE2\xA4\x8E"}, {"lE;", "\xE2\x89\xA6"},
    {"lEg;", "\xE2\xAA\x8B"}, {"lHar;", "\xE2\xA5\xA2"}, {"lacute;", "\xC4\xBA"},
    {"laemptyv;", "\xE2\xA6\xB4"}, {"lagran;", "\xE2\x84\x92"}, {"lambda;", "\xCE\xBB"},
    {"lang;", "\xE2\x9F\xA8"}, {"langd;", "\xE2\xA6\x91"}, {"langle;", "\xE2\x9F\xA8"},
    {"lap;", "\xE2\xAA\x85"}, {"laquo", "\xC2\xAB"}, {"laquo;", "\xC2\xAB"},
    {"larr;", "\xE2\x86\x90"}, {"larrb;", "\xE2\x87\xA4"}, {"larrbfs;", "\xE2\xA4\x9F"},
    {"larrfs;", "\xE2\xA4\x9D"}, {"larrhk;", "\xE2\x86\xA9"}, {"larrlp;", "\xE2\x86\xAB"},
    {"larrpl;", "\xE2\xA4\xB9"}, {"larrsim;", "\xE2\xA5\xB3"}, {"larrtl;", "\xE2\x86\xA2"},
    {"lat;", "\xE2\xAA\xAB"}, {"latail;", "\xE2\xA4\x99"}, {"late;", "\xE2\xAA\xAD"},
    {"lates;", "\xE2\xAA\xAD\xEF\xB8\x80"}, {"lbarr;", "\xE2\xA4\x8C"}, {"lbbrk;", "\xE2\x9D\xB2"},
    {"lbrace;", "\x7B"}, {"lbrack;", "\x5B"}, {"lbrke;", "\xE2\xA6\x8B"},
    {"lbrksld;", "\xE2\xA6\x8F"}, {"lbrkslu;", "\xE2\xA6\x8D"}, {"lcaron;", "\xC4\xBE"},
    {"lcedil;", "\xC4\xBC"}, {"lceil;", "\xE2\x8C\x88"}, {"lcub;", "\x7B"},
    {"lcy;", "\xD0\xBB"}, {"ldca;", "\xE2\xA4\xB6"}, {"ldquo;", "\xE2\x80\x9C"},
    {"ldquor;", "\xE2\x80\x9E"}, {"ldrdhar;", "\xE2\xA5\xA7"}, {"ldrushar;", "\xE2\xA5\x8B"},
    {"ldsh;", "\xE2\x86\xB2"}, {"le;", "\xE2\x89\xA4"}, {"leftarrow;", "\xE2\x86\x90"},
    {"leftarrowtail;", "\xE2\x86\xA2"}, {"leftharpoondown;", "\xE2\x86\xBD"}, {"leftharpoonup;", "\xE2\x86\xBC"},
    {"leftleftarrows;", "\xE2\x87\x87"}, {"leftrightarrow;", "\xE2\x86\x94"}, {"leftrightarrows;", "\xE2\x87\x86"},
    {"leftrightharpoons;", "\xE2\x87\x8B"}, {"leftrightsquigarrow;", "\xE2\x86\xAD"}, {"leftthreetimes;", "\xE2\x8B\x8B"},
    {"leg;", "\xE2\x8B\x9A"}, {"leq;", "\xE2\x89\xA4"}, {"leqq;", "\xE2\x89\xA6"},
    {"leqslant;", "\xE2\xA9\xBD"}, {"les;", "\xE2\xA9\xBD"}, {"lescc;", "\xE2\xAA\xA8"},
    {"lesdot;", "\xE2\xA9\xBF"}, {"lesdoto;", "\xE2\xAA\x81"}, {"lesdotor;", "\xE2\xAA\x83"},
    {"lesg;", "\xE2\x8B\x9A\xEF\xB8\x80"}, {"lesges;", "\xE2\xAA\x93"}, {"lessapprox;", "\xE2\xAA\x85"},
    {"lessdot;", "\xE2\x8B\x96"}, {"lesseqgtr;", "\xE2\x8B\x9A"}, {"lesseqqgtr;", "\xE2\xAA\x8B"},
    {"lessgtr;", "\xE2\x89\xB6"}, {"lesssim;", "\xE2\x89\xB2"}, {"lfisht;", "\xE2\xA5\xBC"},
    {"lfloor;", "\xE2\x8C\x8A"}, {"lfr;", "\xF0\x9D\x94\xA9"}, {"lg;", "\xE2\x89\xB6"},
    {"lgE;", "\xE2\xAA\x91"}, {"lhard;", "\xE2\x86\xBD"}, {"lharu;", "\xE2\x86\xBC"},
    {"lharul;", "\xE2\xA5\xAA"}, {"lhblk;", "\xE2\x96\x84"}, {"ljcy;", "\xD1\x99"},
    {"ll;", "\xE2\x89\xAA"}, {"llarr;", "\xE2\x87\x87"}, {"llcorner;", "\xE2\x8C\x9E"},
    {"llhard;", "\xE2\xA5\xAB"}, {"lltri;", "\xE2\x97\xBA"}, {"lmidot;", "\xC5\x80"},
    {"lmoust;", "\xE2\x8E\xB0"}, {"lmoustache;", "\xE2\x8E\xB0"}, {"lnE;", "\xE2\x89\xA8"},
    {"lnap;", "\xE2\xAA\x89"}, {"lnapprox;", "\xE2\xAA\x89"}, {"lne;", "\xE2\xAA\x87"},
    {"lneq;", "\xE2\xAA\x87"}, {"lneqq;", "\xE2\x89\xA8"}, {"lnsim;", "\xE2\x8B\xA6"},
    {"loang;", "\xE2\x9F\xAC"}, {"loarr;", "\xE2\x87\xBD"}, {"lobrk;", "\xE2\x9F\xA6"},
    {"longleftarrow;", "\xE2\x9F\xB5"}, {"longleftrightarrow;", "\xE2\x9F\xB7"}, {"longmapsto;", "\xE2\x9F\xBC"},
    {"longrightarrow;", "\xE2\x9F\xB6"}, {"looparrowleft;", "\xE2\x86\xAB"}, {"looparrowright;", "\xE2\x86\xAC"},
    {"lopar;", "\xE2\xA6\x85"}, {"lopf;", "\xF0\x9D\x95\x9D"}, {"loplus;", "\xE2\xA8\xAD"},
    {"lotimes;", "\xE2\xA8\xB4"}, {"lowast;", "\xE2\x88\x97"}, {"lowbar;", "\x5F"},
    {"loz;", "\xE2\x97\x8A"}, {"lozenge;", "\xE2\x97\x8A"}, {"lozf;", "\xE2\xA7\xAB"},
    {"lpar;", "\x28"}, {"lparlt;", "\xE2\xA6\x93"}, {"lrarr;", "\xE2\x87\x86"},
    {"lrcorner;", "\xE2\x8C\x9F"}, {"lrhar;", "\xE2\x87\x8B"}, {"lrhard;", "\xE2\xA5\xAD"},
    {"lrm;", "\xE2\x80\x8E"}, {"lrtri;", "\xE2\x8A\xBF"}, {"lsaquo;", "\xE2\x80\xB9"},
    {"lscr;", "\xF0\x9D\x93\x81"}, {"lsh;", "\xE2\x86\xB0"}, {"lsim;", "\xE2\x89\xB2"},
    {"lsime;", "\xE2\xAA\x8D"}, {"lsimg;", "\xE2\xAA\x8F"}, {"lsqb;", "\x5B"},
    {"lsquo;", "\xE2\x80\x98"}, {"lsquor;", "\xE2\x80\x9A"}, {"lstrok;", "\xC5\x82"},
    {"lt", "\x3C"}, {"lt;", "\x3C"}, {"ltcc;", "\xE2\xAA\xA6"},
    {"ltcir;", "\xE2\xA9\xB9"}, {"ltdot;", "\xE2\x8B\x96"}, {"lthree;", "\xE2\x8B\x8B"},
    {"ltimes;", "\xE2\x8B\x89"}, {"ltlarr;", "\xE2\xA5\xB6"}, {"ltquest;", "\xE2\xA9\xBB"},
    {"ltrPar;", "\xE2\xA6\x96"}, {"ltri;", "\xE2\x97\x83"}, {"ltrie;", "\xE2\x8A\xB4"},
    {"ltrif;", "\xE2\x97\x82"}, {"lurdshar;", "\xE2\xA5\x8A"}, {"luruhar;", "\xE2\xA5\xA6"},
    {"lvertneqq;", "\xE2\x89\xA8\xEF\xB8\x80"}, {"lvnE;", "\xE2\x89\xA8\xEF\xB8\x80"}, {"mDDot;", "\xE2\x88\xBA"},
    {"macr", "\xC2\xAF"}, {"macr;", "\xC2\xAF"}, {"male;", "\xE2\x99\x82"},
    {"malt;", "\xE2\x9C\xA0"}, {"maltese;", "\xE2\x9C\xA0"}, {"map;", "\xE2\x86\xA6"},
    {"mapsto;", "\xE2\x86\xA6"}, {"mapstodown;", "\xE2\x86\xA7"}, {"mapstoleft;", "\xE2\x86\xA4"},
    {"mapstoup;", "\xE2\x86\xA5"}, {"marker;", "\xE2\x96\xAE"}, {"mcomma;", "\xE2\xA8\xA9"},
    {"mcy;", "\xD0\xBC"}, {"mdash;", "\xE2\x80\x94"}, {"measuredangle;", "\xE2\x88\xA1"},
    {"mfr;", "\xF0\x9D\x94\xAA"}, {"mho;", "\xE2\x84\xA7"}, {"micro", "\xC2\xB5"},
    {"micro;", "\xC2\xB5"}, {"mid;", "\xE2\x88\xA3"}, {"midast;", "\x2A"},
    {"midcir;", "\xE2\xAB\xB0"}, {"middot", "\xC2\xB7"}, {"middot;", "\xC2\xB7"},
    {"minus;", "\xE2\x88\x92"}, {"minusb;", "\xE2\x8A\x9F"}, {"minusd;", "\xE2\x88\xB8"},
    {"minusdu;", "\xE2\xA8\xAA"}, {"mlcp;", "\xE2\xAB\x9B"}, {"mldr;", "\xE2\x80\xA6"},
    {"mnplus;", "\xE2\x88\x93"}, {"models;", "\xE2\x8A\xA7"}, {"mopf;", "\xF0\x9D\x95\x9E"},
    {"mp;", "\xE2\x88\x93"}, {"mscr;", "\xF0\x9D\x93\x82"}, {"mstpos;", "\xE2\x88\xBE"},
    {"mu;", "\xCE\xBC"}, {"multimap;", "\xE2\x8A\xB8"}, {"mumap;", "\xE2\x8A\xB8"},
    {"nGg;", "\xE2\x8B\x99\xCC\xB8"}, {"nGt;", "\xE2\x89\xAB\xE2\x83\x92"}, {"nGtv;", "\xE2\x89\xAB\xCC\xB8"},
    {"nLeftarrow;", "\xE2\x87\x8D"}, {"nLeftrightarrow;", "\xE2\x87\x8E"}, {"nLl;", "\xE2\x8B\x98\xCC\xB8"},
    {"nLt;", "\xE2\x89\xAA\xE2\x83\x92"}, {"nLtv;", "\xE2\x89\xAA\xCC\xB8"}, {"nRightarrow;", "\xE2\x87\x8F"},
    {"nVDash;", "\xE2\x8A\xAF"}, {"nVdash;", "\xE2\x8A\xAE"}, {"nabla;", "\xE2\x88\x87"},
    {"nacute;", "\xC5\x84"}, {"nang;", "\xE2\x88\xA0\xE2\x83\x92"}, {"nap;", "\xE2\x89\x89"},
    {"napE;", "\xE2\xA9\xB0\xCC\xB8"}, {"napid;", "\xE2\x89\x8B\xCC\xB8"}, {"napos;", "\xC5\x89"},
    {"napprox;", "\xE2\x89\x89"}, {"natur;", "\xE2\x99\xAE"}, {"natural;", "\xE2\x99\xAE"},
    {"naturals;", "\xE2\x84\x95"}, {"nbsp", "\xC2\xA0"}, {"nbsp;", "\xC2\xA0"},
    {"nbump;", "\xE2\x89\x8E\xCC\xB8"}, {"nbumpe;", "\xE2\x89\x8F\xCC\xB8"}, {"ncap;", "\xE2\xA9\x83"},
    {"ncaron;", "\xC5\x88"}, {"ncedil;", "\xC5\x86"}, {"ncong;", "\xE2\x89\x87"},
    {"ncongdot;", "\xE2\xA9\xAD\xCC\xB8"}, {"ncup;", "\xE2\xA9\x82"}, {"ncy;", "\xD0\xBD"},
    {"ndash;", "\xE2\x80\x93"}, {"ne;", "\xE2\x89\xA0"}, {"neArr;", "\xE2\x87\x97"},
    {"nearhk;", "\xE2\xA4\xA4"}, {"nearr;", "\xE2\x86\x97"}, {"nearrow;", "\xE2\x86\x97"},
    {"nedot;", "\xE2\x89\x90\xCC\xB8"}, {"nequiv;", "\xE2\x89\xA2"}, {"nesear;", "\xE2\xA4\xA8"},
    {"nesim;", "\xE2\x89\x82\xCC\xB8"}, {"nexist;", "\xE2\x88\x84"}, {"nexists;", "\xE2\x88\x84"},
    {"nfr;", "\xF0\x9D\x94\xAB"}, {"ngE;", "\xE2\x89\xA7\xCC\xB8"}, {"nge;", "\xE2\x89\xB1"},
    {"ngeq;", "\xE2\x89\xB1"}, {"ngeqq;", "\xE2\x89\xA7\xCC\xB8"}, {"ngeqslant;", "\xE2\xA9\xBE\xCC\xB8"},
    {"nges;", "\xE2\xA9\xBE\xCC\xB8"}, {"ngsim;", "\xE2\x89\xB5"}, {"ngt;", "\xE2\x89\xAF"},
    {"ngtr;", "\xE2\x89\xAF"}, {"nhArr;", "\xE2\x87\x8E"}, {"nharr;", "\xE2\x86\xAE"},
    {"nhpar;", "\xE2\xAB\xB2"}, {"ni;", "\xE2\x88\x8B"}, {"nis;", "\xE2\x8B\xBC"},
    {"nisd;", "\xE2\x8B\xBA"}, {"niv;", "\xE2\x88\x8B"}, {"njcy;", "\xD1\x9A"},
    {"nlArr;", "\xE2\x87\x8D"}, {"nlE;", "\xE2\x89\xA6\xCC\xB8"}, {"nlarr;", "\xE2\x86\x9A"},
    {"nldr;", "\xE2\x80\xA5"}, {"nle;", "\xE2\x89\xB0"}, {"nleftarrow;", "\xE2\x86\x9A"},
    {"nleftrightarrow;", "\xE2\x86\xAE"}, {"nleq;", "\xE2\x89\xB0"}, {"nleqq;", "\xE2\x89\xA6\xCC\xB8"},
    {"nleqslant;", "\xE2\xA9\xBD\xCC\xB8"}, {"nles;", "\xE2\xA9\xBD\xCC\xB8"}, {"nless;", "\xE2\x89\xAE"},
    {"nlsim;", "\xE2\x89\xB4"}, {"nlt;", "\xE2\x89\xAE"}, {"nltri;", "\xE2\x8B\xAA"},
    {"nltrie;", "\xE2\x8B\xAC"}, {"nmid;", "\xE2\x88\xA4"}, {"nopf;", "\xF0\x9D\x95\x9F"},
    {"not", "\xC2\xAC"}, {"not;", "\xC2\xAC"}, {"notin;", "\xE2\x88\x89"},
    {"notinE;", "\xE2\x8B\xB9\xCC\xB8"}, {"notindot;", "\xE2\x8B\xB5\xCC\xB8"}, {"notinva;", "\xE2\x88\x89"},
    {"notinvb;", "\xE2\x8B\xB7"}, {"notinvc;", "\xE2\x8B\xB6"}, {"notni;", "\xE2\x88\x8C"},
    {"notniva;", "\xE2\x88\x8C"}, {"notnivb;", "\xE2\x8B\xBE"}, {"notnivc;", "\xE2\x8B\xBD"},
    {"npar;", "\xE2\x88\xA6"}, {"nparallel;", "\xE2\x88\xA6"}, {"nparsl;", "\xE2\xAB\xBD\xE2\x83\xA5"},
    {"npart;", "\xE2\x88\x82\xCC\xB8"}, {"npolint;", "\xE2\xA8\x94"}, {"npr;", "\xE2\x8A\x80"},
    {"nprcue;", "\xE2\x8B\xA0"}, {"npre;", "\xE2\xAA\xAF\xCC\xB8"}, {"nprec;", "\xE2\x8A\x80"},
    {"npreceq;", "\xE2\xAA\xAF\xCC\xB8"}, {"nrArr;", "\xE2\x87\x8F"}, {"nrarr;", "\xE2\x86\x9B"},
    {"nrarrc;", "\xE2\xA4\xB3\xCC\xB8"}, {"nrarrw;", "\xE2\x86\x9D\xCC\xB8"}, {"nrightarrow;", "\xE2\x86\x9B"},
    {"nrtri;", "\xE2\x8B\xAB"}, {"nrtrie;", "\xE2\x8B\xAD"}, {"nsc;", "\xE2\x8A\x81"},
    {"nsccue;", "\xE2\x8B\xA1"}, {"nsce;", "\xE2\xAA\xB0\xCC\xB8"}, {"nscr;", "\xF0\x9D\x93\x83"},
    {"nshortmid;", "\xE2\x88\xA4"}, {"nshortparallel;", "\xE2\x88\xA6"}, {"nsim;", "\xE2\x89\x81"},
    {"nsime;", "\xE2\x89\x84"}, {"nsimeq;", "\xE2\x89\x84"}, {"nsmid;", "\xE2\x88\xA4"},
    {"nspar;", "\xE2\x88\xA6"}, {"nsqsube;", "\xE2\x8B\xA2"}, {"nsqsupe;", "\xE2\x8B\xA3"},
    {"nsub;", "\xE2\x8A\x84"}, {"nsubE;", "\xE2\xAB\x85\xCC\xB8"}, {"nsube;", "\xE2\x8A\x88"},
    {"nsubset;", "\xE2\x8A\x82\xE2\x83\x92"}, {"nsubseteq;", "\xE2\x8A\x88"}, {"nsubseteqq;", "\xE2\xAB\x85\xCC\xB8"},
    {"nsucc;", "\xE2\x8A\x81"}, {"nsucceq;", "\xE2\xAA\xB0\xCC\xB8"}, {"nsup;", "\xE2\x8A\x85"},
    {"nsupE;", "\xE2\xAB\x86\xCC\xB8"}, {"nsupe;", "\xE2\x8A\x89"}, {"nsupset;", "\xE2\x8A\x83\xE2\x83\x92"},
    {"nsupseteq;", "\xE2\x8A\x89"}, {"nsupseteqq;", "\xE2\xAB\x86\xCC\xB8"}, {"ntgl;", "\xE2\x89\xB9"},
    {"ntilde", "\xC3\xB1"}, {"ntilde;", "\xC3\xB1"}, {"ntlg;", "\xE2\x89\xB8"},
    {"ntriangleleft;", "\xE2\x8B\xAA"}, {"ntrianglelefteq;", "\xE2\x8B\xAC"}, {"ntriangleright;", "\xE2\x8B\xAB"},
    {"ntrianglerighteq;", "\xE2\x8B\xAD"}, {"nu;", "\xCE\xBD"}, {"num;", "\x23"},
    {"numero;", "\xE2\x84\x96"}, {"numsp;", "\xE2\x80\x87"}, {"nvDash;", "\xE2\x8A\xAD"},
    {"nvHarr;", "\xE2\xA4\x84"}, {"nvap;", "\xE2\x89\x8D\xE2\x83\x92"}, {"nvdash;", "\xE2\x8A\xAC"},
    {"nvge;", "\xE2\x89\xA5\xE2\x83\x92"}, {"nvgt;", "\x3E\xE2\x83\x92"}, {"nvinfin;", "\xE2\xA7\x9E"},
    {"nvlArr;", "\xE2\xA4\x82"}, {"nvle;", "\xE2\x89\xA4\xE2\x83\x92"}, {"nvlt;", "\x3C\xE2\x83\x92"},
    {"nvltrie;", "\xE2\x8A\xB4\xE2\x83\x92"}, {"nvrArr;", "\xE2\xA4\x83"}, {"nvrtrie;", "\xE2\x8A\xB5\xE2\x83\x92"},
    {"nvsim;", "\xE2\x88\xBC\xE2\x83\x92"}, {"nwArr;", "\xE2\x87\x96"}, {"nwarhk;", "\xE2\xA4\xA3"},
    {"nwarr;", "\xE2\x86\x96"}, {"nwarrow;", "\xE2\x86\x96"}, {"nwnear;", "\xE2\xA4\xA7"},
    {"oS;", "\xE2\x93\x88"}, {"oacute", "\xC3\xB3"}, {"oacute;", "\xC3\xB3"},
    {"oast;", "\xE2\x8A\x9B"}, {"ocir;", "\xE2\x8A\x9A"}, {"ocirc", "\xC3\xB4"},
    {"ocirc;", "\xC3\xB4"}, {"ocy;", "\xD0\xBE"}, {"odash;", "\xE2\x8A\x9D"},
    {"odblac;", "\xC5\x91"}, {"odiv;", "\xE2\xA8\xB8"}, {"odot;", "\xE2\x8A\x99"},
    {"odsold;", "\xE2\xA6\xBC"}, {"oelig;", "\xC5\x93"}, {"ofcir;", "\xE2\xA6\xBF"},
    {"ofr;", "\xF0\x9D\x94\xAC"}, {"ogon;", "\xCB\x9B"}, {"ograve", "\xC3\xB2"},
    {"ograve;", "\xC3\xB2"}, {"ogt;", "\xE2\xA7\x81"}, {"ohbar;", "\xE2\xA6\xB5"},
    {"ohm;", "\xCE\xA9"}, {"oint;", "\xE2\x88\xAE"}, {"olarr;", "\xE2\x86\xBA"},
    {"olcir;", "\xE2\xA6\xBE"}, {"olcross;", "\xE2\xA6\xBB"}, {"oline;", "\xE2\x80\xBE"},
    {"olt;", "\xE2\xA7\x80"}, {"omacr;", "\xC5\x8D"}, {"omega;", "\xCF\x89"},
    {"omicron;", "\xCE\xBF"}, {"omid;", "\xE2\xA6\xB6"}, {"ominus;", "\xE2\x8A\x96"},
    {"oopf;", "\xF0\x9D\x95\xA0"}, {"opar;", "\xE2\xA6\xB7"}, {"operp;", "\xE2\xA6\xB9"},
    {"oplus;", "\xE2\x8A\x95"}, {"or;", "\xE2\x88\xA8"}, {"orarr;", "\xE2\x86\xBB"},
    {"ord;", "\xE2\xA9\x9D"}, {"order;", "\xE2\x84\xB4"}, {"orderof;", "\xE2\x84\xB4"},
    {"ordf", "\xC2\xAA"}, {"ordf;", "\xC2\xAA"}, {"ordm", "\xC2\xBA"},
    {"ordm;", "\xC2\xBA"}, {"origof;", "\xE2\x8A\xB6"}, {"oror;", "\xE2\xA9\x96"},
    {"orslope;", "\xE2\xA9\x97"}, {"orv;", "\xE2\xA9\x9B"}, {"oscr;", "\xE2\x84\xB4"},
    {"oslash", "\xC3\xB8"}, {"oslash;", "\xC3\xB8"}, {"osol;", "\xE2\x8A\x98"},
    {"otilde", "\xC3\xB5"}, {"otilde;", "\xC3\xB5"}, {"otimes;", "\xE2\x8A\x97"},
    {"otimesas;", "\xE2\xA8\xB6"}, {"ouml", "\xC3\xB6"}, {"ouml;", "\xC3\xB6"},
    {"ovbar;", "\xE2\x8C\xBD"}, {"par;", "\xE2\x88\xA5"}, {"para", "\xC2\xB6"},
    {"para;", "\xC2\xB6"}, {"parallel;", "\xE2\x88\xA5"}, {"parsim;", "\xE2\xAB\xB3"},
    {"parsl;", "\xE2\xAB\xBD"}, {"part;", "\xE2\x88\x82"}, {"pcy;", "\xD0\xBF"},
    {"percnt;", "\x25"}, {"period;", "\x2E"}, {"permil;", "\xE2\x80\xB0"},
    {"perp;", "\xE2\x8A\xA5"}, {"pertenk;", "\xE2\x80\xB1"}, {"pfr;", "\xF0\x9D\x94\xAD"},
    {"phi;", "\xCF\x86"}, {"phiv;", "\xCF\x95"}, {"phmmat;", "\xE2\x84\xB3"},
    {"phone;", "\xE2\x98\x8E"}, {"pi;", "\xCF\x80"}, {"pitchfork;", "\xE2\x8B\x94"},
    {"piv;", "\xCF\x96"}, {"planck;", "\xE2\x84\x8F"}, {"planckh;", "\xE2\x84\x8E"},
    {"plankv;", "\xE2\x84\x8F"}, {"plus;", "\x2B"}, {"plusacir;", "\xE2\xA8\xA3"},
    {"plusb;", "\xE2\x8A\x9E"}, {"pluscir;", "\xE2\xA8\xA2"}, {"plusdo;", "\xE2\x88\x94"},
    {"plusdu;", "\xE2\xA8\xA5"}, {"pluse;", "\xE2\xA9\xB2"}, {"plusmn", "\xC2\xB1"},
    {"plusmn;", "\xC2\xB1"}, {"plussim;", "\xE2\xA8\xA6"}, {"plustwo;", "\xE2\xA8\xA7"},
    {"pm;", "\xC2\xB1"}, {"pointint;", "\xE2\xA8\x95"}, {"popf;", "\xF0\x9D\x95\xA1"},
    {"pound", "\xC2\xA3"}, {"pound;", "\xC2\xA3"}, {"pr;", "\xE2\x89\xBA"},
    {"prE;", "\xE2\xAA\xB3"}, {"prap;", "\xE2\xAA\xB7"}, {"prcue;", "\xE2\x89\xBC"},
    {"pre;", "\xE2\xAA\xAF"}, {"prec;", "\xE2\x89\xBA"}, {"precapprox;", "\xE2\xAA\xB7"},
    {"preccurlyeq;", "\xE2\x89\xBC"}, {"preceq;", "\xE2\xAA\xAF"}, {"precnapprox;", "\xE2\xAA\xB9"},
    {"precneqq;", "\xE2\xAA\xB5"}, {"precnsim;", "\xE2\x8B\xA8"}, {"precsim;", "\xE2\x89\xBE"},
    {"prime;", "\xE2\x80\xB2"}, {"primes;", "\xE2\x84\x99"}, {"prnE;", "\xE2\xAA\xB5"},
    {"prnap;", "\xE2\xAA\xB9"}, {"prnsim;", "\xE2\x8B\xA8"}, {"prod;", "\xE2\x88\x8F"},
    {"profalar;", "\xE2\x8C\xAE"}, {"profline;", "\xE2\x8C\x92"}, {"profsurf;", "\xE2\x8C\x93"},
    {"prop;", "\xE2\x88\x9D"}, {"propto;", "\xE2\x88\x9D"}, {"prsim;", "\xE2\x89\xBE"},
    {"prurel;", "\xE2\x8A\xB0"}, {"pscr;", "\xF0\x9D\x93\x85"}, {"psi;", "\xCF\x88"},
    {"puncsp;", "\xE2\x80\x88"}, {"qfr;", "\xF0\x9D\x94\xAE"}, {"qint;", "\xE2\xA8\x8C"},
    {"qopf;", "\xF0\x9D\x95\xA2"}, {"qprime;", "\xE2\x81\x97"}, {"qscr;", "\xF0\x9D\x93\x86"},
    {"quaternions;", "\xE2\x84\x8D"}, {"quatint;", "\xE2\xA8\x96"}, {"quest;", "\x3F"},
    {"questeq;", "\xE2\x89\x9F"}, {"quot", "\x22"}, {"quot;", "\x22"},
    {"rAarr;", "\xE2\x87\x9B"}, {"rArr;", "\xE2\x87\x92"}, {"rAtail;", "\xE2\xA4\x9C"},
    {"rBarr;", "\xE2\xA4\x8F"}, {"rHar;", "\xE2\xA5\xA4"}, {"race;", "\xE2\x88\xBD\xCC\xB1"},
    {"racute;", "\xC5\x95"}, {"radic;", "\xE2\x88\x9A"}, {"raemptyv;", "\xE2\xA6\xB3"},
    {"rang;", "\xE2\x9F\xA9"}, {"rangd;", "\xE2\xA6\x92"}, {"range;", "\xE2\xA6\xA5"},
    {"rangle;", "\xE2\x9F\xA9"}, {"raquo", "\xC2\xBB"}, {"raquo;", "\xC2\xBB"},
    {"rarr;", "\xE2\x86\x92"}, {"rarrap;", "\xE2\xA5\xB5"}, {"rarrb;", "\xE2\x87\xA5"},
    {"rarrbfs;", "\xE2\xA4\xA0"}, {"rarrc;", "\xE2\xA4\xB3"}, {"rarrfs;", "\xE2\xA4\x9E"},
    {"rarrhk;", "\xE2\x86\xAA"}, {"rarrlp;", "\xE2\x86\xAC"}, {"rarrpl;", "\xE2\xA5\x85"},
    {"rarrsim;", "\xE2\xA5\xB4"}, {"rarrtl;", "\xE2\x86\xA3"}, {"rarrw;", "\xE2\x86\x9D"},
    {"ratail;", "\xE2\xA4\x9A"}, {"ratio;", "\xE2\x88\xB6"}, {"rationals;", "\xE2\x84\x9A"},
    {"rbarr;", "\xE2\xA4\x8D"}, {"rbbrk;", "\xE2\x9D\xB3"}, {"rbrace;", "\x7D"},
    {"rbrack;", "\x5D"}, {"rbrke;", "\xE2\xA6\x8C"}, {"rbrksld;", "\xE2\xA6\x8E"},
    {"rbrkslu;", "\xE2\xA6\x90"}, {"rcaron;", "\xC5\x99"}, {"rcedil;", "\xC5\x97"},
    {"rceil;", "\xE2\x8C\x89"}, {"rcub;", "\x7D"}, {"rcy;", "\xD1\x80"},
    {"rdca;", "\xE2\xA4\xB7"}, {"rdldhar;", "\xE2\xA5\xA9"}, {"rdquo;", "\xE2\x80\x9D"},
    {"rdquor;", "\xE2\x80\x9D"}, {"rdsh;", "\xE2\x86\xB3"}, {"real;", "\xE2\x84\x9C"},
    {"realine;", "\xE2\x84\x9B"}, {"realpart;", "\xE2\x84\x9C"}, {"reals;", "\xE2\x84\x9D"},
    {"rect;", "\xE2\x96\xAD"}, {"reg", "\xC2\xAE"}, {"reg;", "\xC2\xAE"},
    {"rfisht;", "\xE2\xA5\xBD"}, {"rfloor;", "\xE2\x8C\x8B"}, {"rfr;", "\xF0\x9D\x94\xAF"},
    {"rhard;", "\xE2\x87\x81"}, {"rharu;", "\xE2\x87\x80"}, {"rharul;", "\xE2\xA5\xAC"},
    {"rho;", "\xCF\x81"}, {"rhov;", "\xCF\xB1"}, {"rightarrow;", "\xE2\x86\x92"},
    {"rightarrowtail;", "\xE2\x86\xA3"}, {"rightharpoondown;", "\xE2\x87\x81"}, {"rightharpoonup;", "\xE2\x87\x80"},
    {"rightleftarrows;", "\xE2\x87\x84"}, {"rightleftharpoons;", "\xE2\x87\x8C"}, {"rightrightarrows;", "\xE2\x87\x89"},
    {"rightsquigarrow;", "\xE2\x86\x9D"}, {"rightthreetimes;", "\xE2\x8B\x8C"}, {"ring;", "\xCB\x9A"},
    {"risingdotseq;", "\xE2\x89\x93"}, {"rlarr;", "\xE2\x87\x84"}, {"rlhar;", "\xE2\x87\x8C"},
    {"rlm;", "\xE2\x80\x8F"}, {"rmoust;", "\xE2\x8E\xB1"}, {"rmoustache;", "\xE2\x8E\xB1"},
    {"rnmid;", "\xE2\xAB\xAE"}, {"roang;", "\xE2\x9F\xAD"}, {"roarr;", "\xE2\x87\xBE"},
    {"robrk;", "\xE2\x9F\xA7"}, {"ropar;", "\xE2\xA6\x86"}, {"ropf;", "\xF0\x9D\x95\xA3"},
    {"roplus;", "\xE2\xA8\xAE"}, {"rotimes;", "\xE2\xA8\xB5"}, {"rpar;", "\x29"},
    {"rpargt;", "\xE2\xA6\x94"}, {"rppolint;", "\xE2\xA8\x92"}, {"rrarr;", "\xE2\x87\x89"},
    {"rsaquo;", "\xE2\x80\xBA"}, {"rscr;", "\xF0\x9D\x93\x87"}, {"rsh;", "\xE2\x86\xB1"},
    {"rsqb;", "\x5D"}, {"rsquo;", "\xE2\x80\x99"}, {"rsquor;", "\xE2\x80\x99"},
    {"rthree;", "\xE2\x8B\x8C"}, {"rtimes;", "\xE2\x8B\x8A"}, {"rtri;", "\xE2\x96\xB9"},
    {"rtrie;", "\xE2\x8A\xB5"}, {"rtrif;", "\xE2\x96\xB8"}, {"rtriltri;", "\xE2\xA7\x8E"},
    {"ruluhar;", "\xE2\xA5\xA8"}, {"rx;", "\xE2\x84\x9E"}, {"sacute;", "\xC5\x9B"},
    {"sbquo;", "\xE2\x80\x9A"}, {"sc;", "\xE2\x89\xBB"}, {"scE;", "\xE2\xAA\xB4"},
    {"scap;", "\xE2\xAA\xB8"}, {"scaron;", "\xC5\xA1"}, {"sccue;", "\xE2\x89\xBD"},
    {"sce;", "\xE2\xAA\xB0"}, {"scedil;", "\xC5\x9F"}, {"scirc;", "\xC5\x9D"},
    {"scnE;", "\xE2\xAA\xB6"}, {"scnap;", "\xE2\xAA\xBA"}, {"scnsim;", "\xE2\x8B\xA9"},
    {"scpolint;", "\xE2\xA8\x93"}, {"scsim;", "\xE2\x89\xBF"}, {"scy;", "\xD1\x81"},
    {"sdot;", "\xE2\x8B\x85"}, {"sdotb;", "\xE2\x8A\xA1"}, {"sdote;", "\xE2\xA9\xA6"},
    {"seArr;", "\xE2\x87\x98"}, {"searhk;", "\xE2\xA4\xA5"}, {"searr;", "\xE2\x86\x98"},
    {"searrow;", "\xE2\x86\x98"}, {"sect", "\xC2\xA7"}, {"sect;", "\xC2\xA7"},
    {"semi;", "\x3B"}, {"seswar;", "\xE2\xA4\xA9"}, {"setminus;", "\xE2\x88\x96"},
    {"setmn;", "\xE2\x88\x96"}, {"sext;", "\xE2\x9C\xB6"}, {"sfr;", "\xF0\x9D\x94\xB0"},
    {"sfrown;", "\xE2\x8C\xA2"}, {"sharp;", "\xE2\x99\xAF"}, {"shchcy;", "\xD1\x89"},
    {"shcy;", "\xD1\x88"}, {"shortmid;", "\xE2\x88\xA3"}, {"shortparallel;", "\xE2\x88\xA5"},
    {"shy", "\xC2\xAD"}, {"shy;", "\xC2\xAD"}, {"sigma;", "\xCF\x83"},
    {"sigmaf;", "\xCF\x82"}, {"sigmav;", "\xCF\x82"}, {"sim;", "\xE2\x88\xBC"},
    {"simdot;", "\xE2\xA9\xAA"}, {"sime;", "\xE2\x89\x83"}, {"simeq;", "\xE2\x89\x83"},
    {"simg;", "\xE2\xAA\x9E"}, {"simgE;", "\xE2\xAA\xA0"}, {"siml;", "\xE2\xAA\x9D"},
    {"simlE;", "\xE2\xAA\x9F"}, {"simne;", "\xE2\x89\x86"}, {"simplus;", "\xE2\xA8\xA4"},
    {"simrarr;", "\xE2\xA5\xB2"}, {"slarr;", "\xE2\x86\x90"}, {"smallsetminus;", "\xE2\x88\x96"},
    {"smashp;", "\xE2\xA8\xB3"}, {"smeparsl;", "\xE2\xA7\xA4"}, {"smid;", "\xE2\x88\xA3"},
    {"smile;", "\xE2\x8C\xA3"}, {"smt;", "\xE2\xAA\xAA"}, {"smte;", "\xE2\xAA\xAC"},
    {"smtes;", "\xE2\xAA\xAC\xEF\xB8\x80"}, {"softcy;", "\xD1\x8C"}, {"sol;", "\x2F"},
    {"solb;", "\xE2\xA7\x84"}, {"solbar;", "\xE2\x8C\xBF"}, {"sopf;", "\xF0\x9D\x95\xA4"},
    {"spades;", "\xE2\x99\xA0"}, {"spadesuit;", "\xE2\x99\xA0"}, {"spar;", "\xE2\x88\xA5"},
    {"sqcap;", "\xE2\x8A\x93"}, {"sqcaps;", "\xE2\x8A\x93\xEF\xB8\x80"}, {"sqcup;", "\xE2\x8A\x94"},
    {"sqcups;", "\xE2\x8A\x94\xEF\xB8\x80"}, {"sqsub;", "\xE2\x8A\x8F"}, {"sqsube;", "\xE2\x8A\x91"},
    {"sqsubset;", "\xE2\x8A\x8F"}, {"sqsubseteq;", "\xE2\x8A\x91"}, {"sqsup;", "\xE2\x8A\x90"},
    {"sqsupe;", "\xE2\x8A\x92"}, {"sqsupset;", "\xE2\x8A\x90"}, {"sqsupseteq;", "\xE2\x8A\x92"},
    {"squ;", "\xE2\x96\xA1"}, {"square;", "\xE2\x96\xA1"}, {"squarf;", "\xE2\x96\xAA"},
    {"squf;", "\xE2\x96\xAA"}, {"srarr;", "\xE2\x86\x92"}, {"sscr;", "\xF0\x9D\x93\x88"},
    {"ssetmn;", "\xE2\x88\x96"}, {"ssmile;", "\xE2\x8C\xA3"}, {"sstarf;", "\xE2\x8B\x86"},
    {"star;", "\xE2\x98\x86"}, {"starf;", "\xE2\x98\x85"}, {"straightepsilon;", "\xCF\xB5"},
    {"straightphi;", "\xCF\x95"}, {"strns;", "\xC2\xAF"}, {"sub;", "\xE2\x8A\x82"},
    {"subE;", "\xE2\xAB\x85"}, {"subdot;", "\xE2\xAA\xBD"}, {"sube;", "\xE2\x8A\x86"},
    {"subedot;", "\xE2\xAB\x83"}, {"submult;", "\xE2\xAB\x81"}, {"subnE;", "\xE2\xAB\x8B"},
    {"subne;", "\xE2\x8A\x8A"}, {"subplus;", "\xE2\xAA\xBF"}, {"subrarr;", "\xE2\xA5\xB9"},
    {"subset;", "\xE2\x8A\x82"}, {"subseteq;", "\xE2\x8A\x86"}, {"subseteqq;", "\xE2\xAB\x85"},
    {"subsetneq;", "\xE2\x8A\x8A"}, {"subsetneqq;", "\xE2\xAB\x8B"}, {"subsim;", "\xE2\xAB\x87"},
    {"subsub;", "\xE2\xAB\x95"}, {"subsup;", "\xE2\xAB\x93"}, {"succ;", "\xE2\x89\xBB"},
    {"succapprox;", "\xE2\xAA\xB8"}, {"succcurlyeq;", "\xE2\x89\xBD"}, {"succeq;", "\xE2\xAA\xB0"},
    {"succnapprox;", "\xE2\xAA\xBA"}, {"succneqq;", "\xE2\xAA\xB6"}, {"succnsim;", "\xE2\x8B\xA9"},
    {"succsim;", "\xE2\x89\xBF"}, {"sum;", "\xE2\x88\x91"}, {"sung;", "\xE2\x99\xAA"},
    {"sup1", "\xC2\xB9"}, {"sup1;", "\xC2\xB9"}, {"sup2", "\xC2\xB2"},
    {"sup2;", "\xC2\xB2"}, {"sup3", "\xC2\xB3"}, {"sup3;", "\xC2\xB3"},
    {"sup;", "\xE2\x8A\x83"}, {"supE;", "\xE2\xAB\x86"}, {"supdot;", "\xE2\xAA\xBE"},
    {"supdsub;", "\xE2\xAB\x98"}, {"supe;", "\xE2\x8A\x87"}, {"supedot;", "\xE2\xAB\x84"},
    {"suphsol;", "\xE2\x9F\x89"}, {"suphsub;", "\xE2\xAB\x97"}, {"suplarr;", "\xE2\xA5\xBB"},
    {"supmult;", "\xE2\xAB\x82"}, {"supnE;", "\xE2\xAB\x8C"}, {"supne;", "\xE2\x8A\x8B"},
    {"supplus;", "\xE2\xAB\x80"}, {"supset;", "\xE2\x8A\x83"}, {"supseteq;", "\xE2\x8A\x87"},
    {"supseteqq;", "\xE2\xAB\x86"}, {"supsetneq;", "\xE2\x8A\x8B"}, {"supsetneqq;", "\xE2\xAB\x8C"},
    {"supsim;", "\xE2\xAB\x88"}, {"supsub;", "\xE2\xAB\x94"}, {"supsup;", "\xE2\xAB\x96"},
    {"swArr;", "\xE2\x87\x99"}, {"swarhk;", "\xE2\xA4\xA6"}, {"swarr;", "\xE2\x86\x99"},
    {"swarrow;", "\xE2\x86\x99"}, {"swnwar;", "\xE2\xA4\xAA"}, {"szlig", "\xC3\x9F"},
    {"szlig;", "\xC3\x9F"}, {"target;", "\xE2\x8C\x96"}, {"tau;", "\xCF\x84"},
    {"tbrk;", "\xE2\x8E\xB4"}, {"tcaron;", "\xC5\xA5"}, {"tcedil;", "\xC5\xA3"},
    {"tcy;", "\xD1\x82"}, {"tdot;", "\xE2\x83\x9B"}, {"telrec;", "\xE2\x8C\x95"},
    {"tfr;", "\xF0\x9D\x94\xB1"}, {"there4;", "\xE2\x88\xB4"}, {"therefore;", "\xE2\x88\xB4"},
    {"theta;", "\xCE\xB8"}, {"thetasym;", "\xCF\x91"}, {"thetav;", "\xCF\x91"},
    {"thickapprox;", "\xE2\x89\x88"}, {"thicksim;", "\xE2\x88\xBC"}, {"thinsp;", "\xE2\x80\x89"},
    {"thkap;", "\xE2\x89\x88"}, {"thksim;", "\xE2\x88\xBC"}, {"thorn", "\xC3\xBE"},
    {"thorn;", "\xC3\xBE"}, {"tilde;", "\xCB\x9C"}, {"times", "\xC3\x97"},
    {"times;", "\xC3\x97"}, {"timesb;", "\xE2\x8A\xA0"}, {"timesbar;", "\xE2\xA8\xB1"},
    {"timesd;", "\xE2\xA8\xB0"}, {"tint;", "\xE2\x88\xAD"}, {"toea;", "\xE2\xA4\xA8"},
    {"top;", "\xE2\x8A\xA4"}, {"topbot;", "\xE2\x8C\xB6"}, {"topcir;", "\xE2\xAB\xB1"},
    {"topf;", "\xF0\x9D\x95\xA5"}, {"topfork;", "\xE2\xAB\x9A"}, {"tosa;", "\xE2\xA4\xA9"},
    {"tprime;", "\xE2\x80\xB4"}, {"trade;", "\xE2\x84\xA2"}, {"triangle;", "\xE2\x96\xB5"},
    {"triangledown;", "\xE2\x96\xBF"}, {"triangleleft;", "\xE2\x97\x83"}, {"trianglelefteq;", "\xE2\x8A\xB4"},
    {"triangleq;", "\xE2\x89\x9C"}, {"triangleright;", "\xE2\x96\xB9"}, {"trianglerighteq;", "\xE2\x8A\xB5"},
    {"tridot;", "\xE2\x97\xAC"}, {"trie;", "\xE2\x89\x9C"}, {"triminus;", "\xE2\xA8\xBA"},
    {"triplus;", "\xE2\xA8\xB9"}, {"trisb;", "\xE2\xA7\x8D"}, {"tritime;", "\xE2\xA8\xBB"},
    {"trpezium;", "\xE2\x8F\xA2"}, {"tscr;", "\xF0\x9D\x93\x89"}, {"tscy;", "\xD1\x86"},
    {"tshcy;", "\xD1\x9B"}, {"tstrok;", "\xC5\xA7"}, {"twixt;", "\xE2\x89\xAC"},
    {"twoheadleftarrow;", "\xE2\x86\x9E"}, {"twoheadrightarrow;", "\xE2\x86\xA0"}, {"uArr;", "\xE2\x87\x91"},
    {"uHar;", "\xE2\xA5\xA3"}, {"uacute", "\xC3\xBA"}, {"uacute;", "\xC3\xBA"},
    {"uarr;", "\xE2\x86\x91"}, {"ubrcy;", "\xD1\x9E"}, {"ubreve;", "\xC5\xAD"},
    {"ucirc", "\xC3\xBB"}, {"ucirc;", "\xC3\xBB"}, {"ucy;", "\xD1\x83"},
    {"udarr;", "\xE2\x87\x85"}, {"udblac;", "\xC5\xB1"}, {"udhar;", "\xE2\xA5\xAE"},
    {"ufisht;", "\xE2\xA5\xBE"}, {"ufr;", "\xF0\x9D\x94\xB2"}, {"ugrave", "\xC3\xB9"},
    {"ugrave;", "\xC3\xB9"}, {"uharl;", "\xE2\x86\xBF"}, {"uharr;", "\xE2\x86\xBE"},
    {"uhblk;", "\xE2\x96\x80"}, {"ulcorn;", "\xE2\x8C\x9C"}, {"ulcorner;", "\xE2\x8C\x9C"},
    {"ulcrop;", "\xE2\x8C\x8F"}, {"ultri;", "\xE2\x97\xB8"}, {"umacr;", "\xC5\xAB"},
    {"uml", "\xC2\xA8"}, {"uml;", "\xC2\xA8"}, {"uogon;", "\xC5\xB3"},
    {"uopf;", "\xF0\x9D\x95\xA6"}, {"uparrow;", "\xE2\x86\x91"}, {"updownarrow;", "\xE2\x86\x95"},
    {"upharpoonleft;", "\xE2\x86\xBF"}, {"upharpoonright;", "\xE2\x86\xBE"}, {"uplus;", "\xE2\x8A\x8E"},
    {"upsi;", "\xCF\x85"}, {"upsih;", "\xCF\x92"}, {"upsilon;", "\xCF\x85"},
    {"upuparrows;", "\xE2\x87\x88"}, {"urcorn;", "\xE2\x8C\x9D"}, {"urcorner;", "\xE2\x8C\x9D"},
    {"urcrop;", "\xE2\x8C\x8E"}, {"uring;", "\xC5\xAF"}, {"urtri;", "\xE2\x97\xB9"},
    {"uscr;", "\xF0\x9D\x93\x8A"}, {"utdot;", "\xE2\x8B\xB0"}, {"utilde;", "\xC5\xA9"},
    {"utri;", "\xE2\x96\xB5"}, {"utrif;", "\xE2\x96\xB4"}, {"uuarr;", "\xE2\x87\x88"},
    {"uuml", "\xC3\xBC"}, {"uuml;", "\xC3\xBC"}, {"uwangle;", "\xE2\xA6\xA7"},
    {"vArr;", "\xE2\x87\x95"}, {"vBar;", "\xE2\xAB\xA8"}, {"vBarv;", "\xE2\xAB\xA9"},
    {"vDash;", "\xE2\x8A\xA8"}, {"vangrt;", "\xE2\xA6\x9C"}, {"varepsilon;", "\xCF\xB5"},
    {"varkappa;", "\xCF\xB0"}, {"varnothing;", "\xE2\x88\x85"}, {"varphi;", "\xCF\x95"},
    {"varpi;", "\xCF\x96"}, {"varpropto;", "\xE2\x88\x9D"}, {"varr;", "\xE2\x86\x95"},
    {"varrho;", "\xCF\xB1"}, {"varsigma;", "\xCF\x82"}, {"varsubsetneq;", "\xE2\x8A\x8A\xEF\xB8\x80"},
    {"varsubsetneqq;", "\xE2\xAB\x8B\xEF\xB8\x80"}, {"varsupsetneq;", "\xE2\x8A\x8B\xEF\xB8\x80"}, {"varsupsetneqq;", "\xE2\xAB\x8C\xEF\xB8\x80"},
    {"vartheta;", "\xCF\x91"}, {"vartriangleleft;", "\xE2\x8A\xB2"}, {"vartriangleright;", "\xE2\x8A\xB3"},
    {"vcy;", "\xD0\xB2"}, {"vdash;", "\xE2\x8A\xA2"}, {"vee;", "\xE2\x88\xA8"},
    {"veebar;", "\xE2\x8A\xBB"}, {"veeeq;", "\xE2\x89\x9A"}, {"vellip;", "\xE2\x8B\xAE"},
    {"verbar;", "\x7C"}, {"vert;", "\x7C"}, {"vfr;", "\xF0\x9D\x94\xB3"},
    {"vltri;", "\xE2\x8A\xB2"}, {"vnsub;", "\xE2\x8A\x82\xE2\x83\x92"}, {"vnsup;", "\xE2\x8A\x83\xE2\x83\x92"},
    {"vopf;", "\xF0\x9D\x95\xA7"}, {"vprop;", "\xE2\x88\x9D"}, {"vrtri;", "\xE2\x8A\xB3"},
    {"vscr;", "\xF0\x9D\x93\x8B"}, {"vsubnE;", "\xE2\xAB\x8B\xEF\xB8\x80"}, {"vsubne;", "\xE2\x8A\x8A\xEF\xB8\x80"},
    {"vsupnE;", "\xE2\xAB\x8C\xEF\xB8\x80"}, {"vsupne;", "\xE2\x8A\x8B\xEF\xB8\x80"}, {"vzigzag;", "\xE2\xA6\x9A"},
    {"wcirc;", "\xC5\xB5"}, {"wedbar;", "\xE2\xA9\x9F"}, {"wedge;", "\xE2\x88\xA7"},
    {"wedgeq;", "\xE2\x89\x99"}, {"weierp;", "\xE2\x84\x98"}, {"wfr;", "\xF0\x9D\x94\xB4"},
    {"wopf;", "\xF0\x9D\x95\xA8"}, {"wp;", "\xE2\x84\x98"}, {"wr;", "\xE2\x89\x80"},
    {"wreath;", "\xE2\x89\x80"}, {"wscr;", "\xF0\x9D\x93\x8C"}, {"xcap;", "\xE2\x8B\x82"},
    {"xcirc;", "\xE2\x97\xAF"}, {"xcup;", "\xE2\x8B\x83"}, {"xdtri;", "\xE2\x96\xBD"},
    {"xfr;", "\xF0\x9D\x94\xB5"}, {"xhArr;", "\xE2\x9F\xBA"}, {"xharr;", "\xE2\x9F\xB7"},
    {"xi;", "\xCE\xBE"}, {"xlArr;", "\xE2\x9F\xB8"}, {"xlarr;", "\xE2\x9F\xB5"},
    {"xmap;", "\xE2\x9F\xBC"}, {"xnis;", "\xE2\x8B\xBB"}, {"xodot;", "\xE2\xA8\x80"},
    {"xopf;", "\xF0\x9D\x95\xA9"}, {"xoplus;", "\xE2\xA8\x81"}, {"xotime;", "\xE2\xA8\x82"},
    {"xrArr;", "\xE2\x9F\xB9"}, {"xrarr;", "\xE2\x9F\xB6"}, {"xscr;", "\xF0\x9D\x93\x8D"},
    {"xsqcup;", "\xE2\xA8\x86"}, {"xuplus;", "\xE2\xA8\x84"}, {"xutri;", "\xE2\x96\xB3"},
    {"xvee;", "\xE2\x8B\x81"}, {"xwedge;", "\xE2\x8B\x80"}, {"yacute", "\xC3\xBD"},
    {"yacute;", "\xC3\xBD"}, {"yacy;", "\xD1\x8F"}, {"ycirc;", "\xC5\xB7"},
    {"ycy;", "\xD1\x8B"}, {"yen", "\xC2\xA5"}, {"yen;", "\xC2\xA5"},
    {"yfr;", "\xF0\x9D\x94\xB6"}, {"yicy;", "\xD1\x97"}, {"yopf;", "\xF0\x9D\x95\xAA"},
    {"yscr;", "\xF0\x9D\x93\x8E"}, {"yucy;", "\xD1\x8E"}, {"yuml", "\xC3\xBF"},
    {"yuml;", "\xC3\xBF"}, {"zacute;", "\xC5\xBA"}, {"zcaron;", "\xC5\xBE"},
    {"zcy;", "\xD0\xB7"}, {"zdot;", "\xC5\xBC"}, {"zeetrf;", "\xE2\x84\xA8"},
    {"zeta;", "\xCE\xB6"}, {"zfr;", "\xF0\x9D\x94\xB7"}, {"zhcy;", "\xD0\xB6"},
    {"zigrarr;", "\xE2\x87\x9D"}, {"zopf;", "\xF0\x9D\x95\xAB"}, {"zscr;", "\xF0\x9D\x93\x8F"},
    {"zwj;", "\xE2\x80\x8D"}, {"zwnj;", "\xE2\x80\x8C"},
};

template <std::size_t N>
bool in_ranges(const CpRange (&table)[N], char32_t c) {
  const auto* end = table + N;
  const auto* it = std::upper_bound(table, end, c, [](char32_t v, const CpRange& r) { return v < r.lo; });
  return it != table && c <= (it - 1)->hi;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
  return in_ranges(kLetters, c);
}
bool is_number(char32_t c) {
  if (c < 0x80) return c >= U'0' && c <= U'9';
  return in_ranges(kNumbers, c);
}
bool is_regex_space(char32_t c) { return in_ranges(kRegexSpaces, c); }
bool is_unmatched(char32_t c) { return in_ranges(kUnmatched, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, c); }
bool is_cased_only(char32_t c) { return in_ranges(kCased, c); }

char32_t simple_lower(char32_t c) {
  if (c < 0x80) return (c >= U'A' && c <= U'Z') ? c + 32 : c;
  // Runs may interleave (stride 2), so the table is expanded into a sorted map once.
  static const std::vector<std::pair<char32_t, char32_t>> map = [] {
    std::vector<std::pair<char32_t, char32_t>> m;
    for (const auto& r : kLowerRuns)
      for (std::uint32_t k = 0; k < r.count; ++k) {
        const char32_t from = r.first + k * r.stride;
        m.emplace_back(from, static_cast<char32_t>(static_cast<std::int64_t>(from) + r.delta));
      }
    std::sort(m.begin(), m.end());
    return m;
  }();
  const auto it = std::lower_bound(map.begin(), map.end(), std::make_pair(c, char32_t(0)));
  return it != map.end() && it->first == c ? it->second : c;
}

bool width_map(char32_t c, char32_t* a, char32_t* b) {
  if (c != 0x3000 && (c < 0xFF01 || c > 0xFFEF)) return false;
  const auto* end = kWidthMap + sizeof(kWidthMap) / sizeof(kWidthMap[0]);
  const auto* it = std::lower_bound(kWidthMap, end, c, [](const CpMap2& m, char32_t v) { return m.from < v; });
  if (it == end || it->from != c) return false;
  *a = it->to1;
  *b = it->to2;
  return true;
}

const char* html5_entity(std::string_view name) {
  const auto* end = kHtml5Entities + sizeof(kHtml5Entities) / sizeof(kHtml5Entities[0]);
  const auto* it = std::lower_bound(kHtml5Entities, end, name,
                                    [](const HtmlEntity& e, std::string_view v) { return std::string_view(e.name) < v; });
  return it != end && std::string_view(it->name) == name ? it->utf8 : nullptr;
}

}  // namespace clip_tokenizer_detail

}  // namespace ldm::eval
