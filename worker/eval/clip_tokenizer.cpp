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

#include "shared/core/sha256.h"
#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/eval/clip_unicode_tables.h"

namespace ldm::eval {

// Everything file-local lives in this named namespace (not an anonymous one): the library is
// unity-built with other eval sources.
namespace clip_tokenizer_detail {

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
  d.sha = sha256_file_hex(merges_path);
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

}  // namespace ldm::eval
