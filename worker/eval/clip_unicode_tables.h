// The Unicode character data CLIP's tokenizer needs, as Python sees it (worker/eval/clip_tokenizer.cpp
// is the logic; clip_unicode_tables.cpp holds the generated tables and says how they were made).
#pragma once

#include <string_view>

namespace ldm::eval::clip_tokenizer_detail {

bool is_letter(char32_t c);          // regex [\p{L}] under IGNORECASE
bool is_number(char32_t c);          // regex [\p{N}] under IGNORECASE
bool is_regex_space(char32_t c);     // regex \s (Unicode White_Space)
bool is_unmatched(char32_t c);       // matches no alternative of CLIP's pattern and is not \s (U+0345)
bool is_case_ignorable(char32_t c);  // CPython's _PyUnicode_IsCaseIgnorable
bool is_cased_only(char32_t c);      // CPython's _PyUnicode_IsCased and not case-ignorable
char32_t simple_lower(char32_t c);   // str.lower() of one character, where that is one character
bool width_map(char32_t c, char32_t* a, char32_t* b);  // ftfy's WIDTH_MAP (b = 0: one character)
const char* html5_entity(std::string_view name);       // html.entities.html5[name] (UTF-8), or nullptr

}  // namespace ldm::eval::clip_tokenizer_detail
