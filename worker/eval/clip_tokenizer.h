// CLIP's byte-level BPE tokenizer (OpenAI CLIP's clip/simple_tokenizer.py, which open_clip's
// SimpleTokenizer and clip.tokenize(..., truncate=True) share), re-implemented without Python, so
// the text tower of a CLIP model sees the ids it was trained with.
//
// The merges file is CLIP's bpe_simple_vocab_16e6.txt.gz (plain text or gzip, read through zlib):
// a header line, then one merge "a b" per line. As simple_tokenizer does, the text is split at
// '\n' and lines 1 .. 48894 (49152 - 256 - 2) after the header are used; the vocabulary is the 256
// byte symbols of bytes_to_unicode(), the same with "</w>" appended, the concatenation of every
// merge line, then <|startoftext|> and <|endoftext|>. With CLIP's file that is 49408 ids, SOT 49406,
// EOT 49407. Python's quirks are kept so that any merges file gives Python's ids: an empty line
// (e.g. after a trailing newline of a short file) is a vocabulary entry "" and shifts SOT/EOT by
// one; a string that occurs twice in the vocabulary (or a merge listed twice) takes its last id
// (rank). A line with one or more than two fields is an error (Python would accept it silently).
//
// encode(text) follows SimpleTokenizer.encode exactly, step by step:
//  1. ftfy.fix_text(text). ftfy is not a C++ library (nor a Debian package); we apply the subset of
//     its default fixers that are fixed character mappings, in ftfy 6.3's order, repeated until
//     the text stops changing, per '\n'-terminated segment, with its "auto" rule that a segment
//     containing '<' turns HTML unescaping off for the rest of the text:
//       unescape_html (semicolon-terminated HTML5 entities and numeric references; NOT ftfy's
//       upper-case variants such as "&EACUTE;"), fix_c1_controls (U+0080..U+009F as
//       Windows-1252), fix_latin_ligatures, fix_character_width (fullwidth/halfwidth forms,
//       U+3000 -> space), uncurl_quotes (U+02BC, U+2018..U+201B -> ', U+201C..U+201F -> "),
//       fix_line_breaks, remove_terminal_escapes (ESC [ digits/; letter), remove_control_chars.
//     NOT done: fix_encoding (mojibake detection and repair, e.g. "cafÃ©" -> "café") and the final
//     NFC normalisation. Text that needs those (mojibake; decomposed accents such as "e" + U+0301,
//     or other non-NFC text; characters at or above U+0300 are the only ones NFC can change) can
//     get other ids than OpenAI's tokenizer. Plain ASCII, and precomposed UTF-8 text, agree.
//  2. html.unescape twice (Python's algorithm: numeric references with its replacement table for
//     invalid ones, the full HTML5 entity table, legacy names without ';' as longest prefix).
//  3. strip(), collapse runs of regex's \s (Unicode White_Space) to one space, strip() (Python's
//     str.isspace, which also strips U+001C..U+001F).
//  4. str.lower(): Python's full lower-case mapping (U+0130 -> "i" U+0307; Greek capital sigma
//     -> final sigma by CPython's context rule).
//  5. The pattern <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
//     [^\s\p{L}\p{N}]+ with re.IGNORECASE, evaluated by hand: at each position the first
//     alternative that matches wins; letters are runs, numbers single characters, anything else
//     (not whitespace) runs; whitespace is skipped. The letter/number/whitespace classes are tables
//     generated from the `regex` module (Unicode 15.0, IGNORECASE semantics: U+0345 matches no
//     alternative and is dropped; U+017F "ſ" matches 's' in "'s"). Python's lower() tables are
//     from Python 3.11 (Unicode 14.0). Text in scripts newer than that may differ.
//  6. Each piece's UTF-8 bytes through bytes_to_unicode, then BPE with the merge ranks (lowest rank
//     first, all non-overlapping occurrences left to right, as SimpleTokenizer.bpe).
// Text must be valid UTF-8 (else ldm::Error giving the byte offset).
// Checked against OpenAI's simple_tokenizer.py itself (with ftfy 6.3.1 and regex) and CLIP's merges
// file on ~9,800 strings (CLIP's prompts and README, adversarial mixes of quotes, entities, C1
// controls, combining marks, all Unicode planes): identical ids except where the omitted ftfy steps
// (mojibake repair, NFC, upper-case entities) change the text; identical to ftfy restricted to the
// implemented fixers (fix_encoding=False, normalization=None) except for "&EACUTE;"-style entities.
//
// tokenize(text) = [SOT] + encode(text) + [EOT], truncated to the context length with EOT kept as
// the last id (clip.tokenize(truncate=True), open_clip's tokenizer), then padded with 0. Without
// truncation a longer text is an error, as clip.tokenize(truncate=False).
//
// Thread-safety: all const members may be called concurrently (the BPE cache is locked).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ldm::eval {

// Steps 1-4 above: the text that CLIP's pattern is applied to (UTF-8).
std::string clip_clean_text(const std::string& text);
// Step 5 on already cleaned text: the pieces, in order (UTF-8).
std::vector<std::string> clip_split_words(const std::string& cleaned);

// How CLIP's pattern sees one code point: Letter ([\p{L}]), Number ([\p{N}]), Space (\s), Other
// ([^\s\p{L}\p{N}]), Unmatched (none of them under IGNORECASE: U+0345). Surrogates: Other.
enum class ClipCharClass { Other, Letter, Number, Space, Unmatched };
ClipCharClass clip_char_class(char32_t c);
// Python's str.lower() of UTF-8 text (step 4 alone). Throws ldm::Error for invalid UTF-8.
std::string clip_lower(const std::string& text);

class ClipTokenizer {
 public:
  static constexpr int kContextLength = 77;
  static constexpr int kMaxMerges = 49152 - 256 - 2;  // lines simple_tokenizer reads after the header

  // Reads the merges file (gzip or plain text). Throws ldm::DataError naming the file: missing or
  // unreadable file, corrupt gzip data, invalid UTF-8, a malformed merge line, no merges at all.
  explicit ClipTokenizer(const std::string& merges_path);
  ~ClipTokenizer();
  ClipTokenizer(const ClipTokenizer&) = delete;
  ClipTokenizer& operator=(const ClipTokenizer&) = delete;

  // The BPE ids of `text` (no SOT/EOT, no limit on the length).
  std::vector<std::int64_t> encode(const std::string& text) const;
  // [SOT] + encode(text) + [EOT], truncated (EOT kept last) or, with truncate = false, an
  // ldm::Error when longer than context_length (>= 2); then padded with 0 to context_length.
  std::vector<std::int64_t> tokenize(const std::string& text, int context_length = kContextLength,
                                     bool truncate = true) const;
  // tokenize() of each text, row after row: texts.size() * context_length ids.
  std::vector<std::int64_t> tokenize_batch(const std::vector<std::string>& texts, int context_length = kContextLength,
                                           bool truncate = true) const;
  // SimpleTokenizer.decode: the byte symbols joined, "</w>" -> " ", invalid UTF-8 replaced by
  // U+FFFD. For people (ids 0 are decoded as "!", as Python would).
  std::string decode(const std::vector<std::int64_t>& ids) const;

  std::int64_t sot_id() const;
  std::int64_t eot_id() const;
  std::int64_t vocab_size() const;  // ids are < vocab_size() (49408 with CLIP's file)
  int merges() const;               // merge lines used
  const std::string& path() const;
  const std::string& sha256() const;  // of the file as stored (compressed or not)
  std::string identity() const;       // "clip-bpe:<first 16 hex of the SHA-256>"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ldm::eval
