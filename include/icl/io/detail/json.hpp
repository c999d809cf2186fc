/// @file
/// A small strict JSON reader and string escaper, enough for safetensors headers. Malformed input
/// throws icl::IoError with the byte offset; nesting depth and input size are bounded so that
/// hostile files cannot exhaust the stack.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "icl/core/error.hpp"

namespace icl::io::detail {

/// A parsed JSON value. Numbers keep their text so that integers are read exactly.
struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool b = false;
  std::string text;               ///< string value, or number text
  std::vector<Json> items;        ///< array items, or object member values (in file order)
  std::vector<std::string> keys;  ///< object member names (keys[i] names items[i])

  bool is_object() const { return kind == Kind::object; }
  bool is_array() const { return kind == Kind::array; }
  bool is_string() const { return kind == Kind::string; }
  bool is_number() const { return kind == Kind::number; }
};

class JsonParser {
 public:
  static constexpr int kMaxDepth = 64;

  JsonParser(std::string_view s, std::string context) : s_(s), ctx_(std::move(context)) {}

  Json parse_document() {
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    icl::detail::raise<IoError>(ctx_, ": corrupt JSON header at byte ", pos_, ": ", what);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  char peek() {
    if (pos_ >= s_.size()) fail("unexpected end of header");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64 levels");
    skip_ws();
    const char c = peek();
    Json v;
    if (c == '{') {
      v.kind = Json::Kind::object;
      std::set<std::string> seen;  // member names so far, for duplicate detection
      ++pos_;
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        return v;
      }
      for (;;) {
        skip_ws();
        if (peek() != '"') fail("expected a member name");
        std::string key = parse_string();
        // a balanced tree: O(k log k) for k keys (a linear scan made hostile headers quadratic)
        if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
        skip_ws();
        expect(':');
        v.keys.push_back(std::move(key));
        v.items.push_back(parse_value(depth + 1));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::array;
      ++pos_;
      skip_ws();
      if (peek() == ']') {
        ++pos_;
        return v;
      }
      for (;;) {
        v.items.push_back(parse_value(depth + 1));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::string;
      v.text = parse_string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Kind::number;
      v.text = parse_number();
      return v;
    }
    if (s_.substr(pos_, 4) == "true") {
      pos_ += 4;
      v.kind = Json::Kind::boolean;
      v.b = true;
      return v;
    }
    if (s_.substr(pos_, 5) == "false") {
      pos_ += 5;
      v.kind = Json::Kind::boolean;
      return v;
    }
    if (s_.substr(pos_, 4) == "null") {
      pos_ += 4;
      return v;
    }
    fail(std::string("unexpected character '") + c + "'");
  }
  bool digit_at(std::size_t i) const { return i < s_.size() && s_[i] >= '0' && s_[i] <= '9'; }
  /// RFC 8259's number grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, nothing more: "1-2",
  /// "1.2.3", "--" and "007" are refused here (the reference safetensors reader, serde_json, refuses
  /// them too) instead of reaching a consumer that would read a prefix.
  std::string parse_number() {
    const std::size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (!digit_at(pos_)) fail("malformed number: expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit_at(pos_)) fail("malformed number: leading zero");
    } else {
      while (digit_at(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit_at(pos_)) fail("malformed number: expected a digit after '.'");
      while (digit_at(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit_at(pos_)) fail("malformed number: expected a digit in the exponent");
      while (digit_at(pos_)) ++pos_;
    }
    // A number ends at a delimiter; "1.2.3", "1-2" or "1e5e5" would otherwise stop after a prefix
    // and be reported by the caller as a missing ',' -- say what it is.
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == 'e' ||
                             s_[pos_] == 'E' || digit_at(pos_)))
      fail("malformed number '" + std::string(s_.substr(start, pos_ + 1 - start)) + "...'");
    return std::string(s_.substr(start, pos_ - start));
  }
  /// Consumes one UTF-8 encoded code point whose lead byte (>= 0x80) is at pos_ - 1; refuses
  /// malformed sequences: stray continuation bytes, truncated sequences, overlong encodings,
  /// surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629).
  void check_utf8(unsigned char lead, std::string& out) {
    int extra = 0;
    std::uint32_t cp = 0, min = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1, cp = lead & 0x1Fu, min = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2, cp = lead & 0x0Fu, min = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3, cp = lead & 0x07u, min = 0x10000;
    } else {
      --pos_;
      fail("invalid UTF-8 in string (byte 0x" + hex2(lead) + ")");
    }
    const std::size_t at = pos_ - 1;
    for (int i = 0; i < extra; ++i) {
      const auto b = pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : 0u;
      if ((b & 0xC0u) != 0x80u) {
        pos_ = at;
        fail("invalid UTF-8 in string (truncated sequence)");
      }
      cp = (cp << 6) | (b & 0x3Fu);
      ++pos_;
    }
    if (cp < min || (cp >= 0xD800 && cp < 0xE000) || cp > 0x10FFFF) {
      pos_ = at;
      fail("invalid UTF-8 in string (overlong, surrogate or beyond U+10FFFF)");
    }
    out.append(s_.substr(at, pos_ - at));
  }
  static std::string hex2(unsigned char b) {
    static const char* hex = "0123456789abcdef";
    return {hex[b >> 4], hex[b & 0xF]};
  }
  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<std::uint32_t>(h - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        check_utf8(static_cast<unsigned char>(c), out);
        continue;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("unpaired surrogate");
            pos_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("unpaired surrogate");
          }
          put_utf8(out, cp);
          break;
        }
        default:
          fail(std::string("bad escape \\") + e);
      }
    }
  }

  std::string_view s_;
  std::string ctx_;
  std::size_t pos_ = 0;
};

/// JSON string literal for `s` (quotes included).
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xF];
          out += hex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace icl::io::detail
